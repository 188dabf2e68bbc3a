import {
  type Aggregator,
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  Registry,
} from 'prom-client';

/**
 * Every metric Verdict exports, by name, held by one prom-client Registry per app instance (tests
 * build many apps in one process; a global registry would mix them). Names follow Prometheus
 * conventions: `verdict_` prefix, base units (`_seconds`, `_bytes`), `_total` on counters, and
 * bounded label sets only: never a decision id, subject id or raw URL as a label value.
 */
export interface Metrics {
  readonly registry: Registry;
  /** Decisions by entrypoint (bounded to the bundle's entrypoints), outcome and first violated control. */
  readonly decisions: Counter<'entrypoint' | 'outcome' | 'control'>;
  /** Time to decide one request's decisions: evaluation plus recording (the group-commit wait). */
  readonly decisionDuration: Histogram<'entrypoint'>;
  /** Policy evaluation only (the wasm call), 50 µs to 1 s. */
  readonly evaluationDuration: Histogram<'entrypoint'>;
  /** Evaluations that failed (a wasm abort, a builtin's engine failure), by entrypoint. */
  readonly evaluationErrors: Counter<'entrypoint'>;
  /** HTTP requests by route template (never the raw URL), method and status code. */
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly httpDuration: Histogram<'route' | 'method' | 'status'>;
  /** Requests refused by load shedding (503 + Retry-After). */
  readonly loadShed: Counter<'reason'>;
  /** Requests refused by the rate limiter (429). */
  readonly rateLimitRejections: Counter<'route'>;
  /** Authentication / authorisation failures by reason (missing_token, invalid_token, expired, scope...). */
  readonly authFailures: Counter<'reason'>;
  /** Records waiting in the audit writer's queue. */
  readonly auditQueueDepth: Gauge;
  /** Records per group commit. */
  readonly auditBatchSize: Histogram;
  /** Time of one group commit (INSERT ... + COMMIT). */
  readonly auditCommitDuration: Histogram;
  /** Bytes in the local spool (records not yet in Postgres). */
  readonly auditSpoolBytes: Gauge;
  /** Bytes of spooled records still to be replayed into the audit store. */
  readonly auditReplayBacklog: Gauge;
  /** Failed audit writes by kind (commit, spool, replay). */
  readonly auditWriteErrors: Counter<'kind'>;
  /** 1 for the active bundle revision of this process. */
  readonly bundleInfo: Gauge<'revision' | 'digest'>;
  /** Bundle activations (startup, upload, hot reload). */
  readonly bundleLoads: Counter<'source'>;
  /** Bundles refused: unreadable, invalid, failed to compile. */
  readonly bundleLoadFailures: Counter<'source'>;
  /** Decisions the shadow revision would have flipped, by entrypoint and direction. */
  readonly shadowDivergences: Counter<'entrypoint' | 'direction'>;
  /** 1 while this replica cannot load the fleet's active (or shadow) revision and serves the previous one. */
  readonly bundleFollowFailing: Gauge;
  /** Milliseconds from a change's commit to this replica serving it (the last one). */
  readonly bundlePropagation: Histogram;
  /**
   * Reads the audit writer's gauges (queue depth, spool bytes, replay backlog) at scrape time, so a
   * scrape always sees the current values: no timer, no staleness. Call once the writer exists.
   */
  watchAuditStats(stats: () => AuditStats): void;
  /**
   * Reads the governance KPIs of the last 24 hours for the `verdict_kpi_*` gauges at scrape time
   * (cached for a minute: every scrape of every replica would otherwise query the database).
   */
  watchKpis(source: () => Promise<KpiFigures>): void;
}

/** The KPI figures the gauges export (a subset of src/audit/kpis.ts KpiReport, by shape). */
export interface KpiFigures {
  decisions: { by_entrypoint: { entrypoint: string; deny_rate: number | null }[] };
  release_gates: {
    pass_rate: number | null;
    first_attempt_pass_rate: number | null;
    time_to_remediate_seconds: { median: number | null; p90: number | null };
  };
  waivers: {
    share_of_allows_with_waiver: number | null;
    requested: number | null;
    approved: number | null;
    revoked: number | null;
    expired: number | null;
    expiry_compliance: number | null;
    approval_latency_seconds: { median: number | null; p90: number | null } | null;
  };
  approvals: { latency_seconds: { median: number | null; p90: number | null } | null };
  shadow: { flip_rate: number | null; by_control: { control: string; flip_rate: number | null }[] };
}

