/**
 * The policy lifecycle at the domain level on real Postgres and real Redis: three replicas in one
 * process (each its own follower, bus connection and event writer) on one database. Seeding races,
 * activation reaches every replica, compare-and-set conflicts, rollback, refused bundles leave the
 * active revision alone, shadow set/clear, convergence by polling without Redis, a replica that
 * cannot compile keeps serving and reports it, and every change is a verified chained event.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyEvents } from '../../src/audit/event-log.ts';
import {
  ActivationConflictError,
  PolicyLifecycle,
  RevisionNotFoundError,
} from '../../src/bundles/lifecycle.ts';
import { BundleReplica } from '../../src/bundles/replica.ts';
import { RevisionStore } from '../../src/bundles/revisions.ts';
import { seedActiveRevision } from '../../src/bundles/seed.ts';
import { BundleError, parseBundle } from '../../src/engine/bundle.ts';
import { type Bus, RedisBus } from '../../src/store/bus.ts';
import { replicaIdentity } from '../../src/store/fleet.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort } from '../support/net.ts';
import {
  filesIn,
  keyPair,
  opaBuild,
  pack,
  scratchDir,
  unpack,
  writePolicy,
} from '../support/signed-bundle.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ENTRYPOINT = 'verdict/decision';

let dir: string;
let database: TestDatabase;
let allowBundle: string;
let denyBundle: string;
let otherEntrypointBundle: string;
let brokenWasmBundle: Buffer;
const buses: Bus[] = [];
const replicas: BundleReplica[] = [];

beforeAll(async () => {
  dir = scratchDir('lifecycle');
  allowBundle = opaBuild(writePolicy(dir, { allow: true }), path.join(dir, 'allow.tar.gz'), {
    revision: 'allow-1',
  });
  denyBundle = opaBuild(writePolicy(dir, { allow: false }), path.join(dir, 'deny.tar.gz'), {
    revision: 'deny-1',
  });
  otherEntrypointBundle = opaBuild(
    writePolicy(dir, { rego: 'package other\nimport rego.v1\ndecision := {"allow": true}\n' }),
    path.join(dir, 'other.tar.gz'),
    { revision: 'other-1', entrypoints: ['other/decision'] },
  );
  const tree = unpack(allowBundle, dir);
  writeFileSync(path.join(tree, 'policy.wasm'), Buffer.from('\0asm not really'));
  brokenWasmBundle = pack(tree, filesIn(tree));
  database = await createTestDatabase('lifecycle');
});

afterEach(async () => {
  await Promise.all(replicas.splice(0).map((replica) => replica.stop()));
  await Promise.all(buses.splice(0).map((bus) => bus.close()));
  await database.db.exec(
    'TRUNCATE fleet_state, replicas, platform_events, platform_event_heads; DELETE FROM policy_revisions',
  );
});

afterAll(async () => {
  await database.drop();
  rmSync(dir, { recursive: true, force: true });
});

function redisBus(prefix: string, url = REDIS_URL): RedisBus {
  const bus = new RedisBus({ url, prefix, publishTimeoutMs: 200 });
  buses.push(bus);
  return bus;
}

/** Three replicas on one database, each with its own bus connection, lifecycle and follower. */
async function fleet(
  options: { pollMs?: number; redisUrl?: string; verificationKey?: string; seed?: string } = {},
) {
  const prefix = `verdict-test-${randomBytes(4).toString('hex')}:`;
  const members = Array.from({ length: 3 }, () => {
    const replica = replicaIdentity();
    const bus = redisBus(prefix, options.redisUrl);
    const lifecycle = new PolicyLifecycle({
      db: database.db,
      bus,
      writerId: replica.id,
      defaultEntrypoint: ENTRYPOINT,
      maxBytes: 32 * 1024 * 1024,
      verification: options.verificationKey
        ? { key: options.verificationKey, keyId: undefined, algorithm: 'RS256', scope: undefined }
        : undefined,
    });
    return { replica, bus, lifecycle };
  });
  if (!options.redisUrl) for (const m of members) expect(await m.bus.ready()).toBe(true);
  // All three start at once: one seeds, the others follow its revision.
  const outcomes = await Promise.all(
    members.map((m) => seedActiveRevision(m.lifecycle, options.seed ?? allowBundle)),
  );
  expect(outcomes.filter((o) => o === 'seeded')).toHaveLength(1);
  const started = await Promise.all(
    members.map((m) =>
      BundleReplica.start({
        db: database.db,
        bus: m.bus,
        replica: m.replica,
        defaultEntrypoint: ENTRYPOINT,
        pollMs: options.pollMs ?? 60_000,
      }),
    ),
  );
  replicas.push(...started);
  // Let the Redis subscriptions reach the server.
  await new Promise((resolve) => setTimeout(resolve, 150));
  return { members, replicas: started, lifecycle: members[0]!.lifecycle };
}

