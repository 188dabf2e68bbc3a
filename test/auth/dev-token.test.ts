import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createDecoder } from 'fast-jwt';
import { afterAll, describe, expect, it } from 'vitest';
import { callerFromClaims } from '../../src/auth/caller.ts';
import { DEV_SECRET_FILE, loadOrCreateDevSecret, resolveStartupKeys } from '../../src/auth/dev-token.ts';
import { KeySourceError } from '../../src/auth/keys.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { freePort } from '../support/net.ts';
import { withForgedSignature } from '../support/tokens.ts';

const root = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const decode = createDecoder();
const scratch = () => mkdtempSync(path.join(tmpdir(), 'verdict-auth-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

/** The env a child process gets: nothing of ours leaks in (no JWT_* or DATABASE_URL from the host). */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  return { ...env, ...extra };
}

describe('embedded development secret', () => {
  it('is created once with mode 0600 and reused afterwards', () => {
    const dir = scratch();
    const first = loadOrCreateDevSecret(dir);
    expect(first.created).toBe(true);
    expect(Buffer.byteLength(first.secret)).toBeGreaterThanOrEqual(32);
    expect(statSync(path.join(dir, DEV_SECRET_FILE)).mode & 0o777).toBe(0o600);
    const second = loadOrCreateDevSecret(dir);
    expect(second).toEqual({ secret: first.secret, created: false });
  });

  it('a secret file readable by others is refused', () => {
    const dir = scratch();
    writeFileSync(path.join(dir, DEV_SECRET_FILE), 'x'.repeat(64), { mode: 0o644 });
    expect(() => loadOrCreateDevSecret(dir)).toThrow(/readable by other users/);
  });

  it('with DATABASE_URL and no key source, start is refused naming the variables; with a key source it is not', () => {
    const config = resolveConfig({ DATABASE_URL: 'postgres://x@127.0.0.1/db', VERDICT_DATA_DIR: scratch() });
    expect(() => resolveStartupKeys(config)).toThrow(KeySourceError);
    expect(() => resolveStartupKeys(config)).toThrow(/JWT_JWKS_URL.*JWT_PUBLIC_KEY.*JWT_SECRET/);
    const withSecret = resolveConfig({
      DATABASE_URL: 'postgres://x@127.0.0.1/db',
      JWT_SECRET: 'k'.repeat(32),
    });
    expect(resolveStartupKeys(withSecret).keys.kind).toBe('secret');
    expect(resolveStartupKeys(withSecret).devSecretFile).toBeUndefined();
  });
});

describe('npm run token (src/auth/token-cli.ts)', () => {
  it('mints a token from the embedded secret with the scopes, sub and ttl asked for', async () => {
    const dir = scratch();
    const { stdout } = await run(
      process.execPath,
      ['src/auth/token-cli.ts', '--scope', 'decisions:evaluate audit:read', '--sub', 'ci-bot', '--ttl', '1h'],
      { cwd: root, env: childEnv({ VERDICT_DATA_DIR: dir }) },
    );
    const claims = decode(stdout.trim()) as Record<string, unknown>;
    expect(claims).toMatchObject({
      sub: 'ci-bot',
      scope: 'decisions:evaluate audit:read',
      iss: 'verdict-dev',
    });
    expect((claims.exp as number) - (claims.iat as number)).toBe(3600);
    expect(readFileSync(path.join(dir, DEV_SECRET_FILE), 'utf8').trim().length).toBeGreaterThan(32);
  });

  it('--human adds the principal_type claim that approvals need, and the caller carries it', async () => {
    const dir = scratch();
    const { stdout } = await run(
      process.execPath,
      ['src/auth/token-cli.ts', '--scope', 'approvals:grant', '--sub', 'alice', '--human'],
      { cwd: root, env: childEnv({ VERDICT_DATA_DIR: dir }) },
    );
    const claims = decode(stdout.trim()) as Record<string, unknown>;
    expect(claims).toMatchObject({ sub: 'alice', scope: 'approvals:grant', principal_type: 'human' });
    expect(callerFromClaims(claims).principalType).toBe('human');
    // Without the option there is no such claim, and the caller has no principalType key at all.
    expect('principalType' in callerFromClaims({ sub: 'svc', scope: 'approvals:grant' })).toBe(false);
  });

  it('refuses unknown scopes, and refuses to mint for a public key or JWKS', async () => {
    const dir = scratch();
    await expect(
      run(process.execPath, ['src/auth/token-cli.ts', '--scope', 'root'], {
        cwd: root,
        env: childEnv({ VERDICT_DATA_DIR: dir }),
      }),
    ).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('unknown scope') });
    await expect(
      run(process.execPath, ['src/auth/token-cli.ts'], {
        cwd: root,
        env: childEnv({ VERDICT_DATA_DIR: dir, JWT_JWKS_URL: 'https://idp.example/jwks.json' }),
      }),
    ).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('identity provider') });
  });
});

