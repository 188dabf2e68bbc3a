import { Writable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { lazyChildLogger, logEnabled } from '../../src/http/logging.ts';

function capture(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const logger = pino({ level }, sink);
  let children = 0;
  const child = logger.child;
  logger.child = function (this: typeof logger, ...args: Parameters<typeof child>) {
    children += 1;
    return child.apply(this, args);
  } as typeof logger.child;
  return { logger: logger as unknown as FastifyBaseLogger, lines, children: () => children };
}

describe('per-request logger', () => {
  it('makes no child for a request that logs nothing at the enabled level', () => {
    const { logger, lines, children } = capture('warn');
    const log = lazyChildLogger.call(null, logger, { request_id: 'r1' }, {});
    log.info({ a: 1 }, 'dropped');
    log.debug('dropped');
    expect(logEnabled(log, 'info')).toBe(false);
    expect(logEnabled(log, 'warn')).toBe(true);
    expect(children()).toBe(0);
    expect(lines).toEqual([]);
  });

  it('writes with the request bindings once a level is enabled, creating the child once', () => {
    const { logger, lines, children } = capture('info');
    const log = lazyChildLogger.call(null, logger, { request_id: 'r2' }, {});
    log.info({ a: 1 }, 'first');
    log.error('second');
    expect(children()).toBe(1);
    const nested = log.child({ trace_id: 't' });
    nested.warn('third');
    expect(lines.map((l) => [l.msg, l.request_id])).toEqual([
      ['first', 'r2'],
      ['second', 'r2'],
      ['third', 'r2'],
    ]);
    expect(lines[2]!.trace_id).toBe('t');
  });

  it('keeps a child of the request logger (the trace_id child) lazy as well', () => {
    const quiet = capture('warn');
    const nested = lazyChildLogger
      .call(null, quiet.logger, { request_id: 'r4' }, {})
      .child({ trace_id: 't4' });
    nested.info('dropped');
    expect(logEnabled(nested, 'info')).toBe(false);
    expect(quiet.children()).toBe(0);
    nested.error('kept');
    expect(quiet.lines.map((l) => [l.msg, l.request_id, l.trace_id])).toEqual([['kept', 'r4', 't4']]);
  });

  it('gives a route with its own log level the real child at once', () => {
    const { logger, lines } = capture('warn');
    const log = lazyChildLogger.call(null, logger, { request_id: 'r3' }, { level: 'debug' });
    log.debug('route-level debug');
    expect(lines.map((l) => l.msg)).toEqual(['route-level debug']);
  });
});
