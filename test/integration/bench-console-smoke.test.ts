/**
 * A short run of the console benchmark (`npm run bench:console` runs the full one: 200 consoles, 50 alerts a
 * second for 20 s): every console must receive every alert its scope covers. No speed is asserted.
 */
import { describe, expect, it } from 'vitest';
import { runConsoleBench } from '../bench/console.ts';

describe('console benchmark, smoke run', () => {
  it('delivers every alert to every console that may see it', async () => {
    const r = await runConsoleBench({ consoles: 10, alertsPerSecond: 20, seconds: 1 });
    expect(r.alerts).toBe(20);
    expect(r.lost).toBe(0);
    // 5 admin consoles see all 20, 5 grid-worker consoles see their grid's 10
    expect(r.deliveries).toBe(5 * 20 + 5 * 10);
    expect(Number.isFinite(r.latency.p99Ms)).toBe(true);
  }, 120_000);
});
