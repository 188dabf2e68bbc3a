/**
 * The OpenAPI document is usable from Swagger UI: every request body carries an example (so "Try it
 * out" does not start blank), and that example passes the route's own schema; the health, metrics
 * and discovery routes are documented too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/app.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

let app: App;
let injectWithToken: Awaited<ReturnType<typeof buildTestApp>>['injectWithToken'];
let doc: { paths: Record<string, Record<string, Operation>> };

interface Operation {
  requestBody?: {
    content: Record<string, { example?: unknown; examples?: Record<string, { value: unknown }> }>;
  };
}

beforeAll(async () => {
  ({ app, injectWithToken } = await buildTestApp({ bundlePath: contractFixtureBundle(), allRoutes: true }));
  await app.ready();
  doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
});
afterAll(async () => app?.close());

/** Every operation with a JSON request body, and its first example. */
function jsonBodies(): { method: string; path: string; example: unknown }[] {
  const found: { method: string; path: string; example: unknown }[] = [];
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const media = operation.requestBody?.content['application/json'];
      if (!media) continue;
      const example = media.example ?? Object.values(media.examples ?? {})[0]?.value;
      found.push({ method, path, example });
    }
  }
  return found;
}

describe('OpenAPI document', () => {
  it('gives every JSON request body an example', () => {
    const bodies = jsonBodies();
    expect(bodies.length).toBeGreaterThan(10);
    expect(bodies.filter((b) => b.example === undefined).map((b) => `${b.method} ${b.path}`)).toEqual([]);
  });

  it('every example passes its route schema (no 400 invalid_request)', async () => {
    for (const { method, path, example } of jsonBodies()) {
      const url = path.replace(
        /\{[^}]+\}/g,
        'sha256:0000000000000000000000000000000000000000000000000000000000000000',
      );
      const response = await injectWithToken({
        method: method.toUpperCase() as 'POST',
        url,
        payload: example as object,
      });
      expect(response.json().code, `${method} ${path}: ${response.body}`).not.toBe('invalid_request');
    }
  });

  it('documents the health, metrics and discovery routes', () => {
    for (const path of [
      '/',
      '/health',
      '/health/live',
      '/health/ready',
      '/metrics',
      '/.well-known/authzen-configuration',
    ])
      expect(Object.keys(doc.paths[path] ?? {}), path).toContain('get');
  });
});
