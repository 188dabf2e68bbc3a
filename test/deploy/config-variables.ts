import { resolveConfig } from '../../src/config/resolve-config.ts';

/**
 * Every environment variable resolveConfig reads, observed rather than listed: it resolves an
 * empty environment through a Proxy that records each name looked up.
 */
export function configVariables(): Set<string> {
  const read = new Set<string>();
  const env = new Proxy({} as Record<string, string | undefined>, {
    get(_target, name) {
      if (typeof name === 'string') read.add(name);
      return undefined;
    },
  });
  resolveConfig(env, '/');
  return read;
}
