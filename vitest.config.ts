import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.{ts,tsx}'],
    globalSetup: ['tests/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores and one real Ollama: two files at a time keeps the machine honest without starving the model.
    maxWorkers: 2,
    pool: 'forks',
    env: { LANCEDB_LOG: 'error' },
  },
});