/** How long a KPI reading serves scrapes. */
const KPI_CACHE_MS = 60_000;

/** What the audit writer reports for the gauges (see `Metrics.watchAuditStats`). */
export interface AuditStats {
  queueDepth: number;
  spoolBytes: number;
  replayBacklogBytes: number;
}

/**
 * The audit writer as metrics see it (src/audit/writer.ts `AuditWriter` fits): a stats snapshot
 * for the gauges and hooks for the per-batch histograms and error counters.
 */
export interface ObservableAuditWriter {
  stats(): AuditStats;
  addHooks(hooks: {
    onBatchCommitted?(size: number, seconds: number): void;
    onBatchSpooled?(size: number, seconds: number): void;
    onWriteError?(kind: 'commit' | 'spool' | 'replay', error: unknown): void;
  }): void;
}

/** Buckets for the evaluation-only histogram: 50 µs .. 1 s (seconds). */
export const EVALUATION_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
/** Buckets for whole-request latencies: 100 µs .. 10 s. */
export const REQUEST_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
const COMMIT_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const BATCH_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/**
 * The reasons load shedding refuses for: the two limits src/http/overload.ts configures
 * (under-pressure's type names). Exported at 0 from the start, like every known label value below.
 */
export const LOAD_SHED_REASONS = ['eventLoopDelay', 'heapUsedBytes'] as const;
export type LoadShedReason = (typeof LOAD_SHED_REASONS)[number];
/** Where a bundle activation comes from: the bundle read at startup, or a later activation. */
export const BUNDLE_SOURCES = ['startup', 'activation'] as const;
type BundleSource = (typeof BUNDLE_SOURCES)[number];
/** Where a bundle can be refused: the load sources, an upload, or a replica following the fleet. */
export const BUNDLE_FAILURE_SOURCES = [...BUNDLE_SOURCES, 'upload', 'follow'] as const;

/** Options of `createMetrics`. */
export interface MetricsOptions {
  /** Node process and event-loop default metrics (process_*, nodejs_*). Default true. */
  defaultMetrics?: boolean;
}

