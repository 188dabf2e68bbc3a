/**
 * Generates the guardrails corpus, test/fixtures/guardrails/corpus.json: planted secrets and
 * personal data of every supported kind and known prompt-injection phrasings, each in a line of
 * ordinary text, and benign look-alikes (Luhn-invalid numbers, version strings, UUIDs,
 * documentation placeholders, base64 blobs, checksum-invalid tokens). Seeded: the same file on
 * every run, so test/guardrails/corpus.test.ts can prove it current.
 *
 *   node scripts/guardrails-corpus.ts           write the corpus
 *   node scripts/guardrails-corpus.ts --check   fail when the committed corpus is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  benignLookAlikes,
  INJECTION_SAMPLES,
  PII_FORMATS,
  prng,
  SECRET_FORMATS,
} from '../test/fixtures/guardrails/formats.ts';

export const CORPUS_PATH = path.resolve(import.meta.dirname, '../test/fixtures/guardrails/corpus.json');

/** One line of the corpus: what it plants (nothing for a negative). */
export interface CorpusSample {
  id: string;
  text: string;
  /** The planted value's detector and kind; absent for a benign look-alike. */
  planted?: { detector: string; kind: 'secret' | 'pii' | 'prompt_injection'; value: string };
  /** For a negative: what it imitates. */
  lookAlike?: string;
}

const TEMPLATES = [
  (v: string) => `Here is the value you asked for: ${v} — let me know if it works.`,
  (v: string) => `config:\n  value: ${v}\n  retries: 3`,
  (v: string) => `{"id": 17, "value": "${v}", "ok": true}`,
  (v: string) => `Le résumé (要約) mentionne ${v} 🙂 puis continue.`,
];

const PER_FORMAT = 25;

export function buildCorpus(): CorpusSample[] {
  const rand = prng(25);
  const samples: CorpusSample[] = [];
  let n = 0;
  const put = (text: string, rest: Omit<CorpusSample, 'id' | 'text'>) => {
    samples.push({ id: `s${String(n++).padStart(4, '0')}`, text, ...rest });
  };
  for (const [detector, make] of Object.entries(SECRET_FORMATS)) {
    for (let i = 0; i < PER_FORMAT; i++) {
      const value = make(rand, 1000 + n);
      put(TEMPLATES[i % TEMPLATES.length]!(value), { planted: { detector, kind: 'secret', value } });
    }
  }
  for (const [detector, make] of Object.entries(PII_FORMATS)) {
    for (let i = 0; i < PER_FORMAT; i++) {
      const value = make(rand);
      put(TEMPLATES[i % TEMPLATES.length]!(value), { planted: { detector, kind: 'pii', value } });
    }
  }
  for (const [detector, texts] of Object.entries(INJECTION_SAMPLES)) {
    for (const value of texts)
      put(`Result of the search:\n${value}\nEnd of page.`, {
        planted: { detector, kind: 'prompt_injection', value },
      });
  }
  benignLookAlikes(rand).forEach(({ label, text }, i) => {
    put(TEMPLATES[i % TEMPLATES.length]!(text), { lookAlike: label });
  });
  return samples;
}

export function corpusText(): string {
  return `${JSON.stringify({ generated_by: 'scripts/guardrails-corpus.ts', samples: buildCorpus() }, null, 1)}\n`;
}

if (import.meta.main) {
  const text = corpusText();
  if (process.argv.includes('--check')) {
    // Compared as JSON: biome formats the committed file.
    const committed = JSON.parse(readFileSync(CORPUS_PATH, 'utf8')) as unknown;
    if (JSON.stringify(committed) !== JSON.stringify(JSON.parse(text))) {
      console.error('test/fixtures/guardrails/corpus.json is stale: run node scripts/guardrails-corpus.ts');
      process.exit(1);
    }
    console.log('corpus is up to date');
  } else {
    writeFileSync(CORPUS_PATH, text);
    console.log(`wrote ${CORPUS_PATH}`);
  }
}
