import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { requestTrace } from '../observability/decisions.ts';
import { METRICS_CONTENT_TYPE, type Metrics } from '../observability/metrics.ts';
import { traceIdOf } from './envelope.ts';
import { logEnabled } from './logging.ts';
import { REQUEST_ID_HEADER } from './request-id.ts';
import { MetricsResponseV1, ProblemResponses } from './wire/index.ts';

/** Options of the HTTP observability plugin. */
export interface HttpObservabilityOptions {
  metrics: Metrics;
  /**
   * What GET /metrics serves. Default: this app's registry. In a cluster worker: the whole process
   * group, aggregated by the primary (see src/cluster.ts).
   */
  scrape?: () => Promise<string>;
}

/** Route label for requests that matched no route: a raw URL must never become a label value. */
const UNMATCHED = 'unmatched';

const TRACEPARENT = /^([\da-f]{2})-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})$/;

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's metrics: plugins (auth, rate limit, audit) count into them by name. */
    metrics: Metrics;
  }
  interface FastifyRequest {
    /** W3C trace id of the request, when it carried a valid `traceparent`. */
    traceId: string | null;
  }
}

/** The `traceparent` a response echoes: the client's trace id and flags, a new span id. */
export function traceparentEcho(header: unknown, traceId: string): string {
  const flags = TRACEPARENT.exec(String(header).trim())?.[4] ?? '01';
  return `00-${traceId}-${randomBytes(8).toString('hex')}-${flags}`;
}

/** A finished request, as its HTTP metrics and its log line see it. */
export interface CompletedRequest {
  route: string;
  method: string;
  url: string;
  status: number;
  elapsedMs: number;
  caller: { sub?: string } | null | undefined;
}

/**
 * HTTP metrics and the one log line of a finished request (inside the request's `requestTrace`,
 * whose decision ids the line names). The hook below and the decision fast path both report here.
 */
export function reportCompleted(metrics: Metrics, log: FastifyBaseLogger, done: CompletedRequest): void {
  const { route, status } = done;
  const labels = { route, method: done.method, status: String(status) };
  metrics.httpRequests.inc(labels);
  metrics.httpDuration.observe(labels, done.elapsedMs / 1000);
  const level = status >= 500 ? 'error' : 'info';
  // The line is built only when it will be written (production runs at warn).
  if (!logEnabled(log, level)) return;
  const ids = requestTrace.getStore()?.decisionIds ?? [];
  const line: Record<string, unknown> = {
    method: done.method,
    route,
    path: done.url.split('?', 1)[0],
    status,
    duration_ms: Math.round(done.elapsedMs * 1000) / 1000,
  };
  if (done.caller?.sub) line.caller = done.caller.sub;
  if (ids.length === 1) line.decision_id = ids[0];
  else if (ids.length > 1) {
    line.decision_ids = ids.slice(0, 20);
    line.decision_count = ids.length;
  }
  log[level](line, 'request completed');
}

function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? UNMATCHED;
}

/**
 * Per-request observability in one place: the request id (see src/http/request-id.ts, echoed in
 * `X-Request-ID` on every response, errors included), the W3C trace context (accepted, logged as
 * trace_id, echoed with a new span id), HTTP metrics by route template, one log line per completed request,
 * and the public GET /metrics route.
 */
export const httpObservability = fp(
  async (app: FastifyInstance, opts: HttpObservabilityOptions) => {
    const { metrics } = opts;
    const scrape = opts.scrape ?? (() => metrics.registry.metrics());
    if (!app.hasDecorator('metrics')) app.decorate('metrics', metrics);
    app.decorateRequest('traceId', null);

    // NOTE: callback style so that the rest of the request (hooks, handler, decision observer) runs
    // inside `requestTrace.run`; an async hook would leave the store behind when it resolves.
    app.addHook('onRequest', (request, reply, done) => {
      // NOTE: the first hook, so every answer decided later (401, 429, 503, 404, errors) carries it.
      reply.header(REQUEST_ID_HEADER, request.id);
      const traceId = traceIdOf(request);
      request.traceId = traceId;
      if (traceId) {
        reply.header('traceparent', traceparentEcho(request.headers.traceparent, traceId));
        request.log = request.log.child({ trace_id: traceId });
      }
      requestTrace.run({ decisionIds: [] }, done);
    });

    app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      completed(request, reply);
      done();
    });

    /** HTTP metrics and the one log line of a finished request. */
    function completed(request: FastifyRequest, reply: FastifyReply): void {
      reportCompleted(metrics, request.log, {
        route: routeOf(request),
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        elapsedMs: reply.elapsedTime,
        caller: (request as { caller?: { sub?: string } | null }).caller,
      });
    }

    app.get(
      '/metrics',
      {
        schema: {
          summary: 'Prometheus metrics',
          tags: ['service'],
          security: [],
          response: { 200: MetricsResponseV1, ...ProblemResponses },
        },
      },
      async (_request, reply) => {
        const text = await scrape();
        return reply.type(METRICS_CONTENT_TYPE).send(text);
      },
    );
  },
  { name: 'verdict-observability' },
);
