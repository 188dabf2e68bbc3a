import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The header a client may name its request in; every response carries the request's id in it. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** A client's request id is used when it is 1 to 128 visible ASCII characters (no space, no control). */
const CLIENT_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The id of a request (Fastify's `genReqId`): the client's `X-Request-ID` when it is safe to log
 * and echo, else a new UUID — so a hostile header (control characters, megabytes, several values)
 * is never reflected raw and never reaches the logs.
 */
export function requestIdOf(raw: IncomingMessage): string {
  const sent = raw.headers[REQUEST_ID_HEADER];
  return typeof sent === 'string' && CLIENT_REQUEST_ID.test(sent) ? sent : randomUUID();
}
