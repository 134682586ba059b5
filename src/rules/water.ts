/**
 * Water (issue 3, rule 5), from the household's water meter (`water_total_l`, cumulative), on the shared
 * ActivityTracker (activity.ts):
 *
 *  - `water_low` (lone-elderly homes): less than `lowLitres` used in a rolling `lowMajorHours` → major, in
 *    `lowCriticalHours` → critical (the same alert, raised again: its severity goes up). Deadline timers
 *    `water_low|<householdId>`, so it fires on time without a message. The window only counts time at home: it
 *    starts again when the resident comes back (doors) or a staff-set away period ends, and nothing is raised while
 *    away or while the meter is offline. A major deadline falling in the night (dayEnd → dayStart of the inactivity
 *    settings) waits for dayStart, as inactivity does; critical fires at any hour. Resolves by itself when the
 *    rolling window holds `lowLitres` again ("water use back to normal") or the resident is back from away.
 *  - `water_continuous` (minor, any household with a meter): water flowing in every half hour for
 *    `continuousHours`, or more than `dailyMaxLitres` in a local day (a leak, a tap left on). Resolves when a half
 *    hour passes without flow (timer `water_flow|…`) and the day's total is under the maximum (timer at midnight,
 *    `water_day|…`).
 *
 * State per household: the few most recent increments that make up the last `lowLitres` (for the rolling window),
 * the current flow streak and the day's total.
 */
import type { Evidence } from '../alerts/types.ts';
import { type ActivityNote, type StatusNote, setEarliest, TrackedHomeRule } from './activity.ts';
import { householdSubject, localClock, staffAwayEnd } from './inactivity.ts';
import { inWindow, localTime, nextLocalMinute, parseHHMM } from './time.ts';
import { awayByStaff, type Rule, type RuleContext, type Timer } from './types.ts';

const HOUR = 3_600_000;
const HALF_HOUR = 1_800_000;
/** increments kept for the rolling window (merged beyond this) */
const MAX_INCREMENTS = 24;

interface WaterState {
  /** recent increments (ts, litres), oldest first: the shortest suffix holding lowLitres, plus one */
  ts: number[];
  litres: number[];
  /** first meter reading: the window cannot be older */
  start: number;
  /** end of the last staff-set away period seen */
  awayEnd: number;
  /** water_low raised: 0 no, 1 major, 2 critical */
  level: number;
  /** half-hour index (epoch / 30 min) of the last flow, and the first of the current streak */
  flowSlot: number;
  streakFrom: number;
  /** local day and its litres */
  day: number;
  dayLitres: number;
  /** water_continuous raised */
  cont: boolean;
  drill: boolean;
  meter: string;
}

export class WaterRule extends TrackedHomeRule implements Rule {
  readonly name = 'water' as const;
  private readonly state = new Map<string, WaterState>();

  static timerKey(householdId: string, what: 'low' | 'flow' | 'day'): string {
    return `water_${what}|${householdId}`;
  }

  protected override statusNote(n: StatusNote, ctx: RuleContext): void {
    if (this.state.has(n.householdId)) this.evaluateLow(n.householdId, ctx);
  }

  onTimer(t: Timer, ctx: RuleContext): void {
    const householdId = t.data?.h;
    if (typeof householdId !== 'string' || !this.state.has(householdId)) return;
    if (t.data?.k === 'low') this.evaluateLow(householdId, ctx);
    else this.evaluateContinuous(householdId, ctx);
  }

  snapshot(): unknown {
    return [...this.state].map(([id, s]) => [
      id,
      s.ts,
      s.litres.map((l) => Math.round(l * 100) / 100),
      s.start,
      s.awayEnd,
      s.level,
      s.flowSlot,
      s.streakFrom,
      s.day,
      Math.round(s.dayLitres * 100) / 100,
      s.cont ? 1 : 0,
      s.drill ? 1 : 0,
      s.meter,
    ]);
  }

  restore(state: unknown): void {
    this.state.clear();
    for (const row of (state as unknown[][] | undefined) ?? []) {
      const [id, ts, litres, start, awayEnd, level, flowSlot, streakFrom, day, dayLitres, cont, drill, meter] = row as [
        string,
        number[],
        number[],
        number,
        number,
        number,
        number,
        number,
        number,
        number,
        number,
        number,
        string,
      ];
      this.state.set(id, {
        ts,
        litres,
        start,
        awayEnd,
        level,
        flowSlot,
        streakFrom,
        day,
        dayLitres,
        cont: cont === 1,
        drill: drill === 1,
        meter,
      });
    }
  }

  // ---------------------------------------------------------------------------------------------------------------

