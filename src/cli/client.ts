import path from 'node:path';

/** Where the CLI talks to a running Verdict, and how it reports what it got back. */
export interface CliIo {
  env: Record<string, string | undefined>;
  /** The directory the user's relative paths are relative to (see `userDirectory`; default: the working directory). */
  cwd?: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  fetch: typeof fetch;
  readFile: (path: string) => Promise<Buffer>;
}

/**
 * The directory the user typed the command in. `npm run verdict -- …` runs the CLI in the checkout's
 * root, not where the user was: npm names that in INIT_CWD. Only for the `verdict` script, whose
 * arguments are all the user's; another script's paths were written relative to its package.
 */
export function userDirectory(env: Record<string, string | undefined>, cwd: string = process.cwd()): string {
  return env.npm_lifecycle_event === 'verdict' && env.INIT_CWD ? path.resolve(cwd, env.INIT_CWD) : cwd;
}

/** `value` when it is an http(s) URL; a CliUsageError naming `flag` and the value otherwise. */
export function httpUrl(value: string, flag: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new CliUsageError(`${flag} ${JSON.stringify(value)} is not an http(s) URL`);
  return value;
}

/** A refusal from the server (any non-2xx) or a transport failure: the CLI prints it and exits 1. */
export class CliRefusal extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, detail: string) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

/** A usage mistake: the CLI prints it with the usage and exits 2. */
export class CliUsageError extends Error {}

/**
 * The HTTP client of `verdict bundle …` (the admin API): one base URL, one bearer token; a non-2xx
 * answer becomes a CliRefusal. Not the SDK's VerdictClient: the CLI prints the status (201 or 200
 * on upload) and every refusal as it came.
 */
export class AdminApiClient {
  private readonly url: string;
  private readonly token: string;
  private readonly fetch: typeof fetch;

  constructor(options: { url: string; token: string; fetch: typeof fetch }) {
    this.url = options.url.replace(/\/+$/, '');
    this.token = options.token;
    this.fetch = options.fetch;
  }

  /** Sends one request; resolves the parsed JSON body of a 2xx, throws CliRefusal otherwise. */
  async request<T>(
    method: string,
    path: string,
    body?: { json: unknown } | { bytes: Buffer; type: string },
  ): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.token}`,
      accept: 'application/json',
    };
    let payload: string | Uint8Array<ArrayBuffer> | undefined;
    if (body && 'json' in body) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body) {
      headers['content-type'] = body.type;
      payload = new Uint8Array(
        body.bytes.buffer.slice(
          body.bytes.byteOffset,
          body.bytes.byteOffset + body.bytes.byteLength,
        ) as ArrayBuffer,
      );
    }
    let response: Response;
    try {
      response = await this.fetch(`${this.url}${path}`, { method, headers, body: payload });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new CliRefusal(0, 'unreachable', `cannot reach ${this.url}: ${cause ?? (err as Error).message}`);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const problem = (parsed ?? {}) as { code?: string; detail?: string; title?: string };
      throw new CliRefusal(
        response.status,
        problem.code ?? `http_${response.status}`,
        problem.detail ?? problem.title ?? (text.slice(0, 200) || response.statusText),
      );
    }
    return { status: response.status, body: parsed as T };
  }
}

/** The process's environment and standard streams, for a command run as the entry point. */
export const STANDARD_IO = {
  env: process.env,
  stdout: (text: string) => void process.stdout.write(text),
  stderr: (text: string) => void process.stderr.write(text),
};

/**
 * Runs `command` as the process's entry point: its answer is the exit code; a command that fails
 * instead is reported on stderr as `name: failed: …` and exits with `failureCode`.
 */
export function runAsMain(name: string, command: () => Promise<number>, failureCode: number): void {
  command().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`${name}: failed: ${(err as Error).message}\n`);
      process.exitCode = failureCode;
    },
  );
}
