#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { tokenMain } from '../auth/token-cli.ts';
import { EXIT_UNDECIDED } from '../gate/report.ts';
import { auditVerifyMain } from './audit-verify.ts';
import { BUNDLE_USAGE, bundleCommand } from './bundle.ts';
import { type CliIo, CliRefusal, CliUsageError } from './client.ts';
import { GATE_USAGE, gateCommand } from './gate.ts';
import { MCP_PROXY_USAGE, runMcpProxy } from './mcp-proxy.ts';

/**
 * One command of the `verdict` CLI. Each group parses its own arguments and returns an exit code;
 * `verdict --help` lists them all. `npm run token` and `npm run audit:verify` remain as aliases of
 * `verdict token` and `verdict audit verify`; `npm run migrate` is yet to join.
 */
interface CommandGroup {
  summary: string;
  usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

const AUDIT_USAGE = `usage: verdict audit verify [--from ISO] [--to ISO]

Verifies the decision log's hash chains (DATABASE_URL, or the embedded store; while the service holds
the embedded store, the service is asked). Exit 0 verified, 1 a chain is broken, 2 could not verify.`;

export const COMMANDS: Record<string, CommandGroup> = {
  token: {
    summary: 'mint a bearer token from JWT_SECRET or the embedded dev secret',
    usage: 'usage: verdict token [--scope "…"] [--sub name] [--ttl 1h] [--client-id id] [--human]',
    run: async (argv) => tokenMain(argv),
  },
  audit: {
    summary: 'audit verify: check the decision log hash chains',
    usage: AUDIT_USAGE,
    run: async (argv, io) => {
      const [sub, ...rest] = argv;
      if (sub === 'verify') return auditVerifyMain(rest);
      io.stderr(`${AUDIT_USAGE}\n`);
      return sub === '--help' || sub === '-h' ? 0 : 2;
    },
  },
  bundle: {
    summary: 'ship policy bundles: push, activate, rollback, shadow, status',
    usage: BUNDLE_USAGE,
    run: bundleCommand,
  },
  gate: {
    summary: 'gate release: the CI release gate (exit 0 allowed, 1 denied, 2 undecided)',
    usage: GATE_USAGE,
    // NOTE: 1 means denied here, so an unexpected failure must be 2 (undecided), never runCli's 1.
    run: async (argv, io) => {
      try {
        return await gateCommand(argv, {
          env: io.env,
          stdout: io.stdout,
          stderr: io.stderr,
          fetch: io.fetch,
        });
      } catch (err) {
        io.stderr(`verdict gate: failed: ${err instanceof Error ? err.message : String(err)}\n`);
        return EXIT_UNDECIDED;
      }
    },
  },
  'mcp-proxy': {
    summary: 'guard a stdio MCP server: tools listed and called only as Verdict decides',
    usage: MCP_PROXY_USAGE,
    run: (argv, io) => runMcpProxy(argv, { env: io.env, stderr: io.stderr }),
  },
};

export const USAGE = `usage: verdict <command> …

commands:
${Object.entries(COMMANDS)
  .map(([name, group]) => `  ${name.padEnd(10)} ${group.summary}`)
  .join('\n')}

verdict <command> --help shows a command's options. From a checkout: npm run verdict -- <command> ….`;

/** Runs the CLI on `argv` (without node and the script) and returns the exit code: 0 ok, 1 refused, 2 usage. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const group = COMMANDS[name];
  if (!group) {
    io.stderr(`verdict: unknown command "${name}"\n${USAGE}\n`);
    return 2;
  }
  try {
    return await group.run(rest, io);
  } catch (err) {
    if (err instanceof CliRefusal) {
      io.stderr(`verdict: refused${err.status ? ` (${err.status})` : ''}: ${err.code}: ${err.message}\n`);
      return 1;
    }
    if (err instanceof CliUsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`verdict: ${(err as Error).message}\n${group.usage}\n`);
      return 2;
    }
    io.stderr(`verdict: failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** The process's own IO. */
export const PROCESS_IO: CliIo = {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  fetch: globalThis.fetch,
  readFile: (file) => readFile(file),
};

if (import.meta.main) {
  runCli(process.argv.slice(2), PROCESS_IO).then((code) => {
    process.exitCode = code;
  });
}
