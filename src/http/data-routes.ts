import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Decision, DecisionService } from '../decisions/service.ts';
import { type JsonLimits, parseJsonText } from './body.ts';
import { traceIdOf } from './envelope.ts';
import { evaluationFailed, useErrorDialect } from './errors.ts';
import { ProblemError } from './problem.ts';
import {
  DataPathParamsV1,
  DataQueryV1,
  DataRequestV1,
  DataResponseV1,
  OpaErrorResponses,
  type OpaMessageV1,
} from './wire/index.ts';

const API_USAGE_WARNING: OpaMessageV1 = {
  code: 'api_usage_warning',
  message: "'input' key missing from the request",
};

/** True when the decision is a failed evaluation rather than a value or an undefined document. */
export function isEvaluationFailure(decision: Decision): boolean {
  return decision.error?.code === 'evaluation_error';
}

/** The `{path}` of an OPA route: segments of letters, digits and `_` (400 `invalid_path` otherwise). */
export function dataPathOf(wildcard: string): string {
  const path = wildcard.replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/.test(path)) {
    throw new ProblemError(400, 'invalid_path', 'the data path must be segments of letters, digits and _');
  }
  return path;
}

/**
 * The OPA REST API's data surface: POST /v1/data/{path} with {"input": …} and
 * GET /v1/data/{path}?input=<json>. Answers {"result": …, "decision_id": …}, or only
 * {"decision_id": …} when the policy is undefined for that input, as OPA does; a policy that fails
 * while evaluating is a 500 `internal_error` naming the (recorded, denied) decision.
 */
export const dataRoutes: FastifyPluginAsyncTypebox<{
  decisions: DecisionService;
  jsonLimits: JsonLimits;
}> = async (app, opts) => {
  const { decisions, jsonLimits } = opts;
  useErrorDialect(app, 'opa');

  const answer = async (
    request: FastifyRequest,
    path: string,
    input: unknown,
    warn: boolean,
  ): Promise<DataResponseV1> => {
    const decision = await decisions.decide({
      surface: 'data',
      entrypoint: path,
      input,
      caller: request.caller,
      traceId: traceIdOf(request),
    });
    if (isEvaluationFailure(decision)) throw evaluationFailed(decision.id);
    return {
      decision_id: decision.id,
      ...(decision.defined ? { result: decision.value } : {}),
      ...(warn ? { warning: API_USAGE_WARNING } : {}),
    };
  };

  app.post(
    '/v1/data/*',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: 'OPA-compatible policy query',
        tags: ['opa'],
        params: DataPathParamsV1,
        body: DataRequestV1,
        response: { 200: DataResponseV1, ...OpaErrorResponses },
      },
    },
    async (request) => {
      const body = request.body;
      const hasInput = Object.hasOwn(body, 'input');
      return answer(request, dataPathOf(request.params['*']), hasInput ? body.input : undefined, !hasInput);
    },
  );

  app.get(
    '/v1/data/*',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: 'OPA-compatible policy query (input in the query string)',
        tags: ['opa'],
        params: DataPathParamsV1,
        querystring: DataQueryV1,
        response: { 200: DataResponseV1, ...OpaErrorResponses },
      },
    },
    async (request) => {
      const raw = request.query.input;
      let input: unknown;
      if (typeof raw === 'string') {
        // The same limits as a body: this JSON reaches the policy and the audit record just the same.
        input = parseJsonText(raw, jsonLimits, 'the input query parameter');
      } else if (raw !== undefined) {
        throw new ProblemError(400, 'invalid_request', 'give the input query parameter once');
      }
      return answer(request, dataPathOf(request.params['*']), input, raw === undefined);
    },
  );
};
