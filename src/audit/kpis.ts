import type { Queryable, Sql } from '../store/types.ts';
import { grantEventCountsSql, grantLatencySql } from './event-log.ts';
import {
  type KpiWindow,
  kpiByControlSql,
  kpiByEntrypointSql,
  kpiSeriesSql,
  releaseGatesSql,
  remediationSql,
} from './kpi-sql.ts';

/**
 * Governance KPIs for risk owners, computed from the rollups the batch statement maintains
 * (migrations/0008_kpi_rollups.sql, storeBatchSql) and from the waiver/approval tables and events.
 * A 30-day window reads at most 720 hourly rows per (entrypoint, action, control): fast whatever
 * the size of the log. The window is whole UTC hours: `from` is taken down to its hour, `to` up.
 */

export type KpiBucket = 'hour' | 'day' | 'week';
export const KPI_BUCKETS: readonly KpiBucket[] = ['hour', 'day', 'week'];

/** A median and a 90th percentile in seconds (null without data). */
export interface Percentiles {
  count: number;
  median: number | null;
  p90: number | null;
}

const rate = (part: number, whole: number) => (whole === 0 ? null : part / whole);

/** The KPI report of one window. */
export interface KpiReport {
  from: string;
  to: string;
  bucket: KpiBucket;
  decisions: {
    total: number;
    denies: number;
    deny_rate: number | null;
    by_entrypoint: { entrypoint: string; decisions: number; denies: number; deny_rate: number | null }[];
    /** Per control: decisions that violated it, and how many of those were denied. */
    by_control: { control: string; violations: number; denies: number }[];
  };
  release_gates: {
    decisions: number;
    passes: number;
    pass_rate: number | null;
    /** Releases first gated in the window, and how many passed at their first attempt. */
    releases: number;
    first_attempt_passes: number;
    first_attempt_pass_rate: number | null;
    /** Releases whose first decision was a deny and that passed later, the pass in the window. */
    time_to_remediate_seconds: Percentiles;
  };
  waivers: {
    allows: number;
    allows_with_waiver: number;
    share_of_allows_with_waiver: number | null;
    /** From the waiver store (null before it exists: issue 13). */
    requested: number | null;
    approved: number | null;
    rejected: number | null;
    revoked: number | null;
    expired: number | null;
    /** Of the approved waivers that reached their expiry in the window: closed or renewed before. */
    expiry_compliance: number | null;
    approval_latency_seconds: Percentiles | null;
  };
  approvals: {
    requested: number | null;
    granted: number | null;
    denied: number | null;
    expired: number | null;
    latency_seconds: Percentiles | null;
  };
  shadow: {
    evaluated: number;
    flips: number;
    flip_rate: number | null;
    /** Per control: decisions where the control was violated by exactly one of active and shadow. */
    by_control: { control: string; flips: number; flip_rate: number | null }[];
  };
  series: {
    start: string;
    decisions: number;
    denies: number;
    deny_rate: number | null;
    release_decisions: number;
    release_passes: number;
    allows_with_waiver: number;
    shadow_evaluated: number;
    shadow_flips: number;
  }[];
}

const n = (value: unknown) => Number(value ?? 0);
const iso = (value: unknown) => (value instanceof Date ? value : new Date(String(value))).toISOString();

function percentiles(row: { count?: unknown; median?: unknown; p90?: unknown } | undefined): Percentiles {
  return {
    count: n(row?.count),
    median: row?.median === null || row?.median === undefined ? null : Number(row.median),
    p90: row?.p90 === null || row?.p90 === undefined ? null : Number(row.p90),
  };
}

/**
 * Statements of tables that audit/ does not own, given by the composition root (src/create-verdict.ts):
 * the waiver store's (grants/) imports audit/, so audit/ cannot import it.
 */
export interface KpiSources {
  /**
   * Approved waivers whose expiry fell in the window and has passed: `due`, `compliant` (revoked
   * before it, or renewed) and `lapsed` (waiverExpirySql in src/grants/grants-sql.ts). Without it
   * the expiry KPIs are null.
   */
  waiverExpirySql?: (window: KpiWindow) => Sql;
}

/** The window in whole UTC hours. */
export function kpiWindow(from: Date, to: Date): { from: Date; to: Date } {
  const hour = 3_600_000;
  return {
    from: new Date(Math.floor(from.getTime() / hour) * hour),
    to: new Date(Math.ceil(to.getTime() / hour) * hour),
  };
}

