import type { FastifyRequest } from 'fastify';
import { isObject } from '../json/values.ts';

import { ProblemError } from './problem.ts';

/** The parts of a decision request that reach the policy (caller and now are added by the server). */
export interface EnvelopeV1 {
  subject: { type: string; id: string; properties?: Record<string, unknown> };
  action: { name: string; properties?: Record<string, unknown> };
  resource: { type: string; id: string; properties?: Record<string, unknown> };
  context?: Record<string, unknown>;
}

/** A JSON object as a client sent it (a decision item, an entity, a batch's inputs). */
export type Item = Record<string, unknown>;

/** A name or id of an entity: 1 to 256 characters. */
export function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 256;
}

/**
 * Builds the policy envelope from a request item: only subject, action, resource and context pass;
 * a client-sent `caller` or `now` is dropped here. Throws a 400 problem naming the first bad field.
 */
export function envelopeOf(item: Item, where = ''): EnvelopeV1 {
  const fail = (field: string, message: string): never => {
    throw new ProblemError(400, 'invalid_request', `${where}${field} ${message}`, {
      errors: [{ path: `${where}/${field}`.replace(/\/+/g, '/'), message }],
    });
  };
  const { subject, action, resource, context } = item;
  if (!isObject(subject)) fail('subject', 'must be an object');
  if (!isObject(action)) fail('action', 'must be an object');
  if (!isObject(resource)) fail('resource', 'must be an object');
  const s = subject as Item;
  const a = action as Item;
  const r = resource as Item;
  if (!nonEmptyString(s.type)) fail('subject/type', 'must be a non-empty string');
  if (!nonEmptyString(s.id)) fail('subject/id', 'must be a non-empty string');
  if (!nonEmptyString(a.name)) fail('action/name', 'must be a non-empty string');
  if (!nonEmptyString(r.type)) fail('resource/type', 'must be a non-empty string');
  if (!nonEmptyString(r.id)) fail('resource/id', 'must be a non-empty string');
  for (const [name, part] of [
    ['subject', s],
    ['action', a],
    ['resource', r],
  ] as const) {
    if (part.properties !== undefined && !isObject(part.properties))
      fail(`${name}/properties`, 'must be an object');
  }
  if (context !== undefined && !isObject(context)) fail('context', 'must be an object');
  const envelope: EnvelopeV1 = {
    subject: s as EnvelopeV1['subject'],
    action: a as EnvelopeV1['action'],
    resource: r as EnvelopeV1['resource'],
  };
  if (context !== undefined) envelope.context = context as Record<string, unknown>;
  return envelope;
}

/** AuthZEN-style defaults: each top-level key of the item replaces the default's. */
export function withDefaults<T extends Item>(item: T, defaults: T | undefined): T {
  return defaults ? { ...defaults, ...item } : item;
}

const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/;

/** The W3C trace id of the request, when it sent a valid `traceparent`. */
export function traceIdOf(request: Pick<FastifyRequest, 'headers'>): string | null {
  const header = request.headers.traceparent;
  if (typeof header !== 'string') return null;
  const match = TRACEPARENT.exec(header.trim());
  return match && match[1] !== '0'.repeat(32) ? match[1]! : null;
}
