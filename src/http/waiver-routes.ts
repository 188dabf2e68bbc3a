import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parse as parseDuration, toSeconds } from 'iso8601-duration';
import type { Caller } from '../decisions/types.ts';
import type { ActivePolicy } from '../engine/engine.ts';
import { controlCatalog, grantSettings } from '../grants/control-catalog.ts';
import type { WaiverStore } from '../grants/waiver-store.ts';
import { ProblemError } from './problem.ts';
import {
  ExceptionListQueryV1,
  ExceptionListV1,
  ExceptionRequestV1,
  ExceptionV1,
  GrantIdParamsV1,
  OptionalReasonRequestV1,
  ProblemResponses,
  ReasonRequestV1,
} from './wire/index.ts';

/**
 * What the waiver routes need (built by the composition root). The store propagates each change
 * (this replica's cache, the bus) before it returns: the routes have nothing to do after one.
 */
export interface WaiverDeps {
  store: WaiverStore;
  policy: ActivePolicy;
}

function actorOf(caller: Caller) {
  return { sub: caller.sub, admin: caller.scopes.includes('admin') };
}

/** A strict ISO-8601 duration (PnYnMnWnDTnHnMnS) in seconds; 400 invalid_duration otherwise. */
function durationSeconds(text: string): number {
  let seconds: number;
  try {
    if (!/^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/.test(text))
      throw new Error('bad');
    seconds = toSeconds(parseDuration(text));
  } catch {
    throw new ProblemError(
      400,
      'invalid_duration',
      'expiring_within must be an ISO-8601 duration such as P7D',
    );
  }
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 100 * 366 * 86_400) {
    throw new ProblemError(
      400,
      'invalid_duration',
      'expiring_within must be a positive duration of at most 100 years',
    );
  }
  return seconds;
}

/**
 * Waivers: request, four-eyes approval, reject, revoke, listings with history. A refused change is
 * the store's GrantError (a code and a kind), answered by the app's one error mapper.
 */
export const waiverRoutes: FastifyPluginAsyncTypebox<WaiverDeps> = async (app, opts) => {
  const { store, policy } = opts;

  app.post(
    '/v1/exceptions',
    {
      config: { scope: 'exceptions:request' },
      schema: {
        summary: 'Request a waiver of a control (pending until approved)',
        tags: ['exceptions'],
        body: ExceptionRequestV1,
        response: { 201: ExceptionV1, ...ProblemResponses },
      },
    },
    async (request, reply) => {
      const engine = policy.current();
      const created = await store.request(request.body, actorOf(request.caller), {
        catalog: controlCatalog(engine),
        settings: grantSettings(engine),
      });
      return reply.code(201).send(created);
    },
  );

  app.post(
    '/v1/exceptions/:id/approve',
    {
      config: { scope: 'exceptions:approve' },
      schema: {
        summary: 'Approve a pending waiver (not its requester; critical controls need two approvers)',
        tags: ['exceptions'],
        params: GrantIdParamsV1,
        body: OptionalReasonRequestV1,
        response: { 200: ExceptionV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const reason = request.body.reason ?? null;
      return store.approve(request.params.id, actorOf(request.caller), reason);
    },
  );

  // Reject (a pending waiver) and revoke (an active one) both need a reason.
  for (const [verb, summary] of [
    ['reject', 'Reject a pending waiver'],
    ['revoke', 'Revoke an active waiver (one of its approvers, or admin)'],
  ] as const) {
    app.post(
      `/v1/exceptions/:id/${verb}`,
      {
        config: { scope: 'exceptions:approve' },
        schema: {
          summary,
          tags: ['exceptions'],
          params: GrantIdParamsV1,
          body: ReasonRequestV1,
          response: { 200: ExceptionV1, ...ProblemResponses },
        },
      },
      async (request) => store[verb](request.params.id, actorOf(request.caller), request.body.reason),
    );
  }

  app.get(
    '/v1/exceptions',
    {
      config: { scope: 'exceptions:request' },
      schema: {
        summary: 'List waivers',
        tags: ['exceptions'],
        querystring: ExceptionListQueryV1,
        response: { 200: ExceptionListV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const waivers = await store.list({
        state: q.state,
        control: q.control,
        subjectId: q.subject_id,
        resourceId: q.resource_id,
        expiringWithinSeconds:
          q.expiring_within === undefined ? undefined : durationSeconds(q.expiring_within),
        limit: q.limit === undefined ? undefined : Number(q.limit),
      });
      // The wire name of the listing stays `exceptions` (the public API).
      return { exceptions: waivers };
    },
  );

  app.get(
    '/v1/exceptions/:id',
    {
      config: { scope: 'exceptions:request' },
      schema: {
        summary: 'One waiver with its full history (its chained events)',
        tags: ['exceptions'],
        params: GrantIdParamsV1,
        response: { 200: ExceptionV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      const found = await store.get(id);
      if (!found) throw new ProblemError(404, 'exception_not_found', `no exception ${id}`);
      return { ...found, history: await store.history(id) };
    },
  );
};
