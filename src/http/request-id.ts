import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

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
  let id = assigned.get(raw);
  if (id === undefined) {
    const sent = raw.headers[REQUEST_ID_HEADER];
    id = typeof sent === 'string' && CLIENT_REQUEST_ID.test(sent) ? sent : randomUUID();
    assigned.set(raw, id);
  }
  return id;
}

/** The id given to each raw request, so the raw listener below and Fastify's `genReqId` agree. */
const assigned = new WeakMap<IncomingMessage, string>();

/**
 * Sets `X-Request-ID` on the raw response before Fastify sees the request. Fastify answers a
 * request that arrives while it closes (`return503OnClosing`) before any hook runs; without this,
 * that 503 would be the one answer without the id.
 */
export function echoRequestIdFirst(server: Server): void {
  server.prependListener('request', (raw: IncomingMessage, response: ServerResponse) => {
    response.setHeader(REQUEST_ID_HEADER, requestIdOf(raw));
  });
}
