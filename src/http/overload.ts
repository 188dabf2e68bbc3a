import { performance } from 'node:perf_hooks';
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config/resolve-config.ts';
import type { LoadShedReason, Metrics } from '../observability/metrics.ts';
import { problem } from './problem.ts';

/** How often under-pressure samples the event loop and the heap. */
const SAMPLE_INTERVAL_MS = 500;

/** Routes that must answer even under overload: probes and the scrape that shows the overload. */
const NEVER_SHED = new Set(['/health/live', '/health/ready', '/metrics']);

/**
 * Load shedding: when the event loop lags or the heap grows past the configured limits, refuse new
 * work with 503 + Retry-After (problem+json `overloaded`) instead of queueing it until every request
 * times out. The defaults (1 s mean event-loop delay, no heap limit) never trigger under a normal
 * benchmark; they catch a process that has stopped keeping up.
 */
export const loadShedding = fp(
  async (app: FastifyInstance, opts: { shed: Config['shed']; metrics: Metrics }) => {
    const { shed, metrics } = opts;
    if (shed.maxEventLoopDelayMs === 0 && shed.maxHeapUsedBytes === 0) return;
    // NOTE: startup (bundle compile, plugin loading) blocks the loop for seconds, and the first
    // samples after it average that block in. Pressure counts only from two full sample windows
    // after the app is ready, or a fresh replica would refuse its first second of traffic.
    let armedAt = Number.POSITIVE_INFINITY;
    app.addHook('onReady', async () => {
      armedAt = performance.now() + 2 * SAMPLE_INTERVAL_MS;
    });
    await app.register(underPressure, {
      sampleInterval: SAMPLE_INTERVAL_MS,
      maxEventLoopDelay: shed.maxEventLoopDelayMs,
      maxHeapUsedBytes: shed.maxHeapUsedBytes,
      retryAfter: shed.retryAfterSeconds,
      // NOTE: under-pressure sends a non-null return value (its typings say void); returning nothing
      // lets the request through.
      pressureHandler: ((request: FastifyRequest, reply: FastifyReply, type: LoadShedReason) => {
        if (performance.now() < armedAt || NEVER_SHED.has(request.routeOptions.url ?? '')) return undefined;
        metrics.loadShed.inc({ reason: type });
        // Sending here as well would send twice.
        reply
          .code(503)
          .header('retry-after', String(shed.retryAfterSeconds))
          .type('application/problem+json; charset=utf-8');
        return problem(503, 'overloaded', 'the service is overloaded; retry later');
      }) as never,
    });
  },
  { name: 'verdict-load-shedding' },
);
