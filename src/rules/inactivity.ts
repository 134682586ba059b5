/**
 * Inactivity in a lone-elderly home (issue 3, rule 4) and "not seen for days" (rule 8), on the shared
 * ActivityTracker (activity.ts): what counts as activity and whether the resident is away is decided there.
 *
 * InactivityRule. After every activity the deadline timer `inactivity|<householdId>` is due at the deadline of the
 * quiet spell that began then; if no activity comes before it, a major `inactivity` alert is raised at the deadline
 * (on time, without any further message), and the next activity resolves it with the reason on the timeline.
 * (Timers only move earlier, see setEarliest: a timer that fires after newer activity re-arms from it.) A PIR still
 * holding `true` at the deadline (someone moving without pause) counts as activity then.
 *
 * The deadline. Nights (dayEnd → dayStart, community time zone) are not alarmed; they are also not counted:
 *  - a quiet spell that starts by day (last activity L inside the day window): deadline L + T(slot of L), where T is
 *    the threshold of L's half-hour slot of day;
 *  - a quiet spell that starts at night, or one whose deadline would fall into the night: the resident is taken to
 *    be asleep, and the deadline is the next dayStart + W, where W is the wake-up threshold ("by this long after
 *    dayStart the resident has always been up"). Sleeping through the night and then nothing by 10:00 is detected;
 *  - except a spell that began by day and ran through the whole night when this resident's nights are never silent
 *    like that (no more than 1 - percentile of the learned nights): then the brief's rule, at dayStart. A resident
 *    who is active every evening after dayEnd and collapsed in the evening is found at 07:00, not at 10:00; one who
 *    sometimes goes to bed before dayEnd gets the wake-up threshold.
 * During the household's first `coldStartDays` (from its first activity) T = W = `coldStartHours`, which is "no
 * activity for 3 h between 07:00 and 22:00" with the night not counted.
 *
 * The learned thresholds. Every quiet spell the resident spends at home is cut at the day window's edges and
 * recorded: the part from L to min(end, dayEnd) in L's (day, slot) cell, and the part from a dayStart to
 * min(end, dayEnd) as that day's wake-up time (0 when a PIR saw the resident moving across dayStart), with a flag
 * when the night was silent all through. A cell keeps the LONGEST spell that started in it that day: an alarm
 * fires when any spell of a slot exceeds T, so the per-day maximum is the quantity whose tail must be covered (the
 * 97th percentile of every gap would be dominated by the seconds between two cupboard doors). T for a slot is the
 * `percentile` of the cells of that slot and its POOL_SLOTS neighbours on each side, over the last `historyDays`
 * (at most HISTORY_DAYS) of the same kind of day (weekdays / Saturday-Sunday), times `margin`, clamped to
 * [minHours, maxHours]. With fewer than MIN_SAMPLES cells both kinds of day are pooled; with fewer still, the
 * cold-start threshold stays. W is the same over the daily wake-up times. Busy slots (the morning routine) get short
 * thresholds, quiet ones (the afternoon nap) long ones; red households have a smaller margin and maximum (config).
 *
 * Not alarmed while the resident is away (doors, or a staff-set away period: then the deadline moves to the end of
 * that period), nor while every activity sensor of the home is offline (the device-health rule raises "monitoring
 * lost"; when a sensor is back the wait starts again from then).
 *
 * State per household: a ring of HISTORY_DAYS × 48 cells of one byte (log-scaled minutes, 3 % steps) plus the
 * wake-up times, in one 1,456-byte buffer. The ActivityTracker's state is saved with this rule's snapshot.
 */
