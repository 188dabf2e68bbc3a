/**
 * The gate's outcome in the formats pipelines read: text, JSON, GitHub workflow commands and job
 * summary, JUnit XML and SARIF 2.1.0.
 */
import type { DecisionResult, Violation } from '../../packages/sdk/src/index.ts';
import { CONTROL_SOURCES, type ReleaseEnvelope, type ReleaseSources } from './release.ts';

/** Exit codes of `verdict gate release`: documented, and 0 only for an allow Verdict answered. */
export const EXIT_ALLOWED = 0;
export const EXIT_DENIED = 1;
export const EXIT_UNDECIDED = 2;

/** What the gate found. */
export type GateOutcome =
  | {
      kind: 'allow' | 'deny';
      envelope: ReleaseEnvelope;
      decision: DecisionResult & { decided: true };
      sources: ReleaseSources;
    }
  | {
      kind: 'undecided';
      reason: string;
      envelope?: ReleaseEnvelope;
      sources: ReleaseSources;
      /** The --environment given, for the summary when no envelope could be built. */
      environment?: string;
    };

export function exitCodeOf(outcome: GateOutcome): number {
  if (outcome.kind === 'allow') return EXIT_ALLOWED;
  return outcome.kind === 'deny' ? EXIT_DENIED : EXIT_UNDECIDED;
}

/** The release controls (policies/CONTROLS.md), one JUnit test case and one SARIF rule each. */
export const RELEASE_CONTROLS: Record<string, string> = {
  'REL-001': 'model card complete',
  'REL-002': 'evaluation thresholds for the risk tier',
  'REL-003': 'distinct approvers, responsible-AI sign-off',
  'REL-004': 'license allowlist',
  'REL-005': 'lineage recorded',
  'REL-006': 'no open sev1/sev2 incidents',
  'REL-007': 'no release in a change freeze',
};

const FORMATS = ['text', 'json', 'github', 'junit', 'sarif'] as const;
export type GateFormat = (typeof FORMATS)[number];
export function isGateFormat(value: string): value is GateFormat {
  return (FORMATS as readonly string[]).includes(value);
}

function failing(outcome: GateOutcome): Violation[] {
  if (outcome.kind === 'undecided') return [];
  return outcome.decision.violations.filter((v) => typeof v.waived_by !== 'string');
}

function waived(outcome: GateOutcome): Violation[] {
  if (outcome.kind === 'undecided') return [];
  return outcome.decision.violations.filter((v) => typeof v.waived_by === 'string');
}

function releaseName(outcome: GateOutcome): string {
  return outcome.envelope?.resource.id ?? '(unknown release)';
}

function environmentOf(outcome: GateOutcome): string {
  const env =
    outcome.envelope?.context?.environment ??
    (outcome.kind === 'undecided' ? outcome.environment : undefined);
  return typeof env === 'string' ? env : 'prod (none given)';
}

