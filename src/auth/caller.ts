import type { Caller } from '../decisions/types.ts';

/**
 * The scopes routes declare (`config.scope`), one line each. A scope is added here with its first
 * route (test/auth/routes.test.ts checks the two agree), so that no token — the development token
 * included — carries a grant for a route that does not exist.
 */
export const ROUTE_SCOPES = [
  'decisions:evaluate', // decisions, OPA data API, AuthZEN evaluations
  'audit:read', // decision log search, export, replay, verify; bundle reads and the shadow report
  'bundles:read', // bundle revisions, fleet status, policy events
  'bundles:write', // bundle upload, activation, shadow
  'exceptions:request', // waivers: request, list, read (issue 13)
  'exceptions:approve', // waivers: approve, reject, revoke
  'approvals:grant', // human approvals of agent actions: list, grant, deny
] as const;

/** Every scope a token may carry: the route scopes and `admin`, which implies them all. */
export const SCOPES = [...ROUTE_SCOPES, 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** The verified claims a caller is built from (a JWT payload after signature and claim checks). */
export type Claims = Record<string, unknown>;

function stringClaim(claims: Claims, name: string): string | null {
  const value = claims[name];
  return typeof value === 'string' && value !== '' ? value : null;
}

/**
 * The scopes a token grants: `scope` (space-separated string, RFC 8693/OAuth) or `scp` (array, as
 * Azure AD and Okta issue them). Unknown scope names are dropped so that nothing downstream can
 * mistake them for a grant.
 */
export function scopesOf(claims: Claims): Scope[] {
  const raw: unknown[] = [];
  if (typeof claims.scope === 'string') raw.push(...claims.scope.split(/\s+/));
  if (Array.isArray(claims.scp)) raw.push(...claims.scp);
  else if (typeof claims.scp === 'string') raw.push(...claims.scp.split(/\s+/));
  const known = new Set<string>(SCOPES);
  const scopes = new Set<Scope>();
  for (const name of raw) if (typeof name === 'string' && known.has(name)) scopes.add(name as Scope);
  return [...scopes];
}

/**
 * The caller recorded with every decision, from a verified token only (never from a body). Frozen:
 * one caller object serves every request of a remembered token, and the audit chain keeps its
 * canonical JSON per object (src/audit/chain.ts).
 */
export function callerFromClaims(claims: Claims): Caller {
  const principalType = stringClaim(claims, 'principal_type');
  return Object.freeze({
    sub: stringClaim(claims, 'sub') ?? '',
    iss: stringClaim(claims, 'iss'),
    clientId: stringClaim(claims, 'client_id') ?? stringClaim(claims, 'azp'),
    scopes: Object.freeze(scopesOf(claims)) as string[],
    // Only present when the token says so, so that callers of other tokens are recorded as before.
    ...(principalType === null ? {} : { principalType }),
  });
}

/**
 * Whether a caller may use a route that needs `scope` (or any one of several scopes); `admin`
 * implies every scope.
 */
export function hasScope(caller: Caller, scope: Scope | readonly Scope[]): boolean {
  if (caller.scopes.includes('admin')) return true;
  return typeof scope === 'string'
    ? caller.scopes.includes(scope)
    : scope.some((one) => caller.scopes.includes(one));
}
