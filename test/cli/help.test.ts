/**
 * Help never acts: every command and subcommand of `verdict` answers `--help` with its own usage on
 * stdout and exit 0 — `migrate --help` and `audit verify --help` leave an empty database empty.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/verdict.ts';
import { adminQuery, TEST_DATABASE_URL } from '../support/database.ts';

const root = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(root, 'src/cli/verdict.ts');

/** Each command, and each subcommand it has, with the words its usage line starts with. */
const HELP_CASES: string[][] = [
  ['bundle'],
  ['bundle', 'push'],
  ['bundle', 'status'],
  ['bundle', 'list'],
  ['bundle', 'shadow-report'],
  ['decisions'],
  ['decisions', 'search'],
  ['decisions', 'replay'],
  ['waivers'],
  ['waivers', 'request'],
  ['waivers', 'revoke'],
  ['approvals'],
  ['approvals', 'deny'],
  ['token'],
  ['audit'],
  ['audit', 'verify'],
  ['migrate'],
  ['gate'],
  ['gate', 'release'],
  ['mcp-proxy'],
  ['evidence'],
  ['evidence', 'verify'],
];

describe('verdict … --help', () => {
  const name = `verdict_help_${process.pid}_${Date.now()}`;
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    await adminQuery(`CREATE DATABASE ${name}`);
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: url.toString(),
      VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-help-')),
    };
  });
  afterAll(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });

  const verdict = (args: string[]) =>
    new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env, encoding: 'utf8' }, (error, stdout, stderr) =>
        resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('covers every command group', () => {
    for (const group of Object.keys(COMMANDS)) expect(HELP_CASES.map((c) => c[0])).toContain(group);
  });

  it.each(HELP_CASES.map((words) => [words.join(' '), words] as const))(
    'verdict %s --help answers its own usage with exit 0 and does nothing',
    async (_, words) => {
      for (const flag of ['--help', '-h']) {
        const { status, stdout, stderr } = await verdict([...words, flag]);
        expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
        expect(stdout).toMatch(new RegExp(`^usage: verdict ${words[0]}\\b`));
        expect(stdout).toMatch(new RegExp(`\\b${words.at(-1)}\\b`));
      }
    },
  );

  it('migrate --help and audit verify --help leave the database untouched', async () => {
    await verdict(['migrate', '--help']);
    await verdict(['audit', 'verify', '--help']);
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      const { rows } = await client.query(
        "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
      );
      expect(rows[0].n).toBe(0);
    } finally {
      await client.end();
    }
  });

  it('refuses an unknown option of migrate and audit verify (exit 2) instead of ignoring it', async () => {
    expect((await verdict(['migrate', '--dry-run'])).status).toBe(2);
    expect((await verdict(['audit', 'verify', '--form', '2026-01-01'])).status).toBe(2);
  });

  it('--version prints the version of the package', async () => {
    const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      version: string;
    };
    const { status, stdout } = await verdict(['--version']);
    expect(status).toBe(0);
    expect(stdout).toBe(`verdict ${version}\n`);
  });
});
