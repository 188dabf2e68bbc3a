import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BUNDLE_DEFAULTS } from '../../src/config/bundles.ts';
import { ConfigError, resolveConfig } from '../../src/config/resolve-config.ts';

const publicPem = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();

describe('policy lifecycle configuration', () => {
  it('has the documented defaults: poll 2 s, staleness off, 32 MiB, no signature, no pull', () => {
    const { bundles } = resolveConfig({});
    expect(bundles).toEqual({
      pollMs: BUNDLE_DEFAULTS.pollMs,
      maxStaleMs: 0,
      maxBytes: 32 * 1024 * 1024,
      replicaTimeoutMs: 15_000,
      verification: undefined,
      pull: undefined,
    });
  });

  it('reads a verification key with its id, algorithm and scope, and a bundle server', () => {
    const { bundles } = resolveConfig({
      VERDICT_BUNDLE_VERIFICATION_KEY: publicPem,
      VERDICT_BUNDLE_VERIFICATION_ALG: 'ES256',
      VERDICT_BUNDLE_VERIFICATION_KEY_ID: 'prod',
      VERDICT_BUNDLE_VERIFICATION_SCOPE: 'write',
      VERDICT_BUNDLE_URL: 'https://bundles.example.com/b.tar.gz',
      VERDICT_BUNDLE_URL_TOKEN: 'tok',
      VERDICT_BUNDLE_POLL_MS: '5000',
    });
    expect(bundles.verification).toEqual({
      key: publicPem.trim(),
      keyId: 'prod',
      algorithm: 'ES256',
      scope: 'write',
    });
    expect(bundles.pull).toEqual({
      url: 'https://bundles.example.com/b.tar.gz',
      token: 'tok',
      intervalMs: 30_000,
    });
    expect(bundles.replicaTimeoutMs).toBe(25_000);
  });

  it.each([
    [{ VERDICT_BUNDLE_VERIFICATION_KEY: 'not a pem' }, 'VERDICT_BUNDLE_VERIFICATION_KEY', /PEM public key/],
    [
      { VERDICT_BUNDLE_VERIFICATION_KEY: publicPem, VERDICT_BUNDLE_VERIFICATION_ALG: 'HS256' },
      'VERDICT_BUNDLE_VERIFICATION_KEY',
      /shared secret/,
    ],
    [{ VERDICT_BUNDLE_VERIFICATION_ALG: 'none' }, 'VERDICT_BUNDLE_VERIFICATION_ALG', /must be one of/],
    [{ VERDICT_BUNDLE_URL: 'ftp://x/b.tar.gz' }, 'VERDICT_BUNDLE_URL', /https: or http:/],
    [{ VERDICT_BUNDLE_POLL_MS: 'often' }, 'VERDICT_BUNDLE_POLL_MS', /whole number/],
    [{ VERDICT_BUNDLE_MAX_BYTES: '10' }, 'VERDICT_BUNDLE_MAX_BYTES', /between/],
  ])('names the variable at fault (%o)', (env, variable, message) => {
    try {
      resolveConfig(env);
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).variable).toBe(variable);
      expect((err as ConfigError).message).toMatch(message);
    }
  });
});
