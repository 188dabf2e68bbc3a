import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../src/config/resolve-config.ts';

describe('the console settings', () => {
  const secret = 'x'.repeat(32);

  it('token sign-in is on in the embedded development mode only, unless set', () => {
    expect(resolveConfig({}).console).toEqual({ tokenLogin: true, idleMinutes: 30, absoluteHours: 8 });
    expect(resolveConfig({ JWT_SECRET: secret }).console.tokenLogin).toBe(false);
    expect(
      resolveConfig({ DATABASE_URL: 'postgres://db/verdict', JWT_SECRET: secret }).console.tokenLogin,
    ).toBe(false);
    expect(
      resolveConfig({
        DATABASE_URL: 'postgres://db/verdict',
        JWT_SECRET: secret,
        VERDICT_CONSOLE_TOKEN_LOGIN: 'true',
      }).console.tokenLogin,
    ).toBe(true);
    expect(resolveConfig({ VERDICT_CONSOLE_TOKEN_LOGIN: 'false' }).console.tokenLogin).toBe(false);
  });

  it('reads the session limits and refuses malformed values', () => {
    const config = resolveConfig({ VERDICT_CONSOLE_IDLE_MINUTES: '15', VERDICT_CONSOLE_SESSION_HOURS: '12' });
    expect(config.console).toMatchObject({ idleMinutes: 15, absoluteHours: 12 });
    expect(() => resolveConfig({ VERDICT_CONSOLE_TOKEN_LOGIN: 'yes' })).toThrow(ConfigError);
    expect(() => resolveConfig({ VERDICT_CONSOLE_IDLE_MINUTES: '0' })).toThrow(ConfigError);
    expect(() => resolveConfig({ VERDICT_CONSOLE_SESSION_HOURS: '1000' })).toThrow(ConfigError);
  });
});
