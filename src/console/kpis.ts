import type { FastifyInstance } from 'fastify';
import { KPI_BUCKETS, type KpiBucket, type Percentiles } from '../audit/kpis.ts';
import type { ConsoleDeps } from './console-plugin.ts';
import { FormError, optionalField } from './forms.ts';
import { html, type Markup } from './html.ts';
import { sendPage } from './layout.ts';

const DAY = 86_400_000;
const MAX_WINDOW = 366 * DAY;

function percent(value: number | null): string {
  return value === null ? '—' : `${(value * 100).toFixed(1)} %`;
}

function duration(p: Percentiles | null): string {
  if (!p || p.median === null) return '—';
  const fmt = (s: number) =>
    s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  return `median ${fmt(p.median)}, p90 ${p.p90 === null ? '—' : fmt(p.p90)} (${p.count})`;
}

/**
 * A vertical bar chart as server-rendered SVG (no script, no inline style: the CSP holds): one
 * bar per point, `value` drawn over `total` when given (denies over decisions). Labelled for
 * screen readers; the same figures are in the table beside it.
 */
function barChart(label: string, points: readonly { name: string; total: number; value: number }[]): Markup {
  const width = 720;
  const height = 180;
  const max = Math.max(1, ...points.map((p) => p.total));
  const step = points.length === 0 ? width : width / points.length;
  // At most 48 px wide: a period with one bucket is one bar, not a block across the chart.
  const bar = Math.min(48, Math.max(1, step * 0.7));
  return html`<svg class="chart" role="img" aria-label="${label}" viewBox="0 0 ${width} ${height + 20}" width="100%" height="${height + 20}">
    <title>${label}</title>
    ${points.map((p, i) => {
      const x = (i * step + (step - bar) / 2).toFixed(1);
      const h = ((p.total / max) * height).toFixed(1);
      const hv = ((p.value / max) * height).toFixed(1);
      return html`<g><title>${p.name}: ${p.value} of ${p.total}</title>
        <rect class="total" x="${x}" y="${(height - Number(h)).toFixed(1)}" width="${bar.toFixed(1)}" height="${h}"></rect>
        <rect class="part" x="${x}" y="${(height - Number(hv)).toFixed(1)}" width="${bar.toFixed(1)}" height="${hv}"></rect></g>`;
    })}
    <line class="axis" x1="0" y1="${height}" x2="${width}" y2="${height}"></line>
    ${
      points.length === 1
        ? html`<text class="label" x="${(step / 2).toFixed(1)}" y="${height + 15}" text-anchor="middle">${points[0]?.name ?? ''}</text>`
        : points.length > 1
          ? html`<text class="label" x="0" y="${height + 15}">${points[0]?.name ?? ''}</text><text class="label" x="${width}" y="${height + 15}" text-anchor="end">${points.at(-1)?.name ?? ''}</text>`
          : ''
    }
  </svg>`;
}

/** Horizontal bars (controls by violations) as SVG. */
function rankChart(label: string, rows: readonly { name: string; value: number }[]): Markup {
  const width = 720;
  const rowHeight = 22;
  const labelWidth = 160;
  const max = Math.max(1, ...rows.map((r) => r.value));
  return html`<svg class="chart" role="img" aria-label="${label}" viewBox="0 0 ${width} ${rows.length * rowHeight + 4}" width="100%" height="${rows.length * rowHeight + 4}">
    <title>${label}</title>
    ${rows.map((r, i) => {
      const w = ((r.value / max) * (width - labelWidth - 60)).toFixed(1);
      const y = i * rowHeight;
      return html`<g><text x="0" y="${y + 15}">${r.name}</text>
        <rect class="part" x="${labelWidth}" y="${y + 3}" width="${w}" height="${rowHeight - 6}"></rect>
        <text x="${labelWidth + Number(w) + 6}" y="${y + 15}">${r.value}</text></g>`;
    })}
  </svg>`;
}

/** A date (YYYY-MM-DD) from the query, as the start of that UTC day. */
function day(value: string | null, label: string): Date | null {
  if (value === null) return null;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
    throw new FormError(`${label}: a date, YYYY-MM-DD`);
  }
  return new Date(`${value}T00:00:00Z`);
}

/**
 * The governance KPIs (`/console/kpis`, `audit:read`) of a chosen period, as server-rendered SVG
 * charts and tables: the API's `/v1/kpis` computation.
 */
