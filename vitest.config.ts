import { defineConfig } from 'vitest/config';

// Tests run real parts (onnxruntime sessions, HTTP servers); on a 2-core machine two workers are enough.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
