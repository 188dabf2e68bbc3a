import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CORPUS_PATH, type CorpusSample } from '../../scripts/guardrails-corpus.ts';
import { type Detector, DetectorPlan, detectorsFor, type Match } from '../../src/guardrails/detectors.ts';
import { redactContent } from '../../src/guardrails/redact.ts';
import { ContentScanner } from '../../src/guardrails/scan.ts';
import {
  benignLookAlikes,
  INJECTION_SAMPLES,
  PII_FORMATS,
  prng,
  SECRET_FORMATS,
} from '../fixtures/guardrails/formats.ts';
import { ReferencePlan } from '../fixtures/guardrails/reference-plan.ts';

const ALL = detectorsFor();
const RESPONSE = ALL.filter((d) => d.kind !== 'prompt_injection');
const samples = (JSON.parse(readFileSync(CORPUS_PATH, 'utf8')) as { samples: CorpusSample[] }).samples;

const shown = (detectors: readonly Detector[], matches: Match[]) =>
  matches.map((m) => `${detectors.indexOf(m.detector)}:${m.detector.name}@${m.start}-${m.end}`);

const plans = new Map<readonly Detector[], { plan: DetectorPlan; reference: ReferencePlan }>();

/** The plan's matches and the reference's (the one-pass plan of 18741fc), side by side. */
function both(detectors: readonly Detector[], text: string) {
  let compiled = plans.get(detectors);
  if (!compiled) {
    compiled = { plan: new DetectorPlan(detectors), reference: new ReferencePlan(detectors) };
    plans.set(detectors, compiled);
  }
  return {
    plan: shown(detectors, compiled.plan.matches(text)),
    reference: shown(detectors, compiled.reference.matches(text)),
  };
}

/** Texts dense in what the detectors key on: digits, separators, capitals, literals, non-ASCII. */
function fuzzText(rand: () => number): string {
  const planted = [
    ...Object.values(SECRET_FORMATS).map((f) => f(rand, Math.floor(rand() * 1000))),
    ...Object.values(PII_FORMATS).map((f) => f(rand)),
    ...Object.values(INJECTION_SAMPLES).flat(),
    ...benignLookAlikes(rand).map((l) => l.text),
  ];
  const bits = [
    ...'0123456789',
    ' ',
    '-',
    '.',
    '(',
    ')',
    '+',
    '@',
    '_',
    ':',
    '!',
    '[',
    'A',
    'S',
    'J',
    'GB',
    'x',
    'sk-',
    'sk-ant-',
    '-----',
    'AKIA',
    'ghp_',
    'eyJ',
    '🙂',
    '返',
    '\n',
  ];
  let text = '';
  const parts = 5 + Math.floor(rand() * 40);
  for (let i = 0; i < parts; i++) {
    const r = rand();
    if (r < 0.25) text += planted[Math.floor(rand() * planted.length)]!;
    else if (r < 0.3) text += String(Math.floor(rand() * 10 ** (1 + Math.floor(rand() * 16))));
    else text += bits[Math.floor(rand() * bits.length)]!;
  }
  return text;
}

