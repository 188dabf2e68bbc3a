/**
 * A bundle the engine cannot run is refused where it enters, never accepted to fail every decision
 * (issues 23 and 26): an upload is `400 bundle_unsupported_builtin` naming the builtin and why, for
 * each builtin refused by design; a VERDICT_BUNDLE that needs one stops the boot with the same
 * code; a bundle whose builtins are all provided is accepted and answers as `opa eval` does.
 * Real Postgres, the composition root, the real OPA CLI.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/dev-token.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict, type Verdict } from '../../src/create-verdict.ts';
import { REFUSED_BUILTINS } from '../../src/engine/builtins.ts';
import { parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';
import { GO_BUILTINS_BUILD_COMMAND, useGoBuiltinsModule } from '../../src/engine/go-builtins.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { InProcessBus } from '../../src/store/bus.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { opaBuild, scratchDir, writePolicy } from '../support/signed-bundle.ts';

const secret = randomBytes(32).toString('base64url');
let dir: string;
let database: TestDatabase;
let verdict: Verdict;
const token = mintToken(secret, {
  sub: 'author',
  ttlSeconds: 3600,
  scopes: ['bundles:write', 'decisions:evaluate'],
});

/** A `probe` rule that needs each builtin refused by design (arguments from the input: no constant folding). */
const PROBES: Record<string, string> = {
  'http.send': 'probe := http.send({"method": "GET", "url": input.url})',
  'net.lookup_ip_addr': 'probe := net.lookup_ip_addr(input.host)',
  'opa.runtime': 'probe := opa.runtime()',
  'providers.aws.sign_req': 'probe := providers.aws.sign_req(input.a, input.b, input.c)',
  'internal.test_case': 'probe if internal.test_case(input.a)',
};

/** A bundle with the rule `probe` beside its decision. */
function bundleCalling(probe: string, name: string): Buffer {
  const rego = `package verdict
import rego.v1
${probe}
decision := {"allow": true, "violations": [], "obligations": [], "exceptions": []} if { input.subject; true }
extra := probe
`;
  return readFileSync(
    opaBuild(writePolicy(dir, { rego }), path.join(dir, `${name}.tar.gz`), {
      entrypoints: ['verdict/decision', 'verdict/extra'],
    }),
  );
}

function upload(bundle: Buffer) {
  return verdict.app.inject({
    method: 'POST',
    url: '/v1/bundles',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/gzip' },
    payload: bundle,
  });
}

