import { defineConfig } from 'vitest/config';

// Four projects: `unit` (fast, no servers), `integration` (real redis-server, PostgreSQL, MQTT, VictoriaMetrics,
// started by the tests themselves) `faults` (killed processes, lost stores, floods) and `browser` (the console in chromium). Unit tests sit next to the code as *.test.ts; integration ones as *.int.test.ts.
export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'devices/**/*.test.ts', 'simulators/**/*.test.ts', 'test/unit/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
          testTimeout: 10_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: [
            'src/**/*.int.test.ts',
            'test/integration/**/*.test.ts',
            'devices/**/*.int.test.ts',
            'simulators/**/*.int.test.ts',
          ],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          globalSetup: ['./test/support/global-setup.ts'],
          // two cores: servers started per file, so keep files from fighting over them
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          // faults and abuse (issue 8): services killed, stores taken away, floods; each prints what it did and lost
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          globalSetup: ['./test/support/global-setup.ts'],
          maxWorkers: 1,
          sequence: { groupOrder: 2 },
        },
      },
      {
        test: {
          // the console in Debian's chromium (playwright-core): slow, so one file at a time, last
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          testTimeout: 90_000,
          hookTimeout: 120_000,
          globalSetup: ['./test/support/global-setup.ts'],
          maxWorkers: 1,
          sequence: { groupOrder: 3 },
        },
      },
    ],
  },
});
