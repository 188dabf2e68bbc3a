/**
 * Fastify's request loggers: the lazily made per-request child and the level check the request log
 * lines use. They type against Fastify's logger, so they live in the HTTP layer; the service's pino
 * options are src/observability/logging.ts's.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'pino';

type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

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
  return new LazyChild(logger, bindings, options) as unknown as FastifyBaseLogger;
}

type LogArgs = Parameters<FastifyBaseLogger['info']>;

/** One object per request; the methods live on the prototype, so nothing else is allocated. */
class LazyChild {
  private readonly parent: FastifyBaseLogger;
  private readonly bindings: Bindings;
  private readonly options: ChildLoggerOptions;
  private made: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.parent = parent;
    this.bindings = bindings;
    this.options = options;
  }

  private real(): FastifyBaseLogger {
    if (!this.made) {
      // A lazy parent makes its own child first, so the bindings nest as pino's would.
      const parent = this.parent instanceof LazyChild ? this.parent.real() : this.parent;
      this.made = parent.child(this.bindings, this.options);
    }
    return this.made;
  }

  private write(level: LogLevel, args: LogArgs): void {
    if (this.made || logEnabled(this.parent, level)) this.real()[level](...args);
  }

  get level(): string {
    return (this.made ?? this.parent).level;
  }
  set level(level: string) {
    this.real().level = level;
  }
  /**
   * Lazy too: every request with a traceparent gets a trace_id child (src/http/observability.ts),
   * which would otherwise make both loggers for a request that never logs.
   */
  child(bindings: Bindings, options: ChildLoggerOptions = {}): FastifyBaseLogger {
    return lazyChildLogger.call(null, this as unknown as FastifyBaseLogger, bindings, options);
  }
  isLevelEnabled(level: string): boolean {
    return logEnabled(this.made ?? this.parent, level);
  }
  silent(): void {}
  fatal(...args: LogArgs): void {
    this.write('fatal', args);
  }
  error(...args: LogArgs): void {
    this.write('error', args);
  }
  warn(...args: LogArgs): void {
    this.write('warn', args);
  }
  info(...args: LogArgs): void {
    this.write('info', args);
  }
  debug(...args: LogArgs): void {
    this.write('debug', args);
  }
  trace(...args: LogArgs): void {
    this.write('trace', args);
  }
}
