/**
 * The CLI's groups over the HTTP API that read and change records (`verdict decisions`, `waivers`,
 * `approvals`): each subcommand is data — its usage, its options (the API's filters as flags), the
 * request it makes and the summary it prints — and one runner parses, asks and prints them all.
 */
import { parseArgs } from 'node:util';
import { AdminApiClient, type CliIo, CliUsageError, httpUrl } from './client.ts';

/** Parsed option values of one subcommand. */
export type OptionValues = Record<string, string | boolean | string[] | undefined>;

/** One subcommand of a group over the HTTP API. */
export interface ApiSubcommand {
  /** Its own options (--url, --token, --json and --help are every subcommand's). */
  options?: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>;
  /** Its positional arguments, by name: each is required. */
  args?: readonly string[];
  /** The request it makes from its arguments and options; a CliUsageError for a missing option. */
  request(args: string[], values: OptionValues): { method: string; path: string; body?: unknown };
  /** The summary it prints of the answer (`--json` prints the answer itself). */
  text(body: never): string;
}

/** A group: its usage text and its subcommands. */
export interface ApiGroup {
  name: string;
  usage: string;
  subcommands: Record<string, ApiSubcommand>;
}

/** The options every subcommand has; named in each group's usage. */
export const COMMON_OPTIONS_USAGE = `options (every command):
  --url URL      the Verdict API (default $VERDICT_URL)
  --token TOKEN  a bearer token with the scope named above (default $VERDICT_TOKEN)
  --json         print the API's JSON answer instead of a summary`;

/** `?name=value…` of the options in `names` that are set: flag `--subject-id` is parameter `subject_id`. */
export function queryOf(values: OptionValues, names: readonly string[]): string {
  const query = new URLSearchParams();
  for (const name of names) {
    const value = values[name];
    if (typeof value === 'string') query.set(name.replaceAll('-', '_'), value);
  }
  return query.size > 0 ? `?${query}` : '';
}

/** The value of a required string option, or a CliUsageError naming it. */
export function required(values: OptionValues, name: string, what: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new CliUsageError(`${what}: --${name} is required`);
  return value;
}

/** An id as a path segment. */
export const segment = (id: string) => encodeURIComponent(id);

/** Runs `verdict <group> <subcommand> …`; resolves the exit code (0, or thrown errors for runCli). */
export async function runApiGroup(group: ApiGroup, argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(`${group.usage}\n`);
    return name === undefined ? 2 : 0;
  }
  const sub = group.subcommands[name];
  if (!sub) throw new CliUsageError(`unknown ${group.name} command "${name}"`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      ...sub.options,
      url: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout(`${group.usage}\n`);
    return 0;
  }
  const expected = sub.args ?? [];
  if (positionals.length !== expected.length) {
    throw new CliUsageError(
      expected.length === 0
        ? `${name} takes no argument`
        : `${name} needs ${expected.join(' ')}${positionals.length > expected.length ? ', nothing more' : ''}`,
    );
  }
  const request = sub.request(positionals, values);
  const url = (values.url as string | undefined) ?? io.env.VERDICT_URL;
  const token = (values.token as string | undefined) ?? io.env.VERDICT_TOKEN;
  if (!url) throw new CliUsageError('no API URL: pass --url or set VERDICT_URL');
  httpUrl(url, values.url === undefined ? 'VERDICT_URL' : '--url');
  if (!token)
    throw new CliUsageError('no token: pass --token or set VERDICT_TOKEN (verdict token --scope …)');
  const client = new AdminApiClient({ url, token, fetch: io.fetch });
  const { body } = await client.request<never>(
    request.method,
    request.path,
    request.body === undefined ? undefined : { json: request.body },
  );
  io.stdout(values.json ? `${JSON.stringify(body, null, 2)}\n` : `${sub.text(body)}\n`);
  return 0;
}
