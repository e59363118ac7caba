import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores and one real Ollama: two files at a time keeps the machine honest without starving the model.
    maxWorkers: 2,
    pool: 'forks',
    env: { LANCEDB_LOG: 'error' },
    // With --coverage (CI: .ci/run): V8's own counters over the product code that runs in the test
    // processes, every file counted whether a test loads it or not. Code that runs only in child
    // processes (spawned workers and APIs) or in the browser (web/) is not seen.
    coverage: {
      provider: 'v8',
      include: ['api/**/*.ts', 'platform/**/*.ts', 'workers/**/*.ts', 'shared/**/*.ts', 'sdk/**/*.{ts,tsx}'],
      reporter: ['text-summary', 'json-summary', 'html'],
      reportsDirectory: 'coverage',
      // A failing test still leaves the figure behind: CI prints it either way.
      reportOnFailure: true,
    },
    projects: [
      {
        extends: true,
        test: { name: 'default', include: ['tests/**/*.test.{ts,tsx}'], exclude: ['tests/cluster/**'], globalSetup: ['tests/global-setup.ts'] },
      },
      {
        // The spine and realtime suites again, on a 3-node Redis Cluster started for the run
        // (docs/deployment.md, "Redis Cluster"). Migrations touch no Redis: they run once, above.
        extends: true,
        test: {
          name: 'redis-cluster',
          include: ['tests/spine/**/*.test.ts', 'tests/cluster/**/*.test.ts'],
          exclude: ['tests/spine/migrations.test.ts'],
          globalSetup: ['tests/global-setup.ts', 'tests/cluster/global-setup.ts'],
          setupFiles: ['tests/cluster/env.ts'],
        },
      },
    ],
  },
});
