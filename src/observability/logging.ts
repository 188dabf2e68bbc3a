import { type LoggerOptions, stdTimeFunctions } from 'pino';
import type { Config } from '../config/resolve-config.ts';

/**
 * Every log path that may carry a secret, in one list (auth adds its fields here, not elsewhere).
 * pino replaces the value with "[redacted]" before the line is written.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'cookie',
  'token',
  'accessToken',
  'access_token',
  'refresh_token',
  'id_token',
  'client_secret',
  'password',
  'secret',
  'jwt.secret',
  'databaseUrl',
  'redisUrl',
  '*.authorization',
  '*.token',
  '*.accessToken',
  '*.access_token',
  '*.refresh_token',
  '*.client_secret',
  '*.password',
  '*.secret',
  '*.databaseUrl',
  '*.redisUrl',
];

/** Whether pino-pretty (a devDependency) is installed; production images do not have it. */
function prettyInstalled(): boolean {
  try {
    import.meta.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * The pino options for the service: JSON lines with ISO time and string levels, secrets redacted;
 * pretty output only when asked for (VERDICT_LOG_FORMAT=pretty) or, in `auto`, when stdout is a
 * terminal outside production — and only if pino-pretty is installed, else JSON.
 */
export function loggerOptions(
  config: Pick<Config, 'logLevel' | 'logFormat' | 'nodeEnv'>,
  stdoutIsTTY: boolean = process.stdout.isTTY === true,
): LoggerOptions {
  const options: LoggerOptions = {
    level: config.logLevel,
    base: { service: 'verdict', pid: process.pid },
    timestamp: stdTimeFunctions.isoTime,
    messageKey: 'msg',
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  const pretty =
    config.logFormat === 'pretty' ||
    (config.logFormat === 'auto' && stdoutIsTTY && config.nodeEnv !== 'production');
  if (pretty && prettyInstalled()) {
    options.transport = { target: 'pino-pretty', options: { translateTime: 'SYS:standard' } };
  }
  return options;
}
