import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Decision, DecisionQuery, DecisionService } from '../decisions/service.ts';
import { isObject } from '../json/values.ts';
import { authzenSearchRoutes } from './authzen-search.ts';
import type { DecisionRouteDeps } from './decision-routes.ts';
import { envelopeOf, type Item, traceIdOf } from './envelope.ts';
import { itemError, useErrorDialect } from './errors.ts';
import { ProblemError } from './problem.ts';
import {
  AuthzenConfigurationV1,
  EvaluationRequestV1,
  EvaluationResponseV1,
  EvaluationsRequestV1,
  EvaluationsResponseV1,
  type EvaluationsSemantic,
  ProblemResponses,
} from './wire/index.ts';

/** The AuthZEN wire shape of one decision: the boolean, plus our id and reasons in `context`. */
function evaluationV1(decision: Decision): EvaluationResponseV1 {
  return {
    decision: decision.allow,
    context: {
      decision_id: decision.id,
      reason_admin: { violations: decision.result.violations },
      obligations: decision.result.obligations,
      // Issue 13: the waivers applied, the approvals used, and a requestable denial's request.
      ...(decision.result.exceptions.length > 0 ? { exceptions: decision.result.exceptions } : {}),
      ...(decision.result.approvals ? { approvals: decision.result.approvals } : {}),
      ...(decision.result.approval_request ? { approval_request: decision.result.approval_request } : {}),
    },
  };
}

/** An item that could not be evaluated: a deny carrying the error, never a failed batch. */
function invalidItemV1(error: ProblemError): EvaluationResponseV1 {
  return { decision: false, context: { error: itemError(error) } };
}

/** The parts of an entity that fall back to the default's when an item's entity lacks them. */
const REQUIRED_KEYS = { subject: ['type', 'id'], resource: ['type', 'id'], action: ['name'] } as const;

/**
 * Merges the batch defaults into one item at the entity level (the certification scenario's rule,
 * "Batch with default value merging"): an item's subject, action or resource replaces the default
 * whole — its `properties` are not merged — except that a required key it lacks (`type`/`id`, or an
 * action's `name`) comes from the default. An item's `context` replaces the default context.
 */
export function mergeDefaults(item: Item, defaults: Item): Item {
  const merged: Item = { ...item };
  for (const part of ['subject', 'action', 'resource'] as const) {
    const own = item[part];
    const fallback = defaults[part];
    if (own === undefined) {
      if (fallback !== undefined) merged[part] = fallback;
    } else if (isObject(own) && isObject(fallback)) {
      const filled: Item = { ...own };
      for (const key of REQUIRED_KEYS[part]) {
        if (filled[key] === undefined && fallback[key] !== undefined) filled[key] = fallback[key];
      }
      merged[part] = filled;
    }
  }
  if (item.context === undefined && defaults.context !== undefined) merged.context = defaults.context;
  return merged;
}

/**
 * OpenID AuthZEN Authorization API 1.0: evaluation, evaluations (batch), search and discovery.
 * Scoped so that its error mapping (400 for any unreadable body) applies to these routes only; the
 * X-Request-ID the scenario wants echoed is echoed on every response (src/http/observability.ts).
 */
