import { describe, expect, it } from 'vitest';
import { mulberry32 } from './random.ts';
import {
  ACTIVITY_EFFECTS,
  activityAt,
  HOUR_MS,
  localDay,
  localHour,
  localMidnight,
  planDay,
  Resident,
  residentProfile,
} from './resident.ts';

const DAY0 = localDay(Date.UTC(2026, 10, 25, 4)); // 25 Nov 2026 in Beijing
const SEEDS = Array.from({ length: 40 }, (_, i) => 1000 + i * 7919);

/** Minutes of each activity between two local hours. */
function minutesIn(seed: number, day: number, fromH: number, toH: number) {
  const plan = planDay(seed, day);
  const from = plan.start + fromH * HOUR_MS;
  const to = plan.start + toH * HOUR_MS;
  const out: Record<string, number> = {};
  for (const s of plan.segments) {
    const overlap = Math.min(s.end, to) - Math.max(s.start, from);
    if (overlap > 0) out[s.activity] = (out[s.activity] ?? 0) + overlap / 60_000;
  }
  return out;
}

describe('mulberry32', () => {
  it('is deterministic by seed and uniform enough', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });
});

describe('resident day plan', () => {
  it('covers the local day without gaps or overlaps', () => {
    for (const seed of SEEDS.slice(0, 10)) {
      const plan = planDay(seed, DAY0);
      expect(plan.segments[0]?.start).toBe(localMidnight(DAY0));
      expect(plan.segments.at(-1)?.end).toBe(localMidnight(DAY0 + 1));
      for (let i = 1; i < plan.segments.length; i++) {
        expect(plan.segments[i]?.start).toBe(plan.segments[i - 1]?.end);
        expect(plan.segments[i]?.end).toBeGreaterThan(plan.segments[i]?.start ?? Infinity);
      }
    }
  });

  it('wakes between 6 and 7, a different time per person', () => {
    const wakes = new Set<number>();
    for (const seed of SEEDS) {
      for (let d = 0; d < 7; d++) {
        const plan = planDay(seed, DAY0 + d);
        const h = localHour(plan.wake);
        expect(h).toBeGreaterThanOrEqual(6);
        expect(h).toBeLessThan(7);
        // The first waking activity starts at the wake time.
        const firstAwake = plan.segments.find((s) => s.start >= plan.start + 5 * HOUR_MS && s.activity !== 'sleep');
        expect(firstAwake?.start).toBe(plan.wake);
        wakes.add(Math.round(localHour(plan.wake) * 60));
      }
    }
    expect(wakes.size).toBeGreaterThan(20);
  });

  it('fills the day with meals, water use, a nap, television and outings', () => {
    for (const seed of SEEDS.slice(0, 10)) {
      const week = Array.from({ length: 14 }, (_, d) => planDay(seed, DAY0 + d));
      for (const plan of week) {
        const day = minutesIn(seed, plan.day, 7, 20.5);
        expect(day.sleep ?? 0).toBe(0);
        const cooks = plan.segments.filter((s) => s.activity === 'cook');
        expect(cooks.length).toBe(3); // breakfast, lunch, dinner
        expect(plan.segments.filter((s) => s.activity === 'toilet').length).toBeGreaterThanOrEqual(4);
        expect(plan.segments.filter((s) => ACTIVITY_EFFECTS[s.activity].waterLpm > 1).length).toBeGreaterThan(6);
        expect(minutesIn(seed, plan.day, 18, 21.5).tv ?? 0).toBeGreaterThan(60);
      }
      const naps = week.filter((p) => (minutesIn(seed, p.day, 12, 15.5).nap ?? 0) > 30);
      expect(naps.length).toBeGreaterThan(3);
      // Morning market trips, out through the door in the morning and back before lunch.
      const market = week.filter((p) => (minutesIn(seed, p.day, 8, 11.5).out ?? 0) > 30);
      expect(market.length).toBeGreaterThan(3);
    }
  });

  it('is quiet at night', () => {
    for (const seed of SEEDS) {
      const night = minutesIn(seed, DAY0, 0, 5.5);
      expect(night.sleep ?? 0).toBeGreaterThan(5.5 * 60 - 10); // at most one short toilet trip
      const late = minutesIn(seed, DAY0, 23, 24);
      expect(late.sleep).toBe(60);
      const plan = planDay(seed, DAY0);
      expect(localHour(plan.bed)).toBeGreaterThanOrEqual(20.75);
      expect(localHour(plan.bed)).toBeLessThanOrEqual(23);
    }
  });

  it('is deterministic by seed', () => {
    expect(planDay(1234, DAY0)).toEqual(planDay(1234, DAY0));
    expect(residentProfile(1234)).toEqual(residentProfile(1234));
    expect(planDay(1234, DAY0)).not.toEqual(planDay(1235, DAY0));
    expect(planDay(1234, DAY0).segments).not.toEqual(planDay(1234, DAY0 + 1).segments);
    const t = localMidnight(DAY0) + 10.25 * HOUR_MS;
    expect(activityAt(1234, t)).toBe(new Resident(1234).activityAt(t));
    expect(activityAt(1234, localMidnight(DAY0) + HOUR_MS)).toBe('sleep');
  });

  it('finds outings that start or end in a window, across midnight', () => {
    const r = new Resident(SEEDS[0] as number);
    const from = localMidnight(DAY0) - HOUR_MS;
    const to = localMidnight(DAY0 + 7);
    const starts = r.startsBetween(from, to, 'out');
    const ends = r.endsBetween(from, to, 'out');
    expect(starts.length).toBeGreaterThan(3);
    expect(ends.map((s) => s.start)).toEqual(starts.map((s) => s.start));
    for (const s of starts) expect(r.activityAt(s.start)).toBe('out');
  });
});
