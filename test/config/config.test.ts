import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, resolveConfig } from '../../src/config/resolve-config.ts';

describe('resolveConfig', () => {
  it('token sign-in to the console defaults to on only when embedded without OIDC', () => {
    const oidc = { VERDICT_OIDC_ISSUER: 'https://idp.example.com', VERDICT_OIDC_CLIENT_ID: 'verdict' };
    expect(resolveConfig({}).console.tokenLogin).toBe(true);
    expect(resolveConfig(oidc).console.tokenLogin).toBe(false);
    expect(resolveConfig({ ...oidc, VERDICT_CONSOLE_TOKEN_LOGIN: 'true' }).console.tokenLogin).toBe(true);
    expect(resolveConfig({ JWT_SECRET: 'k'.repeat(32) }).console.tokenLogin).toBe(false);
  });

  it('fills in the defaults on an empty environment', () => {
    const config = resolveConfig({}, '/srv');
    expect(config.port).toBe(DEFAULTS.port);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toBe('/srv/.verdict-data');
    expect(config.audit.mode).toBe('sync');
    expect(config.batchLimit).toBe(100);
    // No per-caller rate limit unless asked for (ADR 0006); 0 is "off" when set explicitly too.
    expect(config.rateLimit.max).toBe(0);
    expect(resolveConfig({ VERDICT_RATE_LIMIT_MAX: '0' }).rateLimit.max).toBe(0);
    expect(resolveConfig({ VERDICT_RATE_LIMIT_MAX: '600' }).rateLimit.max).toBe(600);
  });

  it.each([
    ['PORT', 'eighty', /PORT: must be a whole number/],
    ['PORT', '70000', /PORT: must be between/],
    ['VERDICT_AUDIT_MODE', 'maybe', /VERDICT_AUDIT_MODE: must be one of sync, async, off/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL: must use postgres:/],
    ['JWT_SECRET', 'short', /JWT_SECRET: must be at least 32 bytes/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL/],
    ['VERDICT_PUBLIC_URL', 'ftp://pdp.example', /VERDICT_PUBLIC_URL: must use https: or http:/],
    ['VERDICT_PUBLIC_URL', 'https://pdp.example/?tenant=1', /VERDICT_PUBLIC_URL: must have no query/],
    ['VERDICT_GRANTS_POLL_MS', '10', /VERDICT_GRANTS_POLL_MS: must be between/],
    ['VERDICT_LEGACY_CLIENT_APPROVALS', 'yes', /VERDICT_LEGACY_CLIENT_APPROVALS: must be true or false/],
    ['VERDICT_APPROVAL_WEBHOOK_URL', 'ftp://hooks', /VERDICT_APPROVAL_WEBHOOK_URL: must use https: or http:/],
  ])('names %s when it is invalid', (variable, value, message) => {
    expect(() => resolveConfig({ [variable]: value })).toThrow(message);
    try {
      resolveConfig({ [variable]: value });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe(variable);
    }
  });

  it('listens on loopback only in the embedded development mode; anywhere otherwise; HOST always wins', () => {
    // The development secret is in use: no DATABASE_URL and no key source.
    expect(resolveConfig({}).host).toBe('127.0.0.1');
    expect(resolveConfig({ VERDICT_AUDIT_MODE: 'off' }).host).toBe('127.0.0.1');
    // A real database (it needs a real key source) or a configured key source: the usual default.
    const database = 'postgres://x@db.example/verdict';
    expect(resolveConfig({ DATABASE_URL: database, JWT_SECRET: 'k'.repeat(32) }).host).toBe(DEFAULTS.host);
    expect(resolveConfig({ JWT_SECRET: 'k'.repeat(32) }).host).toBe('0.0.0.0');
    expect(resolveConfig({ JWT_JWKS_URL: 'https://idp.example/jwks' }).host).toBe('0.0.0.0');
    expect(resolveConfig({ DATABASE_URL: database }).host).toBe('0.0.0.0');
    expect(resolveConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(resolveConfig({ HOST: '10.1.2.3', JWT_SECRET: 'k'.repeat(32) }).host).toBe('10.1.2.3');
  });

  it('takes VERDICT_PUBLIC_URL without a trailing slash; absent, it is undefined', () => {
    expect(resolveConfig({ VERDICT_PUBLIC_URL: 'https://pdp.example.com/' }).publicUrl).toBe(
      'https://pdp.example.com',
    );
    expect(resolveConfig({}).publicUrl).toBeUndefined();
  });

  it('grants: polls every 2 s, legacy client approvals off, no webhook unless a URL and a secret are given', () => {
    expect(resolveConfig({}).grants).toEqual({
      pollMs: 2000,
      legacyClientApprovals: false,
      webhookUrl: undefined,
      webhookSecret: undefined,
    });
    const on = resolveConfig({
      VERDICT_LEGACY_CLIENT_APPROVALS: 'true',
      VERDICT_APPROVAL_WEBHOOK_URL: 'https://hooks.example/verdict',
      VERDICT_APPROVAL_WEBHOOK_SECRET: 's3cret',
    }).grants;
    expect(on).toMatchObject({
      legacyClientApprovals: true,
      webhookUrl: 'https://hooks.example/verdict',
      webhookSecret: 's3cret',
    });
    // A webhook nobody can verify is refused.
    expect(() => resolveConfig({ VERDICT_APPROVAL_WEBHOOK_URL: 'https://hooks.example/verdict' })).toThrow(
      /VERDICT_APPROVAL_WEBHOOK_SECRET: is required/,
    );
  });

  it('refuses two JWT key sources at once', () => {
    expect(() =>
      resolveConfig({ JWT_SECRET: 'x'.repeat(32), JWT_JWKS_URL: 'https://idp.example/jwks' }),
    ).toThrow(/only one of/);
  });
});
