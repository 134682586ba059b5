/**
 * A short run of the detection benchmark (`npm run bench:detection` runs the full one, 100 cuts): it must complete
 * on the kasteren home through the real ingest pipeline and rules and report numbers in range. No quality target
 * is asserted here; the figures come from the full run.
 */
import { describe, expect, it } from 'vitest';
import { ANCHOR, runDetection, runSimulatedDetection } from '../bench/detection.ts';

describe('detection benchmark, smoke run', () => {
  it('replays kasteren with 5 cuts and reports false alarms and detection times', async () => {
    const r = await runDetection({ cuts: 5, seed: 7 });
    expect(r.home).toBe('kasteren');
    expect(r.days).toBeGreaterThan(27);
    expect(r.days).toBeLessThan(29);
    expect(r.falseAlarmsPerHouseholdDay).toBeGreaterThanOrEqual(0);
    expect(r.falseAlarmsPerHouseholdDay).toBeLessThan(2);
    expect(r.detection.cuts).toBe(5);
    expect(r.detection.undetected).toBeGreaterThanOrEqual(0);
    expect(r.detection.undetected).toBeLessThanOrEqual(5);
    expect(r.detection.meanHours).toBeGreaterThan(0);
    expect(r.detection.medianHours).toBeGreaterThan(0);
    expect(r.detection.maxHours).toBeGreaterThanOrEqual(r.detection.meanHours);
    expect(r.detection.maxHours).toBeLessThan(21 * 24); // at most the time from day 7 to the end of the data
    expect(r.anchor).toEqual(ANCHOR);
    // the same seed gives the same figures
    expect(await runDetection({ cuts: 5, seed: 7 })).toEqual(r);
  }, 60_000);

  it('replays simulated lone-elderly homes (--simulated) with 2 cuts', async () => {
    const { result, cuts } = await runSimulatedDetection({ households: 2, days: 9, cuts: 2, seed: 3 });
    expect(result).toMatchObject({ home: 'simulated-2', days: 9, detection: { cuts: 2 } });
    expect(result.falseAlarmsPerHouseholdDay).toBeGreaterThanOrEqual(0);
    expect(result.falseAlarmsPerHouseholdDay).toBeLessThan(2);
    for (const c of cuts) expect(c.hours).toBeGreaterThan(0);
  }, 60_000);

  it('gives the same figures when every message goes over MQTT through the embedded broker (--mqtt)', async () => {
    const inProcess = await runDetection({ cuts: 2, seed: 11 });
    expect(await runDetection({ cuts: 2, seed: 11, mqtt: true })).toEqual(inProcess);
  }, 60_000);
});
