/**
 * A refused grant operation: a stable `code` for the client and what kind of refusal it is. The
 * HTTP layer maps the kind to a status (invalid 400, forbidden 403, not_found 404, conflict 409).
 */
export class GrantError extends Error {
  override name = 'GrantError';
  readonly kind: 'invalid' | 'forbidden' | 'not_found' | 'conflict';
  readonly code: string;
  constructor(kind: GrantError['kind'], code: string, message: string) {
    super(message);
    this.kind = kind;
    this.code = code;
  }
}