/** Creates a fresh registry with every Verdict instrument registered on it. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  // NOTE: in a cluster the primary sums each series over the workers; a gauge that is a fact about
  // the revision (info) must not be summed, so it takes the max (1 per revision seen).
  const info = (aggregator: Aggregator) => ({ registers, aggregator });
  let auditStats: (() => AuditStats) | null = null;
  let kpiSource: (() => Promise<KpiFigures>) | null = null;
  let kpiCache: { at: number; figures: KpiFigures | null } | null = null;
  const auditGauge = (key: keyof AuditStats) =>
    function (this: Gauge) {
      if (auditStats) this.set(auditStats()[key]);
    };

  const metrics: Metrics = {
    registry,
    decisions: new Counter({
      name: 'verdict_decisions_total',
      help: 'Decisions made, by entrypoint, outcome (allow, deny, error, undefined: a /v1/data path with no value) and first violated control.',
      labelNames: ['entrypoint', 'outcome', 'control'] as const,
      registers,
    }),
    decisionDuration: new Histogram({
      name: 'verdict_decision_duration_seconds',
      help: 'Time to decide and record the decisions of one request (evaluation plus audit commit wait).',
      labelNames: ['entrypoint'] as const,
      buckets: REQUEST_BUCKETS,
      registers,
    }),
    evaluationDuration: new Histogram({
      name: 'verdict_decision_evaluation_seconds',
      help: 'Policy evaluation time of one decision (the wasm call only).',
      labelNames: ['entrypoint'] as const,
      buckets: EVALUATION_BUCKETS,
      registers,
    }),
    evaluationErrors: new Counter({
      name: 'verdict_policy_evaluation_errors_total',
      help: 'Policy evaluations that failed with an error (not undefined), by entrypoint.',
      labelNames: ['entrypoint'] as const,
      registers,
    }),
    httpRequests: new Counter({
      name: 'verdict_http_requests_total',
      help: 'HTTP requests by route template, method and status code.',
      labelNames: ['route', 'method', 'status'] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: 'verdict_http_request_duration_seconds',
      help: 'HTTP request duration, from the first byte read to the response written.',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: REQUEST_BUCKETS,
      registers,
    }),
    loadShed: new Counter({
      name: 'verdict_load_shed_total',
      help: 'Requests refused with 503 because the process is overloaded, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    rateLimitRejections: new Counter({
      name: 'verdict_rate_limit_rejections_total',
      help: 'Requests refused with 429 by the rate limiter, by route template.',
      labelNames: ['route'] as const,
      registers,
    }),
    authFailures: new Counter({
      name: 'verdict_auth_failures_total',
      help: 'Requests refused by authentication or authorisation, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    auditQueueDepth: new Gauge({
      name: 'verdict_audit_queue_depth',
      help: 'Decision records waiting in the audit writer queue.',
      collect: auditGauge('queueDepth'),
      registers,
    }),
    auditBatchSize: new Histogram({
      name: 'verdict_audit_batch_size',
      help: 'Decision records per group commit.',
      buckets: BATCH_BUCKETS,
      registers,
    }),
    auditCommitDuration: new Histogram({
      name: 'verdict_audit_commit_duration_seconds',
      help: 'Duration of one group commit to the audit store.',
      buckets: COMMIT_BUCKETS,
      registers,
    }),
    auditSpoolBytes: new Gauge({
      name: 'verdict_audit_spool_bytes',
      help: 'Bytes of decision records in the local spool, not yet in the audit store.',
      collect: auditGauge('spoolBytes'),
      registers,
    }),
    auditReplayBacklog: new Gauge({
      name: 'verdict_audit_replay_backlog_bytes',
      help: 'Bytes of spooled decision records still to be replayed into the audit store.',
      collect: auditGauge('replayBacklogBytes'),
      registers,
    }),
    auditWriteErrors: new Counter({
      name: 'verdict_audit_write_errors_total',
      help: 'Failed audit writes, by kind (commit, spool, replay).',
      labelNames: ['kind'] as const,
      registers,
    }),
    bundleInfo: new Gauge({
      name: 'verdict_bundle_info',
      help: 'The active policy bundle revision and digest (value 1).',
      labelNames: ['revision', 'digest'] as const,
      ...info('max'),
    }),
    bundleLoads: new Counter({
      name: 'verdict_bundle_loads_total',
      help: 'Policy bundles activated, by source (startup, upload, reload).',
      labelNames: ['source'] as const,
      registers,
    }),
    bundleLoadFailures: new Counter({
      name: 'verdict_bundle_load_failures_total',
      help: 'Policy bundles refused (unreadable, invalid, failed to compile), by source.',
      labelNames: ['source'] as const,
      registers,
    }),
    shadowDivergences: new Counter({
      name: 'verdict_shadow_divergences_total',
      help: 'Decisions on which the shadow revision disagreed with the active one, by entrypoint and direction (allow_to_deny, deny_to_allow).',
      labelNames: ['entrypoint', 'direction'] as const,
      registers,
    }),
    bundleFollowFailing: new Gauge({
      name: 'verdict_bundle_follow_failing',
      help: '1 while this replica cannot load the active or shadow revision the fleet committed (it keeps serving the previous one).',
      registers,
    }),
    bundlePropagation: new Histogram({
      name: 'verdict_bundle_propagation_seconds',
      help: "Time from a bundle change's commit to this replica serving it.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    watchAuditStats(stats) {
      auditStats = stats;
    },
    watchKpis(source) {
      kpiSource = source;
    },
  };
  registerKpiGauges(registry, async () => {
    if (!kpiSource) return null;
    if (!kpiCache || Date.now() - kpiCache.at > KPI_CACHE_MS) {
      kpiCache = { at: Date.now(), figures: await kpiSource().catch(() => null) };
    }
    return kpiCache.figures;
  });
  // NOTE: a labelled series exists only once it has a value; without these zeros a fresh process
  // exports nothing for a counter until its first event, and dashboards and alerts cannot tell
  // "none" from "missing". Labels known only to the HTTP layer (auth failure reasons, route
  // templates) are set by `initialiseLabelValues` once the routes exist.
  metrics.bundleFollowFailing.set(0);
  for (const kind of ['commit', 'spool', 'replay']) metrics.auditWriteErrors.inc({ kind }, 0);
  for (const reason of LOAD_SHED_REASONS) metrics.loadShed.inc({ reason }, 0);
  for (const source of BUNDLE_SOURCES) metrics.bundleLoads.inc({ source }, 0);
  for (const source of BUNDLE_FAILURE_SOURCES) metrics.bundleLoadFailures.inc({ source }, 0);
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  return metrics;
}

/**
 * Exports 0 for every label value the HTTP layer knows once its routes are registered: each auth
 * failure reason, and each rate-limited route template plus 'unmatched' (the 404 handler).
 */
