import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../config/resolve-config.ts';
import type { Decision, DecisionService } from '../decisions/service.ts';
import { envelopeOf, traceIdOf, withDefaults } from './envelope.ts';
import { ProblemError } from './problem.ts';
import {
  BatchRequestV1,
  BatchResponseV1,
  DecisionRequestV1,
  DecisionResponseV1,
  ProblemResponses,
} from './wire/index.ts';

/** The wire shape of one decision (v1). */
export function decisionV1(decision: Decision): DecisionResponseV1 {
  return {
    decision_id: decision.id,
    allow: decision.allow,
    violations: decision.result.violations,
    obligations: decision.result.obligations,
    exceptions: decision.result.exceptions,
    ...(decision.result.approvals ? { approvals: decision.result.approvals } : {}),
    ...(decision.result.approval_request ? { approval_request: decision.result.approval_request } : {}),
    policy: decision.revision,
    evaluated_at: decision.decidedAt,
  };
}

/** What the routes that make decisions need: the decision service and the configuration. */
export interface DecisionRouteDeps {
  decisions: DecisionService;
  config: Config;
}

/** The native decision API: POST /v1/decisions and POST /v1/decisions/batch. */
export const decisionRoutes: FastifyPluginAsyncTypebox<DecisionRouteDeps> = async (app, opts) => {
  const { decisions, config } = opts;

  app.post(
    '/v1/decisions',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: 'Make one decision',
        tags: ['decisions'],
        body: DecisionRequestV1,
        response: { 200: DecisionResponseV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const body = request.body;
      const decision = await decisions.decide({
        surface: 'native',
        entrypoint: body.policy ?? config.defaultEntrypoint,
        input: envelopeOf(body),
        caller: request.caller,
        traceId: traceIdOf(request),
      });
      return decisionV1(decision);
    },
  );

  app.post(
    '/v1/decisions/batch',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: 'Make many decisions; each is recorded on its own',
        tags: ['decisions'],
        body: BatchRequestV1,
        response: { 200: BatchResponseV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const { items, defaults } = request.body;
      if (items.length > config.batchLimit) {
        throw new ProblemError(400, 'batch_too_large', `a batch holds at most ${config.batchLimit} items`);
      }
      const traceId = traceIdOf(request);
      const queries = items.map((item, index) => {
        const merged = withDefaults(item, defaults);
        return {
          surface: 'native' as const,
          entrypoint: merged.policy ?? config.defaultEntrypoint,
          input: envelopeOf(merged, `/items/${index}/`),
          caller: request.caller,
          traceId,
        };
      });
      const results = await decisions.decideMany(queries);
      return { results: results.map(decisionV1) };
    },
  );
};