describe('service start (src/main.ts)', () => {
  it('with DATABASE_URL and no key source, exits 2 naming the variables', async () => {
    await expect(
      run(process.execPath, ['src/main.ts'], {
        cwd: root,
        env: childEnv({
          DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
          VERDICT_DATA_DIR: scratch(),
        }),
      }),
    ).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/JWT_JWKS_URL.*JWT_PUBLIC_KEY.*JWT_SECRET/),
    });
  });

  it('embedded mode prints a curl-ready dev token that works; npm run token mints from the same secret', async () => {
    const dir = scratch();
    const port = await freePort();
    const start = async () => {
      const child = spawn(process.execPath, ['src/main.ts'], {
        cwd: root,
        env: childEnv({
          VERDICT_DATA_DIR: dir,
          PORT: String(port),
          HOST: '127.0.0.1',
          VERDICT_BUNDLE: contractFixtureBundle(),
          LOG_LEVEL: 'warn',
        }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      const curl = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner within 100 s: ${out}`)), 100_000);
        child.stdout?.on('data', (chunk) => {
          out += chunk;
          const line = out.split('\n').find((l) => l.startsWith('curl '));
          if (line) {
            clearTimeout(timer);
            resolve(line);
          }
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      return { child, curl };
    };
    const first = await start();
    expect(first.curl).toContain(`http://127.0.0.1:${port}/v1/decisions`);
    const token = /Bearer ([\w-]+\.[\w-]+\.[\w-]+)/.exec(first.curl)?.[1] as string;
    const claims = decode(token) as Record<string, unknown>;
    expect((claims.scope as string).split(' ')).toContain('admin');
    expect((claims.exp as number) - (claims.iat as number)).toBe(12 * 3600);
    const ask = (bearer: string) =>
      fetch(`http://127.0.0.1:${port}/v1/decisions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          subject: { type: 'a', id: 'b' },
          action: { name: 'read' },
          resource: { type: 'd', id: 'e' },
        }),
      });
    expect((await ask(token)).status).toBe(200);
    const anonymous = await fetch(`http://127.0.0.1:${port}/v1/decisions`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    const { stdout } = await run(
      process.execPath,
      ['src/auth/token-cli.ts', '--scope', 'audit:read', '--sub', 'auditor'],
      {
        cwd: root,
        env: childEnv({ VERDICT_DATA_DIR: dir }),
      },
    );
    // Same secret: accepted as a caller, refused on a route its scope does not cover.
    expect((await ask(stdout.trim())).status).toBe(403);
    expect((await ask(withForgedSignature(token))).status).toBe(401);
    first.child.kill('SIGTERM');
    await new Promise((resolve) => first.child.once('exit', resolve));
  }, 180_000);

  it('embedded mode without HOST listens on 127.0.0.1 only, and the banner says so', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['src/main.ts'], {
      cwd: root,
      env: childEnv({
        VERDICT_DATA_DIR: scratch(),
        PORT: String(port),
        VERDICT_BUNDLE: contractFixtureBundle(),
        LOG_LEVEL: 'warn',
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner within 100 s: ${out}`)), 100_000);
      child.stdout?.on('data', (chunk) => {
        out += chunk;
        if (out.includes('verdict: mint more')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    expect(out).toContain(`verdict: listening on 127.0.0.1:${port} only`);
    expect(out).not.toContain('WARNING');
    const status = (host: string) =>
      fetch(`http://${host}:${port}/health/live`).then(
        (r) => r.status,
        () => 0,
      );
    expect(await status('127.0.0.1')).toBe(200);
    // Linux routes all of 127/8 to the loopback device: a socket bound to 0.0.0.0 answers on
    // 127.0.0.2, one bound to 127.0.0.1 does not. So this tells the two binds apart without a network.
    expect(await status('127.0.0.2')).toBe(0);
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }, 180_000);
});
