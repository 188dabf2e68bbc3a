import { createRequire } from 'node:module';
import type { FastifyBaseLogger } from 'fastify';
import { type Bindings, type ChildLoggerOptions, type LoggerOptions, stdTimeFunctions } from 'pino';
import type { Config } from '../config/index.ts';

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
    createRequire(import.meta.url).resolve('pino-pretty');
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

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** Whether `logger` writes `level`; true for a logger that cannot say (it then decides itself). */
export function logEnabled(logger: FastifyBaseLogger, level: string): boolean {
  const check = (logger as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled;
  return typeof check === 'function' ? check.call(logger, level) : true;
}

/**
 * Fastify's per-request logger, made only when a request logs something. Fastify's default factory
 * builds a pino child (request id bindings, redaction) for every request; at the production level
 * (`warn`) most requests never log, and that child was ~2% of a tool-call worker's CPU
 * (bench/README.md). This stand-in forwards each level to the real child, created on first use,
 * and drops disabled levels without creating it. A route with its own log level gets the real child
 * at once, since the parent's level would not say what that route logs.
 */
export function lazyChildLogger(
  this: unknown,
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  if (options.level !== undefined) return logger.child(bindings, options);
  let child: FastifyBaseLogger | undefined;
  const real = () => {
    child ??= logger.child(bindings, options);
    return child;
  };
  const lazy = {
    get level() {
      return child?.level ?? logger.level;
    },
    set level(level: string) {
      real().level = level;
    },
    child: (more: Bindings, moreOptions?: ChildLoggerOptions) => real().child(more, moreOptions),
    silent: () => {},
    isLevelEnabled: (level: string) => logEnabled(child ?? logger, level),
  } as unknown as FastifyBaseLogger;
  for (const level of LOG_LEVELS) {
    lazy[level] = ((...args: Parameters<FastifyBaseLogger['info']>) => {
      if (child || logEnabled(logger, level)) real()[level](...args);
    }) as FastifyBaseLogger['info'];
  }
  return lazy;
}