/** One line per fact; what a person reads in a log. */
export function textReport(outcome: GateOutcome): string {
  const head = `release ${releaseName(outcome)} to ${environmentOf(outcome)}`;
  if (outcome.kind === 'undecided') return `verdict gate: COULD NOT DECIDE ${head}: ${outcome.reason}\n`;
  const lines = [
    `verdict gate: ${outcome.kind === 'allow' ? 'ALLOWED' : 'DENIED'} ${head} (decision ${outcome.decision.decision_id})`,
  ];
  for (const v of failing(outcome))
    lines.push(`  ✗ ${v.control}${v.severity ? ` [${v.severity}]` : ''}: ${v.message}`);
  for (const v of waived(outcome)) lines.push(`  ~ ${v.control} waived by ${v.waived_by}: ${v.message}`);
  if (outcome.decision.exceptions.length > 0)
    lines.push(`  waivers applied: ${outcome.decision.exceptions.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** The outcome as one JSON document. */
export function jsonReport(outcome: GateOutcome): string {
  const body =
    outcome.kind === 'undecided'
      ? {
          outcome: 'undecided',
          exit_code: EXIT_UNDECIDED,
          reason: outcome.reason,
          release: outcome.envelope?.resource.id ?? null,
        }
      : {
          outcome: outcome.kind,
          exit_code: exitCodeOf(outcome),
          release: outcome.envelope.resource.id,
          environment: outcome.envelope.context?.environment ?? null,
          decision_id: outcome.decision.decision_id,
          violations: outcome.decision.violations,
          exceptions: outcome.decision.exceptions,
          policy: outcome.decision.policy,
        };
  return `${JSON.stringify(body, null, 2)}\n`;
}

// GitHub workflow commands: https://docs.github.com/actions/reference/workflow-commands-for-github-actions
const escapeData = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const escapeProperty = (s: string) => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

/** `::error` annotations, one per failed control (and a notice for an allow). */
export function githubAnnotations(outcome: GateOutcome): string {
  if (outcome.kind === 'undecided') {
    return `::error title=${escapeProperty('verdict gate: could not decide')}::${escapeData(outcome.reason)}\n`;
  }
  const lines: string[] = [];
  for (const v of failing(outcome)) {
    const file = outcome.sources[CONTROL_SOURCES[v.control] ?? 'modelCard'];
    const props = [
      file ? `file=${escapeProperty(file)}` : '',
      `title=${escapeProperty(`${v.control} ${RELEASE_CONTROLS[v.control] ?? ''}`.trim())}`,
    ]
      .filter(Boolean)
      .join(',');
    lines.push(
      `::error ${props}::${escapeData(`${v.control}: ${v.message} (decision ${outcome.decision.decision_id})`)}`,
    );
  }
  if (outcome.kind === 'allow') {
    lines.push(
      `::notice title=verdict gate::${escapeData(`release ${releaseName(outcome)} allowed (decision ${outcome.decision.decision_id})`)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const md = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The Markdown job summary: controls, evaluation values against the thresholds, decision id, waivers. */
export function githubSummary(outcome: GateOutcome): string {
  const icon = outcome.kind === 'allow' ? '✅' : outcome.kind === 'deny' ? '❌' : '⚠️';
  const verdictWord =
    outcome.kind === 'allow' ? 'allowed' : outcome.kind === 'deny' ? 'denied' : 'could not be decided';
  const out = [`## ${icon} Release gate: \`${md(releaseName(outcome))}\` ${verdictWord}`, ''];
  out.push(`Environment: \`${md(environmentOf(outcome))}\``);
  if (outcome.kind === 'undecided') {
    out.push('', `Verdict gave no decision: ${md(outcome.reason)}. The gate fails closed (exit 2).`, '');
    return `${out.join('\n')}\n`;
  }
  const d = outcome.decision;
  out.push(`Decision: \`${d.decision_id}\` (policy revision \`${md(d.policy.revision)}\`)`, '');
  out.push('| control | result | details |', '|---|---|---|');
  const byControl = new Map<string, Violation[]>();
  for (const v of d.violations) byControl.set(v.control, [...(byControl.get(v.control) ?? []), v]);
  const controls = [...new Set([...Object.keys(RELEASE_CONTROLS), ...byControl.keys()])];
  for (const control of controls) {
    const found = byControl.get(control) ?? [];
    const open = found.filter((v) => typeof v.waived_by !== 'string');
    const result = open.length > 0 ? '❌ failed' : found.length > 0 ? '〰️ waived' : '✅ passed';
    const details = found
      .map((v) => md(`${v.message}${v.waived_by ? ` (waived by ${v.waived_by})` : ''}`))
      .join('<br>');
    out.push(`| ${control} ${RELEASE_CONTROLS[control] ?? ''} | ${result} | ${details} |`);
  }
  const evals = outcome.envelope.resource.properties?.evals;
  if (evals && typeof evals === 'object') {
    const tier = outcome.envelope.resource.properties?.risk_tier;
    out.push('', `Evaluations against the risk tier ${md(String(tier ?? '(none)'))} thresholds:`, '');
    out.push('| metric | value | threshold |', '|---|---|---|');
    const rel002 = byControl.get('REL-002') ?? [];
    // REL-002 names the metric, its value and the threshold it missed (policies/release.rego).
    const names = (v: Violation, metric: string) => v.metric === metric || v.message.endsWith(`: ${metric}`);
    for (const [metric, value] of Object.entries(evals as Record<string, unknown>)) {
      const miss = rel002.find((v) => names(v, metric));
      const threshold = miss?.threshold as { min?: number; max?: number } | undefined;
      const check = !miss
        ? '✅ met'
        : threshold?.min !== undefined
          ? `❌ below min ${threshold.min}`
          : threshold?.max !== undefined
            ? `❌ above max ${threshold.max}`
            : `❌ ${md(miss.message)}`;
      out.push(
        `| ${md(metric)} | ${md(JSON.stringify(value))} | ${check}${miss?.waived_by ? ' (waived)' : ''} |`,
      );
    }
    for (const v of rel002.filter((v) => !Object.keys(evals).some((k) => names(v, k)))) {
      out.push(`| — | — | ❌ ${md(v.message)} |`);
    }
  }
  out.push(
    '',
    `Waivers applied: ${d.exceptions.length > 0 ? d.exceptions.map((e) => `\`${md(e)}\``).join(', ') : 'none'}`,
    '',
  );
  return `${out.join('\n')}\n`;
}

const xml = (s: string) =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');

/** JUnit XML: one test case per release control (and per other violated control). */
export function junitReport(outcome: GateOutcome): string {
  const name = `verdict release gate: ${releaseName(outcome)}`;
  const cases: string[] = [];
  let failures = 0;
  let errors = 0;
  if (outcome.kind === 'undecided') {
    errors = 1;
    cases.push(
      `    <testcase classname="verdict.gate.release" name="decision"><error message="${xml(outcome.reason)}" type="undecided">${xml(outcome.reason)}</error></testcase>`,
    );
  } else {
    const open = failing(outcome);
    const controls = [...new Set([...Object.keys(RELEASE_CONTROLS), ...open.map((v) => v.control)])];
    for (const control of controls) {
      const mine = open.filter((v) => v.control === control);
      const title = `${control} ${RELEASE_CONTROLS[control] ?? ''}`.trim();
      if (mine.length === 0) {
        cases.push(`    <testcase classname="verdict.gate.release" name="${xml(title)}"/>`);
        continue;
      }
      failures += 1;
      const text = mine.map((v) => `${v.control}: ${v.message}`).join('\n');
      cases.push(
        `    <testcase classname="verdict.gate.release" name="${xml(title)}"><failure message="${xml(mine[0]!.message)}" type="${xml(control)}">${xml(`${text}\ndecision ${outcome.decision.decision_id}`)}</failure></testcase>`,
      );
    }
  }
  const tests = cases.length;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="verdict gate" tests="${tests}" failures="${failures}" errors="${errors}">`,
    `  <testsuite name="${xml(name)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="0">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

/** SARIF 2.1.0: one rule per release control, one result per failed one, located in its input file. */
export function sarifReport(outcome: GateOutcome): string {
  const rules = Object.entries(RELEASE_CONTROLS).map(([id, text]) => ({
    id,
    name: id.replace('-', ''),
    shortDescription: { text },
    help: { text: `${id}: ${text} (policies/CONTROLS.md)` },
  }));
  const results =
    outcome.kind === 'undecided'
      ? []
      : failing(outcome).map((v) => {
          const file = outcome.sources[CONTROL_SOURCES[v.control] ?? 'modelCard'];
          return {
            ruleId: v.control,
            level: 'error',
            message: { text: `${v.control}: ${v.message} (decision ${outcome.decision.decision_id})` },
            ...(file ? { locations: [{ physicalLocation: { artifactLocation: { uri: file } } }] } : {}),
            properties: { severity: v.severity ?? null, decision_id: outcome.decision.decision_id },
          };
        });
  const log = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'verdict-gate', rules } },
        invocations: [
          {
            executionSuccessful: outcome.kind !== 'undecided',
            ...(outcome.kind === 'undecided'
              ? { toolExecutionNotifications: [{ level: 'error', message: { text: outcome.reason } }] }
              : {}),
          },
        ],
        results,
        properties: {
          release: outcome.envelope?.resource.id ?? null,
          outcome: outcome.kind,
          decision_id: outcome.kind === 'undecided' ? null : outcome.decision.decision_id,
          exceptions: outcome.kind === 'undecided' ? [] : outcome.decision.exceptions,
        },
      },
    ],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}
