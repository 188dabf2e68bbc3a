import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mintToken } from '../../src/auth/dev-token.ts';
import { freePort } from '../support/net.ts';

const root = path.resolve(import.meta.dirname, '../..');

/** A shared HS256 secret for child services started by tests (JWT_SECRET needs 32 bytes). */
export const CHILD_JWT_SECRET = 'shutdown-test-secret-0123456789abcdefg';

/** A running `node src/main.ts` with its JSON log lines and exit status. */
export interface ChildService {
  process: ChildProcess;
  port: number;
  dataDir: string;
  /** Parsed JSON log lines written so far (stdout). */
  logs: Record<string, unknown>[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  token: string;
}

/** Starts the service as a real child process on a free port and waits until /health/ready is 200. */
export async function startService(env: Record<string, string>): Promise<ChildService> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'verdict-shutdown-'));
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmpdir(),
      PORT: String(port),
      HOST: '127.0.0.1',
      VERDICT_DATA_DIR: dataDir,
      JWT_SECRET: CHILD_JWT_SECRET,
      LOG_LEVEL: 'info',
      VERDICT_LOG_FORMAT: 'json',
      VERDICT_RATE_LIMIT_MAX: '100000000',
      // Load shedding is tested in-process (test/observability/overload.test.ts); on a test machine
      // shared with other suites it would only add noise here.
      VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line));
      } catch {
        // the dev-token banner and other plain text
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': stdout may still hold the last log lines when the process has exited.
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const token = mintToken(CHILD_JWT_SECRET, { sub: 'shutdown-test', scopes: ['decisions:evaluate'] });
  const service: ChildService = { process: child, port, dataDir, logs, stderr, exited, token };
  // Generous: an embedded (PGlite) start runs every migration in wasm, slow on a loaded 2-core host.
  const deadline = Date.now() + 90_000;
  let done = false;
  void exited.then(() => {
    done = true;
  });
  while (!done) {
    const status = await request(service, 'GET', '/health/ready').then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return service;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`service did not become ready on port ${port}: ${stderr.join('')}`);
}

/** One HTTP request on a fresh connection (no keep-alive: the cluster balances per connection). */
export function request(
  service: Pick<ChildService, 'port' | 'token'>,
  method: string,
  pathname: string,
  body?: unknown,
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port: service.port,
        method,
        path: pathname,
        agent: false,
        headers: {
          connection: 'close',
          authorization: `Bearer ${service.token}`,
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            headers: res.headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A decision request body for the contract fixture. */
export const decisionBody = (i: number) => ({
  subject: { type: 'user', id: `u${i}` },
  action: { name: i % 3 === 0 ? 'write' : 'read' },
  resource: { type: 'doc', id: `d${i}` },
});
