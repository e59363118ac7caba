import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores and one real Ollama: two files at a time keeps the machine honest without starving the model.
    maxWorkers: 2,
    pool: 'forks',
    env: { LANCEDB_LOG: 'error' },
    projects: [
      { extends: true, test: { name: 'default', include: ['tests/**/*.test.{ts,tsx}'], exclude: ['tests/cluster/**'], globalSetup: ['tests/global-setup.ts'] } },
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
