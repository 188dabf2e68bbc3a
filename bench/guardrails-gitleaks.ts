/**
 * Verdict's secret detectors against gitleaks (the pinned version in .gitleaks-version) on the
 * guardrails corpus (test/fixtures/guardrails/corpus.json): each sample is written to its own file,
 * `gitleaks dir` scans them with its default rules, and Verdict's ContentScanner scans the same
 * texts. Compared on the secret formats both cover (gitleaks rule ids mapped onto Verdict's
 * detectors): what each finds of the planted secrets, and its false positives — a finding of a
 * shared rule that is not a planted secret of that format (on a look-alike, or on another sample).
 *
 *   node bench/guardrails-gitleaks.ts [--json]
 *
 * Target: Verdict finds every planted secret gitleaks finds, with no more false positives. gitleaks
 * is installed with `go install` into .tools/bin when missing (as scripts/tools.sh does for OPA).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildCorpus, type CorpusSample } from '../scripts/guardrails-corpus.ts';
import { ContentScanner } from '../src/guardrails/scan.ts';

const root = path.resolve(import.meta.dirname, '..');
const VERSION = readFileSync(path.join(root, '.gitleaks-version'), 'utf8').trim();
const TOOLS = process.env.VERDICT_TOOLS ?? path.join(root, '.tools');
const BINARY = path.join(TOOLS, 'bin', 'gitleaks');
const MODULE = 'github.com/zricethezav/gitleaks/v8';

/** gitleaks rule id → the Verdict detector of the same format (the secret formats both cover). */
export const SHARED_RULES: Record<string, string> = {
  'aws-access-token': 'aws-access-token',
  'gcp-api-key': 'gcp-api-key',
  'github-pat': 'github-token',
  'github-oauth': 'github-token',
  'github-app-token': 'github-token',
  'github-refresh-token': 'github-token',
  'github-fine-grained-pat': 'github-fine-grained-pat',
  'gitlab-pat': 'gitlab-pat',
  'slack-bot-token': 'slack-bot-token',
  'slack-user-token': 'slack-user-token',
  'slack-webhook-url': 'slack-webhook-url',
  'stripe-access-token': 'stripe-access-token',
  'openai-api-key': 'openai-api-key',
  'anthropic-api-key': 'anthropic-api-key',
  'npm-access-token': 'npm-access-token',
  'sendgrid-api-token': 'sendgrid-api-token',
  'huggingface-access-token': 'huggingface-access-token',
  'private-key': 'private-key',
  jwt: 'jwt',
};

