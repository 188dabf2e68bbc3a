import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { PolicyEngine } from '../engine/engine.ts';
import { isObject } from '../json/values.ts';
import { canonicalJson } from './canonical-json.ts';
import { evaluateDecision } from './evaluate.ts';
import type { CandidateEvaluator, SearchSummary } from './service.ts';

/**
 * AuthZEN 1.0 search (subject, resource, action): which candidates from the bundle's entity catalog
 * the policy allows. Domain code: the HTTP layer validates the request shape, the decision service
 * pins the revision and records the search once.
 *
 * The entity catalog convention (docs/api.md, "Entity catalog"), in the bundle's data:
 *
 *   data.authzen.catalog.subjects.<type>.<id>  = {properties}
 *   data.authzen.catalog.resources.<type>.<id> = {properties}
 *   data.authzen.catalog.actions.<resource type> = ["read", "write", …]
 */
export type SearchKind = 'subject' | 'resource' | 'action';

type Json = Record<string, unknown>;

/** An entity of a search request: `id` may be absent on the searched entity. */
export interface SearchEntity {
  type?: string;
  id?: string;
  name?: string;
  properties?: Json;
}

/** A validated search request (src/http/authzen-search.ts checks the shape). */
export interface SearchRequest {
  kind: SearchKind;
  subject: SearchEntity;
  /** Absent on an action search. */
  action?: SearchEntity;
  resource: SearchEntity;
  context?: Json;
  page: { token?: string; limit?: number };
}

/** One page of a search. `nextToken` is "" on the last page. */
export interface SearchPage {
  results: ({ type: string; id: string } | { name: string })[];
  nextToken: string;
  /** Candidates evaluated to fill this page. */
  evaluated: number;
}

/** A page token that was tampered with, belongs to another query, or to another revision. */
export class PageTokenError extends Error {
  override name = 'PageTokenError';
  readonly kind = 'invalid';
  readonly code: 'invalid_page_token' | 'stale_page_token';
  constructor(code: 'invalid_page_token' | 'stale_page_token', message: string) {
    super(message);
    this.code = code;
  }
}

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 1000;

/** The catalog of one revision, ids sorted (code-unit order) so that pages are stable. */
interface Catalog {
  subjects: Map<string, { id: string; properties: Json }[]>;
  resources: Map<string, { id: string; properties: Json }[]>;
  actions: Map<string, string[]>;
}

function entitiesByType(node: unknown): Map<string, { id: string; properties: Json }[]> {
  const byType = new Map<string, { id: string; properties: Json }[]>();
  if (!isObject(node)) return byType;
  for (const [type, ids] of Object.entries(node)) {
    if (!isObject(ids)) continue;
    const list = Object.keys(ids)
      .sort()
      .map((id) => ({ id, properties: isObject(ids[id]) ? ids[id] : {} }));
    byType.set(type, list);
  }
  return byType;
}

// NOTE: a revision's data never changes (a new revision is a new data object), so the sorted catalog
// is kept per data object and dies with it.
const catalogs = new WeakMap<object, Catalog>();

/** Reads the entity catalog from a revision's bundle data; a missing or malformed part is empty. */
export function catalogOf(data: unknown): Catalog {
  const key = isObject(data) ? data : {};
  let catalog = catalogs.get(key);
  if (catalog) return catalog;
  const authzen = isObject(key.authzen) ? key.authzen : {};
  const root = isObject(authzen.catalog) ? authzen.catalog : {};
  const actions = new Map<string, string[]>();
  if (isObject(root.actions)) {
    for (const [type, names] of Object.entries(root.actions)) {
      if (Array.isArray(names)) {
        actions.set(type, [...new Set(names.filter((n): n is string => typeof n === 'string'))].sort());
      }
    }
  }
  catalog = {
    subjects: entitiesByType(root.subjects),
    resources: entitiesByType(root.resources),
    actions,
  };
  catalogs.set(key, catalog);
  return catalog;
}

interface Candidate {
  result: { type: string; id: string } | { name: string };
  envelope: Json;
}

