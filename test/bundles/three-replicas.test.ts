/**
 * Proof of the policy lifecycle across a fleet: three Verdict app instances (createVerdict, each
 * with its own Redis connections, follower and heartbeat) on one real Postgres database. Through the
 * HTTP API: activate → all three decide on the new revision within a second; rollback; a
 * compare-and-set conflict; a bad and a wrongly signed bundle refused with the active revision
 * unchanged; Redis stopped (a private redis-server, killed) → the replicas still converge by
 * polling; shadow divergence counted and reported; policy events chained and verified, an edited
 * event detected.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../../src/auth/caller.ts';
import { mintToken } from '../../src/auth/dev-token.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict, type Verdict } from '../../src/create-verdict.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { RedisBus } from '../../src/store/bus.ts';
import { sampleValue } from '../observability/scrape.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort } from '../support/net.ts';
import { keyPair, opaBuild, scratchDir, writePolicy } from '../support/signed-bundle.ts';

const secret = randomBytes(32).toString('base64url');
let dir: string;
let database: TestDatabase;
let redis: ChildProcess;
let redisUrl: string;
let fleet: Verdict[];
let seedDigest: string;
let signing: { privatePath: string; publicPem: string };
const bundles: Record<string, Buffer> = {};

const token = (scopes: readonly Scope[]) => mintToken(secret, { sub: 'author', ttlSeconds: 3600, scopes });
const WRITE: Scope[] = ['bundles:write', 'bundles:read', 'audit:read'];

async function api(replica: Verdict, method: 'GET' | 'POST' | 'DELETE', url: string, body?: Buffer | object) {
  const headers: Record<string, string> = { authorization: `Bearer ${token(WRITE)}` };
  if (Buffer.isBuffer(body)) headers['content-type'] = 'application/gzip';
  else if (body) headers['content-type'] = 'application/json';
  const payload = Buffer.isBuffer(body) ? body : body === undefined ? undefined : JSON.stringify(body);
  return replica.app.inject({ method, url, headers, payload });
}

async function decide(replica: Verdict): Promise<{ allow: boolean; revision: string; id: string }> {
  const response = await replica.app.inject({
    method: 'POST',
    url: '/v1/decisions',
    headers: { authorization: `Bearer ${token(['decisions:evaluate'])}` },
    payload: {
      subject: { type: 'agent', id: 'a' },
      action: { name: 'tool.call' },
      resource: { type: 'tool', id: 't' },
    },
  });
  expect(response.statusCode).toBe(200);
  const body = response.json();
  return { allow: body.allow, revision: body.policy.revision, id: body.decision_id };
}

/**
 * Resolves once every replica serves `version` of the bundles state; returns how long that took
 * from the activation's answer (ms). Timed on the replicas themselves, so a slow decision round
 * trip on a busy test host does not count.
 */
async function followed(version: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  await Promise.race([
    Promise.all(fleet.map((replica) => replica.replica!.waitFor(version))),
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`version ${version} not served within ${timeoutMs} ms`)), timeoutMs),
    ),
  ]);
  return Date.now() - started;
}

