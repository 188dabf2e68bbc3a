import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { mintToken } from '../../src/auth/dev-token.ts';
import type { App } from '../../src/http/app.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

const deploy = path.resolve(import.meta.dirname, '../../deploy');

const PROMQL_WORDS = new Set([
  // aggregations, functions and keywords that can stand without "(" right after them
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'sum',
  'min',
  'max',
  'avg',
  'count',
  'topk',
  'bottomk',
  'quantile',
  'stddev',
  'stdvar',
  'group',
  'inf',
  'nan',
]);

/** Metric names a PromQL expression selects (strings, label matchers, groupings and ranges removed). */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/(?<![\w:])\d+(\.\d+)?(e[+-]?\d+)?(?![\w:])/gi, ' ');
  const names: string[] = [];
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*(\(?))/g)) {
    const name = match[0];
    const after = stripped.slice(match.index! + name.length).trimStart();
    if (after.startsWith('(')) continue; // a function call
    if (PROMQL_WORDS.has(name.toLowerCase())) continue;
    names.push(name);
  }
  return names;
}

/** Every series name a scrape can contain: from # TYPE lines, histograms expanded. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(name + suffix);
    else names.add(name);
  }
  return names;
}

function dashboardExpressions(file = 'verdict.json'): string[] {
  const dashboard = JSON.parse(readFileSync(path.join(deploy, 'grafana', file), 'utf8'));
  const exprs: string[] = [];
  for (const panel of dashboard.panels) for (const target of panel.targets ?? []) exprs.push(target.expr);
  for (const variable of dashboard.templating.list) {
    if (variable.type === 'query') exprs.push(/label_values\((\w+)/.exec(variable.query)![1]!);
  }
  return exprs;
}

function alertExpressions(): { alert: string; expr: string }[] {
  const rules = parse(readFileSync(path.join(deploy, 'prometheus/alerts.yml'), 'utf8'));
  return rules.groups.flatMap((g: { rules: { alert: string; expr: string }[] }) => g.rules);
}

let app: App;
let scrape: string;
beforeAll(async () => {
  const secret = 'assets-test-secret-of-32-bytes-or-more!';
  // Default metrics on, as main has them: the dashboard graphs process and event-loop series too.
  ({ app } = await buildTestApp({
    bundlePath: contractFixtureBundle(),
    keys: { kind: 'secret', secret, algorithms: ['HS256'] },
    metrics: createMetrics(),
  }));
  await app.ready();
  const authorization = `Bearer ${mintToken(secret, { scopes: ['decisions:evaluate'] })}`;
  for (const action of ['read', 'write']) {
    const r = await app.inject({
      method: 'POST',
      url: '/v1/decisions',
      headers: { authorization },
      payload: {
        subject: { type: 'u', id: '1' },
        action: { name: action },
        resource: { type: 'd', id: '1' },
      },
    });
    expect(r.statusCode).toBe(200);
  }
  scrape = (await app.inject({ method: 'GET', url: '/metrics' })).body;
});
afterAll(async () => app?.close());

describe('the Grafana dashboard and the alert rules use only metrics the service exports', () => {
  it('extracts metric names from PromQL', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (le) (rate(verdict_x_bucket{job=~"$job",a="b c"}[5m]))) / clamp_min(sum(y_total), 1e-9) > 0.5',
      ).sort(),
    ).toEqual(['verdict_x_bucket', 'y_total']);
    expect(metricNamesIn('count(count by (revision) (verdict_bundle_info)) > 1 or absent(z)')).toEqual([
      'verdict_bundle_info',
      'z',
    ]);
  });

  it('dashboard: decisions by outcome and entrypoint, deny rate, controls, latency, audit, bundle, errors', () => {
    const exprs = dashboardExpressions();
    const exported = exportedNames(scrape);
    const used = new Set(exprs.flatMap(metricNamesIn));
    expect(used.size).toBeGreaterThan(10);
    for (const name of used) expect(exported, `dashboard uses ${name}`).toContain(name);
    for (const needed of [
      'verdict_decisions_total',
      'verdict_decision_duration_seconds_bucket',
      'verdict_audit_queue_depth',
      'verdict_audit_spool_bytes',
      'verdict_bundle_info',
      'verdict_audit_write_errors_total',
    ])
      expect(used).toContain(needed);
  });

  it('governance dashboard: gate pass rates, remediation, waivers, approvals, shadow flips', () => {
    const exprs = dashboardExpressions('governance.json');
    const exported = exportedNames(scrape);
    const used = new Set(exprs.flatMap(metricNamesIn));
    for (const name of used) expect(exported, `governance dashboard uses ${name}`).toContain(name);
    for (const needed of [
      'verdict_kpi_release_gate_pass_rate',
      'verdict_kpi_release_first_attempt_pass_rate',
      'verdict_kpi_time_to_remediate_seconds',
      'verdict_kpi_waived_allow_share',
      'verdict_kpi_waivers',
      'verdict_kpi_waiver_expiry_compliance',
      'verdict_kpi_approval_latency_seconds',
      'verdict_kpi_shadow_flip_rate',
      'verdict_kpi_deny_rate',
    ])
      expect(used).toContain(needed);
  });

  it('alerts: audit backlog, spool, error rate, p99, revision skew, no decisions', () => {
    const rules = alertExpressions();
    const exported = exportedNames(scrape);
    for (const rule of rules) {
      const names = metricNamesIn(rule.expr);
      expect(names.length, rule.alert).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${rule.alert} uses ${name}`).toContain(name);
    }
    const alerts = rules.map((r) => r.alert);
    for (const needed of [
      'VerdictAuditBacklogGrowing',
      'VerdictAuditSpoolNotEmpty',
      'VerdictDecisionErrorRate',
      'VerdictDecisionLatencyP99OverBudget',
      'VerdictBundleRevisionSkew',
      'VerdictNoDecisions',
    ])
      expect(alerts).toContain(needed);
  });
});
