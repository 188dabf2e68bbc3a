#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { EXIT_UNDECIDED } from '../gate/report.ts';
import { runApiGroup } from './api-group.ts';
import { BUNDLE_USAGE, bundleCommand } from './bundle.ts';
import { type CliIo, CliRefusal, CliUsageError, userDirectory } from './client.ts';
import { DECISIONS } from './decisions.ts';
import { EVIDENCE_USAGE, run as evidenceVerify } from './evidence-verify.ts';
import { GATE_USAGE, gateCommand } from './gate.ts';
import { APPROVALS, WAIVERS } from './grants.ts';
import { cliVersion } from './version.ts';

/**
 * One command of the `verdict` CLI. Each group parses its own arguments and returns an exit code;
 * `verdict --help` lists them all. The older entry points (`npm run token`, `npm run audit:verify`,
 * `npm run migrate`) are groups too: each runs its script as a child process with the same
 * arguments, environment and terminal, so `verdict token …` is exactly `npm run token -- …`.
 *
 * The `@verdict/cli` package (packages/cli, ADR 0020) ships the groups that only talk to a Verdict
 * over HTTP or read files (bundle, gate, evidence verify, …). The groups that need the service's own
 * code and dependencies (token, audit verify, migrate, mcp-proxy) are loaded only when run, and say
 * so when they are not there.
 */
interface CommandGroup {
  summary: string;
  usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

/** A group that is not in this installation (the `@verdict/cli` package): it says where it is. */
function notInstalled(name: string, io: CliIo): number {
  io.stderr(
    `verdict ${name}: not in this installation (the @verdict/cli package); run it from a checkout of Verdict (node src/cli/verdict.ts ${name} …) or its container image\n`,
  );
  return 1;
}

const SRC = path.resolve(import.meta.dirname, '..');

const AUDIT_USAGE = `usage: verdict audit verify [--from ISO] [--to ISO]

verdict audit verify --help shows its options.`;

/** `--help`, `-h` or `help`: asks for usage, never acts. */
const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h' || arg === 'help';

/** A group that runs an existing script (relative to src/) with the rest of the arguments. */
function script(name: string, file: string, summary: string, usage: string): CommandGroup {
  return {
    summary,
    usage,
    run: (argv, io) =>
      new Promise((resolve) => {
        if (!existsSync(path.join(SRC, file))) return resolve(notInstalled(name, io));
        const child = spawn(process.execPath, [path.join(SRC, file), ...argv], { stdio: 'inherit' });
        child.on('error', () => resolve(1));
        child.on('close', (code) => resolve(code ?? 1));
      }),
  };
}

export const COMMANDS: Record<string, CommandGroup> = {
  bundle: {
    summary: 'ship policy bundles: push, activate, rollback, shadow, status, list, events, shadow-report',
    usage: BUNDLE_USAGE,
    run: bundleCommand,
  },
  decisions: {
    summary: 'the recorded decisions: search (the API’s filters as flags), get, replay',
    usage: DECISIONS.usage,
    run: (argv, io) => runApiGroup(DECISIONS, argv, io),
  },
  waivers: {
    summary: 'waivers of controls: list, show, request, approve, reject, revoke',
    usage: WAIVERS.usage,
    run: (argv, io) => runApiGroup(WAIVERS, argv, io),
  },
  approvals: {
    summary: 'human approvals of agent actions: list, show, approve, deny',
    usage: APPROVALS.usage,
    run: (argv, io) => runApiGroup(APPROVALS, argv, io),
  },
  token: script(
    'token',
    'auth/token-cli.ts',
    'mint a bearer token (JWT_SECRET or the embedded development secret)',
    'usage: verdict token [--scope "…"] [--sub name] [--ttl 1h] [--client-id id] [--human]',
  ),
  audit: {
    summary: 'audit verify: check the hash chains of the decision log and the platform events',
    usage: AUDIT_USAGE,
    run: async (argv, io) => {
      const [sub, ...rest] = argv;
      if (isHelp(sub)) {
        io.stdout(`${AUDIT_USAGE}\n`);
        return 0;
      }
      if (sub !== 'verify') {
        io.stderr(`verdict: audit: unknown command "${sub ?? ''}"\n${AUDIT_USAGE}\n`);
        return 2;
      }
      return script('audit verify', 'cli/audit-verify.ts', '', '').run(rest, io);
    },
  },
  migrate: script(
    'migrate',
    'cli/migrate.ts',
    'apply pending migrations to the configured database',
    'usage: verdict migrate',
  ),
  gate: {
    summary: 'gate release: the CI release gate (exit 0 allowed, 1 denied, 2 undecided)',
    usage: GATE_USAGE,
    // NOTE: 1 means denied here, so an unexpected failure must be 2 (undecided), never runCli's 1.
    run: async (argv, io) => {
      try {
        return await gateCommand(argv, {
          env: io.env,
          cwd: io.cwd,
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
    usage: 'usage: verdict mcp-proxy --agent ID [options] -- <server command…>',
    run: async (argv, io) => {
      // NOTE: loaded when run: the MCP SDK is not a dependency of the @verdict/cli package.
      let proxy: typeof import('./mcp-proxy.ts');
      try {
        proxy = await import('./mcp-proxy.ts');
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return notInstalled('mcp-proxy', io);
        throw err;
      }
      return proxy.runMcpProxy(argv, { env: io.env, cwd: io.cwd, stdout: io.stdout, stderr: io.stderr });
    },
  },
  evidence: {
    summary: 'verify an evidence package offline: verify FILE [--key PEM | --jwks URL]',
    usage: EVIDENCE_USAGE,
    run: async (argv, io) => {
      if (isHelp(argv[0])) {
        io.stdout(`${EVIDENCE_USAGE}\n`);
        return 0;
      }
      if (argv[0] !== 'verify') throw new CliUsageError(`unknown evidence command "${argv[0] ?? ''}"`);
      return evidenceVerify(argv, {
        cwd: io.cwd,
        out: (line) => io.stdout(`${line}\n`),
        err: (line) => io.stderr(`${line}\n`),
      });
    },
  },
};

export const USAGE = `usage: verdict <command> …   (verdict --version: the version)

commands:
${Object.entries(COMMANDS)
  .map(([name, group]) => `  ${name.padEnd(10)} ${group.summary}`)
  .join('\n')}

verdict <command> --help shows a command's options. From a checkout: npm run verdict -- <command> ….`;

/** Runs the CLI on `argv` (without node and the script) and returns the exit code: 0 ok, 1 refused, 2 usage. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    io.stdout(`verdict ${cliVersion()}\n`);
    return 0;
  }
  if (name === undefined || isHelp(name)) {
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
  cwd: userDirectory(process.env),
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