export async function kpiPages(app: FastifyInstance, opts: { deps: ConsoleDeps }): Promise<void> {
  const { kpis } = opts.deps;
  if (!kpis) return;
  app.get('/kpis', { config: { console: { scope: 'audit:read' } } }, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const now = new Date();
    const toDay = day(optionalField(query, 'to', 'To', 10), 'To');
    const fromDay = day(optionalField(query, 'from', 'From', 10), 'From');
    const to = toDay ? new Date(toDay.getTime() + DAY) : now;
    const from = fromDay ?? new Date(to.getTime() - 30 * DAY);
    if (from >= to || to.getTime() - from.getTime() > MAX_WINDOW) {
      throw new FormError('The period must start before it ends and last at most a year.');
    }
    const rawBucket = optionalField(query, 'bucket', 'Bucket', 8) ?? 'day';
    if (!(KPI_BUCKETS as readonly string[]).includes(rawBucket))
      throw new FormError('Bucket: hour, day or week');
    const bucket = rawBucket as KpiBucket;
    const report = await kpis({ from, to, bucket });
    const d = report.decisions;
    const series = report.series.map((s) => ({
      name: bucket === 'hour' ? s.start.slice(0, 13).replace('T', ' ') : s.start.slice(0, 10),
      total: s.decisions,
      value: s.denies,
    }));
    const controls = d.by_control.slice(0, 12).map((c) => ({ name: c.control, value: c.violations }));
    const form = html`<form class="filters" method="get" action="/console/kpis" aria-label="Period">
      <div><label for="from">From</label><input type="date" id="from" name="from" value="${report.from.slice(0, 10)}"></div>
      <div><label for="to">To</label><input type="date" id="to" name="to" value="${new Date(Date.parse(report.to) - 1).toISOString().slice(0, 10)}"></div>
      <div><label for="bucket">Group by</label><select id="bucket" name="bucket">${KPI_BUCKETS.map(
        (b) => html`<option value="${b}"${b === bucket ? html` selected` : ''}>${b}</option>`,
      )}</select></div>
      <div><button type="submit">Show</button></div>
    </form>`;
    return sendPage(request, reply, {
      title: 'KPIs',
      current: '/console/kpis',
      main: html`${form}
      <dl class="facts" id="kpi-summary">
        <dt>Decisions</dt><dd>${d.total}, ${d.denies} denied (${percent(d.deny_rate)})</dd>
        <dt>Release gates</dt><dd>${report.release_gates.decisions} decisions, pass rate ${percent(report.release_gates.pass_rate)}; first-attempt pass rate ${percent(report.release_gates.first_attempt_pass_rate)}; time to remediate ${duration(report.release_gates.time_to_remediate_seconds)}</dd>
        <dt>Waivers</dt><dd>${percent(report.waivers.share_of_allows_with_waiver)} of allows relied on a waiver; ${report.waivers.requested ?? '—'} requested, ${report.waivers.approved ?? '—'} approved; expiry compliance ${percent(report.waivers.expiry_compliance)}; approval ${duration(report.waivers.approval_latency_seconds)}</dd>
        <dt>Approvals</dt><dd>${report.approvals.requested ?? '—'} requested, ${report.approvals.granted ?? '—'} granted, ${report.approvals.denied ?? '—'} denied; latency ${duration(report.approvals.latency_seconds)}</dd>
        <dt>Shadow</dt><dd>${report.shadow.evaluated} evaluated, ${report.shadow.flips} flips (${percent(report.shadow.flip_rate)})</dd>
      </dl>
      <h2>Decisions and denials per ${bucket}</h2>
      ${barChart(`Decisions (light) and denials (dark) per ${bucket}`, series)}
      <h2>Controls by violations</h2>
      ${controls.length === 0 ? html`<p class="muted">No violation in the period.</p>` : rankChart('Controls by violations', controls)}
      <details><summary>The figures as a table</summary>
        <table><thead><tr><th scope="col">Period</th><th scope="col">Decisions</th><th scope="col">Denied</th><th scope="col">Deny rate</th><th scope="col">Allows with a waiver</th><th scope="col">Shadow flips</th></tr></thead>
        <tbody>${report.series.map(
          (s) =>
            html`<tr><td>${s.start.slice(0, 16).replace('T', ' ')}</td><td>${s.decisions}</td><td>${s.denies}</td><td>${percent(s.deny_rate)}</td><td>${s.allows_with_waiver}</td><td>${s.shadow_flips}</td></tr>`,
        )}</tbody></table>
      </details>`,
    });
  });
}
