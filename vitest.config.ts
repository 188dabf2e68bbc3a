import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // NOTE: 2-core machines; more workers only contend with Postgres and the servers under test.
    maxWorkers: 2,
    passWithNoTests: false,
  },
});
