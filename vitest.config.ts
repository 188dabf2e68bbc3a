import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Postgres and Redis for the integration tests: the env's, containers, or the local ones,
    // decided and started once per run (test/support/services.ts).
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // NOTE: 2-core machines; more workers only contend with Postgres and the servers under test.
    maxWorkers: 2,
    passWithNoTests: false,
  },
});