beforeAll(async () => {
  dir = scratchDir('bundle-builtins');
  database = await createTestDatabase('bundle_builtins');
  const config = resolveConfig({
    VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-bundle-builtins-')),
    VERDICT_BUNDLE: opaBuild(writePolicy(dir, { allow: true }), path.join(dir, 'seed.tar.gz'), {
      revision: 'seed',
    }),
    VERDICT_RATE_LIMIT_MAX: '100000000',
    VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
  });
  verdict = await createVerdict(config, {
    database: database.db,
    keys: { kind: 'secret', secret, algorithms: ['HS256'] },
    bus: new InProcessBus(),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  await verdict.app.ready();
}, 120_000);

afterAll(async () => {
  await verdict?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('upload of a bundle that calls a builtin Verdict does not run', () => {
  it.each(Object.keys(REFUSED_BUILTINS))(
    'refuses %s with 400 bundle_unsupported_builtin, naming it',
    async (name) => {
      const response = await upload(bundleCalling(PROBES[name]!, name));
      expect(response.statusCode).toBe(400);
      const body = response.json() as { code: string; message?: string; detail?: string };
      expect(body.code).toBe('bundle_unsupported_builtin');
      expect(JSON.stringify(body)).toContain(name);
    },
  );

  it("refuses one of OPA's Go builtins when their module is not built, saying how to build it", async () => {
    const missing = path.join(dir, 'absent', 'verdict-builtins.wasm');
    useGoBuiltinsModule(missing);
    try {
      const response = await upload(bundleCalling('probe := graphql.is_valid(input.q, input.s)', 'graphql'));
      expect(response.statusCode).toBe(400);
      expect(response.headers['content-type']).toContain('application/problem+json');
      const body = response.json() as { code: string };
      expect(body.code).toBe('bundle_unsupported_builtin');
      const text = JSON.stringify(body);
      expect(text).toContain("graphql.is_valid (needs OPA's Go builtins module, which is not built");
      expect(text).toContain(missing);
      expect(text).toContain(GO_BUILTINS_BUILD_COMMAND);
    } finally {
      useGoBuiltinsModule(undefined);
    }
    expect(resolveConfig({ VERDICT_GO_BUILTINS_WASM: 'lib/x.wasm' }, '/app').goBuiltinsWasm).toBe(
      '/app/lib/x.wasm',
    );
  });

  it("accepts one of OPA's Go builtins when their module is built, and it answers as opa eval does", async () => {
    const call =
      '[uri.parse(input.u), graphql.is_valid(input.q, input.s), strings.render_template(input.t, input)]';
    const response = await upload(bundleCalling(`probe := ${call}`, 'go-builtins'));
    expect([200, 201]).toContain(response.statusCode);
    const digest = (response.json() as { digest: string }).digest;
    const activated = await verdict.app.inject({
      method: 'POST',
      url: `/v1/bundles/${digest.replace(/^sha256:/, '')}/activate`,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ reason: 'go builtins' }),
    });
    expect(activated.statusCode).toBe(200);
    await verdict.replica!.waitFor((activated.json() as { state: { version: number } }).state.version);
    const input = {
      u: 'https://user@example.com:8443/a%2Fb?x=1#f',
      q: '{ a }',
      s: 'type Query { a: Int }',
      t: '{{.u}} {{len .s}}',
    };
    const answer = await verdict.app.inject({
      method: 'POST',
      url: '/v1/data/verdict/extra',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ input }),
    });
    expect(answer.statusCode).toBe(200);
    writeFileSync(path.join(dir, 'go.rego'), `package verdict\nextra := ${call}\n`);
    writeFileSync(path.join(dir, 'go.json'), JSON.stringify(input));
    const opa = JSON.parse(
      execFileSync('opa', ['eval', '-d', 'go.rego', '-i', 'go.json', '-f', 'json', 'data.verdict.extra'], {
        cwd: dir,
        encoding: 'utf8',
      }),
    ).result[0].expressions[0].value;
    expect((answer.json() as { result: unknown }).result).toEqual(opa);
    expect((opa as unknown[])[1]).toBe(true);
  });

  it('accepts a bundle whose builtins are all provided, and its decisions answer as opa eval does', async () => {
    const call =
      '[semver.compare(input.subject.id, "1.10.0"), time.weekday(time.parse_rfc3339_ns(input.now)), crypto.sha256(input.subject.id)]';
    const response = await upload(bundleCalling(`probe := ${call}`, 'provided'));
    expect([200, 201]).toContain(response.statusCode);
    const digest = (response.json() as { digest: string }).digest;
    const activated = await verdict.app.inject({
      method: 'POST',
      url: `/v1/bundles/${digest.replace(/^sha256:/, '')}/activate`,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ reason: 'builtins' }),
    });
    expect(activated.statusCode).toBe(200);
    await verdict.replica!.waitFor((activated.json() as { state: { version: number } }).state.version);
    const input = { subject: { id: '1.2.0' }, now: '2026-12-07T01:00:00Z' };
    const answer = await verdict.app.inject({
      method: 'POST',
      url: '/v1/data/verdict/extra',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ input }),
    });
    expect(answer.statusCode).toBe(200);
    writeFileSync(path.join(dir, 'provided.rego'), `package verdict\nextra := ${call}\n`);
    writeFileSync(path.join(dir, 'provided.json'), JSON.stringify(input));
    const opa = JSON.parse(
      execFileSync(
        'opa',
        ['eval', '-d', 'provided.rego', '-i', 'provided.json', '-f', 'json', 'data.verdict.extra'],
        {
          cwd: dir,
          encoding: 'utf8',
        },
      ),
    ).result[0].expressions[0].value;
    expect((answer.json() as { result: unknown }).result).toEqual(opa);
  });
});

describe('VERDICT_BUNDLE that needs a builtin Verdict does not run', () => {
  it('stops the boot with bundle_unsupported_builtin, naming it', async () => {
    const other = await createTestDatabase('bundle_builtins_boot');
    try {
      const config = resolveConfig({
        VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-bundle-builtins-boot-')),
        VERDICT_BUNDLE: path.join(dir, 'http.send.tar.gz'),
      });
      const started = createVerdict(config, {
        database: other.db,
        keys: { kind: 'secret', secret, algorithms: ['HS256'] },
        bus: new InProcessBus(),
        metrics: createMetrics({ defaultMetrics: false }),
      });
      await expect(started).rejects.toMatchObject({ code: 'bundle_unsupported_builtin' });
      await expect(started).rejects.toThrow(/http\.send/);
    } finally {
      await other.drop();
    }
  }, 60_000);
});

describe('a stored revision that calls a refused builtin (uploaded before the check existed)', () => {
  it('loads for replay and evidence, where the call is the evaluation error it was when decided', () => {
    const parsed = parseBundle(bundleCalling(PROBES['http.send']!, 'replay-http.send'));
    expect(() => PolicyEngine.fromBundle(parsed)).toThrow(/http\.send/);
    const engine = PolicyEngine.fromBundle(parsed, { refuseUnsupported: false });
    const decided = engine.evaluate('verdict/decision', { subject: {} });
    expect(decided.error).toBeNull();
    const extra = engine.evaluate('verdict/extra', { url: 'http://127.0.0.1:9/' });
    expect(extra.error?.code).toBe('evaluation_error');
    expect(extra.error?.message).toContain('http.send is not provided by Verdict');
  });
});
