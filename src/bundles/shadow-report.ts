import { shadowControlsSql, shadowFlipsSql, shadowTotalsSql } from '../audit/decision-log.ts';
import type { Queryable } from '../store/types.ts';

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
