/**
 * `verdict mcp-proxy` end to end over stdio: a real MCP client (the SDK's Client) spawns the proxy,
 * which spawns a real MCP server (test/mcp/counting-server.ts, McpServer from the SDK, counting the
 * calls it receives); every decision is made by a real Verdict on the built-in bundle.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';
import { freePort } from '../support/net.ts';

const root = path.resolve(import.meta.dirname, '../..');
/** `verdict mcp-proxy`, as the `bin` runs it. */
const PROXY = [path.join(root, 'src/cli/verdict.ts'), 'mcp-proxy'];
const SERVER = path.join(root, 'test/mcp/counting-server.ts');

/** The context an operator gives the proxy for this session. */
const CONTEXT = JSON.stringify({
  data_classification: 'internal',
  user: { id: 'user:42', entitlements: [] },
});

interface Seen {
  tool: string;
  arguments: unknown;
  verdict_token_seen: boolean;
}

let verdict: Awaited<ReturnType<typeof buildTestApp>>;
let url: string;
const clients: Client[] = [];
/** Every HTTP request Verdict received: method and path. */
const requests: string[] = [];

beforeAll(async () => {
  verdict = await buildTestApp({ bundlePath: DEFAULT_BUNDLE });
  url = await verdict.app.listen({ port: 0, host: '127.0.0.1' });
  verdict.app.server.on('request', (request) => requests.push(`${request.method} ${request.url}`));
});
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await verdict?.close();
});

/** Splits a shell command line (single-quoted words, no other quoting), as the README writes it. */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/**
 * The proxy's arguments in README.md's `node src/cli/verdict.ts mcp-proxy … -- <server>` line, without
 * the server: started with node, so that stdout is the protocol alone (npm prints its banner there).
 */
function readmeProxyArgs(): string[] {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const prefix = 'node src/cli/verdict.ts mcp-proxy ';
  const line = readme.split('\n').find((l) => l.startsWith(prefix));
  if (!line) throw new Error('README.md has no mcp-proxy command');
  const words = shellWords(line.slice(prefix.length));
  return words.slice(0, words.indexOf('--'));
}

/** A client connected through the proxy; `seen()` reads what the server received. */
async function connect(options: { url?: string; agent?: string; args?: string[]; token?: string } = {}) {
  const countFile = path.join(mkdtempSync(path.join(tmpdir(), 'verdict-mcp-')), 'calls.ndjson');
  writeFileSync(countFile, '');
  const stderr: string[] = [];
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      ...PROXY,
      ...(options.args ?? [
        '--agent',
        options.agent ?? 'support-bot',
        '--on-behalf-of',
        'user:42',
        '--context',
        CONTEXT,
      ]),
      '--',
      process.execPath,
      SERVER,
    ],
    env: {
      ...(process.env as Record<string, string>),
      VERDICT_URL: options.url ?? url,
      VERDICT_TOKEN: options.token ?? verdict.token(['decisions:evaluate']),
      COUNT_FILE: countFile,
    },
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (chunk) => stderr.push(String(chunk)));
  const client = new Client({ name: 'test-host', version: '1.0.0' });
  clients.push(client);
  // Anything on the proxy's stdout that is not a protocol message is a parse error here.
  const errors: Error[] = [];
  client.onerror = (err) => errors.push(err);
  await client.connect(transport);
  const seen = (): Seen[] =>
    readFileSync(countFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Seen);
  return { client, seen, stderr, errors };
}

const textOf = (result: Record<string, unknown>) =>
  ((result.content ?? []) as { type: string; text?: string }[]).map((c) => c.text ?? '').join('\n');

