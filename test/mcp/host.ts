/**
 * An MCP host for test/mcp/lifecycle.test.ts: connects to `verdict mcp-proxy` (the arguments after
 * the script's own) with the SDK's Client, prints the proxy's pid, then calls search_kb "slow" and
 * waits — so that the test can kill this host mid-call. The proxy inherits this host's stderr.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [command, ...args] = process.argv.slice(2);
if (!command) throw new Error('usage: host.ts <proxy command…>');
const transport = new StdioClientTransport({
  command,
  args,
  env: process.env as Record<string, string>,
  stderr: 'inherit',
});
const client = new Client({ name: 'test-host', version: '1.0.0' });
await client.connect(transport);
process.stdout.write(`${JSON.stringify({ proxy: transport.pid })}\n`);
await client.callTool({ name: 'search_kb', arguments: { query: 'slow' } }, undefined, { timeout: 120_000 });
