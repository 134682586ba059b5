/**
 * A short run of the alert benchmark (`npm run bench:alert` runs the full one: 1,000 households under background
 * load): every SOS must reach the SMS transport and the shortened escalation steps must fire. No speed is asserted.
 */
import { describe, expect, it } from 'vitest';
import { runAlertBench } from '../bench/alert.ts';

describe('alert benchmark, smoke run', () => {
  it('times each SOS to its first SMS and the later escalation steps', async () => {
    const r = await runAlertBench({
      households: 50,
      background: false,
      sosSpreadSeconds: 1,
      escalationStepSeconds: 2,
    });
    expect(r.missing).toBe(0);
    expect(r.sosToSms.n).toBe(50);
    for (const v of [r.sosToSms.p50Ms, r.sosToSms.p95Ms, r.sosToSms.p99Ms]) expect(Number.isFinite(v)).toBe(true);
    expect(r.sosToSms.p50Ms).toBeLessThanOrEqual(r.sosToSms.p99Ms);
    expect(r.escalationLateness.n).toBeGreaterThan(0);
    expect(Number.isFinite(r.escalationLateness.p99Ms)).toBe(true);
    expect(r.backgroundReadingsPerSecond).toBe(0);
  }, 120_000);
});
