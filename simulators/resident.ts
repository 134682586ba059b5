/**
 * A seeded day-plan generator for an elderly resident living alone (独居老人): given a seed and a simulated time,
 * what is the person doing? Every household device simulator asks the same question with the same seed, so the
 * water meter, the gas meter, the motion sensor, the door contact, the wristband and the building door all see one
 * consistent person: the morning market trip shows as door contact + door access out/in, no motion, no water, and a
 * walking heart rate on the wristband.
 *
 * Plans are per local day in China Standard Time (UTC+8, no daylight saving) and depend only on (seed, day), so a
 * simulation can start at any time and still be reproducible.
 */
import { hashSeed, Rng } from './random.ts';

export const TZ_OFFSET_MS = 8 * 3_600_000;
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export const ACTIVITIES = ['sleep', 'toilet', 'wash', 'shower', 'cook', 'eat', 'idle', 'nap', 'tv', 'out'] as const;
export type Activity = (typeof ACTIVITIES)[number];

export interface Segment {
  activity: Activity;
  /** epoch ms, inclusive */
  start: number;
  /** epoch ms, exclusive */
  end: number;
}

/** The person: habits drawn once from the seed, so two residents differ but each is consistent day to day. */
export interface ResidentProfile {
  seed: number;
  /** usual wake time, minutes after local midnight, 6:05–6:55 (the daily jitter keeps it within 6–7) */
  wakeMin: number;
  /** usual bedtime, minutes after local midnight, 21:00–22:30 */
  bedMin: number;
  /** chance of the morning market trip (买菜) on a given day */
  marketProb: number;
  /** chance of the after-lunch nap */
  napProb: number;
  /** chance of an afternoon walk in the neighbourhood */
  walkProb: number;
  /** chance of getting up once in the night for the toilet */
  nightToiletProb: number;
  /** showers every n-th day (many elderly residents do not shower daily, especially in winter) */
  showerEveryDays: number;
  /** resting heart rate, bpm */
  restingHr: number;
}

export function residentProfile(seed: number): ResidentProfile {
  const r = new Rng(hashSeed('profile', seed));
  return {
    seed,
    wakeMin: Math.round(r.range(365, 415)),
    bedMin: Math.round(r.range(1260, 1350)),
    marketProb: r.range(0.55, 0.9),
    napProb: r.range(0.6, 0.95),
    walkProb: r.range(0.15, 0.5),
    nightToiletProb: r.range(0.3, 0.8),
    showerEveryDays: r.pick([1, 2, 2, 3]),
    restingHr: Math.round(r.range(58, 74)),
  };
}

/** What an activity means for the home's meters and the resident's body (per-minute rates). */
export interface ActivityEffect {
  /** litres per minute drawn from the tap / cistern */
  waterLpm: number;
  /** watts above the household baseline (fridge, standby) */
  powerW: number;
  /** m³ per hour through the gas meter (stove, gas water heater) */
  gasM3h: number;
  /** chance that the living-room PIR sees motion in a given minute */
  motionP: number;
  /** heart rate above the resting rate, bpm */
  hrDelta: number;
  /** at home at all (doors, motion and meters only see a person at home) */
  atHome: boolean;
}

