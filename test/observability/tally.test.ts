/**
 * The per-request instruments count in plain numbers and reach prom-client at scrape time
 * (src/observability/tally.ts, issue 27): what a scrape shows — text and the JSON a cluster
 * primary aggregates — must be what prom-client's own Counter and Histogram show for the same
 * updates, and a scrape must never lose or repeat an update.
 */
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { TallyCounter, TallyHistogram } from '../../src/observability/tally.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const UPDATES: [Record<'route' | 'status', string>, number][] = [
  [{ route: '/a', status: '200' }, 0.0005],
  [{ route: '/a', status: '200' }, 0.001],
  [{ route: '/a', status: '500' }, 0.05],
  [{ route: '/b', status: '200' }, 3],
  [{ route: '/a', status: '200' }, 0.2],
  [{ route: '/b', status: '200' }, 0.001000001],
];

function both() {
  const prom = new Registry();
  const tally = new Registry();
  const config = { name: 'x_seconds', help: 'h', labelNames: ['route', 'status'] as const, buckets: BUCKETS };
  const counterConfig = { name: 'x_total', help: 'c', labelNames: ['route', 'status'] as const };
  return {
    prom,
    tally,
    promHistogram: new Histogram({ ...config, registers: [prom] }),
    tallyHistogram: new TallyHistogram({ ...config, registers: [tally] }),
    promCounter: new Counter({ ...counterConfig, registers: [prom] }),
    tallyCounter: new TallyCounter({ ...counterConfig, registers: [tally] }),
  };
}

describe('tally metrics', () => {
  it('expose exactly what prom-client exposes for the same updates, across scrapes', async () => {
    const m = both();
    for (const [i, [labels, value]] of UPDATES.entries()) {
      m.promHistogram.observe(labels, value);
      m.tallyHistogram.observe(labels, value);
      m.promCounter.inc(labels, i + 1);
      m.tallyCounter.inc(labels, i + 1);
      // A scrape in the middle must neither lose nor repeat what was counted before it.
      if (i === 2) expect(await m.tally.metrics()).toBe(await m.prom.metrics());
    }
    expect(await m.tally.metrics()).toBe(await m.prom.metrics());
    expect(await m.tally.metrics()).toBe(await m.prom.metrics());
    expect(await m.tally.metrics()).toContain('x_seconds_bucket{le="0.001",route="/a",status="200"} 2');
    expect(await m.tally.metrics()).toContain('x_total{route="/a",status="200"} 8');
  });

  it('aggregate over cluster workers like prom-client metrics (sums per series)', async () => {
    const workers = [both(), both()];
    for (const [w, m] of workers.entries()) {
      for (const [labels, value] of UPDATES.slice(w)) {
        m.promHistogram.observe(labels, value);
        m.tallyHistogram.observe(labels, value);
        m.promCounter.inc(labels);
        m.tallyCounter.inc(labels);
      }
    }
    const aggregate = async (key: 'prom' | 'tally') =>
      AggregatorRegistry.aggregate(
        await Promise.all(workers.map((m) => m[key].getMetricsAsJSON())),
      ).metrics();
    expect(await aggregate('tally')).toBe(await aggregate('prom'));
  });

  it('refuses a label value that is not a string the first time a series is seen', () => {
    const m = both();
    expect(() => m.tallyCounter.inc({ route: '/a' } as never)).toThrow(TypeError);
    expect(() => m.tallyHistogram.observe({ route: '/a' } as never, 1)).toThrow(TypeError);
  });
});
