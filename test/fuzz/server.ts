import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../support/net.ts';

const root = path.resolve(import.meta.dirname, '../..');

/** A real Verdict process (`node src/main.ts`) on 127.0.0.1, for black-box tests. */
export interface RunningServer {
  base: string;
  pid: number;
  /** Authorization header value (a bearer token with every scope), or null when auth is off. */
  authorization: string | null;
  child: ChildProcess;
  /** The last lines the process wrote (stdout and stderr), for failure messages. */
  output(): string;
  /** Resident set size of the process, in bytes, from /proc/<pid>/status. */
  rssBytes(): number;
  /** Runs a full GC in the process (over the inspector) and returns its heap use in bytes. */
  collectGarbage(): Promise<number>;
  /** CPU time (user + system) the process has used, in seconds, from /proc/<pid>/stat. */
  cpuSeconds(): number;
  alive(): boolean;
  stop(): Promise<void>;
}

/** Connects to the inspector, runs HeapProfiler.collectGarbage, returns process heapUsed. */
async function inspectorGc(url: string): Promise<number> {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let id = 0;
  const call = (method: string, params: object = {}) =>
    new Promise<{ result?: { result?: { value?: unknown } } }>((resolve) => {
      const mine = ++id;
      socket.addEventListener('message', function onMessage(event) {
        const message = JSON.parse(String(event.data));
        if (message.id !== mine) return;
        socket.removeEventListener('message', onMessage);
        resolve(message);
      });
      socket.send(JSON.stringify({ id: mine, method, params }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
    const used = await call('Runtime.evaluate', {
      expression: 'process.memoryUsage().heapUsed',
      returnByValue: true,
    });
    return Number(used.result?.result?.value);
  } finally {
    socket.close();
  }
}

/** The auth engineer's token minting, when it has landed (src/auth/dev-token.ts). */
async function mint(secret: string): Promise<string | null> {
  const file = path.join(root, 'src/auth/dev-token.ts');
  if (!existsSync(file)) return null;
  const { mintToken } = (await import(file)) as { mintToken?: (secret: string, request?: object) => string };
  return mintToken ? mintToken(secret, { sub: 'fuzz' }) : null;
}

/**
 * Starts the service as a child process with a temp data directory (embedded stores) and waits for
 * /health/live. `env` overrides the defaults; the process is killed by `stop()` (and on test exit).
 */
export async function startServer(env: Record<string, string>): Promise<RunningServer> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'verdict-fuzz-'));
  const secret = randomBytes(48).toString('base64url');
  // The inspector (loopback, random port) lets the test force a GC before it reads memory.
  const child = spawn(process.execPath, ['--inspect=127.0.0.1:0', 'src/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmpdir(),
      HOST: '127.0.0.1',
      PORT: String(port),
      VERDICT_DATA_DIR: dataDir,
      JWT_SECRET: secret,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (alive()) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('exit', () => child.kill('SIGKILL'));

  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (!alive()) throw new Error(`verdict exited during start (code ${child.exitCode}):\n${tail}`);
    try {
      if ((await fetch(`${base}/health/live`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`verdict did not become live within 60 s:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const token = await mint(secret);
  return {
    base,
    pid: child.pid!,
    authorization: token ? `Bearer ${token}` : null,
    child,
    output: () => tail,
    rssBytes: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      if (!kb) throw new Error('no VmRSS in /proc status');
      return Number(kb[1]) * 1024;
    },
    collectGarbage: async () => {
      const url = /Debugger listening on (ws:\/\/\S+)/.exec(tail)?.[1];
      if (!url) throw new Error(`no inspector URL in the output:\n${tail}`);
      return inspectorGc(url);
    },
    cpuSeconds: () => {
      // Fields 14 and 15 (utime, stime) in clock ticks, counted after the command name's ')'.
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    alive,
    stop,
  };
}