import type { AlertSubject, Evidence } from '../alerts/types.ts';
import {
  ActivityTracker,
  type ActivityNote,
  type ActivityTrackerOptions,
  type StatusNote,
  setEarliest,
  TrackedHomeRule,
} from './activity.ts';
import type { RuleSettings } from './config.ts';
import { GasLeftOnRule } from './gas.ts';
import { inWindow, localTime, nextLocalMinute, parseHHMM } from './time.ts';
import { type HouseholdInfo, type Rule, type RuleContext, type Timer, awayByStaff } from './types.ts';
import { WaterRule } from './water.ts';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Days of history kept (historyDays above this are read as this). */
export const HISTORY_DAYS = 28;
const SLOTS = 48;
/** offsets in SlotHistory.buf */
const WAKE = HISTORY_DAYS * SLOTS;
const SILENT = WAKE + HISTORY_DAYS;
/** Neighbouring slots pooled on each side of a slot (2: the slot ± 1 h). */
export const POOL_SLOTS = 2;
/** Fewer cells than this in the pool: pool both kinds of day; still fewer: keep the cold-start threshold. */
export const MIN_SAMPLES = 6;
/** Fewer wake-up times than this (same kind of day): both kinds; still fewer: cold start. */
export const MIN_WAKE_SAMPLES = 4;

// one byte per cell: 0 = no spell started there; v → exp((v-1)·STEP) minutes, 1 min … 24 h
const STEP = Math.log(1440) / 254;
function encode(minutes: number): number {
  if (minutes <= 1) return 1;
  return Math.min(255, 1 + Math.round(Math.log(minutes) / STEP));
}
function decode(v: number): number {
  return Math.exp((v - 1) * STEP);
}
const isRestDay = (day: number): boolean => {
  const wd = (day + 4) % 7;
  return wd === 0 || wd === 6;
};

/** The learned quiet spells of one household. */
export class SlotHistory {
  /**
   * One buffer: HISTORY_DAYS rows of SLOTS cells, then per row the wake-up time (1 byte), whether the night before
   * was silent (1 byte) and the local day number the row holds (2 bytes, 0: empty). 1,456 bytes.
   */
  readonly buf = new Uint8Array(HISTORY_DAYS * (SLOTS + 4));

  private dayOf(r: number): number {
    const o = WAKE + 2 * HISTORY_DAYS + 2 * r;
    return (this.buf[o] as number) | ((this.buf[o + 1] as number) << 8);
  }

  private row(day: number): number {
    const r = day % HISTORY_DAYS;
    if (this.dayOf(r) !== day) {
      const o = WAKE + 2 * HISTORY_DAYS + 2 * r;
      this.buf[o] = day & 0xff;
      this.buf[o + 1] = (day >> 8) & 0xff;
      this.buf.fill(0, r * SLOTS, (r + 1) * SLOTS);
      this.buf[WAKE + r] = 0;
      this.buf[SILENT + r] = 0;
    }
    return r;
  }

  /** Rows of days in (today - historyDays, today]. */
  private live(r: number, today: number, historyDays: number): number {
    const d = this.dayOf(r);
    return d === 0 || d > today || today - d >= historyDays ? -1 : d;
  }

  /** Records a spell of `minutes` that started in (day, slot); a cell keeps the day's longest. */
  recordSpell(day: number, slot: number, minutes: number, today: number): void {
    if (today - day >= HISTORY_DAYS || day > today) return;
    const i = this.row(day) * SLOTS + slot;
    const v = encode(minutes);
    if (v > (this.buf[i] as number)) this.buf[i] = v;
  }

  /** The first activity came `minutes` after this day's dayStart; `silentNight`: nothing since the day before. */
  recordWake(day: number, minutes: number, silentNight: boolean, today: number): void {
    if (today - day >= HISTORY_DAYS || day > today) return;
    const r = this.row(day);
    const v = encode(Math.max(1, minutes));
    if (v > (this.buf[WAKE + r] as number)) this.buf[WAKE + r] = v;
    if (silentNight) this.buf[SILENT + r] = 1;
  }

