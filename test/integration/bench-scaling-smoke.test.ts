/**
 * A short run of the scaling benchmark (`npm run bench:scaling` runs the full one): 200 devices of a small
 * community for 3 s, through Debian's mosquitto to one and then two service processes. The script must work end to
 * end, print its JSON line, and lose nothing the broker acknowledged (counted exactly in the nodes' stores). No
 * speed is asserted; figures come from the benchmark on a quiet machine.
 */
import { describe, expect, it } from 'vitest';
import { runTsx } from '../support/tsx-child.ts';

describe('scaling benchmark, smoke run', () => {
  it('prints the JSON line with both runs measured and nothing acknowledged lost', async () => {
    const { code, stdout, stderr } = await runTsx('test/bench/scaling.ts', [], {
      BENCH_DEVICES: '200',
      BENCH_SECONDS: '3',
      BENCH_HOUSEHOLDS: '600',
    });
    expect(code, stderr.slice(-2000)).toBe(0);
    const r = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(r.devices).toBe(200);
    expect(r.bareBroker.messagesPerSecond).toBeGreaterThan(0);
    for (const run of [r.oneNode, r.twoNodes]) {
      expect(run.readingsPerSecond).toBeGreaterThan(0);
      expect(run.expected).toBeGreaterThan(0);
      expect(run.lost).toBe(0);
      expect(run.stored).toBe(run.expected);
    }
    expect(r.twoNodes.cpuPercent).toHaveLength(2);
    expect(r.speedup).toBeGreaterThan(0);
  }, 240_000);
});