export function initialiseLabelValues(
  metrics: Metrics,
  known: { authFailureReasons: readonly string[]; rateLimitedRoutes: Iterable<string> },
): void {
  for (const reason of known.authFailureReasons) metrics.authFailures.inc({ reason }, 0);
  for (const route of known.rateLimitedRoutes) metrics.rateLimitRejections.inc({ route }, 0);
  metrics.rateLimitRejections.inc({ route: 'unmatched' }, 0);
}

/** Marks `revision`/`digest` as the one active bundle of this process. */
export function setActiveBundle(metrics: Metrics, ref: { revision: string; digest: string }): void {
  metrics.bundleInfo.reset();
  metrics.bundleInfo.set({ revision: ref.revision, digest: ref.digest }, 1);
}

/**
 * Keeps `verdict_bundle_info` on the active revision and counts activations: the startup load now,
 * every later activation (upload, rollback, hot reload) as it happens.
 */
export function trackActiveBundle(
  metrics: Metrics,
  policy: {
    current(): { ref: { revision: string; digest: string } };
    onActivate(listener: (engine: { ref: { revision: string; digest: string } }) => void): void;
  },
): void {
  setActiveBundle(metrics, policy.current().ref);
  metrics.bundleLoads.inc({ source: 'startup' satisfies BundleSource });
  policy.onActivate((engine) => {
    setActiveBundle(metrics, engine.ref);
    metrics.bundleLoads.inc({ source: 'activation' satisfies BundleSource });
  });
}

/**
 * Feeds the audit instruments from the writer: gauges read its stats at scrape time, batch size
 * and commit latency come from its per-batch hooks (a spooled batch counts as a batch, with the
 * time it took to reach the spool), errors from its error hook.
 */
export function observeAuditWriter(metrics: Metrics, writer: ObservableAuditWriter): void {
  metrics.watchAuditStats(() => writer.stats());
  const batch = (size: number, seconds: number) => {
    metrics.auditBatchSize.observe(size);
    metrics.auditCommitDuration.observe(seconds);
  };
  writer.addHooks({
    onBatchCommitted: batch,
    onBatchSpooled: batch,
    onWriteError: (kind) => metrics.auditWriteErrors.inc({ kind }),
  });
}

/**
 * The governance gauges (last 24 hours; series only where there is a value). In a cluster every
 * worker reads the same database, so the primary takes the first worker's value, never a sum.
 */
