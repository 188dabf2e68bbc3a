/**
 * Replacing spans of content text with `[REDACTED:<kind>]`: what the decision log stores instead of
 * the content the detectors found something in. (The SDK's `applyRedactions` does the same for an
 * enforcement point from a `redact` obligation; the SDK is standalone, so it has its own copy.)
 */
import type { FindingKind } from './detectors.ts';

/** A span of one text of the content. */
export interface Span {
  path: string;
  start: number;
  end: number;
  kind: FindingKind | string;
}

const KIND_RANK: Record<string, number> = { secret: 3, pii: 2, prompt_injection: 1 };

/** `text` with every span replaced; overlapping spans merge and are labelled by the gravest kind. */
export function redactText(text: string, spans: readonly Span[]): string {
  const sorted = spans
    .filter((s) => s.start >= 0 && s.end > s.start && s.start < text.length)
    .sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (let i = 0; i < sorted.length; ) {
    let { start, end, kind } = sorted[i]!;
    i++;
    while (i < sorted.length && sorted[i]!.start < end) {
      end = Math.max(end, sorted[i]!.end);
      if ((KIND_RANK[sorted[i]!.kind] ?? 0) > (KIND_RANK[kind] ?? 0)) kind = sorted[i]!.kind;
      i++;
    }
    end = Math.min(end, text.length);
    out += `${text.slice(at, start)}[REDACTED:${kind}]`;
    at = end;
  }
  return out + text.slice(at);
}

/**
 * A copy of `content` (a string, or an array of `{role, text}` parts) with every span replaced
 * (spans name their text by JSON pointer: `""` or `/<i>/text`). Anything else is returned as is.
 */
export function redactContent(content: unknown, spans: readonly Span[]): unknown {
  if (spans.length === 0) return content;
  if (typeof content === 'string')
    return redactText(
      content,
      spans.filter((s) => s.path === ''),
    );
  if (!Array.isArray(content)) return content;
  const byPath = new Map<string, Span[]>();
  for (const span of spans) byPath.set(span.path, [...(byPath.get(span.path) ?? []), span]);
  return content.map((part, i) => {
    const mine = byPath.get(`/${i}/text`);
    if (!mine || typeof part !== 'object' || part === null || typeof part.text !== 'string') return part;
    return { ...part, text: redactText(part.text, mine) };
  });
}
