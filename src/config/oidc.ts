import { ConfigError, type Env, text } from './env.ts';

/**
 * OpenID Connect sign-in to the console (issue 24): authorization code + PKCE against the issuer's
 * discovery document. Scope names in `scopeMap` are checked against Verdict's scopes where the
 * sign-in is built (src/auth/oidc.ts): this folder imports nothing.
 */
export interface OidcConfig {
  /** VERDICT_OIDC_ISSUER: the issuer URL (https, or http on a loopback address for development). */
  issuer: string;
  /** VERDICT_OIDC_CLIENT_ID */
  clientId: string;
  /** VERDICT_OIDC_CLIENT_SECRET; absent → a public client (PKCE alone). */
  clientSecret: string | undefined;
  /** VERDICT_OIDC_SCOPES: what the authorization request asks for; default `openid profile`. */
  requestScopes: string;
  /** VERDICT_OIDC_SCOPE_CLAIM: the ID-token claim whose values map to scopes; default `groups`. */
  scopeClaim: string;
  /**
   * VERDICT_OIDC_SCOPE_MAP: claim value → Verdict scopes, written
   * `verdict-approvers=approvals:grant,audit:read;verdict-auditors=audit:read`.
   */
  scopeMap: Readonly<Record<string, readonly string[]>>;
}

export const OIDC_DEFAULTS = { requestScopes: 'openid profile', scopeClaim: 'groups' } as const;

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;

/** Parses `group=scope,scope;group=scope` (blank entries ignored; a group named twice is an error). */
export function parseScopeMap(raw: string | undefined): Record<string, string[]> {
  const map: Record<string, string[]> = {};
  if (raw === undefined) return map;
  for (const entry of raw.split(';')) {
    if (entry.trim() === '') continue;
    const at = entry.lastIndexOf('=');
    const value = at < 0 ? '' : entry.slice(0, at).trim();
    const scopes =
      at < 0
        ? []
        : entry
            .slice(at + 1)
            .split(/[,\s]+/)
            .filter(Boolean);
    if (value === '' || scopes.length === 0) {
      throw new ConfigError(
        'VERDICT_OIDC_SCOPE_MAP',
        `"${entry.trim()}" is not claim-value=scope[,scope…] (entries separated by ";")`,
      );
    }
    if (Object.hasOwn(map, value)) {
      throw new ConfigError('VERDICT_OIDC_SCOPE_MAP', `"${value}" is mapped twice`);
    }
    map[value] = scopes;
  }
  return map;
}

function issuerUrl(raw: string): string {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError('VERDICT_OIDC_ISSUER', 'is not a valid URL');
  }
  const loopbackHttp = parsed.protocol === 'http:' && LOOPBACK.test(parsed.hostname);
  if (parsed.protocol !== 'https:' && !loopbackHttp) {
    throw new ConfigError('VERDICT_OIDC_ISSUER', 'must use https (http only on a loopback address)');
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new ConfigError('VERDICT_OIDC_ISSUER', 'must have no query or fragment');
  }
  return raw;
}

/** Reads VERDICT_OIDC_*; undefined when VERDICT_OIDC_ISSUER is not set (no OIDC sign-in). */
export function resolveOidc(env: Env): OidcConfig | undefined {
  const issuer = text(env, 'VERDICT_OIDC_ISSUER');
  if (issuer === undefined) {
    for (const name of ['VERDICT_OIDC_CLIENT_ID', 'VERDICT_OIDC_CLIENT_SECRET', 'VERDICT_OIDC_SCOPE_MAP']) {
      if (text(env, name) !== undefined) throw new ConfigError(name, 'is set but VERDICT_OIDC_ISSUER is not');
    }
    return undefined;
  }
  const clientId = text(env, 'VERDICT_OIDC_CLIENT_ID');
  if (clientId === undefined) {
    throw new ConfigError('VERDICT_OIDC_CLIENT_ID', 'is required with VERDICT_OIDC_ISSUER');
  }
  const requestScopes = text(env, 'VERDICT_OIDC_SCOPES') ?? OIDC_DEFAULTS.requestScopes;
  if (!requestScopes.split(/\s+/).includes('openid')) {
    throw new ConfigError('VERDICT_OIDC_SCOPES', 'must include "openid"');
  }
  return {
    issuer: issuerUrl(issuer),
    clientId,
    clientSecret: text(env, 'VERDICT_OIDC_CLIENT_SECRET'),
    requestScopes,
    scopeClaim: text(env, 'VERDICT_OIDC_SCOPE_CLAIM') ?? OIDC_DEFAULTS.scopeClaim,
    scopeMap: parseScopeMap(text(env, 'VERDICT_OIDC_SCOPE_MAP')),
  };
}
