/**
 * `verdict mcp-proxy` as hosts start and stop it: when the host's SDK client closes, or the host is
 * killed in the middle of a call, the proxy exits and ends the server's whole process group — here a
 * server that, like one started through a shell or npm, leaves a child holding the host's stderr.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

const root = path.resolve(import.meta.dirname, '../..');
const PROXY = [path.join(root, 'src/cli/verdict.ts'), 'mcp-proxy', '--agent', 'support-bot', '--'];
const SERVER = [process.execPath, path.join(root, 'test/mcp/counting-server.ts')];

let verdict: Awaited<ReturnType<typeof buildTestApp>>;
let url: string;
const started: ChildProcess[] = [];
const pids: number[] = [];

beforeAll(async () => {
  verdict = await buildTestApp({ bundlePath: DEFAULT_BUNDLE });
  url = await verdict.app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  for (const child of started) child.kill('SIGKILL');
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await verdict?.close();
});

/** Running (a zombie waiting for a parent to reap it has ended). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (check()) return true;
  return check();
}

/** A fresh count file, and the environment that makes the server hold the pipes. */
function session() {
  const countFile = path.join(mkdtempSync(path.join(tmpdir(), 'verdict-mcp-life-')), 'calls.ndjson');
  writeFileSync(countFile, '');
  const env = {
    ...(process.env as Record<string, string>),
    VERDICT_URL: url,
    VERDICT_TOKEN: verdict.token(['decisions:evaluate']),
    COUNT_FILE: countFile,
    HOLD_PIPES: '1',
  };
  const serverPids = async () => {
    await until(() => existsSync(`${countFile}.pids`), 10_000);
    const found = JSON.parse(readFileSync(`${countFile}.pids`, 'utf8')) as { server: number; child: number };
    pids.push(found.server, found.child);
    return found;
  };
  return { countFile, env, serverPids };
}

describe('verdict mcp-proxy as hosts start and stop it', () => {
  it('exits when the host’s SDK client closes, and ends the server and what it started', async () => {
    const { env, serverPids } = session();
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [...PROXY, ...SERVER],
      env,
      stderr: 'pipe',
    });
    const client = new Client({ name: 'test-host', version: '1.0.0' });
    await client.connect(transport);
    const proxy = transport.pid!;
    pids.push(proxy);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('search_kb');
    const { server, child } = await serverPids();
    expect([alive(proxy), alive(server), alive(child)]).toEqual([true, true, true]);

    await client.close();
    expect(await until(() => !alive(proxy) && !alive(server) && !alive(child), 10_000)).toBe(true);
  });

  it('exits when the host is killed mid-call, and nothing holds the host’s pipes', async () => {
    const { countFile, env, serverPids } = session();
    const host = spawn(
      process.execPath,
      [path.join(root, 'test/mcp/host.ts'), process.execPath, ...PROXY, ...SERVER],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    started.push(host);
    const pipesClosed = new Promise<void>((resolve) => host.once('close', () => resolve()));
    let out = '';
    host.stdout.on('data', (chunk) => {
      out += String(chunk);
    });
    expect(await until(() => out.includes('\n'), 20_000)).toBe(true);
    const proxy = (JSON.parse(out.split('\n')[0]!) as { proxy: number }).proxy;
    pids.push(proxy);
    const { server, child } = await serverPids();
    // Mid-call: the server has received the slow search and is working on it.
    expect(await until(() => readFileSync(countFile, 'utf8').includes('"slow"'), 10_000)).toBe(true);

    host.kill('SIGKILL');
    expect(await until(() => !alive(proxy) && !alive(server) && !alive(child), 10_000)).toBe(true);
    // The host's stdout and stderr close: no process of the session holds them any more.
    await expect(Promise.race([pipesClosed.then(() => 'closed'), sleep(5000, 'held')])).resolves.toBe(
      'closed',
    );
  });
});
