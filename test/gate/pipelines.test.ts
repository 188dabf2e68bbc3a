/**
 * The example pipelines in deploy/ci/ run: the exact `verdict gate release` command line of each file
 * is run, in a workspace holding deploy/ci/release/, against a live Verdict — allowed (exit 0),
 * denied (exit 1, with its report), and with Verdict unreachable (exit 2).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort } from '../support/net.ts';
import { junitErrors, root, runVerdict, startVerdict } from './support.ts';

/** Every string in a YAML document. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

/** The gate command lines of a pipeline file, as words (no quoting is used in them). */
function gateCommands(file: string): string[][] {
  let text: string;
  if (file === 'README.md') {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const start = readme.indexOf('### In a pipeline: `verdict gate release`');
    const block = /```yaml\n([\s\S]*?)```/.exec(readme.slice(start));
    if (start < 0 || !block) throw new Error('README.md has no GitHub Actions snippet');
    text = block[1]!.replace(/^ {6}/gm, '');
  } else {
    text = readFileSync(path.join(root, 'deploy/ci', file), 'utf8');
  }
  const doc = parse(text);
  return strings(doc)
    .flatMap((s) => s.replace(/\\\n\s*/g, ' ').split('\n'))
    .map((line) => line.trim())
    .filter((line) => line.startsWith('verdict gate release'))
    .map((line) => line.split(/\s+/));
}

let verdict: Awaited<ReturnType<typeof startVerdict>>;
let work: string;

beforeAll(async () => {
  verdict = await startVerdict();
  work = mkdtempSync(path.join(tmpdir(), 'verdict-gate-ci-'));
});
afterAll(async () => {
  await verdict?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A workspace with the example release, optionally changed by `edit`. */
function workspace(name: string, edit?: (dir: string) => void): string {
  const dir = path.join(work, name);
  cpSync(path.join(root, 'deploy/ci/release'), path.join(dir, 'release'), { recursive: true });
  edit?.(dir);
  return dir;
}

const failingRelease = (dir: string) => {
  writeFileSync(
    path.join(dir, 'release/evals.json'),
    '{"metrics": {"safety": 0.5, "jailbreak_resistance": 0.93, "toxicity": 0.01}}',
  );
  writeFileSync(path.join(dir, 'release/incidents.json'), '[{"id": "INC-7", "severity": "sev1"}]');
};

describe.each(['github-actions.yml', 'gitlab-ci.yml', 'azure-pipelines.yml', 'README.md'])(
  'the gate command of %s',
  (file) => {
    const commands = gateCommands(file);

    it('has exactly one gate command, for prod', () => {
      expect(commands).toHaveLength(1);
      expect(commands[0]!.join(' ')).toContain('--environment prod');
    });

    it('passes an allowed release (exit 0)', async () => {
      const dir = workspace(`${file}-allow`);
      const summary = path.join(dir, 'summary.md');
      const env = {
        ...process.env,
        VERDICT_URL: verdict.url,
        VERDICT_TOKEN: verdict.token,
        GITHUB_STEP_SUMMARY: summary,
      };
      writeFileSync(summary, '');
      const run = await runVerdict(commands[0]!, { cwd: dir, env });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      if (file === 'github-actions.yml' || file === 'README.md') {
        expect(run.stdout).toMatch(/^::notice title=verdict gate::release support-llm@2\.3\.0 allowed/m);
        expect(readFileSync(summary, 'utf8')).toContain('Release gate: `support-llm@2.3.0` allowed');
      } else {
        const report = readFileSync(path.join(dir, 'verdict-gate.xml'), 'utf8');
        expect(junitErrors(report)).toEqual([]);
        expect(report).toContain('failures="0"');
      }
    });

    it('fails a denied release (exit 1) and says which controls failed', async () => {
      const dir = workspace(`${file}-deny`, failingRelease);
      const summary = path.join(dir, 'summary.md');
      writeFileSync(summary, '');
      const env = {
        ...process.env,
        VERDICT_URL: verdict.url,
        VERDICT_TOKEN: verdict.token,
        GITHUB_STEP_SUMMARY: summary,
      };
      const run = await runVerdict(commands[0]!, { cwd: dir, env });
      expect(run.status).toBe(1);
      if (file === 'github-actions.yml' || file === 'README.md') {
        expect(run.stdout).toMatch(
          /^::error file=release\/evals\.json,title=REL-002 [^:]*::REL-002: evaluation below the tier threshold: safety/m,
        );
        expect(run.stdout).toMatch(/^::error file=release\/incidents\.json,title=REL-006 /m);
        const md = readFileSync(summary, 'utf8');
        expect(md).toContain('| REL-002 evaluation thresholds for the risk tier | ❌ failed |');
        expect(md).toContain('| safety | 0.5 | ❌ below min 0.95 |');
        expect(md).toMatch(/Decision: `[0-9a-f-]{36}`/);
        expect(md).toContain('Waivers applied: none');
      } else {
        const report = readFileSync(path.join(dir, 'verdict-gate.xml'), 'utf8');
        expect(junitErrors(report)).toEqual([]);
        expect(report).toContain('failures="2"');
        expect(report).toContain('type="REL-002"');
        expect(report).toContain('type="REL-006"');
      }
    });

    it('fails closed when Verdict cannot be reached (exit 2)', async () => {
      const dir = workspace(`${file}-down`);
      const summary = path.join(dir, 'summary.md');
      writeFileSync(summary, '');
      const env = {
        ...process.env,
        VERDICT_URL: `http://127.0.0.1:${await freePort()}`,
        VERDICT_TOKEN: verdict.token,
        GITHUB_STEP_SUMMARY: summary,
      };
      const run = await runVerdict(commands[0]!, { cwd: dir, env });
      expect(run.status).toBe(2);
      if (file === 'github-actions.yml' || file === 'README.md') {
        expect(run.stdout).toMatch(/^::error title=verdict gate%3A could not decide::cannot reach Verdict/m);
        expect(readFileSync(summary, 'utf8')).toContain('could not be decided');
      } else {
        const report = readFileSync(path.join(dir, 'verdict-gate.xml'), 'utf8');
        expect(junitErrors(report)).toEqual([]);
        expect(report).toContain('errors="1"');
      }
    });
  },
);