  /** Nights with a wake-up time in the window, and how many of them were silent all through. */
  nights(today: number, historyDays: number): { nights: number; silent: number } {
    let nights = 0;
    let silent = 0;
    for (let r = 0; r < HISTORY_DAYS; r++) {
      if (this.live(r, today, historyDays) < 0 || this.buf[WAKE + r] === 0) continue;
      nights++;
      silent += this.buf[SILENT + r] as number;
    }
    return { nights, silent };
  }

  /** Cells (minutes) of slots [slot-pool, slot+pool] in the days (today-historyDays, today], of a kind of day. */
  spells(today: number, historyDays: number, slot: number, pool: number, kind: 'same' | 'any', out: number[]): void {
    const rest = isRestDay(today);
    const from = Math.max(0, slot - pool);
    const to = Math.min(SLOTS - 1, slot + pool);
    for (let r = 0; r < HISTORY_DAYS; r++) {
      const d = this.live(r, today, historyDays);
      if (d < 0 || (kind === 'same' && isRestDay(d) !== rest)) continue;
      for (let s = from; s <= to; s++) {
        const v = this.buf[r * SLOTS + s] as number;
        if (v > 0) out.push(decode(v));
      }
    }
  }

  wakes(today: number, historyDays: number, kind: 'same' | 'any', out: number[]): void {
    const rest = isRestDay(today);
    for (let r = 0; r < HISTORY_DAYS; r++) {
      const d = this.live(r, today, historyDays);
      if (d < 0 || (kind === 'same' && isRestDay(d) !== rest)) continue;
      const v = this.buf[WAKE + r] as number;
      if (v > 0) out.push(decode(v));
    }
  }

  toJSON(): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength).toString('base64');
  }

  static fromJSON(b64: string): SlotHistory {
    const h = new SlotHistory();
    h.buf.set(Buffer.from(b64, 'base64').subarray(0, h.buf.length));
    return h;
  }
}

