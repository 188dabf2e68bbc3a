/**
 * The start banner's "try it" calls are a newcomer's first decisions: an allow, then a deny with its
 * reasons. They run here on the built-in bundle, with the answers the banner states.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BANNER_EXAMPLES,
  describeExpectation,
  devTokenBanner,
  resolveStartupKeys,
} from '../../src/auth/dev-token.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import type { App } from '../../src/http/app.ts';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

let app: App;
let injectWithToken: Awaited<ReturnType<typeof buildTestApp>>['injectWithToken'];
beforeAll(async () => {
  ({ app, injectWithToken } = await buildTestApp({ bundlePath: DEFAULT_BUNDLE }));
});
afterAll(async () => app.close());

describe('the start banner examples', () => {
  it('are an allow first, then a deny with reasons', () => {
    expect(BANNER_EXAMPLES.map((e) => e.expect.allow)).toEqual([true, false]);
    expect(BANNER_EXAMPLES[1]!.expect.controls.length).toBeGreaterThan(0);
  });

  it.each(BANNER_EXAMPLES.map((e) => [e.title, e] as const))(
    '%s: the built-in policies answer as the banner says',
    async (_title, example) => {
      const response = await injectWithToken({ method: 'POST', url: '/v1/decisions', payload: example.body });
      expect(response.statusCode).toBe(200);
      const decision = response.json();
      expect(decision.allow).toBe(example.expect.allow);
      const controls = [...new Set(decision.violations.map((v: { control: string }) => v.control))].sort();
      expect(controls).toEqual([...example.expect.controls].sort());
      const obligations = decision.obligations.map((o: { type: string }) => o.type).sort();
      expect(obligations).toEqual([...example.expect.obligations].sort());
    },
  );

  it('the banner prints both calls in order, each with its expected answer, on the address it listens on', () => {
    const config = resolveConfig({
      VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-banner-')),
      PORT: '8080',
    });
    const banner = devTokenBanner(config, resolveStartupKeys(config));
    const curls = banner.split('\n').filter((line) => line.startsWith('curl '));
    expect(curls).toHaveLength(BANNER_EXAMPLES.length);
    BANNER_EXAMPLES.forEach((example, i) => {
      const body = /-d '([^']*)'/.exec(curls[i]!)?.[1];
      expect(JSON.parse(body!)).toEqual(example.body);
      expect(curls[i]).toContain('http://127.0.0.1:8080/v1/decisions');
      const before = banner.slice(0, banner.indexOf(curls[i]!));
      expect(before.trimEnd().split('\n').at(-1)).toContain(`expect ${describeExpectation(example.expect)}`);
    });
    expect(banner).toContain('"allow": true');
    expect(banner).toContain('"allow": false; violations TOOL-002; obligation human_approval');
    expect(banner).toContain('listening on 127.0.0.1:8080 only');
  });

  it('warns when HOST opens the development service to other machines', () => {
    const config = resolveConfig({
      VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-banner-')),
      HOST: '0.0.0.0',
    });
    const banner = devTokenBanner(config, resolveStartupKeys(config));
    expect(banner).toContain('WARNING: listening on 0.0.0.0');
    expect(banner).toContain('http://127.0.0.1:');
  });
});