function entity(part: SearchEntity): Json {
  const out: Json = { type: part.type, id: part.id };
  if (part.properties !== undefined) out.properties = part.properties;
  return out;
}

function actionOf(part: SearchEntity | undefined): Json {
  const out: Json = { name: part?.name };
  if (part?.properties !== undefined) out.properties = part.properties;
  return out;
}

/**
 * The candidates of a search, in a stable order. A subject or resource candidate carries the
 * catalog's properties (those sent on the searched entity are ignored, like its id); an action
 * candidate is a bare name.
 */
function candidatesOf(request: SearchRequest, catalog: Catalog): Candidate[] {
  const context = request.context === undefined ? {} : { context: request.context };
  switch (request.kind) {
    case 'subject': {
      const type = request.subject.type!;
      return (catalog.subjects.get(type) ?? []).map(({ id, properties }) => ({
        result: { type, id },
        envelope: {
          subject: { type, id, properties },
          action: actionOf(request.action),
          resource: entity(request.resource),
          ...context,
        },
      }));
    }
    case 'resource': {
      const type = request.resource.type!;
      return (catalog.resources.get(type) ?? []).map(({ id, properties }) => ({
        result: { type, id },
        envelope: {
          subject: entity(request.subject),
          action: actionOf(request.action),
          resource: { type, id, properties },
          ...context,
        },
      }));
    }
    case 'action':
      return (catalog.actions.get(request.resource.type!) ?? []).map((name) => ({
        result: { name },
        envelope: {
          subject: entity(request.subject),
          action: { name },
          resource: entity(request.resource),
          ...context,
        },
      }));
  }
}

/** What a page token binds: the query (without its page) and the revision. */
function queryDigest(request: SearchRequest): string {
  const { page: _page, ...query } = request;
  return createHash('sha256')
    .update(canonicalJson(query) ?? '')
    .digest('base64url');
}

/** A short, token-safe name of the revision (a digest may hold `sha256:` or other characters). */
function revisionTag(revisionDigest: string): string {
  return createHash('sha256').update(revisionDigest).digest('hex').slice(0, 16);
}

function mac(revisionDigest: string, query: string, payload: string): Buffer {
  return createHmac('sha256', revisionDigest).update(query).update('\n').update(payload).digest();
}

/**
 * An opaque page token: where the next page starts, MACed with the revision digest over the query.
 * It is integrity-protected (a changed byte is refused), bound to the query and the revision, and not
 * secret: forging one needs the public revision digest and grants nothing a client could not get by
 * paging — every candidate is still judged by the policy.
 */
export function pageToken(revisionDigest: string, request: SearchRequest, offset: number): string {
  const payload = `1.${revisionTag(revisionDigest)}.${offset}`;
  const tag = mac(revisionDigest, queryDigest(request), payload).subarray(0, 16).toString('base64url');
  return `${Buffer.from(payload).toString('base64url')}.${tag}`;
}