/** Linear-interpolated percentile of unsorted numbers (sorted in place). */
export function percentile(xs: number[], p: number): number {
  xs.sort((a, b) => a - b);
  const rank = p * (xs.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return (xs[lo] as number) + ((xs[hi] as number) - (xs[lo] as number)) * (rank - lo);
}

export interface Deadline {
  at: number;
  /** the threshold applied (ms) and from when it counts */
  thresholdMs: number;
  from: number;
  how: 'cold start' | 'learned' | 'learned (few data)';
  /** counted from dayStart after a night */
  morning: boolean;
}

/** The subject of a household alert. */
export function householdSubject(h: HouseholdInfo): AlertSubject {
  return {
    householdId: h.id,
    unitId: h.unitId,
    buildingId: h.buildingId,
    gridId: h.gridId,
    communityId: h.communityId,
    colour: h.colour,
  };
}

/** "09:12" (and the date when not today) in the community's zone. */
export function localClock(ts: number, timeZone: string, now?: number): string {
  const lt = localTime(ts, timeZone);
  const hhmm = `${String(Math.floor(lt.minuteOfDay / 60)).padStart(2, '0')}:${String(lt.minuteOfDay % 60).padStart(2, '0')}`;
  if (now === undefined || localTime(now, timeZone).day === lt.day) return hhmm;
  const d = new Date(lt.day * DAY);
  return `${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')} ${hhmm}`;
}

export function durationText(ms: number): string {
  const m = Math.round(ms / MIN);
  const h = Math.floor(m / 60);
  if (h === 0) return `${m} min`;
  return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
}

/** When the staff-set away period covering `ts` (and any chained to it) ends; `ts` when none. */
export function staffAwayEnd(h: HouseholdInfo | undefined, ts: number): number {
  let end = ts;
  for (let moved = true; moved; ) {
    moved = false;
    for (const a of h?.away ?? []) {
      if (a.from <= end && end < a.until) {
        end = a.until;
        moved = true;
      }
    }
  }
  return end;
}

export class InactivityRule extends TrackedHomeRule implements Rule {
  readonly name = 'inactivity' as const;
  private readonly history = new Map<string, SlotHistory>();
  /** households with an inactivity alert raised and not yet cleared by this rule */
  private readonly raised = new Set<string>();
  private readonly scratch: number[] = [];

  constructor(tracker: ActivityTracker = new ActivityTracker()) {
    super(tracker);
  }

  static timerKey(householdId: string): string {
    return `inactivity|${householdId}`;
  }

  protected override statusNote(n: StatusNote, ctx: RuleContext): void {
    // monitoring back after all sensors were dead: wait again, from now
    if (n.wasAllDead && !n.allDead) this.arm(n.householdId, n.ts, ctx);
  }

  onTimer(t: Timer, ctx: RuleContext): void {
    const householdId = t.data?.h;
    if (typeof householdId !== 'string') return;
    const h = ctx.household(householdId);
    const s = this.tracker.house(householdId);
    if (!h?.loneElderly || !s) return;
    const settings = ctx.settings(householdId).inactivity;
    if (!settings.enabled) return;
    const now = ctx.clock.now();
    const from = typeof t.data?.from === 'number' ? t.data.from : s.last;
    if (s.last > from) {
      this.arm(householdId, s.last, ctx); // an activity this timer did not see (restored state): wait from it
      return;
    }
    if (this.tracker.isOut(householdId)) return; // away: the return re-arms
    if (awayByStaff(h, now)) {
      this.arm(householdId, staffAwayEnd(h, now), ctx);
      return;
    }
    if (this.tracker.allDead(householdId, ctx)) return; // monitoring lost: device health's alert
    if (this.tracker.movingNow(householdId, now, ctx)) {
      this.arm(householdId, now, ctx); // a PIR sees someone moving without pause: active now
      return;
    }
    const d = this.deadline(householdId, from, ctx);
    if (d.at > now + MIN) {
      ctx.scheduler.set({ ...t, at: d.at }); // settings changed meanwhile: the new deadline
      return;
    }
    const tz = ctx.timezone;
    const since = s.last > 0 ? s.last : from;
    const evidence: Evidence[] = [];
    if (s.last > 0) {
      evidence.push({ ts: s.last, kind: 'reading', deviceId: s.lastDevice, field: s.lastField, note: 'last activity' });
    }
    const basis = d.morning
      ? `up by ${localClock(d.from + d.thresholdMs, tz)} on a usual morning`
      : `quiet spells from ${localClock(since, tz)} last at most ${durationText(d.thresholdMs)}`;
    evidence.push({
      ts: now,
      kind: 'rule',
      note: `no activity since ${localClock(since, tz, now)} (${d.how}: ${basis})`,
    });
    ctx.raise({
      type: 'inactivity',
      category: 'resident_safety',
      severity: 'major',
      subject: householdSubject(h),
      keyOn: 'household',
      drill: s.drill,
      ts: now,
      evidence,
      summary: `No activity at home since ${localClock(since, tz, now)} (${durationText(now - since)}); unusual for this resident`,
    });
    this.raised.add(householdId);
  }

  /** The deadline for a quiet spell that started at `from` (exported for tests and the API). */
  deadline(householdId: string, from: number, ctx: RuleContext): Deadline {
    const settings = ctx.settings(householdId);
    const set = settings.inactivity;
    const tz = ctx.timezone;
    const ds = parseHHMM(set.dayStart);
    const de = parseHHMM(set.dayEnd);
    const s = this.tracker.house(householdId);
    const cold = !s || from - s.first < set.coldStartDays * DAY;
    const hist = this.history.get(householdId);
    const lt = localTime(from, tz);
    let morningFrom: number;
    let byDay = false;
    if (inWindow(lt.minuteOfDay, ds, de)) {
      const t =
        cold || !hist ? this.cold(settings) : this.slotThreshold(hist, lt.day, slotOf(lt.minuteOfDay), settings);
      const dayEnd = nextLocalMinute(from, de, tz);
      if (from + t.ms < dayEnd) {
        return { at: from + t.ms, thresholdMs: t.ms, from, how: t.how, morning: false };
      }
      morningFrom = nextLocalMinute(dayEnd, ds, tz);
      byDay = true;
    } else {
      morningFrom = nextLocalMinute(from, ds, tz);
    }
    const day = localTime(morningFrom, tz).day;
    if (byDay && !cold && hist && !this.silentNightsUsual(hist, day, set)) {
      // quiet since the evening and all through the night, which this resident's nights never are: at dayStart
      return { at: morningFrom, thresholdMs: 0, from: morningFrom, how: 'learned', morning: true };
    }
    const w = cold || !hist ? this.cold(settings) : this.wakeThreshold(hist, day, settings);
    return { at: morningFrom + w.ms, thresholdMs: w.ms, from: morningFrom, how: w.how, morning: true };
  }

  /** Are nights silent from the evening to the morning within this resident's normal (above 1 - percentile)? */
  private silentNightsUsual(hist: SlotHistory, day: number, set: RuleSettings['inactivity']): boolean {
    const { nights, silent } = hist.nights(day, Math.min(HISTORY_DAYS, set.historyDays));
    if (nights < MIN_WAKE_SAMPLES) return true; // too few nights known: assume they may be
    return silent > (1 - set.percentile) * nights;
  }

  /** The threshold of a slot of a day (ms), for tests and GET /rules. */
  slotThreshold(
    hist: SlotHistory,
    day: number,
    slot: number,
    settings: RuleSettings,
  ): { ms: number; how: Deadline['how'] } {
    const set = settings.inactivity;
    const days = Math.min(HISTORY_DAYS, set.historyDays);
    const xs = this.scratch;
    xs.length = 0;
    hist.spells(day, days, slot, POOL_SLOTS, 'same', xs);
    let how: Deadline['how'] = 'learned';
    if (xs.length < MIN_SAMPLES) {
      xs.length = 0;
      hist.spells(day, days, slot, POOL_SLOTS, 'any', xs);
      how = 'learned (few data)';
    }
    if (xs.length < MIN_SAMPLES) return this.cold(settings);
    return { ms: this.scale(percentile(xs, set.percentile), set), how };
  }

  wakeThreshold(hist: SlotHistory, day: number, settings: RuleSettings): { ms: number; how: Deadline['how'] } {
    const set = settings.inactivity;
    const days = Math.min(HISTORY_DAYS, set.historyDays);
    const xs = this.scratch;
    xs.length = 0;
    hist.wakes(day, days, 'same', xs);
    let how: Deadline['how'] = 'learned';
    if (xs.length < MIN_WAKE_SAMPLES) {
      xs.length = 0;
      hist.wakes(day, days, 'any', xs);
      how = 'learned (few data)';
    }
    if (xs.length < MIN_WAKE_SAMPLES) return this.cold(settings);
    return { ms: this.scale(percentile(xs, set.percentile), set), how };
  }

  historyOf(householdId: string): SlotHistory | undefined {
    return this.history.get(householdId);
  }

  snapshot(): unknown {
    return {
      tracker: this.tracker.snapshot(),
      history: [...this.history].map(([id, h]) => [id, h.toJSON()]),
      raised: [...this.raised],
    };
  }

  restore(state: unknown): void {
    const s = state as { tracker?: unknown; history?: [string, string][]; raised?: string[] } | undefined;
    if (s?.tracker) this.tracker.restore(s.tracker);
    this.history.clear();
    for (const [id, b64] of s?.history ?? []) this.history.set(id, SlotHistory.fromJSON(b64));
    this.raised.clear();
    for (const id of s?.raised ?? []) this.raised.add(id);
  }

  // ---------------------------------------------------------------------------------------------------------------

  protected note(n: ActivityNote, ctx: RuleContext): void {
    if (!n.activity) return;
    const h = ctx.household(n.householdId);
    if (!h?.loneElderly) return;
    if (n.gapFrom && n.gapHome) this.learn(n.householdId, n.gapFrom, n.gapTo ?? n.ts, n.ts, ctx);
    if (this.raised.delete(n.householdId)) {
      const what = n.eventType ?? n.field ?? 'activity';
      ctx.clear(
        `inactivity|household:${n.householdId}`,
        `activity at home again: ${what} on ${n.deviceId} at ${localClock(n.ts, ctx.timezone)}`,
        n.ts,
      );
    }
    this.arm(n.householdId, n.ts, ctx);
  }

  private arm(householdId: string, from: number, ctx: RuleContext): void {
    if (!ctx.settings(householdId).inactivity.enabled) {
      ctx.scheduler.cancel(InactivityRule.timerKey(householdId));
      return;
    }
    const d = this.deadline(householdId, from, ctx);
    setEarliest(ctx, {
      key: InactivityRule.timerKey(householdId),
      at: d.at,
      rule: 'inactivity',
      data: { h: householdId, from },
    });
  }

  /**
   * Cuts the quiet spell [from, to) at the day window and records its parts. `moving`: the note closes a motion
   * period [to, moving]; one spanning a dayStart means the resident was up and about then (wake-up time 0).
   */
  private learn(householdId: string, from: number, to: number, moving: number, ctx: RuleContext): void {
    const set = ctx.settings(householdId).inactivity;
    const tz = ctx.timezone;
    const ds = parseHHMM(set.dayStart);
    const de = parseHHMM(set.dayEnd);
    let hist = this.history.get(householdId);
    if (!hist) {
      hist = new SlotHistory();
      this.history.set(householdId, hist);
    }
    const today = localTime(moving, tz).day;
    if (moving > to) {
      const morning = nextLocalMinute(to + 1, ds, tz);
      if (morning <= moving) hist.recordWake(localTime(morning, tz).day, 0, false, today);
    }
    if (to <= from) return;
    const lt = localTime(from, tz);
    let cursor = from;
    let byDay = false;
    if (inWindow(lt.minuteOfDay, ds, de)) {
      const dayEnd = nextLocalMinute(from, de, tz);
      hist.recordSpell(lt.day, slotOf(lt.minuteOfDay), (Math.min(to, dayEnd) - from) / MIN, today);
      cursor = dayEnd;
      byDay = true;
    }
    // every morning the spell reaches: the time from dayStart to the first activity (or to dayEnd), and whether
    // the whole night before was silent (the spell began by day the day before)
    for (let i = 0; i < HISTORY_DAYS; i++) {
      const morning = nextLocalMinute(cursor + 1, ds, tz);
      if (morning >= to) break;
      const dayEnd = nextLocalMinute(morning, de, tz);
      hist.recordWake(localTime(morning, tz).day, (Math.min(to, dayEnd) - morning) / MIN, byDay || i > 0, today);
      cursor = dayEnd;
    }
  }

  private cold(settings: RuleSettings): { ms: number; how: Deadline['how'] } {
    return { ms: settings.inactivity.coldStartHours * HOUR, how: 'cold start' };
  }

  private scale(minutes: number, set: RuleSettings['inactivity']): number {
    const ms = minutes * MIN * set.margin;
    return Math.min(set.maxHours * HOUR, Math.max(set.minHours * HOUR, ms));
  }
}

function slotOf(minuteOfDay: number): number {
  return Math.floor(minuteOfDay / 30);
}

/**
 * Not seen for days (rule 8): no door passage, no building door event and no in-home activity for `notSeen.hours`
 * → major, also while "away" by the doors (two days out without a sign is worth a call); not during a staff-set
 * away period (the deadline moves to its end) nor while every activity sensor is offline. Resolves on the next sign.
 */
export class NotSeenRule extends TrackedHomeRule implements Rule {
  readonly name = 'notSeen' as const;
  private readonly raised = new Set<string>();

  static timerKey(householdId: string): string {
    return `not_seen|${householdId}`;
  }

  protected override statusNote(n: StatusNote, ctx: RuleContext): void {
    if (n.wasAllDead && !n.allDead) this.arm(n.householdId, n.ts, ctx);
  }

  onTimer(t: Timer, ctx: RuleContext): void {
    const householdId = t.data?.h;
    if (typeof householdId !== 'string') return;
    const h = ctx.household(householdId);
    const s = this.tracker.house(householdId);
    if (!h?.loneElderly || !s) return;
    const set = ctx.settings(householdId).notSeen;
    if (!set.enabled) return;
    const now = ctx.clock.now();
    const from = typeof t.data?.from === 'number' ? t.data.from : s.seen;
    if (s.seen > from) {
      this.arm(householdId, s.seen, ctx);
      return;
    }
    if (awayByStaff(h, now)) {
      this.arm(householdId, staffAwayEnd(h, now), ctx);
      return;
    }
    if (this.tracker.allDead(householdId, ctx)) return;
    if (from + set.hours * HOUR > now + MIN) {
      ctx.scheduler.set({ ...t, at: from + set.hours * HOUR });
      return;
    }
    const tz = ctx.timezone;
    const where = this.tracker.isOut(householdId) ? 'went out and has not come back' : 'no activity at home';
    ctx.raise({
      type: 'not_seen',
      category: 'resident_safety',
      severity: 'major',
      subject: householdSubject(h),
      keyOn: 'household',
      drill: s.drill,
      ts: now,
      evidence: [
        { ts: s.seen, kind: 'reading', deviceId: s.lastDevice, field: s.lastField, note: 'last sign of the resident' },
        { ts: now, kind: 'rule', note: `not seen for ${durationText(now - s.seen)} (${where})` },
      ],
      summary: `Resident not seen since ${localClock(s.seen, tz, now)} (${durationText(now - s.seen)}): ${where}`,
    });
    this.raised.add(householdId);
  }

  snapshot(): unknown {
    return { raised: [...this.raised] };
  }

  restore(state: unknown): void {
    this.raised.clear();
    for (const id of (state as { raised?: string[] } | undefined)?.raised ?? []) this.raised.add(id);
  }

  protected note(n: ActivityNote, ctx: RuleContext): void {
    if (!n.activity && !n.sign) return;
    const h = ctx.household(n.householdId);
    if (!h?.loneElderly) return;
    if (this.raised.delete(n.householdId)) {
      ctx.clear(
        `not_seen|household:${n.householdId}`,
        `resident seen again: ${n.eventType ?? n.field ?? 'activity'} on ${n.deviceId} at ${localClock(n.ts, ctx.timezone)}`,
        n.ts,
      );
    }
    this.arm(n.householdId, n.ts, ctx);
  }

  private arm(householdId: string, from: number, ctx: RuleContext): void {
    const set = ctx.settings(householdId).notSeen;
    if (!set.enabled) {
      ctx.scheduler.cancel(NotSeenRule.timerKey(householdId));
      return;
    }
    setEarliest(ctx, {
      key: NotSeenRule.timerKey(householdId),
      at: from + set.hours * HOUR,
      rule: 'notSeen',
      data: { h: householdId, from },
    });
  }
}

/** The lone-elderly home rules on one shared ActivityTracker (its state is saved with the inactivity rule's). */
export function createHomeRules(opts: ActivityTrackerOptions = {}): {
  tracker: ActivityTracker;
  inactivity: InactivityRule;
  rules: Rule[];
} {
  const tracker = new ActivityTracker(opts);
  const inactivity = new InactivityRule(tracker);
  return {
    tracker,
    inactivity,
    rules: [inactivity, new NotSeenRule(tracker), new WaterRule(tracker), new GasLeftOnRule(tracker)],
  };
}
