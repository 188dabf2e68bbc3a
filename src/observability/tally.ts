import { Counter, type Registry } from 'prom-client';

/**
 * Metrics counted on the request path in plain variables and handed to prom-client only when
 * something reads the registry (a scrape, or a cluster worker's answer to the primary): prom-client
 * validates and hashes a series' labels on every `inc`/`observe`, which was a measurable part of a
 * tool call's CPU (bench/README.md, issue 27). Here an update is one string key, one Map lookup
 * and a few additions; the label values are checked once, when a series is first seen.
 *
 * The label values must come from bounded sets, as for any metric (the callers fold the rest into
 * "other"): every series seen is kept for the life of the process.
 */

type Labels<L extends string> = Record<L, string>;

/** The series key: the label values in the declared order (NUL cannot occur in a label value we make). */
function keyOf<L extends string>(names: readonly L[], labels: Labels<L>): string {
  let key = labels[names[0]!];
  for (let i = 1; i < names.length; i++) key += `\u0000${labels[names[i]!]}`;
  return key;
}

function checkedLabels<L extends string>(names: readonly L[], labels: Labels<L>): Labels<L> {
  const copy = {} as Labels<L>;
  for (const name of names) {
    const value = labels[name];
    if (typeof value !== 'string') throw new TypeError(`label ${name} must be a string`);
    copy[name] = value;
  }
  return copy;
}

/**
 * A counter whose increments are summed per series in plain numbers and added to the prom-client
 * `Counter` (registered as usual, same name, help and aggregation) by its `collect()` at scrape time.
 */
export class TallyCounter<L extends string> {
  readonly counter: Counter<L>;
  private readonly names: readonly L[];
  private readonly pending = new Map<string, { labels: Labels<L>; by: number }>();

  constructor(config: { name: string; help: string; labelNames: readonly L[]; registers: Registry[] }) {
    this.names = config.labelNames;
    const pending = this.pending;
    this.counter = new Counter<L>({
      ...config,
      collect() {
        for (const series of pending.values()) {
          if (series.by === 0) continue;
          this.inc(series.labels, series.by);
          series.by = 0;
        }
      },
    });
  }

  inc(labels: Labels<L>, by = 1): void {
    const key = keyOf(this.names, labels);
    const series = this.pending.get(key);
    if (series) series.by += by;
    else {
      // First time: prom-client validates the labels and exports the series from now on.
      const checked = checkedLabels(this.names, labels);
      this.counter.inc(checked, 0);
      this.pending.set(key, { labels: checked, by });
    }
  }
}

interface HistogramSeries<L extends string> {
  labels: Labels<L>;
  /** Observations per bucket (not cumulative); the last slot is above the highest bound. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** One exported value, in the shape prom-client's `Registry` and `AggregatorRegistry` read. */
interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/**
 * A histogram kept in plain numbers per series and exported at scrape time in prom-client's own
 * form (`get()`: the `_bucket` series with cumulative counts and `le`, `_sum`, `_count`), registered
 * on the registry like any prom-client metric, so the text exposition and the cluster's aggregation
 * ('sum') are prom-client's. prom-client's `Histogram` offers no way to add counts in bulk; this
 * replaces it for the per-request histograms only.
 */
export class TallyHistogram<L extends string = never> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly names: readonly L[];
  private readonly bounds: readonly number[];
  private readonly series = new Map<string, HistogramSeries<L>>();

  constructor(config: {
    name: string;
    help: string;
    labelNames?: readonly L[];
    buckets: readonly number[];
    registers: Registry[];
  }) {
    this.name = config.name;
    this.help = config.help;
    this.names = config.labelNames ?? [];
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    // NOTE: prom-client's Registry holds anything with a name and get(); its type names its own classes.
    for (const registry of config.registers) registry.registerMetric(this as never);
  }

  observe(labels: Labels<L>, value: number): void {
    const key = this.names.length === 0 ? '' : keyOf(this.names, labels);
    let series = this.series.get(key);
    if (!series) {
      if (!Number.isFinite(value)) throw new TypeError(`value is not a finite number: ${value}`);
      series = {
        labels: checkedLabels(this.names, labels),
        counts: new Float64Array(this.bounds.length + 1),
        sum: 0,
        count: 0,
      };
      this.series.set(key, series);
    }
    // Observations of a request take a few buckets at most; a linear scan beats a search here.
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    series.counts[i]! += 1;
    series.sum += value;
    series.count += 1;
  }

  /** Forgets every series (as prom-client's `reset`). */
  reset(): void {
    this.series.clear();
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: MetricValue[];
  }> {
    const values: MetricValue[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += s.counts[i]!;
        values.push({
          labels: { le: this.bounds[i]!, ...s.labels },
          value: cumulative,
          metricName: `${this.name}_bucket`,
        });
      }
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
