/**
 * Reading form fields (application/x-www-form-urlencoded, parsed by @fastify/formbody): every field
 * is text, trimmed, bounded, without NUL (Postgres text cannot hold one). A field posted twice is
 * refused rather than guessed at.
 */

/** A form field that is missing, too long or malformed: a 400 the error page shows. */
export class FormError extends Error {
  override name = 'FormError';
  readonly kind = 'invalid';
  readonly code = 'invalid_form';
}

/** The posted fields, as the parser gave them. */
export type FormBody = Record<string, unknown> | undefined;

/** An optional text field: null when absent or blank. */
export function optionalField(body: FormBody, name: string, label: string, max: number): string | null {
  const value = body?.[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new FormError(`${label}: give one value`);
  const text = value.trim();
  if (text === '') return null;
  if (text.length > max) throw new FormError(`${label}: at most ${max} characters`);
  if (text.includes('\u0000')) throw new FormError(`${label}: contains a NUL character`);
  return text;
}

/** A required text field. */
export function requiredField(body: FormBody, name: string, label: string, max: number): string {
  const text = optionalField(body, name, label, max);
  if (text === null) throw new FormError(`${label} is required`);
  return text;
}
