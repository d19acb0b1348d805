import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 120_000,
    // Timing assertions need the CPU: don't run files against each other on 2 cores.
    fileParallelism: false,
  },
});
