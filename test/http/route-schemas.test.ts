import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App, RouteSchema } from '../../src/http/app.ts';
import { ProblemV1 } from '../../src/http/wire/index.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

/** swagger-ui's own routes (static pages and assets of /docs): not Verdict's API. */
const THIRD_PARTY = /^\/docs(\/|$)/;

/** POST routes that take no JSON body: the upload is raw bundle bytes; a replay names its decision. */
const NO_JSON_BODY = new Set(['POST /v1/bundles', 'POST /v1/decisions/:id/replay']);

/** A TypeBox schema (a `Type.*` value, `Type.Unsafe` included), not a hand-written JSON schema. */
function isTypeBox(schema: unknown): boolean {
  return typeof schema === 'object' && schema !== null && ('~kind' in schema || '~unsafe' in schema);
}

/** A response entry: a TypeBox schema, or an OpenAPI `content` map of TypeBox schemas. */
function isTypedResponse(entry: unknown): boolean {
  if (isTypeBox(entry)) return true;
  if (typeof entry !== 'object' || entry === null || !('content' in entry)) return false;
  const content = entry.content as Record<string, { schema?: unknown }>;
  return Object.values(content).length > 0 && Object.values(content).every((c) => isTypeBox(c.schema));
}

/** What is wrong with a route's schema, if anything (empty: typed by the wire module). */
function untyped({ method, url, schema }: RouteSchema): string[] {
  const where = `${method} ${url}`;
  if (!schema) return [`${where}: no schema`];
  const problems: string[] = [];
  for (const part of ['body', 'querystring', 'params', 'headers'] as const) {
    if (schema[part] !== undefined && !isTypeBox(schema[part]))
      problems.push(`${where}: ${part} is not TypeBox`);
  }
  if ((url.includes(':') || url.includes('*')) && schema.params === undefined) {
    problems.push(`${where}: path parameters without a params schema`);
  }
  if (['POST', 'PUT', 'PATCH'].includes(method) && !NO_JSON_BODY.has(where) && schema.body === undefined) {
    problems.push(`${where}: no body schema`);
  }
  const response = schema.response as Record<string, unknown> | undefined;
  if (!response || Object.keys(response).length === 0) problems.push(`${where}: no response schema`);
  for (const [status, entry] of Object.entries(response ?? {})) {
    if (!isTypedResponse(entry)) problems.push(`${where}: response ${status} is not TypeBox`);
  }
  return problems;
}

let app: App;
beforeAll(async () => {
  ({ app } = await buildTestApp({ bundlePath: contractFixtureBundle(), allRoutes: true }));
  await app.ready();
});
afterAll(async () => app?.close());

describe('every route is typed by the V1 wire module (src/http/wire/)', () => {
  it('every route of the app declares TypeBox schemas: params, body, query and every response', () => {
    const routes = app.routeSchemas().filter((route) => !THIRD_PARTY.test(route.url));
    expect(routes.length).toBeGreaterThan(40);
    expect(routes.flatMap(untyped)).toEqual([]);
  });

  it('every route that answers JSON errors declares its 4xx and 5xx answers', () => {
    const missing = app
      .routeSchemas()
      .filter((route) => !THIRD_PARTY.test(route.url) && route.schema?.hide !== true)
      .filter((route) => {
        const response = route.schema?.response as Record<string, unknown> | undefined;
        return !response?.['4xx'] || !response['5xx'];
      })
      .map((route) => `${route.method} ${route.url}`);
    expect(missing).toEqual([]);
  });

  it('a planted untyped route is caught', () => {
    expect(untyped({ method: 'GET', url: '/v1/planted', schema: undefined })).toEqual([
      'GET /v1/planted: no schema',
    ]);
    const handWritten = { type: 'object', additionalProperties: true };
    expect(
      untyped({
        method: 'POST',
        url: '/v1/planted/:id',
        schema: { body: handWritten, response: { 200: ProblemV1 } },
      }),
    ).toEqual([
      'POST /v1/planted/:id: body is not TypeBox',
      'POST /v1/planted/:id: path parameters without a params schema',
    ]);
    expect(
      untyped({ method: 'GET', url: '/v1/planted', schema: { response: { 200: handWritten } } }),
    ).toEqual(['GET /v1/planted: response 200 is not TypeBox']);
  });
});
