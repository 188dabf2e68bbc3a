/**
 * The console's one template mechanism: a tagged template, `html`, that escapes every value it
 * interpolates, and `raw()`, the one named way to put markup in without escaping (used only for
 * markup this folder wrote, never for a value that came from a request, a token or the database).
 * Why not a template engine: docs/decisions/0019-console.md.
 *
 *   html`<td>${approval.tool}</td>`          → the tool name as text, whatever it contains
 *   html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`   → fragments nest; arrays are joined
 *
 * Escaping covers text and *quoted* attribute values (`&`, `<`, `>`, `"`, `'`). A URL attribute is
 * built with `href()`, whose every interpolated part is percent-encoded into a console path, so a
 * `javascript:` (or any other scheme) can never be produced from data.
 */

const MARKUP = Symbol('verdict.console.markup');

/** Markup the console wrote (or escaped): the only thing `html` interpolates as is. */
export interface Markup {
  readonly [MARKUP]: true;
  readonly text: string;
  toString(): string;
}

function markup(text: string): Markup {
  return Object.freeze({ [MARKUP]: true as const, text, toString: () => text });
}

function isMarkup(value: unknown): value is Markup {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARKUP] === true;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** A string as HTML text (or a quoted attribute value). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/** One interpolated value: markup as is, arrays joined, nothing for null/undefined/false, else text. */
function render(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  if (isMarkup(value)) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** The console's template tag: every interpolation is escaped unless it is `Markup`. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Markup {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return markup(out);
}

/**
 * Markup passed through unescaped. Only for text the console itself wrote (a constant, or an asset
 * file shipped with Verdict): never for anything read from a request, a token or a store.
 */
export function raw(trustedMarkup: string): Markup {
  return markup(trustedMarkup);
}

/**
 * A console URL from a template: the literal parts are the console's, every interpolated value is
 * percent-encoded as one path segment or query value. The result always starts with `/console`.
 *
 *   href`/console/approvals/${approval.id}`
 */
export function href(strings: TemplateStringsArray, ...values: unknown[]): string {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++)
    out += encodeURIComponent(String(values[i])) + (strings[i + 1] ?? '');
  if (!out.startsWith('/console')) throw new Error(`console links stay in the console: ${out}`);
  return out;
}
