/**
 * `verdict mcp-proxy --agent ID [--on-behalf-of USER] -- <server command…>`: a stdio MCP server that
 * sits between any MCP host and any stdio MCP server, with every tool listing and tool call decided by
 * Verdict (src/mcp/). stdout is the protocol; diagnostics go to stderr.
 */
import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { McpGuard } from '../mcp/guard.ts';
import { proxyMcp } from '../mcp/proxy.ts';
import { ServerProcessTransport } from '../mcp/server-process.ts';
import { runAsMain, STANDARD_IO } from './client.ts';

export const MCP_PROXY_USAGE = `usage: verdict mcp-proxy --agent ID [--on-behalf-of USER] [options] -- <server command…>

Runs <server command…> as a stdio MCP server and serves it on this process's stdin/stdout, with
tools/list filtered (one batch decision) and every tools/call decided by Verdict first. Any other
method is refused; when Verdict cannot be asked, calls are denied.

options:
  --agent ID            the agent (subject.id) this session belongs to (required)
  --on-behalf-of USER   the user the agent acts for (subject.properties.on_behalf_of)
  --context JSON        operator context for every decision, e.g. '{"data_classification":"internal"}'
                        (its "session" is always the guard's own)
  --url URL             Verdict's base URL (default $VERDICT_URL)
  --token TOKEN         bearer token with decisions:evaluate (default $VERDICT_TOKEN)
  --timeout-ms N        per-decision timeout (default 2000)
  --wait-for-approval DURATION
                        hold a call denied with a human-approval request for up to DURATION (30s,
                        10m, 1h): the host gets MCP progress notifications while a human decides;
                        approved, the call is decided again and forwarded; denied, expired or not
                        decided in time, it answers the tool error (default: answer the deny at once)`;

/** What the proxy needs from its process. */
export interface McpProxyIo {
  env: Record<string, string | undefined>;
  /** The server command's working directory (default: this process's). */
  cwd?: string;
  /** Only for --help: once the proxy runs, stdout is the protocol's. */
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Parses the arguments and runs the proxy until the host or the server closes. Exit code: 0, or 2 for usage. */
export async function runMcpProxy(argv: string[], io: McpProxyIo): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        agent: { type: 'string' },
        'on-behalf-of': { type: 'string' },
        context: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        'timeout-ms': { type: 'string' },
        'wait-for-approval': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr(`verdict mcp-proxy: ${(err as Error).message}\n${MCP_PROXY_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(`${MCP_PROXY_USAGE}\n`);
    return 0;
  }
  const usage = (message: string) => {
    io.stderr(`verdict mcp-proxy: ${message}\n${MCP_PROXY_USAGE}\n`);
    return 2;
  };
  const agent = values.agent as string | undefined;
  const url = (values.url as string | undefined) ?? io.env.VERDICT_URL;
  const token = (values.token as string | undefined) ?? io.env.VERDICT_TOKEN;
  const [command, ...args] = positionals;
  if (!agent) return usage('--agent is required');
  if (!url) return usage('--url or VERDICT_URL is required');
  if (!token) return usage('--token or VERDICT_TOKEN is required');
  if (!command) return usage('the MCP server command is missing (after --)');
  let context: Record<string, unknown> | undefined;
  if (values.context !== undefined) {
    try {
      context = JSON.parse(values.context as string) as Record<string, unknown>;
    } catch {
      return usage('--context is not JSON');
    }
    if (!context || typeof context !== 'object' || Array.isArray(context))
      return usage('--context is not an object');
  }
  const timeoutMs = values['timeout-ms'] === undefined ? 2000 : Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) return usage('--timeout-ms is not a positive integer');
  let waitForApproval: { timeoutMs: number } | undefined;
  if (values['wait-for-approval'] !== undefined) {
    const ms = durationMs(values['wait-for-approval'] as string);
    if (ms === null) return usage('--wait-for-approval must be a duration such as 30s, 10m or 1h');
    waitForApproval = { timeoutMs: ms };
  }

  const guard = new McpGuard({
    agent,
    ...(values['on-behalf-of'] ? { onBehalfOf: values['on-behalf-of'] as string } : {}),
    ...(context ? { context } : {}),
    verdict: { url, token, timeoutMs },
  });
  // The server inherits this process's environment except Verdict's credentials.
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(io.env)) {
    if (value !== undefined && key !== 'VERDICT_TOKEN') env[key] = value;
  }
  const host = new StdioServerTransport();
  const stopWatching = whenHostGoes(() => void host.close());
  try {
    await proxyMcp({
      host,
      server: new ServerProcessTransport({ command, args, env, ...(io.cwd ? { cwd: io.cwd } : {}) }),
      guard,
      log: (line) => io.stderr(`verdict mcp-proxy: ${line}\n`),
      ...(waitForApproval ? { waitForApproval } : {}),
    });
  } finally {
    stopWatching();
  }
  return 0;
}

/**
 * Calls `stop` when the host is gone: end of input on stdin (the host closed it, or died and the
 * pipe closed), a broken stdout, a signal (SIGTERM, SIGINT, SIGHUP), or a new parent (the host was
 * killed while something else still holds the pipe). Returns the function that stops watching.
 */
function whenHostGoes(stop: () => void): () => void {
  const parent = process.ppid;
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  process.stdin.once('end', stop);
  process.stdin.once('close', stop);
  process.stdout.on('error', stop);
  for (const signal of signals) process.once(signal, stop);
  const orphaned = setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 1000);
  orphaned.unref();
  return () => {
    clearInterval(orphaned);
    process.stdin.off('end', stop);
    process.stdin.off('close', stop);
    for (const signal of signals) process.off(signal, stop);
    // Nothing more is read: stdin must not keep the process alive once the session is over.
    process.stdin.destroy();
  };
}

/** `500ms`, `30s`, `10m`, `1h` (a bare number is seconds) → milliseconds; null when malformed or 0. */
function durationMs(text: string): number | null {
  const match = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return null;
  const ms = Number(match[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 's'];
  return ms > 0 && ms <= 24 * 3_600_000 ? ms : null;
}

if (import.meta.main)
  runAsMain('verdict mcp-proxy', () => runMcpProxy(process.argv.slice(2), STANDARD_IO), 1);