/** Waits until every replica decides on `revision`; returns how long it took (ms). */
async function converged(revision: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const seen = await Promise.all(fleet.map(decide));
    if (seen.every((d) => d.revision === revision)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) {
      throw new Error(`not converged on ${revision} within ${timeoutMs} ms: ${seen.map((d) => d.revision)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const probe = new RedisBus({ url: `redis://127.0.0.1:${port}` });
  try {
    if (!(await probe.ready(10_000))) throw new Error('the private redis-server did not start');
  } finally {
    await probe.close();
  }
  return child;
}

beforeAll(async () => {
  dir = scratchDir('fleet');
  signing = keyPair(dir, 'rsa');
  const build = (
    name: string,
    allow: boolean,
    options: { signed?: boolean; wrongKey?: boolean; data?: string } = {},
  ) => {
    const key = options.wrongKey
      ? keyPair(dir, 'rsa').privatePath
      : options.signed
        ? signing.privatePath
        : undefined;
    const file = opaBuild(
      writePolicy(dir, { allow, files: options.data ? { 'data.json': options.data } : {} }),
      path.join(dir, `${name}.tar.gz`),
      { revision: name, signingKey: key },
    );
    bundles[name] = readFileSync(file);
    return file;
  };
  const seed = build('seed', true, { signed: true });
  build('deny', false, { signed: true });
  build('allow2', true, { signed: true, data: '{"v": 2}' });
  build('unsigned', false);
  build('wrongly-signed', false, { wrongKey: true });

  database = await createTestDatabase('fleet');
  const port = await freePort();
  redisUrl = `redis://127.0.0.1:${port}`;
  redis = await startRedis(port);
  const config = resolveConfig({
    VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-fleet-')),
    VERDICT_BUNDLE: seed,
    REDIS_URL: redisUrl,
    VERDICT_BUNDLE_POLL_MS: '250',
    VERDICT_BUNDLE_VERIFICATION_KEY: signing.publicPem,
    VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
  });
  // Three replicas starting at once: one seeds the active revision, the others follow it.
  fleet = await Promise.all(
    [0, 1, 2].map(() =>
      createVerdict(config, {
        database: database.db,
        keys: { kind: 'secret', secret, algorithms: ['HS256'] },
        metrics: createMetrics({ defaultMetrics: false }),
      }),
    ),
  );
  // Let the Redis subscriptions reach the server.
  await new Promise((resolve) => setTimeout(resolve, 200));
  seedDigest = (await api(fleet[0]!, 'GET', '/v1/bundles/status')).json().desired.active;
}, 120_000);

afterAll(async () => {
  await Promise.all((fleet ?? []).map((replica) => replica.close()));
  redis?.kill('SIGKILL');
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('three replicas on one Postgres and Redis', () => {
  let denyDigest: string;

  it('start on the one seeded revision and list each other in the status', async () => {
    // Start-up is not a propagation: every replica is simply on the seeded revision (no time bound).
    await converged('seed', 15_000);
    const status = (await api(fleet[1]!, 'GET', '/v1/bundles/status')).json();
    expect(status.replicas).toHaveLength(3);
    for (const replica of status.replicas) expect(replica.active).toBe(seedDigest);
    const seeds = (await api(fleet[2]!, 'GET', '/v1/bundles/events?action=activate')).json().events;
    expect(seeds).toHaveLength(1);
  });

  it('activate on one replica → all three decide on the new revision within a second', async () => {
    const uploaded = await api(fleet[0]!, 'POST', '/v1/bundles', bundles.deny);
    expect(uploaded.statusCode).toBe(201);
    expect(uploaded.json().signed).toBe(true);
    denyDigest = uploaded.json().digest;
    const activated = await api(fleet[0]!, 'POST', `/v1/bundles/${denyDigest.slice(7)}/activate`, {
      expected_active: seedDigest,
      reason: 'ship',
    });
    expect(activated.statusCode).toBe(200);
    expect(await followed(activated.json().state.version, 1_000)).toBeLessThan(1_000);
    await converged('deny', 5_000);
    expect((await Promise.all(fleet.map(decide))).every((d) => !d.allow)).toBe(true);
  });

  it('refuses a stale compare-and-set with 409 on another replica', async () => {
    const stale = await api(fleet[2]!, 'POST', `/v1/bundles/${seedDigest.slice(7)}/activate`, {
      expected_active: seedDigest,
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ code: 'activation_conflict', active: denyDigest });
    await converged('deny', 5_000);
  });

  it('rolls back by activating the earlier digest', async () => {
    const rollback = await api(fleet[1]!, 'POST', `/v1/bundles/${seedDigest.slice(7)}/activate`, {
      expected_active: denyDigest,
      reason: 'roll back',
    });
    expect(rollback.statusCode).toBe(200);
    expect(await followed(rollback.json().state.version, 1_000)).toBeLessThan(1_000);
    await converged('seed', 5_000);
  });

  it('refuses a bad and a wrongly signed (or unsigned) bundle, the active revision unchanged', async () => {
    const cases: [Buffer, string][] = [
      [Buffer.from('definitely not a bundle'), 'bundle_invalid'],
      [bundles.unsigned!, 'bundle_signature_invalid'],
      [bundles['wrongly-signed']!, 'bundle_signature_invalid'],
    ];
    for (const [bytes, code] of cases) {
      const response = await api(fleet[2]!, 'POST', '/v1/bundles?activate=true', bytes);
      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe(code);
    }
    const status = (await api(fleet[0]!, 'GET', '/v1/bundles/status')).json();
    expect(status.desired.active).toBe(seedDigest);
    await converged('seed', 5_000);
  });

  it('counts and reports shadow divergence on every replica', async () => {
    const shadow = await api(fleet[0]!, 'POST', `/v1/bundles/${denyDigest.slice(7)}/shadow`, {
      reason: 'dry run',
    });
    const version = shadow.json().state.version;
    await Promise.all(fleet.map((replica) => replica.replica!.waitFor(version)));
    const decided = await Promise.all(fleet.map(decide));
    expect(decided.every((d) => d.allow && d.revision === 'seed')).toBe(true);
    for (const replica of fleet) {
      const text = await replica.metrics.registry.metrics();
      expect(
        sampleValue(text, 'verdict_shadow_divergences_total', {
          entrypoint: 'verdict/decision',
          direction: 'allow_to_deny',
        }),
      ).toBe(1);
    }
    const report = (
      await api(fleet[1]!, 'GET', `/v1/bundles/shadow/report?digest=${denyDigest.slice(7)}`)
    ).json();
    expect(report.compared).toBe(3);
    expect(report.flips[0]).toMatchObject({ direction: 'allow_to_deny', count: 3 });
    expect([...report.flips[0].sample_ids].sort()).toEqual(decided.map((d) => d.id).sort());
    expect(report.by_control).toEqual([expect.objectContaining({ control: 'TEST-001', count: 3 })]);
    await api(fleet[0]!, 'DELETE', '/v1/bundles/shadow');
  });

  it('converges by polling when Redis is stopped', async () => {
    redis.kill('SIGKILL');
    await new Promise((resolve) => redis.once('exit', resolve));
    const uploaded = await api(
      fleet[1]!,
      'POST',
      '/v1/bundles?activate=true&reason=redis+down',
      bundles.allow2,
    );
    expect(uploaded.statusCode).toBe(201);
    // No notice can arrive: the 250 ms poll carries the change.
    const took = await converged('allow2', 5_000);
    expect(took).toBeLessThan(5_000);
  });

  it('chains every policy event, verifies them, and detects an edited one', async () => {
    const events = (await api(fleet[0]!, 'GET', '/v1/bundles/events?limit=100')).json().events as {
      id: string;
      action: string;
      writer_id: string;
    }[];
    const actions = events.map((e) => e.action);
    expect(actions.filter((a) => a === 'refuse')).toHaveLength(3);
    expect(actions.filter((a) => a === 'activate')).toHaveLength(4);
    // Events were written by more than one replica, each on its own chain.
    expect(new Set(events.map((e) => e.writer_id)).size).toBeGreaterThan(1);
    const verify = (await api(fleet[2]!, 'GET', '/v1/audit/verify')).json();
    expect(verify).toMatchObject({ ok: true, events: { ok: true, checked: events.length } });

    const target = events.find((e) => e.action === 'activate')!;
    await database.db.query({
      text: `UPDATE platform_events SET actor = 'someone-else' WHERE id = $1`,
      values: [target.id],
    });
    const tampered = (await api(fleet[2]!, 'GET', '/v1/audit/verify')).json();
    expect(tampered.ok).toBe(false);
    expect(tampered.events.firstBroken).toMatchObject({ eventId: target.id, reason: 'edited' });
  });
});
