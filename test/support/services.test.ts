import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { TEST_DATABASE_URL } from './database.ts';
import {
  chooseServices,
  LOCAL_DATABASE_URL,
  LOCAL_REDIS_URL,
  POSTGRES_IMAGE,
  REDIS_IMAGE,
  testServiceUrls,
} from './services.ts';

/** A probe that answers `answer` and counts its calls. */
function probe(answer: boolean | Error) {
  const calls = { count: 0 };
  const ask = async () => {
    calls.count++;
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { ask, calls };
}

describe('where the test services come from', () => {
  it('TEST_DATABASE_URL and TEST_REDIS_URL always win: no engine is even asked', async () => {
    const engine = probe(true);
    const plan = await chooseServices(
      { TEST_DATABASE_URL: 'postgres://ci@db:5432/postgres', TEST_REDIS_URL: 'redis://cache:6379' },
      engine.ask,
    );
    expect(plan).toEqual({
      database: { source: 'env', url: 'postgres://ci@db:5432/postgres' },
      redis: { source: 'env', url: 'redis://cache:6379' },
    });
    expect(engine.calls.count).toBe(0);
  });

  it('a container engine answers: containers for what the env does not name', async () => {
    expect(await chooseServices({}, probe(true).ask)).toEqual({
      database: { source: 'container' },
      redis: { source: 'container' },
    });
    expect(await chooseServices({ TEST_REDIS_URL: 'redis://cache:6379' }, probe(true).ask)).toEqual({
      database: { source: 'container' },
      redis: { source: 'env', url: 'redis://cache:6379' },
    });
  });

  it('no engine (or a probe that fails): the local services', async () => {
    const local = {
      database: { source: 'local', url: LOCAL_DATABASE_URL },
      redis: { source: 'local', url: LOCAL_REDIS_URL },
    };
    expect(await chooseServices({}, probe(false).ask)).toEqual(local);
    expect(await chooseServices({}, probe(new Error('no socket')).ask)).toEqual(local);
    // An empty variable is no URL.
    expect(await chooseServices({ TEST_DATABASE_URL: '', TEST_REDIS_URL: '' }, probe(false).ask)).toEqual(
      local,
    );
    expect(LOCAL_DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/postgres');
    expect(LOCAL_REDIS_URL).toBe('redis://127.0.0.1:6379');
  });

  it('the global setup decided once for this run, and the fixtures use its answer', () => {
    const provided = inject('testServices');
    expect(provided).toBeDefined();
    expect(testServiceUrls()).toEqual(provided);
    expect(TEST_DATABASE_URL).toBe(provided.databaseUrl);
    if (process.env.TEST_DATABASE_URL) expect(provided.sources.database).toBe('env');
    if (process.env.TEST_REDIS_URL) expect(provided.sources.redis).toBe('env');
    if (provided.sources.database === 'local') expect(provided.databaseUrl).toBe(LOCAL_DATABASE_URL);
    if (provided.sources.redis === 'local') expect(provided.redisUrl).toBe(LOCAL_REDIS_URL);
  });

  it('the containers run the Postgres and Redis versions of deploy/docker-compose.yml', () => {
    const compose = parse(
      readFileSync(path.resolve(import.meta.dirname, '../../deploy/docker-compose.yml'), 'utf8'),
    ) as { services: Record<string, { image?: string }> };
    expect(compose.services.postgres?.image).toBe(POSTGRES_IMAGE);
    expect(compose.services.redis?.image).toBe(REDIS_IMAGE);
  });
});
