import type { Scope } from './caller.ts';

/**
 * Routes anyone may call without a token: probes, metrics, the API description and AuthZEN
 * discovery. Matched on the *registered route pattern*, never on the raw URL, so no path trick
 * (`/health/../v1/decisions`, encoded slashes) can reach a protected handler through this list.
 */
export const PUBLIC_ROUTES: readonly string[] = [
  // OPA's health API (probes written for OPA send no token).
  '/health',
  '/health/live',
  '/health/ready',
  '/metrics',
  '/docs',
  '/docs/*',
  '/openapi.json',
  '/.well-known/authzen-configuration',
  // The public keys auditors verify evidence packages and checkpoints with.
  '/v1/evidence/keys',
  // The console: people sign in there and carry a session cookie, not a bearer token; every console
  // route checks its session and scopes itself (src/console/, docs/console.md).
  '/console',
  '/console/*',
];

/** How a route is guarded. */
export type Protection =
  | { kind: 'public' }
  /** `scope`: the one scope needed, or several of which any one will do. */
  | { kind: 'scope'; scope: Scope | readonly Scope[] }
  /** Registered without a scope and not public: only `admin` may call it (fail closed). */
  | { kind: 'unscoped' }
  /** No route matched: a valid token is required before the 404, so probing reveals nothing. */
  | { kind: 'unknown' };

function isPublicPattern(url: string): boolean {
  for (const pattern of PUBLIC_ROUTES) {
    if (pattern.endsWith('/*') ? url.startsWith(pattern.slice(0, -1)) : url === pattern) return true;
  }
  return false;
}

/** The protection of a route from its method, pattern and declared scope. */
export function protectionOf(
  method: string,
  url: string | undefined,
  scope: Scope | readonly Scope[] | undefined,
): Protection {
  if (scope) return { kind: 'scope', scope };
  if (url === undefined) return { kind: 'unknown' };
  // CORS preflights carry no credentials by design (Fetch standard); @fastify/cors answers them.
  if (method === 'OPTIONS' || isPublicPattern(url)) return { kind: 'public' };
  return { kind: 'unscoped' };
}
