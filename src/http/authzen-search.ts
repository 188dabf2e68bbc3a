import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  MAX_PAGE_LIMIT,
  type SearchEntity,
  type SearchKind,
  type SearchRequest,
  searchPage,
} from '../decisions/search.ts';
import { isObject } from '../json/values.ts';
import type { DecisionRouteDeps } from './decision-routes.ts';
import { type Item, nonEmptyString, traceIdOf } from './envelope.ts';
import { ProblemError } from './problem.ts';
import { ProblemResponses, SEARCH_KINDS, SearchRequestV1, SearchResponseV1 } from './wire/index.ts';

function refuse(path: string, message: string): never {
  throw new ProblemError(400, 'invalid_request', `${path} ${message}`, { errors: [{ path, message }] });
}

/**
 * Checks one entity of a search request. `keys` are the string keys it must have: the searched
 * entity needs only its type (an id sent with it is ignored, as the spec says).
 */
function entityOf(body: Item, part: string, keys: readonly EntityKey[]): SearchEntity {
  const value = body[part];
  if (!isObject(value)) refuse(`/${part}`, 'must be an object');
  const out: SearchEntity = {};
  for (const key of keys) {
    const text = value[key];
    if (!nonEmptyString(text)) refuse(`/${part}/${key}`, 'must be a non-empty string');
    out[key] = text;
  }
  if (value.properties !== undefined) {
    if (!isObject(value.properties)) refuse(`/${part}/properties`, 'must be an object');
    out.properties = value.properties;
  }
  return out;
}

/** The string keys of an entity. */
type EntityKey = 'type' | 'id' | 'name';

/** What each search needs: the searched entity by type only, the others whole; no action to search actions. */
const SHAPES: Record<
  SearchKind,
  { subject: EntityKey[]; action: EntityKey[] | null; resource: EntityKey[] }
> = {
  subject: { subject: ['type'], action: ['name'], resource: ['type', 'id'] },
  resource: { subject: ['type', 'id'], action: ['name'], resource: ['type'] },
  action: { subject: ['type', 'id'], action: null, resource: ['type', 'id'] },
};

/** Validates a search body into a SearchRequest; throws a 400 problem naming the first bad field. */
export function searchRequestOf(kind: SearchKind, body: Item): SearchRequest {
  const shape = SHAPES[kind];
  const request: SearchRequest = {
    kind,
    subject: entityOf(body, 'subject', shape.subject),
    resource: entityOf(body, 'resource', shape.resource),
    page: {},
  };
  if (shape.action) request.action = entityOf(body, 'action', shape.action);
  if (body.context !== undefined) {
    if (!isObject(body.context)) refuse('/context', 'must be an object');
    request.context = body.context;
  }
  if (body.page !== undefined) {
    const page = body.page;
    if (!isObject(page)) refuse('/page', 'must be an object');
    const { limit } = page;
    if (limit !== undefined) {
      if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
        refuse('/page/limit', `must be a whole number from 1 to ${MAX_PAGE_LIMIT}`);
      }
      request.page.limit = limit;
    }
    if (page.token !== undefined) {
      if (typeof page.token !== 'string' || page.token.length > 512)
        refuse('/page/token', 'must be a string');
      // An empty token is the first page (it is what a last page hands back).
      if (page.token !== '') request.page.token = page.token;
    }
  }
  return request;
}

/**
 * AuthZEN 1.0 search: POST /access/v1/search/{subject,resource,action}. Candidates come from the
 * bundle's entity catalog (docs/api.md); each is judged by the decision core, and the search is
 * recorded once.
 */
export const authzenSearchRoutes: FastifyPluginAsyncTypebox<DecisionRouteDeps> = async (app, opts) => {
  const { decisions, config } = opts;
  for (const kind of SEARCH_KINDS) {
    app.post(
      `/access/v1/search/${kind}`,
      {
        config: { scope: 'decisions:evaluate' },
        schema: {
          summary: `AuthZEN ${kind} search`,
          tags: ['authzen'],
          body: SearchRequestV1,
          response: { 200: SearchResponseV1, ...ProblemResponses },
        },
      },
      async (request) => {
        const search = searchRequestOf(kind, request.body);
        const { page: _page, kind: _kind, ...recorded } = search;
        const { decision, outcome } = await decisions.decideSearch(
          {
            surface: 'authzen',
            entrypoint: config.defaultEntrypoint,
            // The record's input: what was asked (the searched entity has no id).
            input: { ...recorded, search: kind, page: search.page },
            caller: request.caller,
            traceId: traceIdOf(request),
          },
          (evaluator) => searchPage(search, evaluator),
        );
        return {
          results: outcome.results,
          page: { next_token: outcome.nextToken, count: outcome.results.length },
          context: { decision_id: decision.id },
        };
      },
    );
  }
};