/** The pinned gitleaks binary, installed with `go install` when missing or of another version. */
function gitleaks(): string {
  const current = existsSync(BINARY)
    ? spawnSync(BINARY, ['version'], { encoding: 'utf8' }).stdout.trim()
    : null;
  // A `go install` build reports no version ("version is set by build process"): the module cache
  // records it instead.
  const stamp = path.join(TOOLS, 'bin', '.gitleaks-version');
  if (current !== null && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === VERSION) return BINARY;
  process.stderr.write(`gitleaks: installing ${MODULE}@${VERSION} with go install into ${TOOLS}/bin\n`);
  mkdirSync(path.join(TOOLS, 'bin'), { recursive: true });
  execFileSync('go', ['install', `${MODULE}@${VERSION}`], {
    env: { ...process.env, GOBIN: path.join(TOOLS, 'bin'), GOFLAGS: '-mod=mod' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  writeFileSync(stamp, `${VERSION}\n`);
  return BINARY;
}

interface GitleaksFinding {
  RuleID: string;
  File: string;
  Secret: string;
  Match: string;
}

/** What one tool found: per sample id, the (detector, matched text) pairs on shared formats. */
type Found = Map<string, { detector: string; text: string }[]>;

function runGitleaks(samples: CorpusSample[]): { found: Found; otherRules: Record<string, number> } {
  const dir = mkdtempSync(path.join(tmpdir(), 'verdict-gitleaks-'));
  try {
    const corpusDir = path.join(dir, 'corpus');
    mkdirSync(corpusDir);
    for (const s of samples) writeFileSync(path.join(corpusDir, `${s.id}.txt`), s.text);
    const report = path.join(dir, 'report.json');
    const run = spawnSync(
      gitleaks(),
      [
        'dir',
        corpusDir,
        '--report-format',
        'json',
        '--report-path',
        report,
        '--no-banner',
        '--exit-code',
        '0',
        '--log-level',
        'error',
      ],
      { encoding: 'utf8' },
    );
    if (run.status !== 0) throw new Error(`gitleaks failed: ${run.stderr}`);
    const findings = JSON.parse(readFileSync(report, 'utf8')) as GitleaksFinding[];
    const found: Found = new Map();
    const otherRules: Record<string, number> = {};
    for (const f of findings) {
      const id = path.basename(f.File, '.txt');
      const detector = SHARED_RULES[f.RuleID];
      if (!detector) {
        otherRules[f.RuleID] = (otherRules[f.RuleID] ?? 0) + 1;
        continue;
      }
      found.set(id, [...(found.get(id) ?? []), { detector, text: f.Secret || f.Match }]);
    }
    return { found, otherRules };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runVerdict(samples: CorpusSample[]): Found {
  const scanner = new ContentScanner();
  const shared = new Set(Object.values(SHARED_RULES));
  const found: Found = new Map();
  for (const s of samples) {
    const hits = scanner
      .scan(s.text)
      .filter((f) => f.kind === 'secret' && shared.has(f.detector))
      .map((f) => ({ detector: f.detector, text: s.text.slice(f.start, f.end) }));
    if (hits.length > 0) found.set(s.id, hits);
  }
  return found;
}

/** Per tool: planted secrets found (by format), and false positives. */
function score(samples: CorpusSample[], found: Found) {
  const hitIds = new Set<string>();
  const byFormat: Record<string, { planted: number; found: number }> = {};
  let falsePositives = 0;
  const fpSamples: string[] = [];
  for (const s of samples) {
    const hits = found.get(s.id) ?? [];
    const planted = s.planted?.kind === 'secret' ? s.planted : null;
    if (planted) {
      byFormat[planted.detector] ??= { planted: 0, found: 0 };
      const entry = byFormat[planted.detector]!;
      entry.planted++;
      // The planted value, possibly with surrounding quotes a rule's match kept.
      const hit = hits.some(
        (h) =>
          h.detector === planted.detector &&
          (h.text === planted.value ||
            (h.text.includes(planted.value) && h.text.length <= planted.value.length + 2)),
      );
      if (hit) {
        entry.found++;
        hitIds.add(s.id);
      }
    }
    const wrong = hits.filter(
      (h) => !planted || h.detector !== planted.detector || !h.text.includes(planted.value.slice(0, 16)),
    );
    if (wrong.length > 0) {
      falsePositives += wrong.length;
      fpSamples.push(
        `${s.id} (${s.lookAlike ?? s.planted?.detector}): ${wrong.map((w) => w.detector).join(', ')}`,
      );
    }
  }
  return { hitIds, byFormat, falsePositives, fpSamples };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { json: { type: 'boolean', default: false } } });
  const samples = buildCorpus();
  const g = runGitleaks(samples);
  const gitleaksScore = score(samples, g.found);
  const verdictScore = score(samples, runVerdict(samples));
  const missedByVerdict = [...gitleaksScore.hitIds].filter((id) => !verdictScore.hitIds.has(id));
  const result = {
    gitleaks: VERSION,
    samples: samples.length,
    formats: Object.fromEntries(
      Object.keys(verdictScore.byFormat).map((d) => [
        d,
        {
          planted: verdictScore.byFormat[d]!.planted,
          verdict: verdictScore.byFormat[d]!.found,
          gitleaks: gitleaksScore.byFormat[d]?.found ?? 0,
        },
      ]),
    ),
    falsePositives: { verdict: verdictScore.falsePositives, gitleaks: gitleaksScore.falsePositives },
    falsePositiveSamples: { verdict: verdictScore.fpSamples, gitleaks: gitleaksScore.fpSamples },
    gitleaksOtherRules: g.otherRules,
    missedByVerdict,
    met: missedByVerdict.length === 0 && verdictScore.falsePositives <= gitleaksScore.falsePositives,
  };
  if (values.json) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    console.log(`gitleaks ${VERSION} vs Verdict on ${samples.length} corpus samples (shared secret formats)`);
    console.log('| format | planted | Verdict | gitleaks |\n|---|---|---|---|');
    for (const [d, r] of Object.entries(result.formats))
      console.log(`| ${d} | ${r.planted} | ${r.verdict} | ${r.gitleaks} |`);
    console.log(
      `false positives on shared formats: Verdict ${result.falsePositives.verdict}, gitleaks ${result.falsePositives.gitleaks}`,
    );
    for (const line of result.falsePositiveSamples.gitleaks.slice(0, 20))
      console.log(`  gitleaks FP: ${line}`);
    for (const line of result.falsePositiveSamples.verdict.slice(0, 20)) console.log(`  Verdict FP: ${line}`);
    console.log(
      `gitleaks findings of rules Verdict does not share: ${JSON.stringify(result.gitleaksOtherRules)}`,
    );
    console.log(
      `target (Verdict finds what gitleaks finds, with no more false positives): ${result.met ? 'met' : `MISSED (missed: ${missedByVerdict.join(', ')})`}`,
    );
  }
  if (!result.met) process.exitCode = 1;
}

if (import.meta.main) await main();
