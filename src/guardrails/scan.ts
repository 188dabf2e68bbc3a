/**
 * Scanning the content of a `model.prompt`, `model.response` or `tool.result` envelope: the text is
 * `resource.properties.content`, a string or an array of `{role, text}` parts. Findings are what the
 * policy reads as `input.findings` (attached by the decision service, never by the client).
 */
import { createHash } from 'node:crypto';
import { type Detector, DetectorPlan, detectorsFor, type FindingKind, type Match } from './detectors.ts';

/** The actions whose content is scanned. */
export const CONTENT_ACTIONS: ReadonlySet<string> = new Set([
  'model.prompt',
  'model.response',
  'tool.result',
]);

/** What a detector found, as the policy reads it. */
export interface Finding {
  detector: string;
  kind: FindingKind;
  /** JSON pointer into the content: `""` for a string content, `/<i>/text` for a part. */
  path: string;
  /** `[start, end)` in JavaScript string (UTF-16 code unit) indexes of the text at `path`. */
  start: number;
  end: number;
  /**
   * Secrets only: SHA-256 (hex) of the whole matched text (UTF-8), so that an auditor holding a
   * leaked credential can find where it passed. Not kept for personal data, whose small value
   * spaces a hash would not hide.
   */
  sha256?: string;
}

/** A content part as the actions define it. */
interface Part {
  role?: unknown;
  text: string;
}

/**
 * The texts of a content value, in order, with their pointers; null when the content is neither a
 * string nor an array of objects with a string `text` (the policy denies it as malformed).
 */
export function contentTexts(content: unknown): { path: string; text: string }[] | null {
  if (typeof content === 'string') return [{ path: '', text: content }];
  if (!Array.isArray(content)) return null;
  const texts: { path: string; text: string }[] = [];
  for (let i = 0; i < content.length; i++) {
    const part = content[i] as Part | null;
    if (typeof part !== 'object' || part === null || typeof part.text !== 'string') return null;
    texts.push({ path: `/${i}/text`, text: part.text });
  }
  return texts;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Runs the detectors over content: precompiled once, shared by every decision. */
export class ContentScanner {
  readonly detectors: readonly Detector[];
  private readonly all: DetectorPlan;
  private readonly withoutInjection: DetectorPlan;
  /** Each detector's place in `detectors`: the findings' order. */
  private readonly rank: ReadonlyMap<Detector, number>;

  /** `regions`: the national identifiers to look for (default: every region Verdict knows). */
  constructor(options: { regions?: readonly string[] } = {}) {
    this.detectors = detectorsFor(options.regions);
    this.all = new DetectorPlan(this.detectors);
    this.withoutInjection = new DetectorPlan(this.detectors.filter((d) => d.kind !== 'prompt_injection'));
    this.rank = new Map(this.detectors.map((d, i) => [d, i]));
  }

  /**
   * Every finding in `content`, ordered by detector, then position. Each part of an array is
   * scanned on its own, and the parts are also scanned as one text (joined with nothing), so that a
   * secret split across two parts — two chunks of a streamed response — is still found; such a
   * match yields one finding per part it covers. A match of the joined text is kept only where no
   * part's own match by the same detector overlaps it: joined, the end of one part runs into the
   * start of the next (an email address takes in the next part's first word; a key followed by a
   * letter is no longer a key), so the parts' own matches are the ones that hold. Another
   * detector's match does not hide it: half a split key must not stay visible because the other
   * half also reads as an email address. `injection: false` skips the
   * prompt-injection detectors (the policy judges injections only in text from untrusted sources).
   */
  scan(content: unknown, options: { injection?: boolean } = {}): Finding[] {
    const texts = contentTexts(content);
    if (texts === null || texts.length === 0) return [];
    const plan = options.injection === false ? this.withoutInjection : this.all;
    if (texts.length === 1) return findingsOf(plan.matches(texts[0]!.text), texts, texts[0]!.text);
    const matches: Match[] = [];
    let offset = 0;
    for (const { text } of texts) {
      for (const m of plan.matches(text))
        matches.push({ ...m, start: m.start + offset, end: m.end + offset });
      offset += text.length;
    }
    const own = matches.length;
    const joined = texts.map((t) => t.text).join('');
    for (const m of plan.matches(joined)) {
      let overlaps = false;
      for (let k = 0; k < own && !overlaps; k++) {
        const o = matches[k]!;
        overlaps = o.detector === m.detector && m.start < o.end && m.end > o.start;
      }
      if (!overlaps) matches.push(m);
    }
    const rank = this.rank;
    matches.sort((a, b) => rank.get(a.detector)! - rank.get(b.detector)! || a.start - b.start);
    return findingsOf(matches, texts, joined);
  }
}

/** The findings of matches in `joined` (the texts one after another): one per part a match covers. */
function findingsOf(
  matches: readonly Match[],
  texts: readonly { path: string; text: string }[],
  joined: string,
): Finding[] {
  const findings: Finding[] = [];
  for (const { detector, start, end } of matches) {
    const hash = detector.kind === 'secret' ? sha256(joined.slice(start, end)) : undefined;
    let offset = 0;
    for (const { path, text } of texts) {
      const partEnd = offset + text.length;
      // An empty part inside a split match has nothing to redact: no finding for it.
      if (start < partEnd && end > offset && text.length > 0) {
        const finding: Finding = {
          detector: detector.name,
          kind: detector.kind,
          path,
          start: Math.max(start, offset) - offset,
          end: Math.min(end, partEnd) - offset,
        };
        if (hash !== undefined) finding.sha256 = hash;
        findings.push(finding);
      }
      offset = partEnd;
      if (offset >= end) break;
    }
  }
  return findings;
}
