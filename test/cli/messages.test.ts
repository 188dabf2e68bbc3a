/**
 * The CLI's messages name what was wrong (the URL that could not be reached and why, the value that
 * is invalid, the key that was not given, the environment that was), and its paths are the user's:
 * `npm run verdict -- …` runs in the checkout, so relative paths resolve against INIT_CWD.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/net.ts';

const root = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(root, 'src/cli/verdict.ts');
const RELEASE = [
  '--model-card',
  'release/model-card.yaml',
  '--evals',
  'release/evals.json',
  '--approvals',
  'release/approvals.json',
];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'verdict-cli-messages-'));
  cpSync(path.join(root, 'deploy/ci/release'), path.join(dir, 'release'), { recursive: true });
  writeFileSync(path.join(dir, 'package.tar.gz'), 'not a package');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `verdict …` in `cwd` with only `env` (no VERDICT_URL/TOKEN from the caller). */
function verdict(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        cwd: options.cwd ?? dir,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
        encoding: 'utf8',
      },
      (error, stdout, stderr) =>
        resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('messages name what was wrong', () => {
  it('evidence verify: an unreachable --jwks names the URL and why, not "fetch failed"', async () => {
    const jwks = `http://127.0.0.1:${await freePort()}/v1/evidence/keys`;
    const run = await verdict(['evidence', 'verify', 'package.tar.gz', '--jwks', jwks]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`cannot fetch the JWKS at ${jwks}: ECONNREFUSED`);
    expect(run.stderr).not.toContain('fetch failed');
  });

  it('evidence verify: no key says that no key was given', async () => {
    const run = await verdict(['evidence', 'verify', 'package.tar.gz']);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(
      /^evidence: no key was given: pass --key PEM \(or a PEM file\) or --jwks URL\n/,
    );
  });

  it('gate: an invalid --url (or VERDICT_URL) is named with its value', async () => {
    const flag = await verdict(['gate', 'release', ...RELEASE, '--url', 'verdict:8080', '--token', 't']);
    expect(flag.status).toBe(2);
    expect(flag.stdout).toContain('bad input: --url "verdict:8080" is not an http(s) URL');
    const env = await verdict(['gate', 'release', ...RELEASE], {
      env: { VERDICT_URL: 'not a url', VERDICT_TOKEN: 't' },
    });
    expect(env.status).toBe(2);
    expect(env.stdout).toContain('bad input: VERDICT_URL "not a url" is not an http(s) URL');
  });

  it('gate: the summary shows the --environment it was given, even when the input is bad', async () => {
    const run = await verdict(['gate', 'release', '--model-card', 'missing.yaml', '--environment', 'prod']);
    expect(run.status).toBe(2);
    expect(run.stdout).toMatch(
      /^verdict gate: COULD NOT DECIDE release \(unknown release\) to prod: bad input/,
    );
  });
});

describe('paths are the user’s under npm run verdict', () => {
  // What `npm run verdict -- …` does: the CLI runs in the checkout, INIT_CWD is where the user was.
  const npm = { npm_lifecycle_event: 'verdict', INIT_CWD: '' };
  beforeAll(() => {
    npm.INIT_CWD = dir;
  });

  it('gate release resolves the release files against INIT_CWD', async () => {
    const run = await verdict(['gate', 'release', ...RELEASE, '--environment', 'staging'], {
      cwd: root,
      env: npm,
    });
    expect(run.stdout).toBe(
      'verdict gate: COULD NOT DECIDE release support-llm@2.3.0 to staging: no Verdict to ask: set --url/--token or VERDICT_URL/VERDICT_TOKEN\n',
    );
  });

  it('evidence verify and bundle push read their files there too', async () => {
    const evidence = await verdict(['evidence', 'verify', 'package.tar.gz', '--key', 'missing.pem'], {
      cwd: root,
      env: npm,
    });
    expect(evidence.stderr).toContain(
      `ENOENT: no such file or directory, open '${path.join(dir, 'missing.pem')}'`,
    );
    const url = `http://127.0.0.1:${await freePort()}`;
    const push = await verdict(['bundle', 'push', 'package.tar.gz', '--url', url, '--token', 't'], {
      cwd: root,
      env: npm,
    });
    expect(push.status).toBe(1);
    expect(push.stderr).toContain(`unreachable: cannot reach ${url}`);
  });

  it('another npm script keeps its own directory', async () => {
    const run = await verdict(['gate', 'release', ...RELEASE], {
      cwd: root,
      env: { npm_lifecycle_event: 'release', INIT_CWD: dir },
    });
    expect(run.stdout).toContain('cannot read the model card release/model-card.yaml');
  });
});
