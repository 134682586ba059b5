/**
 * A short run of the 5k-device ingest benchmark (`npm run bench:ingest` runs the full one) with 200 devices of a
 * small street for 3 s: the script must work end to end, print the JSON line, and lose nothing the broker
 * acknowledged. No speed is asserted; figures come from the benchmark on a quiet machine.
 */
import { describe, expect, it } from 'vitest';
import type { Ingest5kReport } from '../bench/ingest5k.ts';
import { runTsx } from '../support/tsx-child.ts';

function runBench(env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return runTsx('test/bench/ingest5k.ts', [], env).then((r) => ({ code: r.code, out: r.stdout, err: r.stderr }));
}

describe('5k-device ingest benchmark, smoke run', () => {
  it('prints the JSON line with every acknowledged reading stored and both rates measured', async () => {
    const { code, out, err } = await runBench({
      BENCH_DEVICES: '200',
      BENCH_SECONDS: '3',
      BENCH_HOUSEHOLDS: '600',
    });
    expect(code, err.slice(-2000)).toBe(0);
    const last = out.trim().split('\n').pop()!;
    const r = JSON.parse(last) as Ingest5kReport;
    // the fields first, in its order
    expect(Object.keys(r).slice(0, 7)).toEqual([
      'devices',
      'ingest',
      'bareBroker',
      'ratio',
      'peakRssMb',
      'cpuPercent',
      'seconds',
    ]);
    expect(Object.keys(r.ingest)).toEqual(['readingsPerSecond', 'p50Ms', 'p99Ms', 'lost']);
    expect(r.devices).toBe(200);
    expect(r.ingest.lost).toBe(0);
    expect(r.rejected).toBe(0);
    expect(r.bareLost).toBe(0);
    expect(r.acked).toBeGreaterThan(0);
    expect(r.stored).toBe(r.acked);
    expect(r.ingest.readingsPerSecond).toBeGreaterThan(0);
    expect(r.bareBroker.messagesPerSecond).toBeGreaterThan(0);
    expect(r.ratio).toBeGreaterThan(0);
    expect(r.ingest.p50Ms).toBeGreaterThanOrEqual(0);
    expect(r.ingest.p99Ms).toBeGreaterThanOrEqual(r.ingest.p50Ms);
    expect(r.latencyExact).toBe(true);
    expect(r.peakRssMb).toBeGreaterThan(0);
    expect(r.cpuPercent).toBeGreaterThan(0);
    const memory = r.memory as { connectedRssMb: number; perDeviceKb: number };
    expect(memory.connectedRssMb).toBeGreaterThan(0);
    expect(Number.isFinite(memory.perDeviceKb)).toBe(true);
    // the table comes before the JSON line
    expect(out).toContain('GridWatch / bare aedes');
  }, 120_000);
});
