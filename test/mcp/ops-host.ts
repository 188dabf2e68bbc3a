/**
 * The agent of the approval tests (test/mcp/approval.test.ts, wait-for-approval.test.ts,
 * test/console/console-mcp.browser.test.ts): an MCP host — the SDK's Client — connected through
 * `verdict mcp-proxy` as `ops-agent` on behalf of a user entitled to `ops:deploy`, to the real MCP
 * server test/mcp/counting-server.ts, which appends every call it serves to a file of its own.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { TestVerdict } from '../support/verdict.ts';

const root = path.resolve(import.meta.dirname, '../..');

/** A call as the server received it. */
export interface ServedCall {
  tool: string;
  arguments: unknown;
  /** Whether the proxy's VERDICT_TOKEN reached the server's environment (it must not). */
  verdict_token_seen: boolean;
}

export interface OpsHost {
  client: Client;
  /** The calls the server has served so far, in order. */
  served(): ServedCall[];
  /** Closes the host (and so the proxy and the server) and removes the call file. */
  close(): Promise<void>;
}

export async function connectOpsHost(
  verdict: TestVerdict,
  options: { user: string; waitForApproval?: string; name?: string },
): Promise<OpsHost> {
  const dir = mkdtempSync(path.join(tmpdir(), 'verdict-mcp-ops-'));
  const countFile = path.join(dir, 'calls.ndjson');
  writeFileSync(countFile, '');
  const wait = options.waitForApproval ? ['--wait-for-approval', options.waitForApproval] : [];
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      path.join(root, 'src/cli/verdict.ts'),
      'mcp-proxy',
      '--agent',
      'ops-agent',
      '--on-behalf-of',
      options.user,
      '--context',
      JSON.stringify({ user: { id: options.user, entitlements: ['ops:deploy'] } }),
      ...wait,
      '--',
      process.execPath,
      path.join(root, 'test/mcp/counting-server.ts'),
    ],
    env: {
      ...(process.env as Record<string, string>),
      VERDICT_URL: verdict.url,
      VERDICT_TOKEN: verdict.token('ops-runtime', ['decisions:evaluate']),
      COUNT_FILE: countFile,
    },
    stderr: 'pipe',
  });
  const client = new Client({ name: options.name ?? 'host', version: '1.0.0' });
  await client.connect(transport);
  return {
    client,
    served: () =>
      readFileSync(countFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as ServedCall),
    close: async () => {
      await client.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