/** Computes every KPI of [from, to) in `bucket`-sized series points. */
export async function computeKpis(
  db: Queryable,
  range: { from: Date; to: Date; bucket: KpiBucket },
  sources: KpiSources = {},
): Promise<KpiReport> {
  const { from, to } = kpiWindow(range.from, range.to);
  const window: KpiWindow = [from.toISOString(), to.toISOString()];
  const [byEntrypoint, byControl, series, gates, remediation, grants] = await Promise.all([
    db.query<Record<string, unknown>>(kpiByEntrypointSql(window)),
    db.query<Record<string, unknown>>(kpiByControlSql(window)),
    db.query<Record<string, unknown>>(kpiSeriesSql(window, range.bucket)),
    db.query<Record<string, unknown>>(releaseGatesSql(window)),
    db.query<Record<string, unknown>>(remediationSql(window)),
    grantKpis(db, window, sources),
  ]);

  const t = rollupTotals(byEntrypoint.rows);
  const allows = t.decisions - t.denies;
  const releasePasses = t.releaseDecisions - t.releaseDenies;
  const gate = gates.rows[0] ?? {};
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    bucket: range.bucket,
    decisions: {
      total: t.decisions,
      denies: t.denies,
      deny_rate: rate(t.denies, t.decisions),
      by_entrypoint: byEntrypoint.rows.map((row) => ({
        entrypoint: String(row.entrypoint),
        decisions: n(row.decisions),
        denies: n(row.denies),
        deny_rate: rate(n(row.denies), n(row.decisions)),
      })),
      by_control: byControl.rows
        .filter((row) => n(row.violations) > 0)
        .map((row) => ({
          control: String(row.control),
          violations: n(row.violations),
          denies: n(row.denies),
        })),
    },
    release_gates: {
      decisions: t.releaseDecisions,
      passes: releasePasses,
      pass_rate: rate(releasePasses, t.releaseDecisions),
      releases: n(gate.releases),
      first_attempt_passes: n(gate.first_passes),
      first_attempt_pass_rate: rate(n(gate.first_passes), n(gate.releases)),
      time_to_remediate_seconds: percentiles(remediation.rows[0]),
    },
    waivers: {
      allows,
      allows_with_waiver: t.waived,
      share_of_allows_with_waiver: rate(t.waived, allows),
      ...grants.waivers,
    },
    approvals: grants.approvals,
    shadow: {
      evaluated: t.shadowed,
      flips: t.flips,
      flip_rate: rate(t.flips, t.shadowed),
      by_control: byControl.rows
        .filter((row) => n(row.flips) > 0)
        .map((row) => ({
          control: String(row.control),
          flips: n(row.flips),
          flip_rate: rate(n(row.flips), t.shadowed),
        })),
    },
    series: series.rows.map(seriesPoint),
  };
}

/** The window's totals: the per-entrypoint rollup sums added up. */
function rollupTotals(rows: readonly Record<string, unknown>[]) {
  const totals = {
    decisions: 0,
    denies: 0,
    waived: 0,
    shadowed: 0,
    flips: 0,
    releaseDecisions: 0,
    releaseDenies: 0,
  };
  for (const row of rows) {
    totals.decisions += n(row.decisions);
    totals.denies += n(row.denies);
    totals.waived += n(row.waived);
    totals.shadowed += n(row.shadowed);
    totals.flips += n(row.flips);
    totals.releaseDecisions += n(row.release_decisions);
    totals.releaseDenies += n(row.release_denies);
  }
  return totals;
}

/** One point of the series, from its rollup sums. */
function seriesPoint(row: Record<string, unknown>): KpiReport['series'][number] {
  return {
    start: iso(row.start),
    decisions: n(row.decisions),
    denies: n(row.denies),
    deny_rate: rate(n(row.denies), n(row.decisions)),
    release_decisions: n(row.release_decisions),
    release_passes: n(row.release_passes),
    allows_with_waiver: n(row.waived),
    shadow_evaluated: n(row.shadowed),
    shadow_flips: n(row.flips),
  };
}

type GrantKpis = {
  waivers: Omit<KpiReport['waivers'], 'allows' | 'allows_with_waiver' | 'share_of_allows_with_waiver'>;
  approvals: KpiReport['approvals'];
};

const NO_GRANTS: GrantKpis = {
  waivers: {
    requested: null,
    approved: null,
    rejected: null,
    revoked: null,
    expired: null,
    expiry_compliance: null,
    approval_latency_seconds: null,
  },
  approvals: { requested: null, granted: null, denied: null, expired: null, latency_seconds: null },
};

/**
 * Waivers and human approvals (issue 13's tables and events). Counts of state changes come from the
 * chained platform events (kind `exception` / `approval`), latencies from request to activation or
 * grant of the same subject; expiry, which no event marks (a waiver lapses at its time), from the
 * `exceptions` table (KpiSources.waiverExpirySql). Null while those tables do not exist.
 */
async function grantKpis(db: Queryable, window: KpiWindow, sources: KpiSources): Promise<GrantKpis> {
  const { rows } = await db.query<{ exists: boolean }>(grantTablesExistSql());
  if (!rows[0]?.exists) return NO_GRANTS;
  const [events, waiverLatency, approvalLatency, expiry] = await Promise.all([
    db.query<{ kind: string; action: string; count: string }>(grantEventCountsSql(window)),
    db.query<Record<string, unknown>>(grantLatencySql('exception', 'activate', window)),
    db.query<Record<string, unknown>>(grantLatencySql('approval', 'grant', window)),
    sources.waiverExpirySql
      ? db.query<{ due: string; compliant: string; lapsed: string }>(sources.waiverExpirySql(window))
      : null,
  ]);
  const count = (kind: string, action: string) =>
    n(events.rows.find((row) => row.kind === kind && row.action === action)?.count);
  const lapses = expiry?.rows[0];
  return {
    waivers: {
      requested: count('exception', 'request'),
      approved: count('exception', 'activate'),
      rejected: count('exception', 'reject'),
      revoked: count('exception', 'revoke'),
      expired: expiry ? n(lapses?.lapsed) : null,
      expiry_compliance: expiry ? rate(n(lapses?.compliant), n(lapses?.due)) : null,
      approval_latency_seconds: percentiles(waiverLatency.rows[0]),
    },
    approvals: {
      requested: count('approval', 'request'),
      granted: count('approval', 'grant'),
      denied: count('approval', 'deny'),
      expired: count('approval', 'expire'),
      latency_seconds: percentiles(approvalLatency.rows[0]),
    },
  };
}

/** Whether the waiver and approval tables exist (migration 0005). */
function grantTablesExistSql(): Sql {
  return {
    text: `SELECT to_regclass('exceptions') IS NOT NULL AND to_regclass('approvals') IS NOT NULL AS exists`,
    values: [],
  };
}