function decide(replica: BundleReplica): boolean {
  const evaluation = replica.policy.current().evaluate(ENTRYPOINT, {});
  return (evaluation.value as { allow: boolean }).allow;
}

async function until(check: () => boolean, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`not converged within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return Date.now() - started;
}

function expectRefused(err: unknown, code: string) {
  expect(err).toBeInstanceOf(BundleError);
  expect((err as BundleError).code).toBe(code);
}

describe('policy lifecycle across replicas', () => {
  it('activates on every replica within a second, rolls back, and refuses a stale compare-and-set', async () => {
    const { replicas: three, lifecycle, members } = await fleet();
    const seeded = (await lifecycle.state()).state.active!;
    expect(three.map(decide)).toEqual([true, true, true]);

    const { revision, created } = await lifecycle.upload(readFileSync(denyBundle), 'alice', {
      reason: 'tighten',
    });
    expect(created).toBe(true);
    expect(revision).toMatchObject({
      revision: 'deny-1',
      uploadedBy: 'alice',
      signed: false,
      state: 'inactive',
    });
    expect(revision.entrypoints).toEqual([ENTRYPOINT]);
    // The same bytes again change nothing.
    expect((await members[1]!.lifecycle.upload(readFileSync(denyBundle), 'bob')).created).toBe(false);

    const activated = await lifecycle.activate(revision.digest, 'alice', {
      expectedActive: seeded,
      reason: 'ship',
    });
    expect(activated.changed).toBe(true);
    const took = await until(() => three.every((r) => !decide(r)), 1_000);
    expect(took).toBeLessThan(1_000);
    expect(three.map((r) => r.policy.current().bundle.revision)).toEqual(['deny-1', 'deny-1', 'deny-1']);

    // Another author still thinks the seeded revision is active: 409, nothing changes.
    await expect(
      members[2]!.lifecycle.activate(seeded, 'carol', { expectedActive: seeded }),
    ).rejects.toBeInstanceOf(ActivationConflictError);
    expect((await lifecycle.state()).state.active).toBe(revision.digest);

    // Rollback = activating the previous active revision.
    expect(await lifecycle.previousActive()).toBe(seeded);
    await lifecycle.activate(seeded, 'alice', { expectedActive: revision.digest, reason: 'roll back' });
    await until(() => three.every((r) => decide(r)), 1_000);

    const listed = await lifecycle.list();
    expect(listed.map((r) => [r.revision, r.state])).toEqual([
      ['deny-1', 'inactive'],
      ['allow-1', 'active'],
    ]);
    await expect(lifecycle.activate(`sha256:${'0'.repeat(64)}`, 'alice')).rejects.toBeInstanceOf(
      RevisionNotFoundError,
    );

    const events = await lifecycle.events();
    expect(events.map((e) => [e.action, e.actor])).toEqual([
      ['activate', 'alice'],
      ['activate', 'alice'],
      ['upload', 'alice'],
      ['activate', 'system'],
      ['upload', 'system'],
    ]);
    expect(events[0]).toMatchObject({ from_digest: revision.digest, to_digest: seeded, reason: 'roll back' });
    expect(await verifyEvents(database.db)).toMatchObject({ ok: true, checked: 5 });

    // Status: every replica, what it serves, its heartbeat.
    await Promise.all(three.map((r) => r.beat()));
    const status = await lifecycle.status(10_000);
    expect(status.replicas).toHaveLength(3);
    for (const replica of status.replicas) {
      expect(replica.state.bundles).toMatchObject({ active: seeded, shadow: null, failure: null });
    }
  });

  it('refuses bad, wrongly built and broken bundles, records why, and leaves the active revision alone', async () => {
    const { replicas: three, lifecycle } = await fleet();
    const before = await lifecycle.state();
    const attempts: [Buffer, string][] = [
      [Buffer.from('not a bundle at all'), 'bundle_invalid'],
      [readFileSync(otherEntrypointBundle), 'bundle_missing_entrypoint'],
      [brokenWasmBundle, 'bundle_invalid'],
    ];
    for (const [bytes, code] of attempts) {
      const err = await lifecycle.upload(bytes, 'mallory').catch((e: unknown) => e);
      expectRefused(err, code);
    }
    expect((await lifecycle.state()).version).toBe(before.version);
    expect(three.map(decide)).toEqual([true, true, true]);
    const refusals = (await lifecycle.events({ action: 'refuse' })).map((e) => e.payload.code);
    expect(refusals.sort()).toEqual(['bundle_invalid', 'bundle_invalid', 'bundle_missing_entrypoint']);
    expect(await verifyEvents(database.db)).toMatchObject({ ok: true });
  });

  it('refuses an unsigned or wrongly signed bundle when a verification key is set', async () => {
    const keys = keyPair(dir, 'rsa');
    const wrong = keyPair(dir, 'rsa');
    const src = writePolicy(dir, { allow: false });
    const good = opaBuild(src, path.join(dir, 'signed-good.tar.gz'), {
      revision: 's1',
      signingKey: keys.privatePath,
    });
    const bad = opaBuild(src, path.join(dir, 'signed-bad.tar.gz'), {
      revision: 's1',
      signingKey: wrong.privatePath,
    });
    const signedSeed = opaBuild(writePolicy(dir), path.join(dir, 'signed-seed.tar.gz'), {
      revision: 'seed',
      signingKey: keys.privatePath,
    });
    // The seed must verify too.
    const { lifecycle, replicas: three } = await fleet({ verificationKey: keys.publicPem, seed: signedSeed });
    for (const bytes of [readFileSync(denyBundle), readFileSync(bad)]) {
      expectRefused(
        await lifecycle.upload(bytes, 'mallory').catch((e: unknown) => e),
        'bundle_signature_invalid',
      );
    }
    const { revision } = await lifecycle.upload(readFileSync(good), 'alice');
    expect(revision.signed).toBe(true);
    expect(three.map(decide)).toEqual([true, true, true]);
    await lifecycle.activate(revision.digest, 'alice');
    await until(() => three.every((r) => !decide(r)), 1_000);
  });

  it('sets and clears a shadow revision on every replica', async () => {
    const { replicas: three, lifecycle } = await fleet();
    const { revision } = await lifecycle.upload(readFileSync(denyBundle), 'alice');
    await lifecycle.setShadow(revision.digest, 'alice', { reason: 'try it' });
    await until(() => three.every((r) => r.shadow.current()?.bundle.digest === revision.digest), 1_000);
    expect((await lifecycle.get(revision.digest))?.state).toBe('shadow');
    // The active revision is untouched.
    expect(three.map(decide)).toEqual([true, true, true]);
    await lifecycle.setShadow(null, 'alice');
    await until(() => three.every((r) => r.shadow.current() === null), 1_000);
    const actions = (await lifecycle.events()).map((e) => e.action);
    expect(actions.slice(0, 2)).toEqual(['shadow_clear', 'shadow_set']);
  });

  it('converges by polling when Redis is unreachable', async () => {
    const deadRedis = `redis://127.0.0.1:${await freePort()}`;
    const { replicas: three, lifecycle } = await fleet({ redisUrl: deadRedis, pollMs: 200 });
    const { revision } = await lifecycle.upload(readFileSync(denyBundle), 'alice');
    await lifecycle.activate(revision.digest, 'alice');
    const took = await until(() => three.every((r) => !decide(r)), 3_000);
    expect(took).toBeLessThan(3_000);
  });

  it('keeps serving the previous revision when the new one does not compile, reports it, and recovers', async () => {
    const { replicas: three, lifecycle } = await fleet({ pollMs: 100 });
    const { state } = await lifecycle.state();
    // A revision that slipped past the checks (stored by an older version, say): written directly.
    const broken = parseBundle(brokenWasmBundle);
    await new RevisionStore(database.db).put(broken);
    await database.db.query({
      text: `UPDATE fleet_state SET version = version + 1, state = jsonb_set(state, '{active}', to_jsonb($1::text)) WHERE topic = 'bundles'`,
      values: [broken.digest],
    });
    await until(() => three.every((r) => r.status().failure !== null), 2_000);
    expect(three.map(decide)).toEqual([true, true, true]);
    expect(three[0]!.status()).toMatchObject({
      active: state.active,
      failure: { message: expect.stringMatching(/policy.wasm/) },
    });
    expect(three[0]!.isStale(0)).toBe(true);
    expect(three[0]!.isStale(60_000)).toBe(false);
    // A good activation heals it.
    const { revision } = await lifecycle.upload(readFileSync(denyBundle), 'alice');
    await lifecycle.activate(revision.digest, 'alice');
    await until(() => three.every((r) => !decide(r) && r.status().failure === null), 2_000);
    expect(three[0]!.isStale(0)).toBe(false);
  });
});
