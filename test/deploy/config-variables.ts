import { resolveConfig } from '../../src/config/resolve-config.ts';

/**
 * Every environment variable resolveConfig reads, observed rather than listed: it resolves an
 * environment through a Proxy that records each name looked up — once empty, and once with the
 * variables that turn a part on whose other settings are read only then (OIDC sign-in).
 */
export function configVariables(): Set<string> {
  const read = new Set<string>();
  const observe = (given: Record<string, string>) =>
    new Proxy({} as Record<string, string | undefined>, {
      get(_target, name) {
        if (typeof name !== 'string') return undefined;
        read.add(name);
        return given[name];
      },
    });
  resolveConfig(observe({}), '/');
  resolveConfig(
    observe({ VERDICT_OIDC_ISSUER: 'http://127.0.0.1:9/', VERDICT_OIDC_CLIENT_ID: 'console' }),
    '/',
  );
  return read;
}
