import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { hasScope } from '../auth/caller.ts';
import type { Config } from '../config/resolve-config.ts';
import type { DecisionService } from '../decisions/service.ts';
import { requestTrace } from '../observability/decisions.ts';
import type { Metrics } from '../observability/metrics.ts';
import { parseJsonBody } from './body.ts';
import { decisionV1 } from './decision-routes.ts';
import { envelopeOf, traceIdOf } from './envelope.ts';
import { toProblem } from './errors.ts';
import { lazyChildLogger } from './logging.ts';
import { reportCompleted, traceparentEcho } from './observability.ts';
import { REQUEST_ID_HEADER, requestIdOf } from './request-id.ts';

/** The one route this path serves, and the scope it needs (as its Fastify route declares). */
const PATH = '/v1/decisions';
const SCOPE = 'decisions:evaluate';
/** Content types the fast path takes; any other (a `+json` type, none) goes through Fastify. */
const JSON_TYPE = /^application\/json(?:\s*;|$)/i;
/** Headers of an answer made by Fastify (a replay) that are the connection's, not the answer's. */
const HOP_BY_HOP = new Set(['date', 'transfer-encoding', 'keep-alive']);

type Validate = (body: unknown) => unknown;
type Serialize = (payload: unknown) => string;

/** How many requests the fast path answered itself, and how many it read and handed to Fastify. */
export interface DecisionFastPath {
  served(): number;
  replayed(): number;
}

/** What the fast path needs from the app; `headers`: the security headers every answer carries. */
export interface DecisionFastPathDeps {
  decisions: DecisionService;
  config: Config;
  metrics: Metrics;
  headers: Readonly<Record<string, string>>;
  /** A rate limit is configured: every request then goes through Fastify (the limiter's hook). */
  rateLimited: boolean;
}

/**
 * POST /v1/decisions served off the raw HTTP server, without Fastify's per-request machinery
 * (routing, Request/Reply objects, the hook chain, the reply's send path) — issue 27: that machinery
 * was ~11 % of a tool call's main thread, and serving the route without it took the CPU per
 * decision to 0.81–0.83× with audit `off` (bench/README.md, ADR 0024). Only the plain case is taken:
 * a JSON body with a Content-Length within the limit, a bearer token verified recently (the auth
 * plugin's cache) with the route's scope, no `Origin` (CORS), no rate limit configured, no load
 * shedding in force, the app not closing. Everything else goes to Fastify untouched.
 *
 * The body is read with the same parser and checked by the route's own compiled schema validator;
 * any refusal before the decision — bad JSON, a schema or envelope error, an unknown entrypoint —
 * is handed to Fastify with the same bytes (`inject`), so a refused request gets exactly the answer,
 * metrics and log line it always got. A decision's answer is the route's own serializer's; an error
 * while deciding is mapped by toProblem like any route's. Metrics, the request log line, the trace
 * context, request id and security headers are the same as through the hooks.
 *
 * The route's validator and serializers are Fastify's, taken from the first request of the route
 * that went through Fastify (a token's first use always does: it is verified there): until then,
 * nothing is served here.
 *
 * NOTE: a hook or route option added to the app or to this route later does not run for what this
 * path serves: add it here too. test/http/decision-fast-path.test.ts holds the two paths' answers,
 * headers, metrics and log line to each other.
 */