function registerKpiGauges(registry: Registry, read: () => Promise<KpiFigures | null>): void {
  const registers = [registry];
  const set = (gauge: Gauge<string>, value: number | null | undefined, labels?: Record<string, string>) => {
    if (value === null || value === undefined) return;
    if (labels) gauge.set(labels, value);
    else gauge.set(value);
  };
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (g: Gauge<L>, figures: KpiFigures) => void,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      aggregator: 'first',
      async collect(this: Gauge<L>) {
        this.reset();
        const figures = await read();
        if (figures) fill(this, figures);
      },
    });
  gauge(
    'verdict_kpi_deny_rate',
    'Share of decisions denied over the last 24 hours, by entrypoint.',
    ['entrypoint'],
    (g, f) => {
      for (const e of f.decisions.by_entrypoint)
        set(g as Gauge<string>, e.deny_rate, { entrypoint: e.entrypoint });
    },
  );
  gauge(
    'verdict_kpi_release_gate_pass_rate',
    'Share of release.deploy decisions allowed, last 24 hours.',
    [],
    (g, f) => set(g as Gauge<string>, f.release_gates.pass_rate),
  );
  gauge(
    'verdict_kpi_release_first_attempt_pass_rate',
    'Share of releases first gated in the last 24 hours that passed at their first attempt.',
    [],
    (g, f) => set(g as Gauge<string>, f.release_gates.first_attempt_pass_rate),
  );
  gauge(
    'verdict_kpi_time_to_remediate_seconds',
    'First deny to first allow of releases that passed in the last 24 hours (quantile 0.5, 0.9).',
    ['quantile'],
    (g, f) => {
      set(g as Gauge<string>, f.release_gates.time_to_remediate_seconds.median, { quantile: '0.5' });
      set(g as Gauge<string>, f.release_gates.time_to_remediate_seconds.p90, { quantile: '0.9' });
    },
  );
  gauge(
    'verdict_kpi_waived_allow_share',
    'Share of allows over the last 24 hours that needed a waiver.',
    [],
    (g, f) => set(g as Gauge<string>, f.waivers.share_of_allows_with_waiver),
  );
  gauge(
    'verdict_kpi_waivers',
    'Waivers by what happened to them in the last 24 hours.',
    ['state'],
    (g, f) => {
      for (const state of ['requested', 'approved', 'revoked', 'expired'] as const) {
        set(g as Gauge<string>, f.waivers[state], { state });
      }
    },
  );
  gauge(
    'verdict_kpi_waiver_expiry_compliance',
    'Share of approved waivers reaching expiry in the last 24 hours that were closed or renewed before.',
    [],
    (g, f) => set(g as Gauge<string>, f.waivers.expiry_compliance),
  );
  gauge(
    'verdict_kpi_approval_latency_seconds',
    'Request to approval, last 24 hours, by kind (waiver, approval) and quantile (0.5, 0.9).',
    ['kind', 'quantile'],
    (g, f) => {
      for (const [kind, p] of [
        ['waiver', f.waivers.approval_latency_seconds],
        ['approval', f.approvals.latency_seconds],
      ] as const) {
        set(g as Gauge<string>, p?.median, { kind, quantile: '0.5' });
        set(g as Gauge<string>, p?.p90, { kind, quantile: '0.9' });
      }
    },
  );
  gauge(
    'verdict_kpi_shadow_flip_rate',
    'Share of shadow-evaluated decisions the shadow revision would flip, last 24 hours, by control (all = any flip).',
    ['control'],
    (g, f) => {
      set(g as Gauge<string>, f.shadow.flip_rate, { control: 'all' });
      for (const c of f.shadow.by_control) set(g as Gauge<string>, c.flip_rate, { control: c.control });
    },
  );
}

/** What the SIEM forwarder reports (src/audit/siem-forwarder.ts `SiemForwarder.stats`). */
export interface SiemStats {
  lagRecords: number;
  lagSeconds: number;
  sent: number;
  failures: number;
}

/**
 * The SIEM forwarder's lag and counts, read at scrape time: `verdict_siem_lag_records`,
 * `verdict_siem_lag_seconds`, `verdict_siem_sent_records`, `verdict_siem_send_failures`.
 */
export function observeSiemForwarder(metrics: Metrics, stats: () => SiemStats): void {
  const registers = [metrics.registry];
  const gauge = (name: string, help: string, key: keyof SiemStats) =>
    new Gauge({
      name,
      help,
      registers,
      collect(this: Gauge) {
        this.set(stats()[key]);
      },
    });
  gauge(
    'verdict_siem_lag_records',
    'Decision records committed and not yet acknowledged by the SIEM receiver.',
    'lagRecords',
  );
  gauge(
    'verdict_siem_lag_seconds',
    'Age of the oldest decision record not yet acknowledged by the SIEM receiver.',
    'lagSeconds',
  );
  gauge(
    'verdict_siem_sent_records',
    'Decision records acknowledged by the SIEM receiver since this process started.',
    'sent',
  );
  gauge(
    'verdict_siem_send_failures',
    'Failed SIEM forwarding passes since this process started (retried).',
    'failures',
  );
}

/** The content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

export { AggregatorRegistry };
