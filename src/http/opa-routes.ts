import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Decision, DecisionQuery } from '../decisions/service.ts';
import { isObject } from '../json/values.ts';
import { dataPathOf, isEvaluationFailure } from './data-routes.ts';
import type { DecisionRouteDeps } from './decision-routes.ts';
import { traceIdOf } from './envelope.ts';
import {
  EVALUATION_ERROR_DETAIL,
  EVALUATION_ERROR_MESSAGE,
  evaluationFailed,
  useErrorDialect,
} from './errors.ts';
import type { Readiness } from './health-routes.ts';
import { ProblemError } from './problem.ts';
import {
  type BatchDataItemV1,
  BatchDataRequestV1,
  BatchDataResponses,
  DataPathParamsV1,
  DefaultDecisionRequestV1,
  DefaultDecisionResponses,
  OpaErrorResponses,
  OpaHealthQueryV1,
  OpaHealthResponses,
  type OpaMessageV1,
} from './wire/index.ts';

/** What OPA answers when the default decision is undefined (`POST /`). */
function undefinedDocument(path: string): OpaMessageV1 {
  return { code: 'undefined_document', message: `document undefined: data.${path.replaceAll('/', '.')}` };
}

/** One item of a batch answer; `http_status_code` only when the batch is mixed (207). */
function batchItemV1(decision: Decision, mixed: boolean): BatchDataItemV1 {
  if (isEvaluationFailure(decision)) {
    return {
      ...(mixed ? { http_status_code: '500' } : {}),
      code: 'internal_error',
      message: EVALUATION_ERROR_MESSAGE,
      decision_id: decision.id,
      errors: [EVALUATION_ERROR_DETAIL],
    };
  }
  return {
    ...(mixed ? { http_status_code: '200' } : {}),
    ...(decision.defined ? { result: decision.value } : {}),
    decision_id: decision.id,
  };
}

/**
 * The rest of OPA's REST API that clients and probes use, beside /v1/data (src/http/data-routes.ts):
 * `POST /` (the default decision), `POST /v1/batch/data/{path}` (the batch API of the
 * `@open-policy-agent/opa` SDK's `evaluateBatch`) and `GET /health`. Every evaluation is a recorded
 * decision on the data surface, exactly like /v1/data.
 */
export const opaRoutes: FastifyPluginAsyncTypebox<DecisionRouteDeps & { readiness: Readiness }> = async (
  app,
  opts,
) => {
  const { decisions, config, readiness } = opts;
  useErrorDialect(app, 'opa');

  const queryOf = (request: FastifyRequest, path: string, input: unknown): DecisionQuery => ({
    surface: 'data',
    entrypoint: path,
    input,
    caller: request.caller,
    traceId: traceIdOf(request),
  });

  // OPA's default decision: the body is the input, the answer is the bare value (no `result` wrapper,
  // no decision id); undefined is 404 `undefined_document`.
  app.post(
    '/',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: "OPA's default decision (VERDICT_DEFAULT_DECISION, default system/main)",
        tags: ['opa'],
        body: DefaultDecisionRequestV1,
        response: { ...OpaErrorResponses, ...DefaultDecisionResponses },
      },
    },
    async (request, reply) => {
      const path = config.defaultDecision;
      const decision = await decisions.decide(queryOf(request, path, request.body));
      if (isEvaluationFailure(decision)) throw evaluationFailed(decision.id);
      reply.header('x-verdict-decision-id', decision.id);
      if (!decision.defined) return reply.code(404).send(undefinedDocument(path));
      return reply.send(decision.value);
    },
  );

  // The batch API (Enterprise OPA's, which the SDK's evaluateBatch calls): inputs keyed by id in,
  // responses keyed by id out, each its own recorded decision; 200 when every item succeeded, 207
  // with `http_status_code` per item when some failed, 500 when all did.
  app.post(
    '/v1/batch/data/*',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: 'OPA batch policy query (inputs keyed by id)',
        tags: ['opa'],
        params: DataPathParamsV1,
        body: BatchDataRequestV1,
        response: { ...OpaErrorResponses, ...BatchDataResponses },
      },
    },
    async (request, reply) => {
      const path = dataPathOf(request.params['*']);
      const { inputs } = request.body;
      if (!isObject(inputs))
        throw new ProblemError(400, 'invalid_request', 'inputs must be an object of inputs by id');
      const ids = Object.keys(inputs);
      if (ids.length > config.batchLimit) {
        throw new ProblemError(400, 'batch_too_large', `a batch holds at most ${config.batchLimit} items`);
      }
      const decided = await decisions.decideMany(ids.map((id) => queryOf(request, path, inputs[id])));
      const failed = decided.filter(isEvaluationFailure).length;
      const mixed = failed > 0 && failed < decided.length;
      const responses = Object.fromEntries(ids.map((id, i) => [id, batchItemV1(decided[i]!, mixed)]));
      const status = failed === 0 ? 200 : mixed ? 207 : 500;
      return reply.code(status).send({ responses });
    },
  );

  // OPA's health API, so probes written for OPA work unchanged: 200 {} when this replica can answer
  // (its bundle is loaded and its stores answer); 500 {error} otherwise. `?bundles` and `?plugins`
  // ask the same here: Verdict never serves without an activated bundle.
  app.get(
    '/health',
    {
      schema: {
        summary: "OPA's health API (200 {} when ready; ?bundles, ?plugins accepted)",
        tags: ['opa'],
        querystring: OpaHealthQueryV1,
        response: { ...OpaErrorResponses, ...OpaHealthResponses },
      },
    },
    async (_request, reply) => {
      const { ready } = await readiness();
      if (ready) return reply.code(200).send({});
      return reply.code(500).send({ error: 'not ready: the policy bundle or a store is not available' });
    },
  );
};
