import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, resolveConfig } from '../../src/config/index.ts';

describe('resolveConfig', () => {
  it('fills in the defaults on an empty environment', () => {
    const config = resolveConfig({}, '/srv');
    expect(config.port).toBe(DEFAULTS.port);
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toBe('/srv/.verdict-data');
    expect(config.audit.mode).toBe('sync');
    expect(config.batchLimit).toBe(100);
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
  ])('names %s when it is invalid', (variable, value, message) => {
    expect(() => resolveConfig({ [variable]: value })).toThrow(message);
    try {
      resolveConfig({ [variable]: value });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe(variable);
    }
  });

  it('takes VERDICT_PUBLIC_URL without a trailing slash; absent, it is undefined', () => {
    expect(resolveConfig({ VERDICT_PUBLIC_URL: 'https://pdp.example.com/' }).publicUrl).toBe(
      'https://pdp.example.com',
    );
    expect(resolveConfig({}).publicUrl).toBeUndefined();
  });

  it('refuses two JWT key sources at once', () => {
    expect(() =>
      resolveConfig({ JWT_SECRET: 'x'.repeat(32), JWT_JWKS_URL: 'https://idp.example/jwks' }),
    ).toThrow(/only one of/);
  });
});
