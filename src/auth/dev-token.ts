import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createSigner } from 'fast-jwt';
import type { Config } from '../config/resolve-config.ts';
import type { Caller } from '../decisions/types.ts';
import { SCOPES, type Scope } from './caller.ts';
import { configuredKeySource, type KeySource, KeySourceError } from './keys.ts';

/** The file, under the data directory, that holds the embedded mode's generated HS256 secret. */
export const DEV_SECRET_FILE = 'dev-jwt-secret';

/** The issuer written into locally minted tokens, so that logs show where a token came from. */
export const DEV_ISSUER = 'verdict-dev';

/**
 * Reads the embedded mode's HS256 secret, creating it (48 random bytes, mode 0600) on first start.
 * A secret file readable by others is refused: anyone who reads it can mint admin tokens.
 */
export function loadOrCreateDevSecret(dataDir: string): { secret: string; created: boolean } {
  const file = path.join(dataDir, DEV_SECRET_FILE);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let created = false;
  try {
    // 'wx' fails when the file exists, so two processes starting at once cannot overwrite each other.
    writeFileSync(file, `${randomBytes(48).toString('base64url')}\n`, { flag: 'wx', mode: 0o600 });
    chmodSync(file, 0o600);
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if ((statSync(file).mode & 0o077) !== 0) {
    throw new KeySourceError('VERDICT_DATA_DIR', `${file} is readable by other users; chmod 600 it`);
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (Buffer.byteLength(secret) < 32)
    throw new KeySourceError('VERDICT_DATA_DIR', `${file} holds too short a secret`);
  return { secret, created };
}

/** How the service verifies tokens, decided at start. */
export interface StartupKeys {
  keys: KeySource;
  /** Set in the embedded mode: the generated secret's file, for the start banner. */
  devSecretFile?: string;
}

/**
 * The key source for this start: the configured one; else, in the embedded mode (no DATABASE_URL),
 * the generated development secret; else a refusal — a service with a real database must not run
 * on a secret nobody provisioned.
 */
export function resolveStartupKeys(config: Config): StartupKeys {
  const configured = configuredKeySource(config.jwt);
  if (configured) return { keys: configured };
  if (config.databaseUrl !== undefined) {
    throw new KeySourceError(
      'JWT_SECRET',
      'DATABASE_URL is set but no token key source is: set one of JWT_JWKS_URL, JWT_PUBLIC_KEY or JWT_SECRET',
    );
  }
  const { secret } = loadOrCreateDevSecret(config.dataDir);
  return {
    keys: { kind: 'secret', secret, algorithms: ['HS256'] },
    devSecretFile: path.join(config.dataDir, DEV_SECRET_FILE),
  };
}

/**
 * The embedded mode's console user: `dev`, a human principal (so that it may approve agent
 * actions), with every scope — the banner's one-time sign-in link signs in as it.
 */
export function devConsoleCaller(config: Config): Caller {
  return Object.freeze({
    sub: 'dev',
    iss: config.jwt.issuer ?? DEV_ISSUER,
    clientId: null,
    scopes: [...SCOPES],
    principalType: 'human',
  });
}

/** What a locally minted token says. */
export interface TokenRequest {
  scopes?: readonly Scope[];
  sub?: string;
  /** Lifetime in seconds. */
  ttlSeconds?: number;
  issuer?: string;
  audience?: string;
  clientId?: string;
  /** The `principal_type` claim (`human` for a person who may approve agent actions). */
  principalType?: string;
}

/** Mints an HS256 token from a shared secret (the embedded mode, `npm run token`, tests). */
export function mintToken(secret: string, request: TokenRequest = {}): string {
  const sign = createSigner({
    key: secret,
    algorithm: 'HS256',
    expiresIn: (request.ttlSeconds ?? 12 * 3600) * 1000,
    ...(request.issuer ? { iss: request.issuer } : {}),
    ...(request.audience ? { aud: request.audience } : {}),
    sub: request.sub ?? 'dev',
  });
  return sign({
    scope: (request.scopes ?? SCOPES).join(' '),
    ...(request.clientId ? { client_id: request.clientId } : {}),
    ...(request.principalType ? { principal_type: request.principalType } : {}),
  });
}

/** Parses "90", "30s", "15m", "12h", "7d" into seconds; null when malformed. */
export function parseTtl(text: string): number | null {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!match) return null;
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(match[1]) * unit;
  return seconds > 0 ? seconds : null;
}

/** One of the start banner's example decisions, with the answer the built-in policies give. */
export interface BannerExample {
  /** What the call is, in a few words. */
  title: string;
  /** The body of `POST /v1/decisions`. */
  body: { subject: object; action: object; resource: object; context?: object };
  /** What the built-in bundle answers: allow, the violated controls, the obligation types. */
  expect: { allow: boolean; controls: readonly string[]; obligations: readonly string[] };
}

/**
 * The banner's "try it" calls: an allowed tool call first, then a denied one with its reasons, so a
 * newcomer sees both answers. test/auth/banner-examples.test.ts runs them on the built-in bundle.
 */
export const BANNER_EXAMPLES: readonly BannerExample[] = [
  {
    title: 'an allowed tool call (support-bot searches the knowledge base)',
    body: {
      subject: { type: 'agent', id: 'support-bot' },
      action: { name: 'tool.call' },
      resource: { type: 'tool', id: 'search_kb' },
      context: { session: { tool_calls: 2 }, data_classification: 'internal' },
    },
    expect: { allow: true, controls: [], obligations: [] },
  },
  {
    // NOTE: denied only by what a person can approve (TOOL-002), so the deny opens an approval
    // request that waits in the console's inbox; a deny an approval cannot lift opens none.
    title: 'a denied one a person can approve (support-bot sends an email after reading untrusted content)',
    body: {
      subject: { type: 'agent', id: 'support-bot' },
      action: { name: 'tool.call' },
      resource: { type: 'tool', id: 'send_email' },
      context: { session: { tool_calls: 3, untrusted_content: true }, data_classification: 'internal' },
    },
    expect: { allow: false, controls: ['TOOL-002'], obligations: ['human_approval'] },
  },
];

/** The answer an example expects, in words: `"allow": false; violations TOOL-002; obligation …`. */
export function describeExpectation(expect: BannerExample['expect']): string {
  const parts = [`"allow": ${expect.allow}`];
  if (expect.controls.length > 0) parts.push(`violations ${expect.controls.join(', ')}`);
  if (expect.obligations.length > 0) parts.push(`obligation ${expect.obligations.join(', ')}`);
  return parts.join('; ');
}

/** True for an address only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The embedded mode's start banner: where the secret lives, which address the service listens on,
 * and ready-to-paste curl lines (an allow, then a deny) with a 12-hour token with every scope
 * (`SCOPES`: those of the routes that exist, and admin). Written to
 * stdout, not to the log: logs redact tokens, and a token has no business in a log pipeline.
 */
export function devTokenBanner(config: Config, startup: StartupKeys, consoleLink?: string): string {
  if (startup.keys.kind !== 'secret') return '';
  const token = mintToken(startup.keys.secret, {
    sub: 'dev',
    ttlSeconds: 12 * 3600,
    issuer: config.jwt.issuer ?? DEV_ISSUER,
    audience: config.jwt.audience,
  });
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const listening = isLoopbackHost(config.host)
    ? `verdict: listening on ${config.host}:${config.port} only: this machine, not the network (set HOST=0.0.0.0 to open it, and a JWT_* key source for real tokens)`
    : `verdict: WARNING: listening on ${config.host}:${config.port} (HOST): other machines can reach this development service`;
  const examples = BANNER_EXAMPLES.flatMap((example, i) => [
    `verdict: ${i + 1}) ${example.title}; expect ${describeExpectation(example.expect)}:`,
    `curl -s -H 'Authorization: Bearer ${token}' -H 'Content-Type: application/json' -d '${JSON.stringify(example.body)}' http://${urlHost}:${config.port}/v1/decisions`,
  ]);
  return [
    '',
    `verdict: embedded development mode: tokens are signed with the secret in ${startup.devSecretFile}`,
    listening,
    `verdict: development token (scopes ${SCOPES.join(' ')}; valid 12h); for the README examples:`,
    `export TOKEN=${token}`,
    'verdict: try (with the built-in policies):',
    ...examples,
    'verdict: mint more with: npm run token -- --scope "decisions:evaluate audit:read" --sub my-agent --ttl 1h',
    ...(consoleLink
      ? [
          `verdict: console: http://${urlHost}:${config.port}/console — sign in once with this link (the dev user, human, every scope; valid 15 min):`,
          `http://${urlHost}:${config.port}${consoleLink}`,
        ]
      : []),
    '',
    '',
  ].join('\n');
}