describe('the detector plan', () => {
  it('finds on the corpus exactly what the one-pass plan found, with and without injections', () => {
    for (const detectors of [ALL, RESPONSE, detectorsFor(['us'])])
      for (const sample of samples) {
        const { plan, reference } = both(detectors, sample.text);
        expect(plan, sample.id).toEqual(reference);
      }
  });

  it('finds on 3,000 generated texts exactly what the one-pass plan found', () => {
    const rand = prng(2026_12_07);
    let matched = 0;
    for (let i = 0; i < 3000; i++) {
      const text = fuzzText(rand);
      const { plan, reference } = both(ALL, text);
      expect(plan, JSON.stringify(text)).toEqual(reference);
      matched += plan.length;
    }
    // The texts do hold findings: the comparison is not of two empty lists.
    expect(matched).toBeGreaterThan(1000);
  });

  it('finds a value at the very start and the very end of the text', () => {
    const scanner = new ContentScanner();
    for (const value of [
      'AKIAQWERTYUIOPASDFGH',
      '4539 1488 0343 6467',
      '536-22-8726',
      '(415) 555-0132',
      '+49 30 901820',
      'GB82 WEST 1234 5698 7654 32',
      'JG 10 37 59 A',
      'dana.kowalski@corp-mail.io',
    ]) {
      for (const text of [value, `${value} tail`, `head ${value}`]) {
        const findings = scanner.scan(text, { injection: false });
        expect(
          findings.map((f) => text.slice(f.start, f.end)),
          text,
        ).toContain(value);
        expect(both(RESPONSE, text).plan).toEqual(both(RESPONSE, text).reference);
      }
    }
  });

  it('finds values keyed inside them that overlap (sk- in sk-ant-, ----- in ------BEGIN) and digit runs back to back', () => {
    const anthropic = `sk-ant-api03-${'aB3_xY9-'.repeat(11)}Qw1ErAA`;
    const key = `-----BEGIN RSA PRIVATE KEY-----\n${'MIIEpAIBAAKCAQEA'.repeat(5)}\n-----END RSA PRIVATE KEY-----`;
    const text = `(${anthropic} -${key} 1234, 4539 1488 0343 6467, 536-22-8726`;
    const { plan, reference } = both(RESPONSE, text);
    expect(plan).toEqual(reference);
    expect(plan.map((m) => m.split('@')[0]!.split(':')[1])).toEqual([
      'anthropic-api-key',
      'private-key',
      'payment-card',
      'us-ssn',
    ]);
  });

  it('tries literals found at one key character in the order they start', () => {
    // Keyed by their `_`, both literals are found at once, the later-starting one listed first.
    const detector: Detector = {
      name: 'test',
      kind: 'secret',
      starts: ['b_', 'ab_'],
      pattern: /(?:ab_|b_)[a-z]+/g,
    };
    const { plan, reference } = both([detector], 'ab_cd');
    expect(plan).toEqual(['0:test@0-5']);
    expect(plan).toEqual(reference);
  });

  it('reports UTF-16 indexes after surrogate pairs, and finds a value split across parts between them', () => {
    const content = [
      { role: 'assistant', text: '🙂🙂 card 4539 1488' },
      { role: 'assistant', text: ' 0343 6467 🙂 mail 返dana.kowalski@corp-mail.io🙂' },
    ];
    const findings = new ContentScanner().scan(content, { injection: false });
    const mail = content[1]!.text.indexOf('dana');
    expect(findings.map(({ detector, path, start, end }) => [detector, path, start, end])).toEqual([
      ['email-address', '/1/text', mail, mail + 'dana.kowalski@corp-mail.io'.length],
      ['payment-card', '/0/text', content[0]!.text.indexOf('4539'), content[0]!.text.length],
      ['payment-card', '/1/text', 0, ' 0343 6467'.length],
    ]);
    expect(redactContent(content, findings)).toEqual([
      { role: 'assistant', text: '🙂🙂 card [REDACTED:pii]' },
      { role: 'assistant', text: '[REDACTED:pii] 🙂 mail 返[REDACTED:pii]🙂' },
    ]);
  });

  it('finds a card behind a digit and any character but a decimal point; not a decimal fraction', () => {
    // A CSV row's comma or a tab after a numeric column, "2x": a card. "0.4539…": a number's
    // fraction (a float printed in full, Luhn-valid one time in ten), as the one-pass plan had it.
    for (const [text, start] of [
      ['17,4539148803436467', 3],
      ['17\t4539148803436467', 3],
      ['2x4539 1488 0343 6467', 2],
      ['no.4539148803436467', 3],
    ] as const) {
      const card = RESPONSE.findIndex((d) => d.name === 'payment-card');
      expect(both(RESPONSE, text).plan, text).toEqual([`${card}:payment-card@${start}-${text.length}`]);
      expect(both(RESPONSE, text).reference, text).toEqual(both(RESPONSE, text).plan);
    }
    for (const text of [
      '0.4539148803436467',
      'score 10.4539148803436467',
      '1 4539148803436467',
      '1-4539148803436467',
    ]) {
      expect(both(RESPONSE, text).plan, text).toEqual([]);
      expect(both(RESPONSE, text).reference, text).toEqual([]);
    }
  });
});