export const ACTIVITY_EFFECTS: Readonly<Record<Activity, ActivityEffect>> = {
  // A night's sleep: the fridge hums, the PIR sees the odd turn in bed through the door, the heart slows.
  sleep: { waterLpm: 0, powerW: 0, gasM3h: 0, motionP: 0.005, hrDelta: -8, atHome: true },
  // A 6 L flush over a ~4 minute visit, a light on.
  toilet: { waterLpm: 1.6, powerW: 10, gasM3h: 0, motionP: 0.6, hrDelta: 6, atHome: true },
  // Washing up, face and hands: the tap runs; a little gas for warm water.
  wash: { waterLpm: 4, powerW: 15, gasM3h: 0.25, motionP: 0.7, hrDelta: 8, atHome: true },
  // Gas water heater (燃气热水器) at ~8 L/min.
  shower: { waterLpm: 7.5, powerW: 20, gasM3h: 1.6, motionP: 0.2, hrDelta: 14, atHome: true },
  // Gas stove plus rice cooker / kettle; a little water for washing vegetables.
  cook: { waterLpm: 0.8, powerW: 750, gasM3h: 0.35, motionP: 0.85, hrDelta: 12, atHome: true },
  eat: { waterLpm: 0, powerW: 40, gasM3h: 0, motionP: 0.4, hrDelta: 4, atHome: true },
  // Pottering about: tidying, the radio, a drink of water now and then.
  idle: { waterLpm: 0.05, powerW: 45, gasM3h: 0, motionP: 0.6, hrDelta: 6, atHome: true },
  nap: { waterLpm: 0, powerW: 0, gasM3h: 0, motionP: 0.02, hrDelta: -5, atHome: true },
  // The evening television (and a light): the main electricity use of the evening.
  tv: { waterLpm: 0, powerW: 130, gasM3h: 0, motionP: 0.2, hrDelta: 0, atHome: true },
  // Walking to the market and back with a full bag.
  out: { waterLpm: 0, powerW: 0, gasM3h: 0, motionP: 0, hrDelta: 28, atHome: false },
};

export interface DayPlan {
  seed: number;
  /** local day number (days since 1970-01-01 in UTC+8) */
  day: number;
  /** epoch ms of local midnight */
  start: number;
  /** epoch ms of getting up and going to bed */
  wake: number;
  bed: number;
  /** contiguous, ordered, covering [start, start + 1 day) */
  segments: Segment[];
}

export function localDay(t: number): number {
  return Math.floor((t + TZ_OFFSET_MS) / DAY_MS);
}

export function localMidnight(day: number): number {
  return day * DAY_MS - TZ_OFFSET_MS;
}

