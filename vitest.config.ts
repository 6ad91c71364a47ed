import { defineConfig } from 'vitest/config';

const shared = {
  // NOTE: chDB allows one engine per process; forks give every test file its own process.
  pool: 'forks' as const,
  testTimeout: 60_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    // Starts Kafka, the schema registry, Redis and the ClickHouse gateway when a test file needs them.
    globalSetup: ['test/support/global-setup.ts'],
    projects: [
      {
        test: {
          ...shared,
          name: 'main',
          // NOTE: two files at a time on this 2-core box (vitest's default is cores − 1 = one):
          // the integration files spend most of their time waiting on the engine (part cleanup,
          // receipts), so the project ran in 549 s instead of ≈ 1,050 s, all files passing.
          maxWorkers: 2,
          include: ['libs/**/*.test.ts', 'services/**/*.test.ts', 'test/**/*.test.ts', 'scripts/**/*.test.ts'],
          exclude: ['node_modules/**', 'dist/**', 'data/**', 'test/fleet/**', 'test/browser/**'],
        },
      },
      {
        // TRICKY: the fleet tests stop and restart the shared Kafka broker and load both cores;
        // they run after every other test file has finished, one file at a time.
        test: {
          ...shared,
          name: 'fleet',
          include: ['test/fleet/**/*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        // NOTE: the web tag's long-task check measures the page's main thread: it runs alone,
        // after everything else, so other test files' CPU use cannot create long tasks in it.
        test: {
          ...shared,
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
