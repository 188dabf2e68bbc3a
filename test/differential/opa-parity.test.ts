import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opaServerBundleDir } from '../../bench/opa-bundle.ts';
import type { App } from '../../src/http/app.ts';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';
import { generateEnvelopes } from '../support/envelopes.ts';
import { type OpaServer, startOpaServer } from '../support/opa-server.ts';

// Verdict's OPA-compatible route and `opa run --server` evaluate the same committed bundle on the
// same generated inputs; any difference in the result is a bug in Verdict's engine or data loading.
const COUNT = Number(process.env.DIFFERENTIAL_COUNT ?? 600);
const ENTRYPOINTS = ['verdict/decision', 'verdict/allow'];

let app: App;
let opa: OpaServer;
let headers: Record<string, string> = {};

beforeAll(async () => {
  const built = await buildTestApp({ bundlePath: DEFAULT_BUNDLE });
  app = built.app;
  headers = { authorization: `Bearer ${built.token(['decisions:evaluate'])}` };
  // OPA's CLI has no wasm runtime: it evaluates the Rego sources of the committed bundle, with the
  // bundle's own data and revision (see bench/opa-bundle.ts).
  opa = await startOpaServer(opaServerBundleDir(DEFAULT_BUNDLE));
});

afterAll(async () => {
  await app?.close();
  await opa?.stop();
});

describe('differential: Verdict /v1/data vs opa run --server', () => {
  it.each(ENTRYPOINTS)(
    `gives identical results on ${COUNT} generated envelopes for %s`,
    async (entrypoint) => {
      const envelopes = generateEnvelopes(COUNT, 20261126);
      expect(envelopes.length).toBe(COUNT);
      let allows = 0;
      let denies = 0;
      const mismatches: { index: number; verdict: unknown; opa: unknown }[] = [];
      for (const [index, input] of envelopes.entries()) {
        const theirs = (await fetch(`${opa.url}/v1/data/${entrypoint}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ input }),
        }).then((res) => res.json())) as { result?: unknown };
        const ours = await app.inject({
          method: 'POST',
          url: `/v1/data/${entrypoint}`,
          headers,
          payload: { input },
        });
        expect(ours.statusCode).toBe(200);
        const body = ours.json() as { result?: unknown; decision_id: string };
        expect(body.decision_id).toMatch(/^[0-9a-f-]{36}$/);
        if (!isDeepStrictEqual(body.result, theirs.result)) {
          mismatches.push({ index, verdict: body.result, opa: theirs.result });
        }
        const allowed =
          entrypoint === 'verdict/allow'
            ? theirs.result === true
            : (theirs.result as { allow?: boolean })?.allow;
        if (allowed) allows += 1;
        else denies += 1;
      }
      expect(mismatches.slice(0, 3)).toEqual([]);
      // The generator must exercise both outcomes, or the comparison proves little.
      expect(allows).toBeGreaterThan(COUNT / 20);
      expect(denies).toBeGreaterThan(COUNT / 20);
    },
    // 2 × COUNT sequential requests: room for a busy machine beyond the default 30 s.
    120_000,
  );
});
