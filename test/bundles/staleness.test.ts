/**
 * VERDICT_BUNDLE_MAX_STALE_MS: a replica that cannot load the fleet's active revision keeps serving
 * the previous one, says so in /v1/bundles/status and verdict_bundle_follow_failing, and turns not
 * ready once it has failed for longer than the setting; a loadable activation makes it ready again.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RevisionStore } from '../../src/bundles/revisions.ts';
import type { Verdict } from '../../src/create-verdict.ts';
import { parseBundle } from '../../src/engine/bundle.ts';
import { sampleValue } from '../observability/scrape.ts';
import type { TestDatabase } from '../support/database.ts';
import { filesIn, opaBuild, pack, scratchDir, unpack, writePolicy } from '../support/signed-bundle.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

let dir: string;
let live: TestVerdict;
let database: TestDatabase;
let verdict: Verdict;
let broken: Buffer;
let good: Buffer;

beforeAll(async () => {
  dir = scratchDir('stale');
  const seed = opaBuild(writePolicy(dir), path.join(dir, 'seed.tar.gz'), { revision: 'seed' });
  good = readFileSync(
    opaBuild(writePolicy(dir, { allow: false }), path.join(dir, 'good.tar.gz'), { revision: 'good' }),
  );
  const tree = unpack(seed, dir);
  writeFileSync(path.join(tree, 'policy.wasm'), Buffer.from('\0asm broken'));
  broken = pack(tree, filesIn(tree));
  live = await startTestVerdict('stale', {
    bundle: seed,
    env: { VERDICT_BUNDLE_POLL_MS: '100', VERDICT_BUNDLE_MAX_STALE_MS: '300' },
  });
  ({ verdict, database } = live);
});

afterAll(async () => {
  await live?.close();
  rmSync(dir, { recursive: true, force: true });
});

const ready = async () => (await verdict.app.inject({ method: 'GET', url: '/health/ready' })).statusCode;
const metric = async (name: string) => sampleValue(await verdict.metrics.registry.metrics(), name, {});

describe('a replica that cannot follow the active revision', () => {
  it('keeps serving, reports the failure, turns not ready after VERDICT_BUNDLE_MAX_STALE_MS, and recovers', async () => {
    expect(await ready()).toBe(200);
    // A revision that slipped past the upload checks (written directly), committed as active.
    const bundle = parseBundle(broken);
    await new RevisionStore(database.db).put(bundle);
    await database.db.query({
      text: `UPDATE fleet_state SET version = version + 1, state = jsonb_set(state, '{active}', to_jsonb($1::text)) WHERE topic = 'bundles'`,
      values: [bundle.digest],
    });
    await verdict.replica!.sync();
    expect(verdict.policy.current().bundle.revision).toBe('seed');
    expect(await metric('verdict_bundle_follow_failing')).toBe(1);
    const status = (
      await verdict.app.inject({
        method: 'GET',
        url: '/v1/bundles/status',
        headers: { authorization: `Bearer ${live.token('operator', ['bundles:read'])}` },
      })
    ).json();
    expect(status.desired.active).toBe(bundle.digest);
    expect(status.replicas[0].active).not.toBe(bundle.digest);
    expect(status.replicas[0].failure.message).toMatch(/policy.wasm/);

    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await ready()).toBe(503);

    const { revision } = await verdict.lifecycle!.upload(good, 'alice');
    await verdict.lifecycle!.activate(revision.digest, 'alice');
    await verdict.replica!.sync();
    expect(verdict.policy.current().bundle.revision).toBe('good');
    expect(await ready()).toBe(200);
    expect(await metric('verdict_bundle_follow_failing')).toBe(0);
  });
});
