/**
 * A real stdio MCP server for the guard's tests (McpServer from the SDK). Every tool call it receives
 * is appended to $COUNT_FILE (one JSON line: tool, arguments, whether VERDICT_TOKEN reached it), so a
 * test can prove that a denied call never arrived. `search_kb` with the query "slow" answers after a
 * minute. With $HOLD_PIPES set it behaves as a server started through a shell or npm does: it starts
 * a child that inherits its stdio (holding the host's stderr) and keeps it alive after end of input;
 * both pids go to $COUNT_FILE.pids.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const countFile = process.env.COUNT_FILE;
if (!countFile) throw new Error('COUNT_FILE is required');

const server = new McpServer({ name: 'counting-server', version: '1.0.0' });
const seen = (tool: string, args: unknown) =>
  appendFileSync(
    countFile,
    `${JSON.stringify({ tool, arguments: args, verdict_token_seen: process.env.VERDICT_TOKEN !== undefined })}\n`,
  );

const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] });

server.registerTool(
  'search_kb',
  {
    description: 'Searches the knowledge base (content from outside: open world)',
    inputSchema: { query: z.string() },
    annotations: { readOnlyHint: true },
  },
  async (args) => {
    seen('search_kb', args);
    if (args.query === 'slow') await new Promise((resolve) => setTimeout(resolve, 60_000));
    return text(`3 articles about ${args.query}`);
  },
);
server.registerTool(
  'create_ticket',
  {
    description: 'Opens a support ticket',
    inputSchema: { title: z.string() },
    annotations: { readOnlyHint: false, openWorldHint: false },
  },
  async (args) => {
    seen('create_ticket', args);
    return text(`ticket opened: ${args.title}`);
  },
);
server.registerTool(
  'lookup_order',
  {
    description: 'Reads an order',
    inputSchema: { order_id: z.string() },
    annotations: { readOnlyHint: true },
  },
  async (args) => {
    seen('lookup_order', args);
    return text(`order ${args.order_id}`);
  },
);
server.registerTool(
  'shell',
  { description: 'Runs a shell command', inputSchema: { command: z.string() } },
  async (args) => {
    seen('shell', args);
    return text('ran');
  },
);
server.registerTool(
  'deploy_service',
  {
    description: 'Deploys a service (high risk: a human approves)',
    inputSchema: { service: z.string(), version: z.string().optional() },
    annotations: { readOnlyHint: false, openWorldHint: false, destructiveHint: true },
  },
  async (args) => {
    seen('deploy_service', args);
    return text(`deployed ${args.service}`);
  },
);
server.registerResource('readme', 'file:///readme', { description: 'a resource' }, async (uri) => {
  seen('resources/read', uri.href);
  return { contents: [{ uri: uri.href, text: 'hello' }] };
});

if (process.env.HOLD_PIPES) {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'inherit' });
  writeFileSync(`${countFile}.pids`, JSON.stringify({ server: process.pid, child: child.pid }));
}

await server.connect(new StdioServerTransport());