export const authzenRoutes: FastifyPluginAsyncTypebox<DecisionRouteDeps> = async (app, opts) => {
  const { decisions, config } = opts;

  // AuthZEN answers 400 to any body it cannot read: a non-JSON content type or charset (415
  // elsewhere in Verdict), malformed JSON, an empty body.
  useErrorDialect(app, 'authzen');

  const queryOf = (request: FastifyRequest, item: Item, where = ''): DecisionQuery => ({
    surface: 'authzen',
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
        body: EvaluationRequestV1,
        response: { 200: EvaluationResponseV1, ...ProblemResponses },
      },
    },
    async (request) => evaluationV1(await decisions.decide(queryOf(request, request.body))),
  );

  app.post(
    '/access/v1/evaluations',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: 'AuthZEN access evaluations (batch)',
        tags: ['authzen'],
        body: EvaluationsRequestV1,
        response: { 200: EvaluationsResponseV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const { evaluations, options, ...defaults } = request.body;
      // Without an evaluations array, or with an empty one, the request is one evaluation and the
      // answer is a single evaluation's (AuthZEN 1.0, Access Evaluations API; scenario, Batch).
      if (!evaluations || evaluations.length === 0) {
        return evaluationV1(await decisions.decide(queryOf(request, defaults)));
      }
      if (evaluations.length > config.batchLimit) {
        throw new ProblemError(400, 'batch_too_large', `a batch holds at most ${config.batchLimit} items`);
      }
      // Each item is checked on its own: an invalid one becomes a `decision: false` item.
      const items = evaluations.map((raw, i): DecisionQuery | ProblemError => {
        const where = `/evaluations/${i}/`;
        if (!isObject(raw)) {
          return new ProblemError(400, 'invalid_request', `${where} must be an object`, {
            errors: [{ path: `/evaluations/${i}`, message: 'must be an object' }],
          });
        }
        try {
          return queryOf(request, mergeDefaults(raw, defaults), where);
        } catch (err) {
          if (err instanceof ProblemError) return err;
          throw err;
        }
      });
      return { evaluations: await decideItems(decisions, items, options?.evaluations_semantic) };
    },
  );

  await app.register(authzenSearchRoutes, { decisions, config });

  app.get(
    '/.well-known/authzen-configuration',
    {
      schema: {
        summary: 'AuthZEN discovery: this PDP and its endpoints',
        tags: ['authzen'],
        security: [],
        response: { 200: AuthzenConfigurationV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const base = (config.publicUrl ?? `${request.protocol}://${request.host}`).replace(/\/+$/, '');
      return {
        policy_decision_point: base,
        access_evaluation_endpoint: `${base}/access/v1/evaluation`,
        access_evaluations_endpoint: `${base}/access/v1/evaluations`,
        search_subject_endpoint: `${base}/access/v1/search/subject`,
        search_resource_endpoint: `${base}/access/v1/search/resource`,
        search_action_endpoint: `${base}/access/v1/search/action`,
        capabilities: AUTHZEN_CAPABILITIES,
      };
    },
  );
};

/**
 * What Verdict supports beyond the required minimum. The IANA "AuthZEN Policy Decision Point
 * Capabilities" registry has no entries yet, so these URNs are Verdict's own (docs/api.md).
 */
export const AUTHZEN_CAPABILITIES = [
  'urn:verdict:authzen:capability:evaluations-semantic',
  'urn:verdict:authzen:capability:search-pagination',
  'urn:verdict:authzen:capability:entity-catalog',
];

/**
 * Decides a batch's valid items under the evaluations semantic, keeping the request order. Invalid
 * items are denies (not decisions: not recorded). With `deny_on_first_deny` an invalid item is
 * decisive (the spec counts an error as a denial); with `permit_on_first_permit` it is not.
 * Short-circuiting ends the answer at the decisive item: later items are neither evaluated nor
 * recorded, and are absent from the answer (docs/api.md says why).
 */
async function decideItems(
  decisions: DecisionService,
  items: (DecisionQuery | ProblemError)[],
  semantic: EvaluationsSemantic = 'execute_all',
): Promise<EvaluationResponseV1[]> {
  let considered = items;
  if (semantic === 'deny_on_first_deny') {
    const firstInvalid = items.findIndex((item) => item instanceof ProblemError);
    if (firstInvalid >= 0) considered = items.slice(0, firstInvalid + 1);
  }
  const queries = considered.filter((item): item is DecisionQuery => !(item instanceof ProblemError));
  const stopAfter =
    semantic === 'deny_on_first_deny'
      ? (d: Decision) => !d.allow
      : semantic === 'permit_on_first_permit'
        ? (d: Decision) => d.allow
        : undefined;
  const decided = await decisions.decideMany(queries, { stopAfter });
  const answer: EvaluationResponseV1[] = [];
  let next = 0;
  for (const item of considered) {
    if (item instanceof ProblemError) {
      answer.push(invalidItemV1(item));
      continue;
    }
    const decision = decided[next++];
    if (!decision) break; // short-circuited before this item
    answer.push(evaluationV1(decision));
    if (stopAfter?.(decision)) break;
  }
  return answer;
}