export function installDecisionFastPath(app: FastifyInstance, deps: DecisionFastPathDeps): DecisionFastPath {
  const { decisions, config, metrics, headers } = deps;
  let validate: Validate | undefined;
  const serializers = new Map<string, Serialize>();
  let closing = false;
  let served = 0;
  let replayed = 0;

  // NOTE: must be registered before the route itself (onRoute sees routes registered after it).
  app.addHook('onRoute', (route) => {
    if (route.url !== PATH || route.method !== 'POST') return;
    const learn = (
      request: { getValidationFunction(part: 'body'): unknown },
      reply: { getSerializationFunction(status: string): unknown },
      done: () => void,
    ) => {
      if (validate === undefined) {
        for (const status of ['200', '4xx', '5xx']) {
          const serialize = reply.getSerializationFunction(status);
          if (typeof serialize === 'function') serializers.set(status, serialize as Serialize);
        }
        const body = request.getValidationFunction('body');
        if (typeof body === 'function' && serializers.has('200')) validate = body as Validate;
      }
      done();
    };
    route.preHandler = [...[route.preHandler ?? []].flat(), learn as never];
  });
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });

  const log = app.log;
  const underPressure = () =>
    (app as unknown as { isUnderPressure?: () => boolean }).isUnderPressure?.() === true;

  /** The caller when this request is the plain case, else undefined (Fastify serves it). */
  function taken(raw: IncomingMessage) {
    if (closing || validate === undefined || raw.method !== 'POST' || raw.url !== PATH) return undefined;
    const h = raw.headers;
    if (deps.rateLimited || h.origin !== undefined || h['transfer-encoding'] !== undefined) return undefined;
    const length = Number(h['content-length']);
    if (!(length > 0 && length <= config.bodyLimitBytes)) return undefined;
    const type = h['content-type'];
    if (type === undefined || !JSON_TYPE.test(type) || underPressure()) return undefined;
    const caller = app.knownCaller(h.authorization);
    return caller && hasScope(caller, SCOPE) ? caller : undefined;
  }

  /** Fastify answers the request, from the bytes read: a refusal is worded exactly as before. */
  function replay(raw: IncomingMessage, res: ServerResponse, body: Buffer): void {
    replayed++;
    app
      .inject({
        method: 'POST',
        url: PATH,
        headers: { ...raw.headers, [REQUEST_ID_HEADER]: requestIdOf(raw) },
        payload: body,
        remoteAddress: raw.socket.remoteAddress,
      })
      .then(
        (answer) => {
          for (const [name, value] of Object.entries(answer.headers)) {
            if (!HOP_BY_HOP.has(name) && value !== undefined) res.setHeader(name, value);
          }
          res.writeHead(answer.statusCode);
          res.end(answer.rawPayload);
        },
        () => res.destroy(),
      );
  }

  function serve(raw: IncomingMessage, res: ServerResponse, caller: NonNullable<ReturnType<typeof taken>>) {
    const started = performance.now();
    const chunks: Buffer[] = [];
    let size = 0;
    raw.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
    });
    raw.once('error', () => res.destroy());
    raw.once('end', () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      let query: Parameters<DecisionService['decide']>[0];
      try {
        const value = parseJsonBody(body, raw.headers['content-type'], config.json);
        if (validate!(value) !== true) return replay(raw, res, body);
        const entrypoint = typeof value.policy === 'string' ? value.policy : config.defaultEntrypoint;
        if (!decisions.hasEntrypoint(entrypoint)) return replay(raw, res, body);
        query = { surface: 'native', entrypoint, input: envelopeOf(value), caller, traceId: traceIdOf(raw) };
      } catch {
        return replay(raw, res, body);
      }
      served++;
      const { traceId } = query;
      // The request's logger, made only if something is logged (as Fastify's, src/http/logging.ts).
      const requestLog = lazyChildLogger(
        log,
        traceId ? { request_id: requestIdOf(raw), trace_id: traceId } : { request_id: requestIdOf(raw) },
        {},
      );
      const answer = (status: number, type: string, text: string, extra: Record<string, string>) => {
        const out: Record<string, string | number> = { ...headers, ...extra };
        if (traceId) out.traceparent = traceparentEcho(raw.headers.traceparent, traceId);
        out['content-type'] = type;
        out['content-length'] = Buffer.byteLength(text);
        res.writeHead(status, out);
        res.end(text);
        reportCompleted(metrics, requestLog, {
          route: PATH,
          method: 'POST',
          url: PATH,
          status,
          elapsedMs: performance.now() - started,
          caller,
        });
      };
      requestTrace.run({ decisionIds: [] }, () => {
        decisions
          .decide(query)
          .then((decision) => serializers.get('200')!(decisionV1(decision)))
          .then(
            (text) => answer(200, 'application/json; charset=utf-8', text, {}),
            (error: unknown) => {
              const { problem, headers: extra } = toProblem(error);
              if (problem.status >= 500) requestLog.error({ err: error }, 'request failed');
              else requestLog.info({ code: problem.code }, 'request refused');
              const serialize = serializers.get(`${String(problem.status)[0]}xx`) ?? JSON.stringify;
              answer(problem.status, 'application/problem+json; charset=utf-8', serialize(problem), extra);
            },
          )
          // NOTE: never an unhandled rejection (it would end the process): the answer could not be
          // written, so the connection goes.
          .catch((error: unknown) => {
            requestLog.error({ err: error }, 'request failed');
            res.destroy();
          });
      });
    });
  }

  // Fastify's own listener answers everything the fast path does not take. The X-Request-ID
  // listener (request-id.ts, prepended) stays first.
  const server = app.server;
  const listeners = server.listeners('request') as ((raw: IncomingMessage, res: ServerResponse) => void)[];
  // NOTE: Fastify's handler is the server's own listener, after the X-Request-ID one; anything else
  // there means this would take requests from under a listener it does not know.
  if (listeners.length !== 2)
    throw new Error(`decision fast path: ${listeners.length} request listeners, not 2`);
  const fastify = listeners.at(-1)!;
  server.removeListener('request', fastify);
  server.on('request', (raw: IncomingMessage, res: ServerResponse) => {
    const caller = taken(raw);
    if (caller === undefined) fastify.call(server, raw, res);
    else serve(raw, res, caller);
  });
  return { served: () => served, replayed: () => replayed };
}