  protected note(n: ActivityNote, ctx: RuleContext): void {
    if (n.counter === 'water') {
      const h = ctx.household(n.householdId);
      if (!h) return;
      let s = this.state.get(n.householdId);
      if (!s) {
        s = {
          ts: [],
          litres: [],
          start: n.ts,
          awayEnd: 0,
          level: 0,
          flowSlot: -2,
          streakFrom: -2,
          day: localTime(n.ts, ctx.timezone).day,
          dayLitres: 0,
          cont: false,
          drill: n.drill,
          meter: n.deviceId,
        };
        this.state.set(n.householdId, s);
      }
      s.drill = n.drill;
      s.meter = n.deviceId;
      const delta = n.delta ?? 0;
      if (delta > 0) {
        this.addIncrement(s, n.ts, delta, ctx.settings(n.householdId).water.lowLitres);
        this.flow(n.householdId, s, n.ts, delta, ctx);
      }
      this.evaluateLow(n.householdId, ctx);
      return;
    }
    // any other sign (coming back home among them) may end a low-use wait
    if ((n.returned || n.left) && this.state.has(n.householdId)) this.evaluateLow(n.householdId, ctx);
  }

  private addIncrement(s: WaterState, ts: number, litres: number, low: number): void {
    s.ts.push(ts);
    s.litres.push(litres);
    // keep the shortest suffix that still holds `low` litres
    let sum = 0;
    for (const l of s.litres) sum += l;
    while (s.litres.length > 1 && sum - (s.litres[0] as number) >= low) {
      sum -= s.litres.shift() as number;
      s.ts.shift();
    }
    if (s.ts.length > MAX_INCREMENTS) {
      // merge the two oldest into the later one: the window looks a little fuller for a little longer, never emptier
      const l0 = s.litres.shift() as number;
      s.ts.shift();
      s.litres[0] = (s.litres[0] as number) + l0;
    }
  }

  /** When the rolling window last held `lowLitres`: the oldest increment of the suffix (else the start). */
  private windowAnchor(s: WaterState, low: number): number {
    let sum = 0;
    for (const l of s.litres) sum += l;
    return sum >= low && s.ts.length > 0 ? (s.ts[0] as number) : s.start;
  }

  private evaluateLow(householdId: string, ctx: RuleContext): void {
    const s = this.state.get(householdId);
    const h = ctx.household(householdId);
    if (!s || !h?.loneElderly) return;
    const set = ctx.settings(householdId).water;
    const key = WaterRule.timerKey(householdId, 'low');
    const now = ctx.clock.now();
    if (!set.enabled) {
      ctx.scheduler.cancel(key);
      return;
    }
    if (awayByStaff(h, now)) {
      s.awayEnd = staffAwayEnd(h, now);
      setEarliest(ctx, { key, at: s.awayEnd, rule: 'water', data: { h: householdId, k: 'low' } });
      return;
    }
    const house = this.tracker.house(householdId);
    const out = this.tracker.isOut(householdId);
    const used = this.windowAnchor(s, set.lowLitres);
    const homeSince = house && !out ? house.since : 0;
    const anchor = Math.max(used, homeSince, s.awayEnd, s.start);
    // back to normal: the window holds lowLitres again, or the resident was out and is back
    if (s.level > 0 && (out || now < anchor + set.lowMajorHours * HOUR)) {
      const reason = out
        ? 'resident went out'
        : used + set.lowMajorHours * HOUR > now
          ? `water use back to normal (${set.lowLitres} L within ${set.lowMajorHours} h)`
          : 'resident back home';
      s.level = 0;
      ctx.clear(`water_low|household:${householdId}`, reason, now);
    }
    if (out || this.tracker.allOfKindDead(householdId, 'water_meter', ctx)) {
      ctx.scheduler.cancel(key); // coming back (or the meter) re-evaluates
      return;
    }
    const inactivity = ctx.settings(householdId).inactivity;
    const ds = parseHHMM(inactivity.dayStart);
    const de = parseHHMM(inactivity.dayEnd);
    let majorAt = anchor + set.lowMajorHours * HOUR;
    if (!inWindow(localTime(majorAt, ctx.timezone).minuteOfDay, ds, de)) {
      majorAt = nextLocalMinute(majorAt, ds, ctx.timezone);
    }
    const criticalAt = anchor + set.lowCriticalHours * HOUR;
    if (s.level < 2 && now >= criticalAt) {
      this.raiseLow(householdId, s, 'critical', anchor, set.lowCriticalHours, ctx);
      s.level = 2;
    } else if (s.level < 1 && now >= majorAt) {
      this.raiseLow(householdId, s, 'major', anchor, set.lowMajorHours, ctx);
      s.level = 1;
    }
    const next = s.level < 1 ? Math.min(majorAt, criticalAt) : s.level < 2 ? criticalAt : 0;
    if (next > now) setEarliest(ctx, { key, at: next, rule: 'water', data: { h: householdId, k: 'low' } });
    else ctx.scheduler.cancel(key);
  }