/** Local hour of day as a fraction (8.5 = 08:30 in Beijing). */
export function localHour(t: number): number {
  return ((((t + TZ_OFFSET_MS) % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS;
}

/** Builds one day, in minutes after local midnight, then converts to epoch ms. */
export function planDay(seed: number, day: number): DayPlan {
  const p = residentProfile(seed);
  const r = new Rng(hashSeed('day', seed, day));
  const segs: Array<{ activity: Activity; from: number; to: number }> = [];
  let c = 0;
  /** Appends `activity` from max(cursor, at) for `minutes`, filling any gap with `gap`. */
  const add = (activity: Activity, minutes: number, at = c, gap: Activity = 'idle') => {
    const from = Math.max(c, at);
    if (from > c) segs.push({ activity: gap, from: c, to: from });
    segs.push({ activity, from, to: from + minutes });
    c = from + minutes;
  };

  // Wake between 6 and 7: the person's habit with a few minutes of day-to-day jitter.
  const wake = Math.min(419, Math.max(361, p.wakeMin + r.normal(0, 7)));
  if (r.chance(p.nightToiletProb)) {
    const trip = r.range(120, 270);
    add('sleep', trip);
    add('toilet', r.range(3, 6));
  }
  add('sleep', wake - c);

  // Morning routine and breakfast (porridge on the stove, the kettle).
  add('toilet', r.range(4, 8));
  add('wash', r.range(8, 14));
  add('cook', r.range(12, 20));
  add('eat', r.range(12, 20));
  add('wash', r.range(3, 6));

  // Market (买菜) after breakfast, through the flat door and the building door.
  if (r.chance(p.marketProb)) add('out', r.range(50, 110), r.range(480, 570));
  add('toilet', r.range(3, 5), c + r.range(5, 20));

  // Lunch, then the nap.
  add('cook', r.range(30, 45), r.range(645, 690));
  add('eat', r.range(20, 30));
  add('wash', r.range(6, 10));
  if (r.chance(p.napProb)) add('nap', r.range(50, 100), r.range(750, 790));
  add('toilet', r.range(3, 5), c + r.range(5, 15));

  // Afternoon walk (or chatting downstairs with the neighbours).
  if (r.chance(p.walkProb)) add('out', r.range(30, 75), r.range(900, 960));

  // Dinner early, as elderly residents do.
  add('cook', r.range(30, 50), r.range(1010, 1060));
  add('eat', r.range(20, 30));
  add('wash', r.range(8, 12));

  // Television until the evening wash; bed between about 21:00 and 22:30.
  let bed = Math.min(1380, Math.max(1245, p.bedMin + r.normal(0, 10)));
  const shower = day % p.showerEveryDays === 0;
  const eveningRoutine = (shower ? 18 : 0) + 8 + 4;
  bed = Math.max(bed, c + 30 + eveningRoutine);
  add('tv', bed - eveningRoutine - c);
  if (shower) add('shower', 18);
  add('wash', 8);
  add('toilet', bed - c);
  add('sleep', 1440 - c);

  // Toilet visits every two to three hours through long stretches of pottering and television.
  const withBreaks: typeof segs = [];
  for (const s of segs) {
    if ((s.activity !== 'idle' && s.activity !== 'tv') || s.to - s.from < 100) {
      withBreaks.push(s);
      continue;
    }
    let from = s.from;
    for (let at = from + r.range(70, 130); at + 5 < s.to - 20; at += r.range(110, 170)) {
      withBreaks.push({ activity: s.activity, from, to: at });
      const len = r.range(3, 5);
      withBreaks.push({ activity: 'toilet', from: at, to: at + len });
      from = at + len;
    }
    withBreaks.push({ activity: s.activity, from, to: s.to });
  }

  const start = localMidnight(day);
  const ms = (m: number) => start + Math.round(m * 60) * 1000;
  const segments: Segment[] = [];
  for (const s of withBreaks) {
    const seg = { activity: s.activity, start: ms(s.from), end: ms(s.to) };
    if (seg.end <= seg.start) continue;
    const last = segments[segments.length - 1];
    // Merge neighbours with the same activity (e.g. sleep around a skipped night toilet).
    if (last && last.activity === seg.activity && last.end === seg.start) last.end = seg.end;
    else segments.push(seg);
  }
  return { seed, day, start, wake: ms(wake), bed: ms(bed), segments };
}

/**
 * A resident with a small cache of day plans: device simulators ask many times per simulated minute, and a plan
 * costs a few hundred random draws.
 */
export class Resident {
  readonly profile: ResidentProfile;
  private readonly cache = new Map<number, DayPlan>();

  constructor(readonly seed: number) {
    this.profile = residentProfile(seed);
  }

  plan(t: number): DayPlan {
    const day = localDay(t);
    let plan = this.cache.get(day);
    if (!plan) {
      plan = planDay(this.seed, day);
      this.cache.set(day, plan);
      if (this.cache.size > 4) this.cache.delete(this.cache.keys().next().value as number);
    }
    return plan;
  }

  /** The segment the person is in at time t. */
  segmentAt(t: number): Segment {
    const segs = this.plan(t).segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((segs[mid] as Segment).start <= t) lo = mid;
      else hi = mid - 1;
    }
    return segs[lo] as Segment;
  }

  activityAt(t: number): Activity {
    return this.segmentAt(t).activity;
  }

  /** Segments of one activity that start in (from, to]: outings, for doors. */
  startsBetween(from: number, to: number, activity: Activity): Segment[] {
    const out: Segment[] = [];
    for (let day = localDay(from); day <= localDay(to); day++) {
      const plan = day === localDay(to) ? this.plan(to) : planDay(this.seed, day);
      for (const s of plan.segments) if (s.activity === activity && s.start > from && s.start <= to) out.push(s);
    }
    return out;
  }

  /** Segments of one activity that end in (from, to]. */
  endsBetween(from: number, to: number, activity: Activity): Segment[] {
    const out: Segment[] = [];
    for (let day = localDay(from); day <= localDay(to); day++) {
      const plan = day === localDay(to) ? this.plan(to) : planDay(this.seed, day);
      for (const s of plan.segments) if (s.activity === activity && s.end > from && s.end <= to) out.push(s);
    }
    return out;
  }
}

/** The brief's question in one call: what is the person with this seed doing at time t? */
export function activityAt(seed: number, t: number): Activity {
  return new Resident(seed).activityAt(t);
}
