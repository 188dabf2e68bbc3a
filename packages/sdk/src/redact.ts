/**
 * Applying Verdict's `redact` obligations: the decision says which spans of the content to hide,
 * the enforcement point hides them. A `redact` obligation is
 * `{type: "redact", control, reason, spans: [{path, start, end, kind}]}`: `path` is a JSON pointer
 * into the content (`""` for a string content, `/<i>/text` for a part of an array of
 * `{role, text}`), `start`/`end` JavaScript string (UTF-16) indexes into that text.
 */
import type { Obligation } from './wire.ts';

/** One span to redact. */
export interface RedactionSpan {
  path: string;
  start: number;
  end: number;
  kind: string;
}

/** The content of a `model.prompt`, `model.response` or `tool.result` decision. */
export type Content = string | { role?: string; text: string; [key: string]: unknown }[];

const KIND_RANK: Record<string, number> = { secret: 3, pii: 2, prompt_injection: 1 };

function isSpan(value: unknown): value is RedactionSpan {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  return (
    typeof s.path === 'string' &&
    Number.isInteger(s.start) &&
    Number.isInteger(s.end) &&
    typeof s.kind === 'string'
  );
}

/** The spans of every `redact` obligation of a decision. */
export function redactionSpans(obligations: readonly Obligation[]): RedactionSpan[] {
  return obligations
    .filter((o) => o.type === 'redact' && Array.isArray(o.spans))
    .flatMap((o) => (o.spans as unknown[]).filter(isSpan));
}

function redactText(text: string, spans: RedactionSpan[]): string {
  const sorted = spans
    .filter((s) => s.start >= 0 && s.end > s.start && s.start < text.length)
    .sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (let i = 0; i < sorted.length; ) {
    let { start, end, kind } = sorted[i]!;
    start = Math.max(start, at);
    i++;
    while (i < sorted.length && sorted[i]!.start < end) {
      end = Math.max(end, sorted[i]!.end);
      if ((KIND_RANK[sorted[i]!.kind] ?? 0) > (KIND_RANK[kind] ?? 0)) kind = sorted[i]!.kind;
      i++;
    }
    out += `${text.slice(at, start)}[REDACTED:${kind}]`;
    at = Math.min(end, text.length);
  }
  return out + text.slice(at);
}

/**
 * `content` with every span of the decision's `redact` obligations replaced by
 * `[REDACTED:<kind>]` (overlapping spans merge). The content is not changed in place; a content
 * the obligations do not touch comes back as is.
 */
export function applyRedactions<T extends Content>(content: T, obligations: readonly Obligation[]): T {
  const spans = redactionSpans(obligations);
  if (spans.length === 0) return content;
  if (typeof content === 'string')
    return redactText(
      content,
      spans.filter((s) => s.path === ''),
    ) as T;
  return content.map((part, i) => {
    const mine = spans.filter((s) => s.path === `/${i}/text`);
    return mine.length === 0 ? part : { ...part, text: redactText(part.text, mine) };
  }) as T;
}