  private raiseLow(
    householdId: string,
    s: WaterState,
    severity: 'major' | 'critical',
    anchor: number,
    hours: number,
    ctx: RuleContext,
  ): void {
    const h = ctx.household(householdId);
    if (!h) return;
    const now = ctx.clock.now();
    const low = ctx.settings(householdId).water.lowLitres;
    const evidence: Evidence[] = [];
    const lastUse = s.ts.length > 0 ? (s.ts[s.ts.length - 1] as number) : 0;
    if (lastUse > 0)
      evidence.push({
        ts: lastUse,
        kind: 'reading',
        deviceId: s.meter,
        field: 'water_total_l',
        note: 'last water use',
      });
    evidence.push({
      ts: now,
      kind: 'rule',
      note: `less than ${low} L used since ${localClock(anchor, ctx.timezone, now)} (${hours} h or more at home)`,
    });
    ctx.raise({
      type: 'water_low',
      category: 'resident_safety',
      severity,
      subject: householdSubject(h),
      keyOn: 'household',
      drill: s.drill,
      ts: now,
      evidence,
      summary: `Less than ${low} L of water used in ${hours} h at home`,
    });
  }

  /** Flow in this half hour: continue or start the streak; the day's total. */
  private flow(householdId: string, s: WaterState, ts: number, litres: number, ctx: RuleContext): void {
    const set = ctx.settings(householdId).water;
    const slot = Math.floor(ts / HALF_HOUR);
    if (slot !== s.flowSlot) {
      if (slot !== s.flowSlot + 1) s.streakFrom = slot;
      s.flowSlot = slot;
    }
    const day = localTime(ts, ctx.timezone).day;
    if (day !== s.day) {
      s.day = day;
      s.dayLitres = 0;
    }
    s.dayLitres += litres;
    if (!set.enabled || s.cont) return;
    const streakHours = ((s.flowSlot - s.streakFrom + 1) * HALF_HOUR) / HOUR;
    const overDay = s.dayLitres > set.dailyMaxLitres;
    if (streakHours < set.continuousHours && !overDay) return;
    const h = ctx.household(householdId);
    if (!h) return;
    s.cont = true;
    const why = overDay
      ? `${Math.round(s.dayLitres)} L used today (more than ${set.dailyMaxLitres} L)`
      : `water flowing in every half hour for ${Math.round(streakHours)} h`;
    ctx.raise({
      type: 'water_continuous',
      category: 'resident_safety',
      severity: 'minor',
      subject: householdSubject(h),
      keyOn: 'household',
      drill: s.drill,
      ts,
      evidence: [{ ts, kind: 'reading', deviceId: s.meter, field: 'water_total_l', note: why }],
      summary: `Possible leak or tap left on: ${why}`,
    });
    // raised: resolved when the next half hour passes without flow and the day's total starts again (midnight)
    this.armFlowCheck(householdId, s, ctx);
    ctx.scheduler.set({
      key: WaterRule.timerKey(householdId, 'day'),
      at: nextLocalMinute(ts + 1, 0, ctx.timezone),
      rule: 'water',
      data: { h: householdId, k: 'day' },
    });
  }

  /** While raised: a check at the end of the half hour after the last flow. */
  private armFlowCheck(householdId: string, s: WaterState, ctx: RuleContext): void {
    ctx.scheduler.set({
      key: WaterRule.timerKey(householdId, 'flow'),
      at: (s.flowSlot + 2) * HALF_HOUR,
      rule: 'water',
      data: { h: householdId, k: 'flow' },
    });
  }

  private evaluateContinuous(householdId: string, ctx: RuleContext): void {
    const s = this.state.get(householdId);
    if (!s?.cont) return;
    const now = ctx.clock.now();
    const set = ctx.settings(householdId).water;
    const flowing = Math.floor(now / HALF_HOUR) - s.flowSlot <= 1;
    const today = localTime(now, ctx.timezone).day;
    const overDay = s.day === today && s.dayLitres > set.dailyMaxLitres;
    if (overDay) return; // the midnight timer comes back
    if (flowing && ((s.flowSlot - s.streakFrom + 1) * HALF_HOUR) / HOUR >= set.continuousHours) {
      this.armFlowCheck(householdId, s, ctx);
      return;
    }
    s.cont = false;
    ctx.clear(`water_continuous|household:${householdId}`, 'water flow back to normal', now);
  }
}
