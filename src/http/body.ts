import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { scan as scanForPrototypeKeys } from 'secure-json-parse';
import type { Config } from '../config/resolve-config.ts';
import { ProblemError } from './problem.ts';

/** Limits on one client-sent JSON document (a body, or the data API's `input` query parameter). */
export type JsonLimits = Config['json'];

/** `application/json` and every structured `+json` type, with or without parameters. */
const JSON_SUFFIX_TYPE = /^application\/[\w!#$%&'*+.^`|~-]+\+json(?:\s*;|$)/;
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?/i;
const UTF8_NAMES = new Set(['utf-8', 'utf8']);
const BOM = 0xfeff;

const PROTOTYPE_SCAN = { protoAction: 'error', constructorAction: 'error' } as const;

function refuse(code: string, detail: string): never {
  throw new ProblemError(400, code, detail);
}

/**
 * Parses client JSON text and enforces the limits. Returns the value; throws a 400 ProblemError with
 * a stable code (`malformed_json`, `forbidden_key`, `too_deep`, `too_many_keys`, `string_too_long`,
 * `unsafe_number`, `invalid_string`) otherwise.
 *
 * Cost: V8's native JSON.parse, then ONE iterative walk over the result (no recursion, so no stack
 * overflow on deep input; V8's parser is iterative too). secure-json-parse's scan — the check
 * Fastify's own parser uses — runs only when the walk met a `__proto__` or `constructor` key, so a
 * typical body pays nothing for it.
 */
export function parseJsonText(text: string, limits: JsonLimits, what = 'the body'): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    refuse('malformed_json', `${what} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null) {
    checkScalar(value, limits, text.includes('\\u'));
    return value;
  }
  const suspect = walk(value, limits, text.includes('\\u'));
  if (suspect) {
    try {
      scanForPrototypeKeys(value, PROTOTYPE_SCAN);
    } catch {
      refuse('forbidden_key', `${what} contains a forbidden key (__proto__ or constructor.prototype)`);
    }
  }
  return value;
}

function checkScalar(value: unknown, limits: JsonLimits, escapes: boolean): void {
  if (typeof value === 'string') checkString(value, limits, escapes);
  else if (typeof value === 'number') checkNumber(value);
}

function checkString(value: string, limits: JsonLimits, escapes: boolean): void {
  if (value.length > limits.maxStringLength) {
    refuse('string_too_long', `a string is longer than ${limits.maxStringLength} characters`);
  }
  // NOTE: raw NUL and unpaired surrogates cannot survive UTF-8 validation and JSON.parse; only a
  // `\u` escape can produce them, so strings are inspected only when the text had one. Postgres
  // jsonb refuses both, so letting them in would fail the decision's audit record (and the group
  // commit it shares with other requests).
  if (escapes && (!value.isWellFormed() || value.includes('\u0000'))) {
    refuse('invalid_string', 'a string contains NUL or an unpaired UTF-16 surrogate');
  }
}

function checkNumber(value: number): void {
  // JSON.parse rounds silently: any integer beyond 2^53 (and anything that overflowed to Infinity)
  // no longer says what the client sent. Every double with |n| >= 2^53 is an integer, so this also
  // catches 1e300 and integers written with more digits than a double holds.
  if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) {
    refuse('unsafe_number', 'a number is beyond the safe integer range (|n| > 2^53 - 1)');
  }
}

/** Walks the parsed document once; returns true when it met a key that needs the prototype scan. */
function walk(root: object, limits: JsonLimits, escapes: boolean): boolean {
  const { maxDepth, maxKeys } = limits;
  const nodes: object[] = [root];
  const depths: number[] = [1];
  let keys = 0;
  let suspect = false;
  while (nodes.length > 0) {
    const node = nodes.pop()!;
    const depth = depths.pop()!;
    if (depth > maxDepth) refuse('too_deep', `the JSON nests deeper than ${maxDepth} levels`);
    const children: unknown[] = Array.isArray(node) ? node : [];
    if (!Array.isArray(node)) {
      for (const key in node) {
        // NOTE: JSON.parse makes own data properties only, and for…in over them never reaches the
        // prototype; `__proto__` here is an own key, which is exactly what must be refused.
        if (++keys > maxKeys) refuse('too_many_keys', `the JSON has more than ${maxKeys} keys`);
        if (key === '__proto__' || key === 'constructor') suspect = true;
        checkString(key, limits, escapes);
        children.push((node as Record<string, unknown>)[key]);
      }
    }
    for (const child of children) {
      if (typeof child === 'object' && child !== null) {
        nodes.push(child);
        depths.push(depth + 1);
      } else if (typeof child === 'string') {
        checkString(child, limits, escapes);
      } else if (typeof child === 'number') {
        checkNumber(child);
      }
    }
  }
  return suspect;
}

/**
 * Reads the raw bytes of a JSON body into text: refuses a charset other than UTF-8 (415) and bytes
 * that are not UTF-8 (400 `invalid_utf8`), and drops a UTF-8 byte order mark.
 */
export function decodeJsonBody(bytes: Buffer, contentType: string | undefined): string {
  const charset = contentType === undefined ? undefined : CHARSET.exec(contentType)?.[1];
  if (charset !== undefined && !UTF8_NAMES.has(charset.toLowerCase())) {
    throw new ProblemError(415, 'unsupported_media_type', 'JSON bodies must be UTF-8 (charset=utf-8)');
  }
  if (bytes.length === 0) refuse('empty_body', 'the JSON body is empty');
  if (!isUtf8(bytes)) refuse('invalid_utf8', 'the body is not valid UTF-8');
  const text = bytes.toString('utf8');
  return text.charCodeAt(0) === BOM ? text.slice(1) : text;
}

/**
 * How much of a body refused as too large is still read, and discarded, before the 413 is sent:
 * at most `maxBytes` (a declared Content-Length beyond it is not read at all) and `maxMs`.
 */
export const REFUSED_BODY_DRAIN = { maxBytes: 16 * 1024 * 1024, maxMs: 10_000 };

/**
 * Reads and discards what the client is still sending of a refused body, within the bounds, and
 * resolves when it ended (or a bound was reached, or the client went away).
 *
 * NOTE: a refusal closes the connection (Fastify: the client may still be sending). Closing a socket
 * with unread bytes makes the kernel send a reset, and a client whose reset arrives before it read
 * the answer — most clients, while still uploading — sees a broken pipe instead of the 413. Draining
 * first (nginx's lingering close, bounded the same way) lets the answer through.
 */
export function drainRefusedBody(raw: IncomingMessage, bounds = REFUSED_BODY_DRAIN): Promise<void> {
  const declared = Number(raw.headers['content-length']);
  if (raw.complete || raw.destroyed || declared > bounds.maxBytes) return Promise.resolve();
  return new Promise((resolve) => {
    let read = 0;
    const done = () => {
      clearTimeout(timer);
      raw.off('data', onData).off('end', done).off('close', done).off('error', done);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > bounds.maxBytes) done();
    };
    const timer = setTimeout(done, bounds.maxMs);
    raw.on('data', onData).once('end', done).once('close', done).once('error', done);
    raw.resume();
  });
}

/**
 * A JSON body as every route reads it (the parser below, and the decision fast path): UTF-8 text
 * (decodeJsonBody), parsed within the limits (parseJsonText), and a JSON object (`body_not_object`).
 */
export function parseJsonBody(
  bytes: Buffer,
  contentType: string | undefined,
  limits: JsonLimits,
): Record<string, unknown> {
  const value = parseJsonText(decodeJsonBody(bytes, contentType), limits);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    refuse('body_not_object', 'the JSON body must be an object');
  }
  return value as Record<string, unknown>;
}

/**
 * Replaces Fastify's JSON and text parsers with the one JSON parser: application/json and every
 * `+json` type; anything else is 415. A body must be a JSON object (`body_not_object`). A body
 * refused as too large (this parser's limit or a route's, on every route) is drained before the
 * 413 is sent (`drainRefusedBody`).
 */
export function registerJsonBodyParser(app: FastifyInstance, limits: JsonLimits): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  const handler = (
    request: FastifyRequest,
    body: string | Buffer,
    done: (e: Error | null, v?: unknown) => void,
  ) => {
    try {
      done(null, parseJsonBody(body as Buffer, request.headers['content-type'], limits));
    } catch (err) {
      done(err as Error);
    }
  };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, handler);
  app.addContentTypeParser(JSON_SUFFIX_TYPE, { parseAs: 'buffer' }, handler);
  // NOTE: onError hooks run before any error handler (the app's and the data and AuthZEN scopes').
  app.addHook('onError', async (request, _reply, error) => {
    if ((error as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      await drainRefusedBody(request.raw);
  });
}
