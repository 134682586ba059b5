import { describe, expect, it } from 'vitest';
import { type Module, stopAll } from './module.ts';

const mod = (name: string, ms: number, log: string[]): Module => ({
  name,
  start: async () => {},
  stop: () =>
    new Promise((resolve) =>
      setTimeout(() => {
        log.push(name);
        resolve();
      }, ms),
    ),
});

describe('stopAll', () => {
  it('stops in reverse order and shares one budget: a hanging module does not starve the rest', async () => {
    const log: string[] = [];
    const errors: string[] = [];
    const started = Date.now();
    await stopAll(
      [mod('flush', 10, log), mod('hangs', 60_000, log), mod('http', 10, log)],
      300,
      (m) => errors.push(m.name),
      50,
    );
    const took = Date.now() - started;
    expect(log).toEqual(['http', 'flush']);
    expect(errors).toEqual(['hangs']);
    // 300 ms budget, then the last module's minimum: never the sum of per-module timeouts
    expect(took).toBeLessThan(1000);
  });
});