describe('verdict mcp-proxy', () => {
  it('lists only the tools the agent may call, decided in one batch', async () => {
    const { client } = await connect();
    const before = verdict.recorder as unknown as {
      records: { input: { action: { name: string }; resource: { id: string } } }[];
    };
    const recorded = before.records.length;
    requests.length = 0;
    const { tools } = await client.listTools();
    expect(requests).toEqual(['POST /v1/decisions/batch']);
    // shell: not on support-bot's allowlist (TOOL-001); lookup_order: user:42 lacks orders:read (TOOL-007).
    expect(tools.map((t) => t.name).sort()).toEqual(['create_ticket', 'search_kb']);
    // One listing decision per tool, and one judgement of the tools' definitions (a tool.result of
    // the listing, guardrails), all recorded from one request.
    const recordedNow = before.records.slice(recorded);
    const of = (action: string) =>
      recordedNow
        .filter((r) => r.input.action.name === action)
        .map((r) => r.input.resource.id)
        .sort();
    const all = ['create_ticket', 'deploy_service', 'lookup_order', 'search_kb', 'shell'];
    expect(of('tool.call')).toEqual(all);
    expect(of('tool.result')).toEqual(['tools/list']);
    expect(recordedNow).toHaveLength(6);
  });

  it('forwards an allowed call, and keeps a denied one from ever reaching the server', async () => {
    const { client, seen } = await connect();
    await client.listTools();

    const ticket = await client.callTool({ name: 'create_ticket', arguments: { title: 'refund' } });
    expect(ticket.isError).toBeFalsy();
    expect(textOf(ticket)).toBe('ticket opened: refund');

    // search_kb is allowed; its result comes from the open world, so the session is now untrusted.
    const search = await client.callTool({ name: 'search_kb', arguments: { query: 'refunds' } });
    expect(textOf(search)).toBe('3 articles about refunds');

    // The same side-effecting call after untrusted content: TOOL-002, never forwarded.
    const denied = await client.callTool({ name: 'create_ticket', arguments: { title: 'again' } });
    expect(denied.isError).toBe(true);
    expect(textOf(denied)).toContain('Verdict denied the call to "create_ticket": TOOL-002');
    expect(denied._meta?.['verdict/decision']).toMatchObject({ allow: false, controls: ['TOOL-002'] });

    // A tool the agent may not use, called without listing: TOOL-001, never forwarded.
    const shell = await client.callTool({ name: 'shell', arguments: { command: 'ls' } });
    expect(shell.isError).toBe(true);
    expect(textOf(shell)).toContain('TOOL-001');

    expect(seen().map((s) => s.tool)).toEqual(['create_ticket', 'search_kb']);
    expect(seen().every((s) => !s.verdict_token_seen)).toBe(true);

    // The guard counted the calls itself: the decisions carry tool_calls 0, 1, 2, 2.
    const records = (verdict.recorder as unknown as { records: { input: Record<string, any> }[] }).records;
    const counts = records
      .filter((r) => r.input.context?.session && r.input.resource.properties?.arguments)
      .slice(-4)
      .map((r) => [r.input.context.session.tool_calls, r.input.context.session.untrusted_content]);
    expect(counts).toEqual([
      [0, false],
      [1, false],
      [2, true],
      [2, true],
    ]);
  });

  it('refuses methods it cannot map to a decision', async () => {
    const { client, seen } = await connect();
    await expect(client.listResources()).rejects.toThrow(/not mapped to a decision/);
    await expect(client.readResource({ uri: 'file:///readme' })).rejects.toThrow(/not mapped to a decision/);
    expect(seen()).toEqual([]);
  });

  it('runs as README.md shows it', async () => {
    const args = readmeProxyArgs();
    expect(args.slice(0, 4)).toEqual(['--agent', 'support-bot', '--on-behalf-of', 'user:42']);
    const { client, seen, errors } = await connect({ args });
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([
      'create_ticket',
      'search_kb',
    ]);
    const search = await client.callTool({ name: 'search_kb', arguments: { query: 'refunds' } });
    expect(search.isError).toBeFalsy();
    expect(seen().map((s) => s.tool)).toEqual(['search_kb']);
    expect(errors).toEqual([]);
  });

  it('denies everything when Verdict cannot be reached', async () => {
    const { client, seen } = await connect({ url: `http://127.0.0.1:${await freePort()}` });
    await expect(client.listTools()).rejects.toThrow(/Verdict could not decide/);
    const call = await client.callTool({ name: 'search_kb', arguments: { query: 'x' } });
    expect(call.isError).toBe(true);
    expect(textOf(call)).toContain('PDP-UNAVAILABLE');
    expect(seen()).toEqual([]);
  });
});
