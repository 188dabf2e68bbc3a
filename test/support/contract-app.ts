import { afterAll, beforeAll, beforeEach } from 'vitest';
import type { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import type { App } from '../../src/http/app.ts';
import { buildTestApp } from './app.ts';
import { contractFixtureBundle } from './bundle.ts';

/** The app a test file shares, filled in before its first test. */
export interface ContractAppFixture {
  app: App;
  recorder: MemoryRecorder;
  /** `app.inject` with a token carrying every scope (auth itself is tested in test/auth/). */
  inject: Awaited<ReturnType<typeof buildTestApp>>['injectWithToken'];
}

/**
 * Registers the hooks of a test file that runs against the contract fixture bundle: one app for the
 * file (built before, closed after), and an empty, non-failing recorder before each test.
 */
export function useContractApp(options: { env?: Record<string, string> } = {}): ContractAppFixture {
  const fixture = {} as ContractAppFixture;
  beforeAll(async () => {
    const built = await buildTestApp({ bundlePath: contractFixtureBundle(), env: options.env });
    fixture.app = built.app;
    fixture.recorder = built.recorder as MemoryRecorder;
    fixture.inject = built.injectWithToken;
  });
  afterAll(async () => fixture.app?.close());
  beforeEach(() => {
    fixture.recorder.records.length = 0;
    fixture.recorder.failWith = null;
  });
  return fixture;
}
