import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Where the grant gauges read their values at scrape time (the stores fit). */
export interface GrantCounts {
  waivers(): Promise<{ byState: Record<string, number>; expiringSoon: number }>;
  approvals(): Promise<Record<string, number>>;
}

/** The metrics of waivers and approvals (issue 13), on an app's registry. */
export interface GrantMetrics {
  /** Request → grant, in seconds. */
  readonly approvalLatency: Histogram;
  /** Failed webhook deliveries (each failed attempt). */
  readonly webhookFailures: Counter;
}

/**
 * Registers `verdict_exceptions{state}`, `verdict_exceptions_expiring_soon` (within 7 days),
 * `verdict_approvals{state}` (read from Postgres at scrape time: no timer, no staleness, and a
 * failed read leaves the gauges out of that scrape rather than failing it),
 * `verdict_approval_latency_seconds` and `verdict_approval_webhook_failures_total`.
 */
export function registerGrantMetrics(registry: Registry, counts: GrantCounts): GrantMetrics {
  // NOTE: the three gauges count rows of Postgres, which every worker of a VERDICT_WORKERS group
  // reads alike: the primary takes the first worker's value instead of summing N copies of it. The
  // histogram and the counter below are each worker's own work, summed.
  const shared = { registers: [registry], aggregator: 'first' as const };
  new Gauge({
    name: 'verdict_exceptions',
    help: 'Stored waivers by state (expired = active past its expiry)',
    labelNames: ['state'],
    ...shared,
    async collect() {
      const { byState } = await counts.waivers().catch(() => ({ byState: {} as Record<string, number> }));
      for (const [state, n] of Object.entries(byState)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'verdict_exceptions_expiring_soon',
    help: 'Active waivers that expire within 7 days',
    ...shared,
    async collect() {
      const result = await counts.waivers().catch(() => null);
      if (result) this.set(result.expiringSoon);
    },
  });
  new Gauge({
    name: 'verdict_approvals',
    help: 'Human approval requests by state (expired = pending or granted past its expiry)',
    labelNames: ['state'],
    ...shared,
    async collect() {
      const byState = await counts.approvals().catch(() => ({}) as Record<string, number>);
      for (const [state, n] of Object.entries(byState)) this.set({ state }, n);
    },
  });
  return {
    approvalLatency: new Histogram({
      name: 'verdict_approval_latency_seconds',
      help: 'Time from an approval request to its grant',
      buckets: [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200],
      registers: [registry],
    }),
    webhookFailures: new Counter({
      name: 'verdict_approval_webhook_failures_total',
      help: 'Failed approval webhook delivery attempts',
      registers: [registry],
    }),
  };
}
