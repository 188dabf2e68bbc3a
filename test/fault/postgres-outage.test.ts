import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChains } from '../../src/audit/verify.ts';
import { mintToken } from '../../src/auth/dev-token.ts';
import { PostgresDatabase } from '../../src/store/postgres.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { freePort } from '../support/net.ts';
import { PrivatePostgres } from './private-postgres.ts';

/**
 * A real outage: the service runs as a child process (`node src/main.ts`) on a Postgres server of
 * this test's own, which is stopped and started again under a steady load of decisions. Every
 * decision answered 200 must end up exactly once in decision_log, and the spool must end empty.
 * FAULT_LOAD_SECONDS stretches the load (default: a short form for the normal suite).
 */
const LOAD_SECONDS = Number(process.env.FAULT_LOAD_SECONDS ?? 4);
const root = path.resolve(import.meta.dirname, '../..');

let postgres: PrivatePostgres;
let service: ChildProcess | null = null;
let dataDir: string;
let output = '';

beforeAll(async () => {
  postgres = await PrivatePostgres.create();
  postgres.start();
  dataDir = mkdtempSync(path.join(tmpdir(), 'verdict-fault-'));
});

afterAll(async () => {
  if (service && service.exitCode === null) service.kill('SIGKILL');
  postgres?.destroy();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('Postgres outage under load (real server, real database stop/start)', () => {
  it('loses and duplicates no decision answered 200, and empties the spool', async () => {
    const port = await freePort();
    const secret = randomBytes(32).toString('base64url');
    service = spawn(process.execPath, ['src/main.ts'], {
      cwd: root,
      // Only what the service needs: the host's REDIS_URL, JWT_* or VERDICT_* must not leak in.
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? tmpdir(),
        DATABASE_URL: postgres.url,
        VERDICT_DATA_DIR: dataDir,
        VERDICT_BUNDLE: contractFixtureBundle(),
        PORT: String(port),
        HOST: '127.0.0.1',
        JWT_SECRET: secret,
        LOG_LEVEL: 'warn',
        VERDICT_RATE_LIMIT_MAX: '100000000',
        // A starved process would answer 503 overloaded, which this test counts as refused.
        VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    service.stdout!.on('data', (chunk) => (output += chunk));
    service.stderr!.on('data', (chunk) => (output += chunk));
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/health/ready`)).ok, 60_000, 'the service to be ready');

    const authorization = `Bearer ${mintToken(secret, { sub: 'fault-test', scopes: ['decisions:evaluate'] })}`;
    const answered: string[] = [];
    const during: string[] = [];
    let refused = 0;
    let outage = false;
    let sent = 0;
    const until = Date.now() + LOAD_SECONDS * 1000;
    const client = async () => {
      // Bounded in count and time, to 127.0.0.1 only.
      while (Date.now() < until && sent < 20_000) {
        sent += 1;
        const response = await fetch(`${base}/v1/decisions`, {
          signal: AbortSignal.timeout(15_000),
          method: 'POST',
          headers: { authorization, 'content-type': 'application/json' },
          body: JSON.stringify({
            subject: { type: 'user', id: `u${sent}` },
            action: { name: 'read' },
            resource: { type: 'doc', id: 'd' },
          }),
        });
        const body = (await response.json()) as { decision_id?: string };
        if (response.status === 200) {
          answered.push(body.decision_id!);
          if (outage) during.push(body.decision_id!);
        } else {
          refused += 1;
        }
      }
    };
    const outageDriver = async () => {
      await new Promise((r) => setTimeout(r, (LOAD_SECONDS * 1000) / 4));
      outage = true;
      postgres.stop();
      await new Promise((r) => setTimeout(r, (LOAD_SECONDS * 1000) / 3));
      postgres.start();
      outage = false;
    };
    await Promise.all([client(), client(), client(), client(), outageDriver()]).catch((err) => {
      throw new Error(`load failed: ${err}; service output:\n${output.slice(-4000)}`);
    });

    expect(answered.length).toBeGreaterThan(50);
    expect(during.length).toBeGreaterThan(0); // decisions were answered while Postgres was down (spooled)
    expect(refused).toBe(0);

    const check = new pg.Client({ connectionString: postgres.url });
    await check.connect();
    try {
      const rowsFor = async () => {
        const { rows } = await check.query<{ id: string; n: string }>(
          'SELECT id::text, count(*) AS n FROM decision_log WHERE id = ANY($1::uuid[]) GROUP BY id',
          [answered],
        );
        return rows;
      };
      await waitFor(async () => (await rowsFor()).length === answered.length, 30_000, 'the spool replay');
      const rows = await rowsFor();
      expect(rows.length).toBe(answered.length); // zero lost
      expect(rows.filter((r) => r.n !== '1')).toEqual([]); // zero duplicated
      const total = await check.query<{ n: string }>('SELECT count(*) AS n FROM decision_log');
      expect(Number(total.rows[0]!.n)).toBe(answered.length); // nothing recorded that was not answered
    } finally {
      await check.end();
    }

    service.kill('SIGTERM');
    await new Promise<void>((resolve) => service!.once('exit', () => resolve()));
    expect(service.exitCode).toBe(0);
    const spoolDir = path.join(dataDir, 'spool');
    const spooled = readdirSync(spoolDir).map((f) => statSync(path.join(spoolDir, f)).size);
    expect(spooled.length).toBeGreaterThan(0); // the outage did go through the spool…
    expect(spooled.every((size) => size === 0)).toBe(true); // …and it was emptied
    const db = new PostgresDatabase({ url: postgres.url, max: 1 });
    try {
      expect((await verifyChains(db)).ok).toBe(true);
    } finally {
      await db.close();
    }
  }, 120_000);
});
