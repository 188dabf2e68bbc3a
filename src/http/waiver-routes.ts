import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parse as parseDuration, toSeconds } from 'iso8601-duration';
import { Type } from 'typebox';
import type { Caller } from '../decisions/types.ts';
import type { ActivePolicy } from '../engine/engine.ts';
import { controlCatalog, grantSettings } from '../grants/control-catalog.ts';
import { GrantError } from '../grants/grant-error.ts';
import type { WaiverState, WaiverStore } from '../grants/waiver-store.ts';
import { ProblemError } from './problem.ts';
import { ProblemV1 } from './schemas.ts';

/**
 * What the waiver routes need (built by the composition root). The store propagates each change
 * (this replica's cache, the bus) before it returns: the routes have nothing to do after one.
 */
export interface WaiverDeps {
  store: WaiverStore;
  policy: ActivePolicy;
}

/** Waiver and approval ids (`exc_…`, `apr_…`): anything else is a 400, never a database round trip. */
export const GrantId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' });
const Id = GrantId;
// NOTE: no NUL: Postgres text cannot hold one (the JSON parser already refuses it in bodies; this
// covers query strings).
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max, pattern: '^[^\\x00]+$' });

export const ExceptionRequestV1 = Type.Object(
  {
    control: Text(64),
    subject_id: Type.Optional(Text(256)),
    resource_id: Type.Optional(Text(256)),
    action: Type.Optional(Text(128)),
    reason: Text(4_000),
    compensating_controls: Type.Optional(Type.Array(Text(1_000), { maxItems: 50 })),
    ticket: Type.Optional(
      Type.Object(
        { system: Text(128), key: Text(256), url: Type.Optional(Type.String({ maxLength: 2_048 })) },
        { additionalProperties: false },
      ),
    ),
    expires_at: Type.String({ format: 'date-time', maxLength: 64 }),
  },
  { additionalProperties: false },
);

const ReasonV1 = Type.Object({ reason: Text(4_000) }, { additionalProperties: false });
const OptionalReasonV1 = Type.Object({ reason: Type.Optional(Text(4_000)) }, { additionalProperties: false });

const STATES = ['pending', 'active', 'expired', 'revoked', 'rejected'] as const;

export const ExceptionListQueryV1 = Type.Object(
  {
    state: Type.Optional(Type.String({ enum: [...STATES] })),
    control: Type.Optional(Text(64)),
    subject_id: Type.Optional(Text(256)),
    resource_id: Type.Optional(Text(256)),
    expiring_within: Type.Optional(
      Type.String({ maxLength: 64, description: 'ISO-8601 duration, e.g. P7D' }),
    ),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
  },
  { additionalProperties: false },
);

const ExceptionV1 = Type.Object({ id: Type.String(), state: Type.String() }, { additionalProperties: true });

/** Maps a refused grant operation to its problem (400/403/404/409 with the stable code). */
export function grantProblem(err: unknown): unknown {
  if (!(err instanceof GrantError)) return err;
  const status = { invalid: 400, forbidden: 403, not_found: 404, conflict: 409 }[err.kind];
  return new ProblemError(status, err.code, err.message);
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

/** Waivers (public resource `/v1/exceptions`): request, four-eyes approval, reject, revoke, listings with history. */
export const waiverRoutes: FastifyPluginAsyncTypebox<WaiverDeps> = async (app, opts) => {
  const { store, policy } = opts;
  const guarded = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      throw grantProblem(err);
    }
  };
  const params = { params: Type.Object({ id: Id }) };
  const responses = { '4xx': ProblemV1, '5xx': ProblemV1 };

  app.post(
    '/v1/exceptions',
    {
      config: { scope: 'exceptions:request' },
      schema: {
        summary: 'Request a waiver of a control (pending until approved)',
        tags: ['exceptions'],
        body: ExceptionRequestV1,
        response: { 201: ExceptionV1, ...responses },
      },
    },
    async (request, reply) => {
      const engine = policy.current();
      const created = await guarded(() =>
        store.request(request.body, actorOf(request.caller), {
          catalog: controlCatalog(engine),
          settings: grantSettings(engine),
        }),
      );
      reply.code(201);
      return created;
    },
  );

  for (const [verb, summary] of [
    ['approve', 'Approve a pending waiver (not its requester; critical controls need two approvers)'],
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
          ...params,
          body: verb === 'approve' ? OptionalReasonV1 : ReasonV1,
          response: { 200: ExceptionV1, ...responses },
        },
      },
      async (request) => {
        const { id } = request.params;
        const reason = request.body?.reason ?? null;
        const actor = actorOf(request.caller);
        return guarded(() =>
          verb === 'approve'
            ? store.approve(id, actor, reason)
            : verb === 'reject'
              ? store.reject(id, actor, reason ?? '')
              : store.revoke(id, actor, reason ?? ''),
        );
      },
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
        response: { 200: Type.Object({ exceptions: Type.Array(ExceptionV1) }), ...responses },
      },
    },
    async (request) => {
      const q = request.query;
      const waivers = await store.list({
        state: q.state as WaiverState | undefined,
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
        ...params,
        response: { 200: ExceptionV1, ...responses },
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
