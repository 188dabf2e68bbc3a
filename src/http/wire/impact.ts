import { type Static, Type } from 'typebox';
import { FilterParams } from './audit.ts';
import { Nullable, StringEnum } from './problem.ts';

const { from: _from, to: _to, ...WindowFilters } = FilterParams;

/** `POST /v1/bundles/{digest}/impact`: the window and the filters of `GET /v1/decisions`. */
export const ImpactRequestV1 = Type.Object(
  {
    from: Type.Optional(
      Type.String({
        maxLength: 64,
        description: 'Inclusive lower bound on decided_at; default 7 days before `to`',
      }),
    ),
    to: Type.Optional(Type.String({ maxLength: 64, description: 'Exclusive upper bound; default now' })),
    filters: Type.Optional(
      Type.Object(WindowFilters, {
        additionalProperties: false,
        description:
          'The decision search filters; `entrypoint` defaults to VERDICT_DEFAULT_ENTRYPOINT and the candidate must have it',
      }),
    ),
  },
  {
    additionalProperties: false,
    examples: [{ filters: { action: 'tool.call', subject_id: 'support-bot' } }],
  },
);
export type ImpactRequestV1 = Static<typeof ImpactRequestV1>;

export const ImpactStartedV1 = Type.Object({
  id: Type.String({ format: 'uuid' }),
  status_url: Type.String({ description: 'GET it for the run: /v1/bundles/impact/{id}' }),
});

export const ImpactRunParamsV1 = Type.Object(
  { id: Type.String({ format: 'uuid' }) },
  { additionalProperties: false },
);

export const ImpactListQueryV1 = Type.Object(
  {
    digest: Type.Optional(Type.String({ maxLength: 80, description: 'only the runs of this candidate' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1..500, default 50' })),
  },
  { additionalProperties: false },
);

const Direction = StringEnum(['allow_to_deny', 'deny_to_allow']);
const SampleIds = Type.Array(Type.String(), { description: 'up to 5 decision ids, the window’s first' });

export const ImpactRunV1 = Type.Object(
  {
    id: Type.String(),
    state: StringEnum(['running', 'done', 'failed', 'cancelled']),
    digest: Type.String(),
    actor: Type.String(),
    replica_id: Type.String({ description: 'the replica that runs (or ran) it' }),
    from: Type.String(),
    to: Type.String(),
    filters: Type.Record(Type.String(), Type.String()),
    entrypoint: Type.String(),
    total: Nullable(Type.Integer({ description: 'records in the window (null until counted)' })),
    evaluated: Type.Integer(),
    skipped: Type.Integer(),
    skipped_reasons: Type.Record(Type.String(), Type.Integer(), {
      description:
        'search_page: an AuthZEN search record (a page of candidates); approval_unusable: denied by the service after the policy allowed (the approval was used up)',
    }),
    unchanged: Type.Integer(),
    masked: Type.Integer({
      description:
        'evaluated records whose stored input was masked: the candidate saw less than the decision did',
    }),
    flips: Type.Array(
      Type.Object({
        direction: Direction,
        count: Type.Integer(),
        masked: Type.Integer({ description: 'of these flips, how many had a masked stored input' }),
        sample_ids: SampleIds,
      }),
    ),
    by_control: Type.Array(
      Type.Object({
        direction: Direction,
        control: Type.String(),
        count: Type.Integer(),
        sample_ids: SampleIds,
      }),
    ),
    errors: Type.Array(
      Type.Object({
        code: Type.String(),
        message: Type.String(),
        count: Type.Integer(),
        sample_ids: SampleIds,
      }),
      { description: 'candidate evaluations that failed closed (counted as denies), by error code' },
    ),
    error: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
    started_at: Type.String(),
    heartbeat_at: Type.String(),
    finished_at: Nullable(Type.String()),
    duration_ms: Nullable(Type.Integer()),
  },
  { description: 'An impact analysis run: a candidate revision on a window of recorded decisions' },
);
export type ImpactRunV1 = Static<typeof ImpactRunV1>;

export const ImpactRunListV1 = Type.Object({ runs: Type.Array(ImpactRunV1) });
