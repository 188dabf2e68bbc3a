import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCorpus, CORPUS_PATH, type CorpusSample } from '../../scripts/guardrails-corpus.ts';
import type { FindingKind } from '../../src/guardrails/detectors.ts';
import { ContentScanner } from '../../src/guardrails/scan.ts';

const KINDS: FindingKind[] = ['secret', 'pii', 'prompt_injection'];

/** Recall and false-positive rate per kind of the detectors on the corpus. */
function measure(samples: CorpusSample[], scanner = new ContentScanner()) {
  const stats = Object.fromEntries(
    KINDS.map((kind) => [kind, { planted: 0, found: 0, negatives: 0, falsePositives: 0 }]),
  ) as Record<FindingKind, { planted: number; found: number; negatives: number; falsePositives: number }>;
  const missed: string[] = [];
  const flagged: string[] = [];
  for (const sample of samples) {
    const findings = scanner.scan(sample.text);
    const planted = sample.planted;
    if (planted) {
      stats[planted.kind].planted++;
      // Secrets and personal data: the exact value; an injection: any match of its detector.
      const hit = findings.some(
        (f) =>
          f.detector === planted.detector &&
          (planted.kind === 'prompt_injection' || sample.text.slice(f.start, f.end) === planted.value),
      );
      if (hit) stats[planted.kind].found++;
      else missed.push(`${sample.id} ${planted.detector}`);
    } else {
      for (const kind of KINDS) {
        stats[kind].negatives++;
        if (findings.some((f) => f.kind === kind)) {
          stats[kind].falsePositives++;
          flagged.push(`${sample.id} ${sample.lookAlike} → ${kind}`);
        }
      }
    }
  }
  const rates = Object.fromEntries(
    KINDS.map((kind) => {
      const s = stats[kind];
      return [kind, { recall: s.found / s.planted, falsePositiveRate: s.falsePositives / s.negatives, ...s }];
    }),
  );
  return { rates, missed, flagged };
}

const samples = (JSON.parse(readFileSync(CORPUS_PATH, 'utf8')) as { samples: CorpusSample[] }).samples;

describe('the guardrails corpus', () => {
  it('is the one scripts/guardrails-corpus.ts generates', () => {
    // Compared as JSON: biome formats the committed file.
    expect(samples).toEqual(buildCorpus());
  });

  it('plants every detector and holds every kind of look-alike', () => {
    const scanner = new ContentScanner();
    const planted = new Set(samples.flatMap((s) => (s.planted ? [s.planted.detector] : [])));
    expect([...planted].sort()).toEqual([...new Set(scanner.detectors.map((d) => d.name))].sort());
    const lookAlikes = new Set(samples.flatMap((s) => (s.lookAlike ? [s.lookAlike] : [])));
    for (const label of [
      'luhn-invalid card',
      'version string',
      'uuid',
      'documentation placeholder',
      'base64 blob',
    ])
      expect(lookAlikes).toContain(label);
  });

  it('recall is 1 and the false-positive rate 0 for every kind', () => {
    const { rates, missed, flagged } = measure(samples);
    console.log(JSON.stringify(rates));
    expect(missed).toEqual([]);
    expect(flagged).toEqual([]);
    for (const kind of KINDS) {
      expect(rates[kind]!.recall, kind).toBe(1);
      expect(rates[kind]!.falsePositiveRate, kind).toBe(0);
    }
  });
});
