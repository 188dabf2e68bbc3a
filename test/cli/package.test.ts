/**
 * The CLI ships on its own (`@verdict/cli`, ADR 0020): `npm pack` compiles it (prepack: tsc) and
 * bundles its few runtime dependencies; the tarball installs into an empty folder with the system's
 * npm on Node 20, offline and with an empty cache; and the installed `verdict evidence verify`, on
 * Node 20, verifies an evidence package downloaded from a running Verdict.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ed25519Pem } from '../support/checkpoints.ts';
import { sampleEnvelopes } from '../support/envelopes.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

const root = path.resolve(import.meta.dirname, '../..');
const cliDir = path.join(root, 'packages/cli');
/** The system's Node (20 here), not the project's: what an auditor has. */
const SYSTEM_NODE = process.env.VERDICT_TEST_SYSTEM_NODE ?? '/usr/bin/node';
const SYSTEM_PATH = `${path.dirname(SYSTEM_NODE)}:/usr/bin:/bin`;
const RELEASE = { type: 'model_release', id: 'support-llm@9.9.0' };

/** Runs a child without blocking this process's event loop (the Verdict under test lives in it). */
function run(file: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(file, args, { ...options, encoding: 'utf8' }, (error, stdout, stderr) =>
      resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the @verdict/cli package', () => {
  let work: string;
  let project: string;
  let tarball: string;
  let verdict: TestVerdict;
  /** The system's Node and npm only, a cache of its own (empty), no registry. */
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'verdict-cli-pack-'));
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: cliDir, encoding: 'utf8' }),
    ) as { filename: string }[];
    tarball = path.join(work, packed[0]!.filename);
    project = path.join(work, 'auditor');
    mkdirSync(project);
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'auditor', private: true }));
    env = {
      PATH: SYSTEM_PATH,
      HOME: work,
      npm_config_cache: path.join(work, 'npm-cache'),
      npm_config_registry: 'http://127.0.0.1:9/',
    };
    // NOTE: cwd and --prefix are the empty project: this npm never sees the checkout's node_modules.
    execFileSync(
      path.join(path.dirname(SYSTEM_NODE), 'npm'),
      ['install', '--offline', '--no-audit', '--no-fund', '--prefix', project, tarball],
      { cwd: project, env, stdio: 'pipe' },
    );
    verdict = await startTestVerdict('cli_package', {
      env: {
        VERDICT_CHECKPOINT_KEY: ed25519Pem(),
        VERDICT_EVIDENCE_KEY: ed25519Pem(),
        VERDICT_CHECKPOINT_INTERVAL: '200ms',
      },
    });
  }, 240_000);
  afterAll(async () => {
    await verdict?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('packs compiled JavaScript and its bundled dependencies, no TypeScript sources', () => {
    const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    expect(listing).toEqual(
      expect.arrayContaining([
        'package/bin/verdict.js',
        'package/dist/src/cli/verdict.js',
        'package/dist/src/evidence/verify.js',
        'package/node_modules/tar/package.json',
      ]),
    );
    expect(listing.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    // The bundled versions are the checkout's.
    const checkout = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    const cli = JSON.parse(readFileSync(path.join(cliDir, 'package.json'), 'utf8'));
    expect(cli.version).toBe(checkout.version);
    for (const [name, version] of Object.entries(cli.dependencies))
      expect(checkout.dependencies[name]).toBe(version);
  });

  it('installs offline on the system’s Node and runs there', async () => {
    const bin = path.join(project, 'node_modules/.bin/verdict');
    const node = await run(SYSTEM_NODE, ['--version'], { cwd: project, env });
    expect(node.stdout).toMatch(/^v20\./);
    const version = await run(SYSTEM_NODE, [bin, '--version'], { cwd: project, env });
    expect(version).toMatchObject({
      status: 0,
      stdout: `verdict ${JSON.parse(readFileSync(path.join(cliDir, 'package.json'), 'utf8')).version}\n`,
    });
    // The commands that need Verdict's own code say where they are.
    const proxy = await run(SYSTEM_NODE, [bin, 'mcp-proxy', '--agent', 'a', '--', 'x'], {
      cwd: project,
      env,
    });
    expect(proxy.status).toBe(1);
    expect(proxy.stderr).toContain('verdict mcp-proxy: not in this installation');
  });

  it('verifies an evidence package downloaded from a running Verdict, on Node 20', async () => {
    const decide = (envelope: object) =>
      fetch(`${verdict.url}/v1/decisions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${verdict.token('pipeline', ['decisions:evaluate'])}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(envelope),
      }).then((r) => r.json() as Promise<{ allow: boolean }>);
    for (const [sample, allow] of [
      [sampleEnvelopes.releaseDenied, false],
      [sampleEnvelopes.releaseAllowed, true],
    ] as const) {
      const { caller: _c, now: _n, ...envelope } = sample;
      const answer = await decide({ ...envelope, resource: { ...envelope.resource, id: RELEASE.id } });
      expect(answer.allow).toBe(allow);
    }
    await sleep(600); // a signed checkpoint covers both records
    const response = await fetch(
      `${verdict.url}/v1/evidence?resource_type=${RELEASE.type}&resource_id=${encodeURIComponent(RELEASE.id)}`,
      { headers: { authorization: `Bearer ${verdict.token('auditor', ['audit:read'])}` } },
    );
    expect(response.status).toBe(200);
    writeFileSync(path.join(project, 'evidence.tar.gz'), Buffer.from(await response.arrayBuffer()));

    const bin = path.join(project, 'node_modules/.bin/verdict');
    const verified = await run(
      SYSTEM_NODE,
      [bin, 'evidence', 'verify', 'evidence.tar.gz', '--jwks', `${verdict.url}/v1/evidence/keys`],
      { cwd: project, env },
    );
    expect(verified.stderr).toBe('');
    expect(verified.stdout).toContain(`evidence: OK — ${RELEASE.type} ${RELEASE.id}`);
    expect(verified.stdout).toContain('2 decisions re-evaluated on their own bundles and match');
    expect(verified.status).toBe(0);

    // A changed byte is reported, exit 1.
    const bytes = readFileSync(path.join(project, 'evidence.tar.gz'));
    bytes[bytes.length - 20] ^= 0xff;
    writeFileSync(path.join(project, 'tampered.tar.gz'), bytes);
    const tampered = await run(
      SYSTEM_NODE,
      [bin, 'evidence', 'verify', 'tampered.tar.gz', '--jwks', `${verdict.url}/v1/evidence/keys`],
      { cwd: project, env },
    );
    expect(tampered.status).toBe(1);
    expect(tampered.stdout).toContain('evidence: FAILED');
  });
});
