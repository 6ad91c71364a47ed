import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['libs/**/*.test.ts', 'services/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'data/**'],
    // NOTE: chDB allows one engine per process; forks give every test file its own process.
    pool: 'forks',
    // Starts Kafka, the schema registry, Redis and the ClickHouse gateway when a test file needs them.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
