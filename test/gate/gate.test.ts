/**
 * `verdict gate release` against a live Verdict: every output format (JUnit checked against its XSD,
 * SARIF against the SARIF 2.1.0 schema), --input, the exit codes — and never 0 unless Verdict said
 * allow: bad input, a refused token and a 5xx are exit 2.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { freePort } from '../support/net.ts';
import { junitErrors, RELEASE_FILES, root, runVerdict, sarifErrors, startVerdict } from './support.ts';

/** The example release with evals that fail REL-002 (toxicity). */
const FAILING = [...RELEASE_FILES.slice(0, 2), '--evals', 'bad-evals.json', ...RELEASE_FILES.slice(4)];
const GATE = ['verdict', 'gate', 'release'];

let verdict: Awaited<ReturnType<typeof startVerdict>>;
let dir: string;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  verdict = await startVerdict();
  dir = mkdtempSync(path.join(tmpdir(), 'verdict-gate-'));
  cpSync(path.join(root, 'deploy/ci/release'), path.join(dir, 'release'), { recursive: true });
  writeFileSync(
    path.join(dir, 'bad-evals.json'),
    '[{"name": "safety", "value": 0.99}, {"name": "toxicity", "value": 0.5}]',
  );
  env = {
    ...process.env,
    VERDICT_URL: verdict.url,
    VERDICT_TOKEN: verdict.token,
    GITHUB_STEP_SUMMARY: undefined,
  };
});
afterAll(async () => {
  await verdict?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const gate = (args: string[], extraEnv: Record<string, string | undefined> = {}) =>
  runVerdict([...GATE, ...args], { cwd: dir, env: { ...env, ...extraEnv } });

describe('verdict gate release', () => {
  it('text: allowed is exit 0 and names the decision', async () => {
    const run = await gate([...RELEASE_FILES, '--environment', 'prod']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(
      /^verdict gate: ALLOWED release support-llm@2\.3\.0 to prod \(decision [0-9a-f-]{36}\)\n$/,
    );
  });

  it('json: a denied release lists its violations, exit 1', async () => {
    const run = await gate([...FAILING, '--format', 'json']);
    expect(run.status).toBe(1);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({
      outcome: 'deny',
      exit_code: 1,
      release: 'support-llm@2.3.0',
      environment: null,
    });
    expect(report.violations).toContainEqual(
      expect.objectContaining({
        control: 'REL-002',
        metric: 'toxicity',
        value: 0.5,
        threshold: { max: 0.02 },
      }),
    );
    expect(report.violations.map((v: { message: string }) => v.message).sort()).toEqual([
      'evaluation above the tier threshold: toxicity',
      'evaluation metric missing or not a number: jailbreak_resistance',
    ]);
  });

  it('junit: a valid document (XSD) with one test case per release control', async () => {
    const run = await gate([...FAILING, '--format', 'junit']);
    expect(run.status).toBe(1);
    expect(junitErrors(run.stdout)).toEqual([]);
    expect(run.stdout.match(/<testcase /g)).toHaveLength(7);
    expect(run.stdout).toContain('tests="7" failures="1" errors="0"');
    // The validator bites: a test case without its name is refused.
    expect(
      junitErrors(
        run.stdout.replace(
          /<testcase classname="verdict.gate.release" name="[^"]*"/,
          '<testcase classname="x"',
        ),
      ),
    ).not.toEqual([]);
  });

  it('sarif: a valid SARIF 2.1.0 log with a result per failed control, located in its file', async () => {
    const run = await gate([...FAILING, '--format', 'sarif']);
    expect(run.status).toBe(1);
    const log = JSON.parse(run.stdout);
    expect(sarifErrors(log)).toEqual([]);
    expect(log.runs[0].results).toHaveLength(2);
    expect(log.runs[0].results[0]).toMatchObject({
      ruleId: 'REL-002',
      level: 'error',
      locations: [{ physicalLocation: { artifactLocation: { uri: 'bad-evals.json' } } }],
    });
    // The validator bites: a log without a version is refused.
    expect(sarifErrors({ ...log, version: undefined })).not.toEqual([]);
    const down = await gate([
      ...RELEASE_FILES,
      '--format',
      'sarif',
      '--url',
      `http://127.0.0.1:${await freePort()}`,
    ]);
    expect(down.status).toBe(2);
    expect(sarifErrors(JSON.parse(down.stdout))).toEqual([]);
  });

  it('--input takes a ready envelope; --environment overrides its context', async () => {
    const envelope = {
      subject: { type: 'pipeline', id: 'release-ci' },
      action: { name: 'release.deploy' },
      resource: { type: 'model_release', id: 'm@1', properties: { risk_tier: 2 } },
      context: { environment: 'prod' },
    };
    writeFileSync(path.join(dir, 'envelope.json'), JSON.stringify(envelope));
    const run = await gate(['--input', 'envelope.json', '--environment', 'staging', '--format', 'json']);
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ outcome: 'deny', release: 'm@1', environment: 'staging' });
  });

  const undecided: [string, string[], Record<string, string | undefined>, RegExp][] = [
    ['no input', [], {}, /nothing to decide/],
    [
      'a missing file',
      ['--model-card', 'missing.yaml'],
      {},
      /cannot read the model card missing\.yaml: ENOENT/,
    ],
    ['a malformed YAML card', ['--model-card', 'broken.yaml'], {}, /not valid YAML/],
    ['an envelope that is not one', ['--input', 'release/model-card.yaml'], {}, /an envelope needs subject/],
    [
      '--input with files',
      ['--input', 'envelope.json', ...RELEASE_FILES.slice(0, 2)],
      {},
      /cannot be combined/,
    ],
    ['no token', [...RELEASE_FILES], { VERDICT_TOKEN: undefined }, /no Verdict to ask/],
    ['a refused token', [...RELEASE_FILES], { VERDICT_TOKEN: 'not-a-token' }, /401 invalid_token/],
  ];
  it.each(undecided)('exit 2, never 0: %s', async (_name, args, extra, reason) => {
    writeFileSync(path.join(dir, 'broken.yaml'), 'owner: [unclosed');
    const run = await gate(args, extra);
    expect(run.status).toBe(2);
    expect(run.stdout).toMatch(reason);
  });

  it('exit 2 for usage mistakes', async () => {
    expect((await gate(['--format', 'xml'])).status).toBe(2);
    expect((await gate(['--frobnicate'])).status).toBe(2);
  });

  it('exit 2 when Verdict answers a 5xx (the decision could not be recorded)', async () => {
    const failing = new MemoryRecorder();
    failing.failWith = new Error('audit down');
    const broken = await startVerdict({ recorder: failing });
    try {
      const run = await gate([...RELEASE_FILES, '--format', 'json'], {
        VERDICT_URL: broken.url,
        VERDICT_TOKEN: broken.token,
      });
      expect(run.status).toBe(2);
      expect(JSON.parse(run.stdout)).toMatchObject({
        outcome: 'undecided',
        reason: expect.stringContaining('503 audit_unavailable'),
      });
    } finally {
      await broken.close();
    }
  });

  it('github: the summary is appended, not overwritten', async () => {
    const summary = path.join(dir, 'step-summary.md');
    writeFileSync(summary, '# earlier step\n');
    const run = await gate([...RELEASE_FILES, '--format', 'github'], { GITHUB_STEP_SUMMARY: summary });
    expect(run.status).toBe(0);
    const md = readFileSync(summary, 'utf8');
    expect(md.startsWith('# earlier step\n## ✅ Release gate')).toBe(true);
    expect(md).toContain('| safety | 0.97 | ✅ met |');
  });
});
