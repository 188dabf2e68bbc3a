#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { BUNDLE_USAGE, bundleCommand } from './bundle.ts';
import { type CliIo, CliRefusal, CliUsageError } from './client.ts';

/**
 * One command of the `verdict` CLI. Each group parses its own arguments and returns an exit code;
 * `verdict --help` lists them all. The older npm scripts (`npm run token`, `npm run audit:verify`,
 * `npm run migrate`) are to join here as groups of their own.
 */
interface CommandGroup {
  summary: string;
  usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

export const COMMANDS: Record<string, CommandGroup> = {
  bundle: {
    summary: 'ship policy bundles: push, activate, rollback, shadow, status',
    usage: BUNDLE_USAGE,
    run: bundleCommand,
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
