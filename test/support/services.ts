/**
 * Where the integration tests' Postgres and Redis come from, decided once per run by the global
 * setup (test/support/global-setup.ts) and handed to the test workers with vitest's provide/inject:
 *   1. TEST_DATABASE_URL / TEST_REDIS_URL, when set, always win;
 *   2. else, when a container engine answers (a laptop, most CI services), a throwaway container
 *      started with testcontainers, once for the whole run;
 *   3. else the local service: Postgres at 127.0.0.1:5432 (trust auth, user postgres), Redis at
 *      127.0.0.1:6379 — the tests then fail, never skip, when it is not running.
 */
import { inject } from 'vitest';

export const LOCAL_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379';
/** The images the containers run: the versions deploy/docker-compose.yml runs (a test checks). */
export const POSTGRES_IMAGE = 'postgres:17.6-bookworm';
export const REDIS_IMAGE = 'redis:7.4.5-bookworm';

/** Where one service comes from: a URL already known (the env or the local default) or a container. */
export type ServiceChoice = { source: 'env' | 'local'; url: string } | { source: 'container' };

/** The choice for both services. */
export interface ServicesPlan {
  database: ServiceChoice;
  redis: ServiceChoice;
}

/** What the workers receive: the URLs to use, and where they came from (for the run's log line). */
export interface TestServiceUrls {
  databaseUrl: string;
  redisUrl: string;
  sources: { database: ServiceChoice['source']; redis: ServiceChoice['source'] };
}

declare module 'vitest' {
  export interface ProvidedContext {
    testServices: TestServiceUrls;
  }
}

/**
 * Decides where each service comes from. `engineAnswers` is asked only when a service has no URL
 * in `env`; a probe that throws counts as no engine.
 */
export async function chooseServices(
  env: Record<string, string | undefined>,
  engineAnswers: () => Promise<boolean>,
): Promise<ServicesPlan> {
  const databaseUrl = env.TEST_DATABASE_URL || undefined;
  const redisUrl = env.TEST_REDIS_URL || undefined;
  const engine = (!databaseUrl || !redisUrl) && (await engineAnswers().catch(() => false));
  const choose = (url: string | undefined, local: string): ServiceChoice =>
    url ? { source: 'env', url } : engine ? { source: 'container' } : { source: 'local', url: local };
  return { database: choose(databaseUrl, LOCAL_DATABASE_URL), redis: choose(redisUrl, LOCAL_REDIS_URL) };
}

/**
 * Whether a container engine answers, as testcontainers finds one (DOCKER_HOST, the Docker socket,
 * ~/.testcontainers.properties, rootless Docker...). testcontainers is imported only here and in
 * `startServices`, so a run on env or local services never loads it past this probe.
 */
export async function containerEngineAnswers(): Promise<boolean> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/** Starts the containers the plan asks for; `stop` removes them at the end of the run. */
export async function startServices(
  plan: ServicesPlan,
): Promise<{ urls: TestServiceUrls; stop: () => Promise<void> }> {
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    await Promise.allSettled(stops.map((s) => s()));
  };
  try {
    const databaseUrl = plan.database.source === 'container' ? await startPostgres(stops) : plan.database.url;
    const redisUrl = plan.redis.source === 'container' ? await startRedis(stops) : plan.redis.url;
    return {
      urls: { databaseUrl, redisUrl, sources: { database: plan.database.source, redis: plan.redis.source } },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startPostgres(stops: (() => Promise<unknown>)[]): Promise<string> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(POSTGRES_IMAGE)
    // Same access as the local service the suite is written for: user postgres, trust auth.
    .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
    .withTmpFs({ '/var/lib/postgresql/data': 'rw' })
    .withExposedPorts(5432)
    // NOTE: the image starts a temporary server for initdb first; the second "ready" is the real one.
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  stops.push(() => container.stop());
  return `postgres://postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
}

async function startRedis(stops: (() => Promise<unknown>)[]): Promise<string> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(REDIS_IMAGE)
    .withExposedPorts(6379)
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .start();
  stops.push(() => container.stop());
  return `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
}

/**
 * The services of this run, in a test worker: what the global setup provided. Outside a vitest run
 * with that setup (a script importing a support module), the env or the local services.
 */
export function testServiceUrls(): TestServiceUrls {
  let provided: TestServiceUrls | undefined;
  try {
    provided = inject('testServices');
  } catch {
    provided = undefined;
  }
  if (provided) return provided;
  const databaseUrl = process.env.TEST_DATABASE_URL || LOCAL_DATABASE_URL;
  const redisUrl = process.env.TEST_REDIS_URL || LOCAL_REDIS_URL;
  return {
    databaseUrl,
    redisUrl,
    sources: {
      database: process.env.TEST_DATABASE_URL ? 'env' : 'local',
      redis: process.env.TEST_REDIS_URL ? 'env' : 'local',
    },
  };
}