/** Reads a page token; throws PageTokenError when it is not one this query and revision issued. */
export function readPageToken(revisionDigest: string, request: SearchRequest, token: string): number {
  const invalid = () =>
    new PageTokenError('invalid_page_token', 'page.token is not a token this search issued');
  const [encoded, tag, extra] = token.split('.');
  if (encoded === undefined || tag === undefined || extra !== undefined) throw invalid();
  const payload = Buffer.from(encoded, 'base64url').toString('utf8');
  const match = /^1\.([0-9a-f]{16})\.(\d{1,9})$/.exec(payload);
  if (!match || Buffer.from(payload).toString('base64url') !== encoded) throw invalid();
  if (match[1] !== revisionTag(revisionDigest)) {
    throw new PageTokenError(
      'stale_page_token',
      'the policy revision changed since this page token was issued; start the search again',
    );
  }
  const expected = mac(revisionDigest, queryDigest(request), payload).subarray(0, 16);
  const given = Buffer.from(tag, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
  return Number(match[2]);
}

/**
 * Runs one page of a search: evaluates candidates from the token's offset until `limit` are allowed,
 * then looks ahead to the next allowed one, so that a non-empty `nextToken` always leads to a
 * non-empty page. Returns the page and the summary the service records.
 */
export function searchPage(
  request: SearchRequest,
  evaluator: CandidateEvaluator,
): { outcome: SearchPage; summary: SearchSummary } {
  const digest = evaluator.revision.digest;
  const limit = request.page.limit ?? DEFAULT_PAGE_LIMIT;
  const start = request.page.token ? readPageToken(digest, request, request.page.token) : 0;
  const candidates = candidatesOf(request, catalogOf(evaluator.data));
  const results: SearchPage['results'] = [];
  let nextToken = '';
  let evaluated = 0;
  for (let i = start; i < candidates.length; i++) {
    const candidate = candidates[i]!;
    evaluated += 1;
    if (!evaluator.allows(candidate.envelope)) continue;
    if (results.length === limit) {
      nextToken = pageToken(digest, request, i);
      break;
    }
    results.push(candidate.result);
  }
  const ids = results.map((r) => ('name' in r ? r.name : r.id));
  return {
    outcome: { results, nextToken, evaluated },
    summary: {
      allow: results.length > 0,
      result: { search: request.kind, results: ids, next_token: nextToken, evaluated },
      evaluated,
    },
  };
}

const KINDS: readonly string[] = ['subject', 'resource', 'action'];

/**
 * The search a recorded decision holds, when it is a search record (decideSearch stores the request
 * with a `search` kind as the input, and `{search, results, …}` as the result); null otherwise.
 */
export function searchOfRecord(record: { input: unknown; result: unknown }): {
  request: SearchRequest;
  caller: unknown;
  now: unknown;
} | null {
  const input = record.input;
  const result = record.result;
  if (!isObject(input) || !isObject(result) || typeof input.search !== 'string') return null;
  if (!KINDS.includes(input.search) || result.search !== input.search) return null;
  const request: SearchRequest = {
    kind: input.search as SearchKind,
    subject: (isObject(input.subject) ? input.subject : {}) as SearchEntity,
    resource: (isObject(input.resource) ? input.resource : {}) as SearchEntity,
    page: (isObject(input.page) ? input.page : {}) as SearchRequest['page'],
  };
  if (isObject(input.action)) request.action = input.action as SearchEntity;
  if (isObject(input.context)) request.context = input.context;
  return { request, caller: input.caller, now: input.now };
}

/**
 * Replays a search record on one engine: the same page (same token, limit, caller and `now`) judged
 * again, candidate by candidate, as decideSearch judged it; `matches` when the same ids come back
 * with the same continuation. Never throws: a token the engine's revision refuses is an error.
 */
export function replaySearch(
  engine: PolicyEngine,
  entrypoint: string,
  stored: NonNullable<ReturnType<typeof searchOfRecord>>,
  recorded: unknown,
): {
  allow: boolean | null;
  result: unknown;
  error: { code: string; message: string } | null;
  matches: boolean | null;
} {
  const evaluator: CandidateEvaluator = {
    revision: engine.ref,
    data: engine.bundle.data,
    // The evaluation core, as at decision time: any error or contract break is a deny.
    allows: (envelope) =>
      evaluateDecision(
        engine,
        'authzen',
        entrypoint,
        canonicalJson({ ...envelope, caller: stored.caller, now: stored.now }),
      ).allow,
  };
  try {
    const { summary } = searchPage(stored.request, evaluator);
    const ours = summary.result;
    const theirs = isObject(recorded) ? recorded : {};
    return {
      allow: summary.allow,
      result: ours,
      error: null,
      matches:
        canonicalJson(ours.results) === canonicalJson(theirs.results) &&
        ours.next_token === theirs.next_token,
    };
  } catch (err) {
    if (!(err instanceof PageTokenError)) throw err;
    return { allow: null, result: null, error: { code: err.code, message: err.message }, matches: null };
  }
}
