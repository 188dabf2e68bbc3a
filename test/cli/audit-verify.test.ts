/**
 * `npm run audit:verify` on the embedded store never prints a stale result: while the service runs
 * (it holds the store's lock, with its port) the CLI asks it over HTTP; when it cannot, it refuses
 * with exit 2; with no live holder it reads the store itself.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEV_ISSUER, loadOrCreateDevSecret, mintToken } from '../../src/auth/dev-token.ts';
import {
  acquireEmbeddedLock,
  EMBEDDED_LOCK_FILE,
  EmbeddedStoreBusyError,
  embeddedStoreHolder,
} from '../../src/store/embedded-lock.ts';
import { type ChildService, decisionBody, request, startService } from '../shutdown/child-service.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { freePort } from '../support/net.ts';

const root = path.resolve(import.meta.dirname, '../..');
const scratch = () => mkdtempSync(path.join(tmpdir(), 'verdict-verify-cli-'));
let service: ChildService | undefined;
afterAll(() => {
  if (service && service.process.exitCode === null) service.process.kill('SIGKILL');
});

/** Runs the CLI as `npm run audit:verify` does, with only the data directory configured. */
function verifyCli(dataDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['src/cli/audit-verify.ts'],
      { cwd: root, env: { PATH: process.env.PATH, HOME: process.env.HOME, VERDICT_DATA_DIR: dataDir } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('npm run audit:verify against a running embedded service', () => {
  it('reports the live count through the service, never a stale one from the files', async () => {
    // Embedded defaults: no DATABASE_URL, no key source (the child helper's JWT_SECRET is unset),
    // so the service signs with the development secret in its data directory.
    service = await startService({ JWT_SECRET: '', VERDICT_BUNDLE: contractFixtureBundle() });
    const lock = JSON.parse(readFileSync(path.join(service.dataDir, EMBEDDED_LOCK_FILE), 'utf8'));
    expect(lock).toMatchObject({ pid: service.process.pid, port: service.port, role: 'service' });
    const secret = loadOrCreateDevSecret(service.dataDir).secret;
    const client = {
      port: service.port,
      token: mintToken(secret, { sub: 'verify-test', scopes: ['decisions:evaluate'], issuer: DEV_ISSUER }),
    };
    const decide = async (n: number) => {
      for (let i = 0; i < n; i++)
        expect((await request(client, 'POST', '/v1/decisions', decisionBody(i))).status).toBe(200);
    };

    await decide(9);
    const first = await verifyCli(service.dataDir);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/OK — 9 rows in 1 chains verified by the running service \(pid \d+/);

    await decide(3);
    const second = await verifyCli(service.dataDir);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/OK — 12 rows .* by the running service/);

    // Stopped: the lock is gone. Over a stale lock (its holder has exited, as after a crash) the CLI
    // reads the store itself — the same 12 rows — and leaves no lock behind.
    service.process.kill('SIGTERM');
    expect((await service.exited).code).toBe(0);
    expect(existsSync(path.join(service.dataDir, EMBEDDED_LOCK_FILE))).toBe(false);
    writeFileSync(
      path.join(service.dataDir, EMBEDDED_LOCK_FILE),
      JSON.stringify({ pid: await deadPid(), role: 'service', port: service.port, started_at: 'x' }),
    );
    const direct = await verifyCli(service.dataDir);
    expect(direct.stderr).toBe('');
    expect(direct.code).toBe(0);
    expect(direct.stdout).toMatch(/OK — 12 rows in 1 chains verified in/);
    expect(direct.stdout).not.toContain('running service');
    expect(existsSync(path.join(service.dataDir, EMBEDDED_LOCK_FILE))).toBe(false);
  }, 240_000);

  it('refuses (exit 2, no OK) when the live holder cannot be asked', async () => {
    const port = await freePort();
    for (const holder of [
      { pid: process.pid, role: 'service', port, host: '127.0.0.1', started_at: new Date().toISOString() },
      { pid: process.pid, role: 'service', started_at: new Date().toISOString() },
    ]) {
      const dir = scratch();
      loadOrCreateDevSecret(dir); // a secret to mint with: the refusal is about the holder
      writeFileSync(path.join(dir, EMBEDDED_LOCK_FILE), JSON.stringify(holder));
      const result = await verifyCli(dir);
      expect(result.code).toBe(2);
      expect(result.stdout).not.toContain('OK');
      expect(result.stderr).toMatch(
        /refused: the embedded store .* is held by another process \(service, pid \d+\)/,
      );
      expect(result.stderr).toMatch(holder.port ? /did not answer/ : /not listening yet/);
    }
  }, 150_000);
});

describe('the embedded store lock', () => {
  it('is exclusive to one live process; a stale one is taken over; release removes only our own', async () => {
    const dir = scratch();
    // A live holder that is not this process: the test runner's parent.
    writeFileSync(path.join(dir, EMBEDDED_LOCK_FILE), JSON.stringify({ pid: process.ppid, role: 'service' }));
    expect(embeddedStoreHolder(dir)?.pid).toBe(process.ppid);
    expect(() => acquireEmbeddedLock(dir, 'service')).toThrow(EmbeddedStoreBusyError);
    expect(() => acquireEmbeddedLock(dir, 'service')).toThrow(/pid \d+.*single-process.*DATABASE_URL/);

    writeFileSync(
      path.join(dir, EMBEDDED_LOCK_FILE),
      JSON.stringify({ pid: await deadPid(), role: 'service' }),
    );
    expect(embeddedStoreHolder(dir)).toBeUndefined();
    const lock = acquireEmbeddedLock(dir, 'service');
    lock.update({ port: 8080, host: '127.0.0.1' });
    expect(JSON.parse(readFileSync(lock.file, 'utf8'))).toMatchObject({ pid: process.pid, port: 8080 });
    lock.release();
    expect(existsSync(lock.file)).toBe(false);

    // A lock replaced by someone else is not ours to remove.
    const again = acquireEmbeddedLock(dir, 'service');
    writeFileSync(again.file, JSON.stringify({ pid: process.ppid, role: 'service' }));
    again.release();
    expect(existsSync(again.file)).toBe(true);
  });

  it('a second service on the same data directory is refused at start (exit 2)', async () => {
    const dir = scratch();
    writeFileSync(
      path.join(dir, EMBEDDED_LOCK_FILE),
      JSON.stringify({ pid: process.pid, role: 'service', port: 1 }),
    );
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['src/main.ts'], {
        cwd: root,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, VERDICT_DATA_DIR: dir, PORT: '0' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (c) => {
        stderr += c;
      });
      child.once('close', (code) => resolve({ code, stderr }));
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/cannot start: the embedded store is in use by another process/);
    // npm run migrate would write to it: refused as well.
    const migrate = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['src/cli/migrate.ts'],
        { cwd: root, env: { PATH: process.env.PATH, HOME: process.env.HOME, VERDICT_DATA_DIR: dir } },
        (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      );
    });
    expect(migrate.code).not.toBe(0);
    expect(migrate.stderr).toMatch(/migrate: failed: the embedded store is in use by another process/);
    expect(existsSync(path.join(dir, 'pglite'))).toBe(false);
  }, 150_000);
});
