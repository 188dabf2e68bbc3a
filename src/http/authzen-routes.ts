import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Config } from '../config/index.ts';
import type { Decision, DecisionService } from '../decisions/service.ts';
import { envelopeOf, traceIdOf, withDefaults } from './envelope.ts';
import { ProblemError } from './problem.ts';
import { ProblemV1 } from './schemas.ts';

const Loose = Type.Object({}, { additionalProperties: true });
const EvaluationRequest = Type.Object(
  { subject: Loose, action: Loose, resource: Loose, context: Type.Optional(Loose) },
  { additionalProperties: true },
);
const Semantic = Type.Union([
  Type.Literal('execute_all'),
  Type.Literal('deny_on_first_deny'),
  Type.Literal('permit_on_first_permit'),
]);
const EvaluationsRequest = Type.Object(
  {
    subject: Type.Optional(Loose),
    action: Type.Optional(Loose),
    resource: Type.Optional(Loose),
    context: Type.Optional(Loose),
    evaluations: Type.Optional(Type.Array(Loose)),
    options: Type.Optional(
      Type.Object({ evaluations_semantic: Type.Optional(Semantic) }, { additionalProperties: true }),
    ),
  },
  { additionalProperties: true },
);

/** The AuthZEN wire shape of one decision: the boolean, plus our id and reasons in `context`. */
function evaluationV1(decision: Decision) {
  return {
    decision: decision.allow,
    context: {
      decision_id: decision.id,
      reason_admin: { violations: decision.result.violations },
      obligations: decision.result.obligations,
    },
  };
}

/** OpenID AuthZEN Authorization API 1.0: evaluation, evaluations (batch) and discovery. */
export async function authzenRoutes(
  app: FastifyInstance,
  opts: { decisions: DecisionService; config: Config },
): Promise<void> {
  const { decisions, config } = opts;
  const query = (request: FastifyRequest, item: Record<string, unknown>, where = '') => ({
    surface: 'authzen' as const,
    entrypoint: config.defaultEntrypoint,
    input: envelopeOf(item, where),
    caller: request.caller,
    traceId: traceIdOf(request),
  });

  app.post(
    '/access/v1/evaluation',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: 'AuthZEN access evaluation',
        tags: ['authzen'],
        body: EvaluationRequest,
        response: { '4xx': ProblemV1 },
      },
    },
    async (request) =>
      evaluationV1(await decisions.decide(query(request, request.body as Record<string, unknown>))),
  );

  app.post(
    '/access/v1/evaluations',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: 'AuthZEN access evaluations (batch)',
        tags: ['authzen'],
        body: EvaluationsRequest,
        response: { '4xx': ProblemV1 },
      },
    },
    async (request) => {
      const body = request.body as Record<string, unknown> & {
        evaluations?: Record<string, unknown>[];
        options?: { evaluations_semantic?: string };
      };
      const { evaluations, options, ...defaults } = body;
      // Without an evaluations array the request is a single evaluation (AuthZEN 1.0, section 7.1).
      const items = evaluations && evaluations.length > 0 ? evaluations : [{}];
      if (items.length > config.batchLimit) {
        throw new ProblemError(400, 'batch_too_large', `a batch holds at most ${config.batchLimit} items`);
      }
      const queries = items.map((item, i) =>
        query(request, withDefaults(item, defaults), `/evaluations/${i}/`),
      );
      const semantic = options?.evaluations_semantic ?? 'execute_all';
      if (semantic === 'execute_all') {
        return { evaluations: (await decisions.decideMany(queries)).map(evaluationV1) };
      }
      // Short-circuit semantics: decide in order and stop at the first deny (or permit).
      const results = [];
      for (const q of queries) {
        const decision = await decisions.decide(q);
        results.push(evaluationV1(decision));
        if (semantic === 'deny_on_first_deny' && !decision.allow) break;
        if (semantic === 'permit_on_first_permit' && decision.allow) break;
      }
      return { evaluations: results };
    },
  );

  app.get('/.well-known/authzen-configuration', { schema: { hide: true } }, async (request) => {
    const base = `${request.protocol}://${request.host}`;
    return {
      policy_decision_point: base,
      access_evaluation_endpoint: `${base}/access/v1/evaluation`,
      access_evaluations_endpoint: `${base}/access/v1/evaluations`,
    };
  });
}
