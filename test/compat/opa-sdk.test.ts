/**
 * The official `@open-policy-agent/opa` TypeScript SDK against Verdict and against `opa run --server`
 * on the same policies (test/fixtures/policies/opa-sdk: Verdict serves it compiled to wasm, OPA from
 * the Rego sources): `evaluate`, `evaluateDefault` and `evaluateBatch` (with and without fallback)
 * must give the same answers. Open-source OPA has no batch API (404), so its batch answers are the
 * SDK's fallback (one evaluate per input); Verdict must match them with and without fallback.
 */

import path from 'node:path';
import { OPAClient } from '@open-policy-agent/opa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { buildTestApp } from '../support/app.ts';
import { buildFixtureBundle } from '../support/bundle.ts';
import { type OpaServer, startOpaServer } from '../support/opa-server.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/policies/opa-sdk');
const ENTRYPOINTS = ['system/main', 'sdk/allow', 'sdk/result', 'sdk/conflict'];

let built: Awaited<ReturnType<typeof buildTestApp>>;
let opa: OpaServer;
let verdict: OPAClient;
let reference: OPAClient;

beforeAll(async () => {
  built = await buildTestApp({ bundlePath: buildFixtureBundle('opa-sdk', ENTRYPOINTS) });
  const address = await built.app.listen({ port: 0, host: '127.0.0.1' });
  verdict = new OPAClient(address, {
    headers: { authorization: `Bearer ${built.token(['decisions:evaluate'])}` },
  });
  opa = await startOpaServer(FIXTURE);
  reference = new OPAClient(opa.url);
}, 60_000);

afterAll(async () => {
  await built?.app.close();
  await opa?.stop();
});

/** What a call gave: its value, or the error's class and OPA code (messages differ by design). */
async function outcome(call: () => Promise<unknown>): Promise<unknown> {
  try {
    return { value: await call() };
  } catch (err) {
    const e = err as {
      name?: string;
      code?: string;
      data$?: { code?: string };
      httpMeta?: { response: Response };
    };
    return {
      error: e.name,
      code: e.code ?? e.data$?.code,
      status: e.httpMeta?.response.status,
    };
  }
}

/** The comparable part of a batch item: a value, or an error's status and code. */
function batchItem(item: unknown): unknown {
  if (item && typeof item === 'object' && 'code' in item) {
    const e = item as { code: string; httpStatusCode?: string };
    return { error: e.code, status: e.httpStatusCode };
  }
  return { value: item };
}

async function batchOutcome(
  client: OPAClient,
  policy: string,
  inputs: Record<string, Record<string, unknown>>,
  opts: { fallback?: boolean; rejectMixed?: boolean },
): Promise<unknown> {
  const result = await outcome(() => client.evaluateBatch(policy, inputs, opts));
  const value = (result as { value?: Record<string, unknown> }).value;
  if (!value) return result;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, batchItem(v)]));
}

const INPUTS = [
  { user: 'alice' },
  { user: 'guest', action: 'read' },
  { user: 'guest', action: 'write' },
  { user: 'mallory' },
  {},
];

describe('@open-policy-agent/opa SDK: Verdict answers as opa run --server does', () => {
  it('evaluate: values, paths below a rule, undefined documents and failing policies', async () => {
    const calls: [string, Record<string, unknown> | undefined][] = [];
    for (const input of INPUTS) {
      for (const policy of ['sdk/allow', 'sdk/result', 'sdk/result/roles', 'sdk/conflict', 'sdk/nothing']) {
        calls.push([policy, input]);
      }
    }
    calls.push(['sdk/conflict', { v: 'b' }], ['sdk/conflict', { v: 'a' }]);
    let errors = 0;
    let values = 0;
    for (const [policy, input] of calls) {
      const ours = await outcome(() => verdict.evaluate(policy, input));
      const theirs = await outcome(() => reference.evaluate(policy, input));
      expect(ours, `${policy} ${JSON.stringify(input)}`).toEqual(theirs);
      if ('error' in (theirs as object)) errors += 1;
      else if ((theirs as { value?: unknown }).value !== undefined) values += 1;
    }
    // The comparison covers values, undefined and a failing policy (500 internal_error).
    expect(values).toBeGreaterThan(10);
    expect(errors).toBe(1);
    expect(await outcome(() => verdict.evaluate('sdk/conflict', { v: 'b' }))).toMatchObject({
      error: 'ServerError',
      code: 'internal_error',
    });
  });

  it('evaluateDefault: the default decision (system/main), and 404 undefined_document when undefined', async () => {
    for (const input of [...INPUTS, undefined]) {
      const ours = await outcome(() => verdict.evaluateDefault(input));
      const theirs = await outcome(() => reference.evaluateDefault(input));
      expect(ours, JSON.stringify(input)).toEqual(theirs);
    }
    expect(await outcome(() => verdict.evaluateDefault({}))).toMatchObject({
      error: 'ClientError',
      code: 'undefined_document',
    });
    expect(await verdict.evaluateDefault({ user: 'alice' })).toEqual({ allow: true, user: 'alice' });
  });

  it('evaluateBatch with and without fallback gives what OPA gives through the fallback', async () => {
    const inputs = Object.fromEntries(INPUTS.map((input, i) => [`item-${i}`, input]));
    for (const policy of ['sdk/allow', 'sdk/result', 'sdk/nothing']) {
      const theirs = await batchOutcome(reference, policy, inputs, { fallback: true });
      // Open-source OPA has no batch endpoint: without fallback the SDK rejects.
      expect(await batchOutcome(reference, policy, inputs, {})).toMatchObject({ status: 404 });
      const recordsBefore = (built.recorder as MemoryRecorder).records.length;
      expect(await batchOutcome(verdict, policy, inputs, {}), policy).toEqual(theirs);
      // Verdict served the batch itself: one recorded decision per input.
      expect((built.recorder as MemoryRecorder).records.length - recordsBefore).toBe(INPUTS.length);
      expect(await batchOutcome(verdict, policy, inputs, { fallback: true }), policy).toEqual(theirs);
    }
  });

  it('evaluateBatch with mixed successes and errors (207), and rejectMixed', async () => {
    const inputs = { good: { v: 'a' }, bad: { v: 'b' }, plain: {} };
    const theirs = await batchOutcome(reference, 'sdk/conflict', inputs, { fallback: true });
    expect(theirs).toEqual({
      good: { value: 'a' },
      bad: { error: 'internal_error', status: '500' },
      plain: { value: 'a' },
    });
    expect(await batchOutcome(verdict, 'sdk/conflict', inputs, {})).toEqual(theirs);
    expect(await batchOutcome(verdict, 'sdk/conflict', inputs, { fallback: true })).toEqual(theirs);
    const rejected = await outcome(() =>
      verdict.evaluateBatch('sdk/conflict', inputs, { rejectMixed: true }),
    );
    const rejectedByOpa = await outcome(() =>
      reference.evaluateBatch('sdk/conflict', inputs, { rejectMixed: true, fallback: true }),
    );
    expect(rejected).not.toHaveProperty('value');
    expect(rejectedByOpa).not.toHaveProperty('value');
  });
});
