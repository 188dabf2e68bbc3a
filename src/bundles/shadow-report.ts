import type { Queryable, Sql } from '../store/types.ts';

/** How many decision ids a report shows per direction and per control. */
export const SAMPLE_IDS = 5;

/** What a shadow revision would have changed, over a time window. */
export interface ShadowReport {
  from: string;
  to: string;
  /** Only decisions shadowed by this revision, when given. */
  digest: string | null;
  /** Decisions that carried a shadow result. */
  compared: number;
  /** The shadow revisions seen in the window. */
  shadowDigests: string[];
  flips: {
    direction: 'allow_to_deny' | 'deny_to_allow';
    count: number;
    sampleIds: string[];
  }[];
  /**
   * Flips by control: for allow_to_deny the controls the shadow revision raised, for deny_to_allow
   * the controls of the active revision that the shadow no longer raised.
   */
  byControl: {
    direction: 'allow_to_deny' | 'deny_to_allow';
    control: string;
    count: number;
    sampleIds: string[];
  }[];
}

const FLIPS = `
  WITH shadowed AS (
    SELECT id, decided_at, allow, violated_controls, shadow,
           CASE WHEN allow AND NOT (shadow->>'allow')::boolean THEN 'allow_to_deny'
                WHEN NOT allow AND (shadow->>'allow')::boolean THEN 'deny_to_allow' END AS direction
      FROM decision_log
     WHERE shadow IS NOT NULL AND jsonb_typeof(shadow) = 'object'
       AND decided_at >= $1 AND decided_at < $2
       AND ($3::text IS NULL OR shadow->>'digest' = $3)
  )`;

export function shadowTotalsSql(from: string, to: string, digest: string | null): Sql {
  return {
    text: `${FLIPS}
      SELECT count(*) AS compared, array_remove(array_agg(DISTINCT shadow->>'digest'), NULL) AS digests
        FROM shadowed`,
    values: [from, to, digest],
  };
}

export function shadowFlipsSql(from: string, to: string, digest: string | null): Sql {
  return {
    text: `${FLIPS}
      SELECT direction, count(*) AS count,
             (array_agg(id::text ORDER BY decided_at DESC, id DESC))[1:${SAMPLE_IDS}] AS sample_ids
        FROM shadowed WHERE direction IS NOT NULL
       GROUP BY direction ORDER BY direction`,
    values: [from, to, digest],
  };
}

export function shadowControlsSql(from: string, to: string, digest: string | null): Sql {
  return {
    text: `${FLIPS},
      flipped AS (
        SELECT id, decided_at, direction, control
          FROM shadowed, LATERAL jsonb_array_elements_text(
            CASE jsonb_typeof(shadow->'controls') WHEN 'array' THEN shadow->'controls' ELSE '[]'::jsonb END
          ) AS control
         WHERE direction = 'allow_to_deny'
        UNION ALL
        SELECT id, decided_at, direction, control
          FROM shadowed, LATERAL unnest(violated_controls) AS control
         WHERE direction = 'deny_to_allow'
      )
      SELECT direction, control, count(DISTINCT id) AS count,
             (array_agg(DISTINCT id::text))[1:${SAMPLE_IDS}] AS sample_ids
        FROM flipped GROUP BY direction, control ORDER BY count(DISTINCT id) DESC, direction, control
       LIMIT 200`,
    values: [from, to, digest],
  };
}

/**
 * The shadow report of a window: decisions compared, flips by direction and by control, and sample
 * decision ids for each — what a policy author reads before activating the shadow revision.
 */
export async function shadowReport(
  db: Queryable,
  window: { from: string; to: string; digest?: string | null },
): Promise<ShadowReport> {
  const digest = window.digest ?? null;
  const [totals, flips, controls] = await Promise.all([
    db.query<{ compared: string | number; digests: string[] | null }>(
      shadowTotalsSql(window.from, window.to, digest),
    ),
    db.query<{ direction: 'allow_to_deny' | 'deny_to_allow'; count: string | number; sample_ids: string[] }>(
      shadowFlipsSql(window.from, window.to, digest),
    ),
    db.query<{
      direction: 'allow_to_deny' | 'deny_to_allow';
      control: string;
      count: string | number;
      sample_ids: string[];
    }>(shadowControlsSql(window.from, window.to, digest)),
  ]);
  const byDirection = new Map(flips.rows.map((row) => [row.direction, row]));
  return {
    from: window.from,
    to: window.to,
    digest,
    compared: Number(totals.rows[0]?.compared ?? 0),
    shadowDigests: (totals.rows[0]?.digests ?? []).sort(),
    flips: (['allow_to_deny', 'deny_to_allow'] as const).map((direction) => ({
      direction,
      count: Number(byDirection.get(direction)?.count ?? 0),
      sampleIds: byDirection.get(direction)?.sample_ids ?? [],
    })),
    byControl: controls.rows.map((row) => ({
      direction: row.direction,
      control: row.control,
      count: Number(row.count),
      sampleIds: row.sample_ids,
    })),
  };
}
