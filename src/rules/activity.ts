/**
 * What counts as a sign of the resident, in one place (issue 3, rules 4, 8 and 9), and whether the resident is
 * home or away. The lone-elderly home rules (inactivity, not seen, water, gas left on) share one ActivityTracker.
 *
 * Activity (a person did something):
 *  - motion (a PIR, or a wristband that reports motion). `motion` is a state, as native-motion reports it: `true`
 *    when motion starts, `false` after a quiet hold time, the state again in an hourly heartbeat. A new `true` is
 *    motion now; a repeated `true` and the closing `false` are motion during the period since it began; a sensor
 *    holding `true` is someone moving without pause (cooking) and counts as activity at any deadline (movingNow),
 *    up to MOTION_MAX_MS (then it is taken to be stuck);
 *  - `occupancy` changing (a bed or seat mat: getting on and getting off are both a person);
 *  - a door contact changing (open or close; a periodic report of the same state is not a change);
 *  - the start of water flow (`water_total_l` increases after a reading without increase, or after a pause);
 *  - the start of gas flow (`gas_total_m3`, the same way);
 *  - electricity: `power_w` stepping up by more than `powerAboveBackgroundW` to above the household's background
 *    level. The background is learned per meter (a stochastic quantile estimate, settled after a night or two): the
 *    90th percentile of the power seen while nothing else in the household shows a person for QUIET_MS, so standby
 *    loads and a fridge's compressor cycles become background and a kettle, a microwave or the TV switched on stand
 *    out. Only switching on counts: a load running for hours (a washing machine) is not a person;
 *  - an SOS or cancel pressed on a button or a wristband.
 * A wristband's heart rate only says it is worn: not activity.
 *
 * Away (rule 9): the flat's entrance door contact works as a passage detector. A passage (a door change, or
 * several within DEBOUNCE_MS of each other) while the resident is home means "went out" when no in-home activity
 * follows; the next passage while out means "came back" (parity), and any in-home activity means home. In-home
 * evidence only counts if it began after the departure: a meter's report covers the interval since its previous
 * report, a PIR's heartbeat or closing `false` the motion period since its start, and messages arrive out of order
 * (a reading stamped 09:15:00 before the door stamped 09:14:33), so each note carries when its evidence began. A
 * building
 * door-access `out` / `in` event sets away / home directly when it can be linked to the household (a resolver from
 * person id to household, else the flat door passage within LINK_MS before it, as the night-exit rule does).
 * Someone else's activity at home (a guest, a second resident) is activity and means home: alarms err towards
 * quiet only where the evidence says nobody is there.
 *
 * Ambiguity that no rule can resolve with a door contact alone: the flat door opening without anyone leaving (a
 * delivery, a neighbour) and no in-home activity after it reads as "went out"; a collapse right then is left to the
 * not-seen rule. The building door (door_access with a person registry) removes most of it.
 *
 * State is per household (a few numbers) and per activity device (last value, last delta, background power).
 */
import type { DeviceEventRecord, Reading, StatusChange } from '../ingest/types.ts';
import type { DeviceRecord } from '../registry/types.ts';
import type { RuleContext, Timer } from './types.ts';

/** Entrance door changes closer together than this are one passage (open, close, re-open to lock …). */
export const DEBOUNCE_MS = 5 * 60_000;
/** A building door event links to a flat whose entrance door changed this long before (or after, for `in`). */
export const LINK_MS = 10 * 60_000;
/** Counter readings further apart than this start a new flow even if both increased. */
export const FLOW_PAUSE_MS = 10 * 60_000;
/** The household is "quiet" for learning the electricity background after this long without activity. */
export const QUIET_MS = 30 * 60_000;
/** A PIR holding `true` longer than this is taken to be stuck, not a person moving all the time. */
export const MOTION_MAX_MS = 3 * 3_600_000;
/** Quantile and step of the background power estimator. */
const BG_QUANTILE = 0.9;

/**
 * Device kinds whose readings are activity evidence: when all of a household's are offline, nobody can tell. The
 * device-health rule's "monitoring lost" uses the same list, so the two can never disagree about a home.
 */
export const ACTIVITY_KINDS: ReadonlySet<string> = new Set([
  'motion_sensor',
  'door_contact',
  'water_meter',
  'gas_meter',
  'electricity_meter',
  'wristband',
]);

/**
 * Sets a deadline unless the same key is already due no later. The scheduler removes replaced timers lazily, so
 * re-setting a far deadline on every activity (a PIR fires every few minutes) would pile up stale heap entries;
 * instead a deadline only ever moves earlier here, and a rule whose timer fires early re-checks and re-arms from
 * the latest activity.
 */
export function setEarliest(ctx: RuleContext, timer: Timer): void {
  const pending = ctx.scheduler.get(timer.key);
  if (pending && pending.at <= timer.at) return;
  ctx.scheduler.set(timer);
}

/** One observation about a household, derived from a reading or an event. */
export interface ActivityNote {
  householdId: string;
  deviceId: string;
  ts: number;
  drill: boolean;
  field?: string;
  value?: number | boolean | string;
  eventType?: string;
  /** a person did something (resets inactivity and not-seen) */
  activity: boolean;
  /** the activity happened inside the flat (ends "away") */
  inHome: boolean;
  /**
   * A meter's reading says something happened since its previous reading, at this time: evidence for that interval
   * only (a water meter reporting every 5 min shows the hand-washing before the resident went out).
   */
  since?: number;
  /** a passage through the flat's entrance, or a building door event linked to the household */
  entrance?: 'passage' | 'in' | 'out';
  /** a cumulative counter's reading: which, and its increase since the device's previous reading */
  counter?: 'water' | 'gas';
  delta?: number;
  /**
   * For activity: the previous activity's time (0: none), when the quiet spell since it ended (the note's time, or
   * the start of a motion period it closes), and whether the resident was home in between.
   */
  gapFrom?: number;
  gapTo?: number;
  gapHome?: boolean;
  /** the household went from away to home with this note */
  returned?: boolean;
  /** the household went from home to away with this note */
  left?: boolean;
  /** a sign of the resident that is not activity (a denied building door attempt): "seen" only */
  sign?: boolean;
  /** only says a wristband is worn */
  worn?: boolean;
}

export interface StatusNote {
  householdId: string;
  deviceId: string;
  offline: boolean;
  /** all of the household's activity sensors are offline after / were before this change */
  allDead: boolean;
  wasAllDead: boolean;
  ts: number;
}

/** Per household: a few numbers. */
export interface HouseState {
  /** first activity seen (start of the household's data), epoch ms */
  first: number;
  /** last activity (any sign of a person incl. door passages), 0 = none */
  last: number;
  /** the latest in-home evidence: when the last in-home activity began (a meter's interval, a motion period) */
  lastInHome: number;
  /** last activity not from an electricity meter (the household is "quiet" for learning the background) */
  lastNonPower: number;
  /** last entrance passage (door change) */
  lastDoor: number;
  /** last activity or building door event: "seen" */
  seen: number;
  /** away (inferred from the doors) */
  out: boolean;
  /** when the household last changed between home and away */
  since: number;
  /** last building door `in` linked to the household */
  gateIn: number;
  /** evidence of the last activity */
  lastDevice: string;
  lastField: string;
  drill: boolean;
}

interface DeviceState {
  /** last value: motion/contact/occupancy 0|1, counter total, power */
  v: number;
  /** last increase of a counter (0: none); for motion, when the current motion period began */
  d: number;
  /** last reading time */
  t: number;
  /** background power (electricity meters) */
  bg: number;
}

export interface ActivityTrackerOptions {
  /** Is this door contact the flat's entrance? Default: a household's only door contact; none when it has several. */
  isEntrance?: (device: DeviceRecord | undefined, deviceId: string) => boolean;
  /** Household of a person named by a building door event, when the registry knows it. */
  householdOfPerson?: (personId: string) => string | undefined;
}

export class ActivityTracker {
  private readonly houses = new Map<string, HouseState>();
  /** household → time its flat door last moved, insertion-ordered and pruned to the linking window */
  private readonly recentDoors = new Map<string, number>();
  private readonly devs = new Map<string, DeviceState>();
  private readonly offline = new Set<string>();
  /** motion sensors holding `true` → when their motion period began */
  private readonly moving = new Map<string, number>();
  /** household → its activity devices (built from the directory once, extended by readings) */
  private byHousehold: Map<string, Set<string>> | undefined;
  // memo: every rule asks about the same bus message; it is processed once
  private lastBatch: unknown;
  private lastNotes: ActivityNote[] = [];
  private lastStatus: StatusChange | undefined;
  private lastStatusNote: StatusNote | undefined;

  constructor(private readonly opts: ActivityTrackerOptions = {}) {}

  house(householdId: string): Readonly<HouseState> | undefined {
    return this.houses.get(householdId);
  }

  /** Away by the doors (staff-set away periods are on HouseholdInfo: awayByStaff). */
  isOut(householdId: string): boolean {
    return this.houses.get(householdId)?.out ?? false;
  }

  get size(): number {
    return this.houses.size;
  }

  /** The notes of a readings batch (processed once, whichever rule asks first). */
  readings(readings: readonly Reading[], ctx: RuleContext): readonly ActivityNote[] {
    if (readings === this.lastBatch) return this.lastNotes;
    this.lastBatch = readings;
    const notes: ActivityNote[] = [];
    for (const r of readings) {
      // A drill device bound to a real home must never move that home's clock: a drill would delay a real
      // inactivity alarm and label it a drill. Drill scenarios exercise the event rules (issue 6).
      if (r.drill) continue;
      const n = this.reading(r, ctx);
      if (n) notes.push(n);
    }
    this.lastNotes = notes;
    return notes;
  }

  event(e: DeviceEventRecord, ctx: RuleContext): readonly ActivityNote[] {
    if (e === this.lastBatch) return this.lastNotes;
    this.lastBatch = e;
    this.lastNotes = e.drill ? [] : this.eventNotes(e, ctx);
    return this.lastNotes;
  }

  status(change: StatusChange, ctx: RuleContext): StatusNote | undefined {
    if (change === this.lastStatus) return this.lastStatusNote;
    this.lastStatus = change;
    this.lastStatusNote = undefined;
    const rec = ctx.devices.get(change.deviceId);
    const householdId = rec?.placement.householdId;
    if (!householdId || rec.drill) return undefined;
    const kind = rec ? ctx.kindOf(rec.model) : undefined;
    if (!kind || !ACTIVITY_KINDS.has(kind)) return undefined;
    this.index(ctx, householdId).add(change.deviceId);
    const wasAllDead = this.allDead(householdId, ctx);
    if (change.status === 'offline') this.offline.add(change.deviceId);
    else this.offline.delete(change.deviceId);
    const note: StatusNote = {
      householdId,
      deviceId: change.deviceId,
      offline: change.status === 'offline',
      allDead: this.allDead(householdId, ctx),
      wasAllDead,
      ts: change.ts,
    };
    this.lastStatusNote = note;
    return note;
  }

  /**
   * Is a motion sensor of the household holding `true` at `now` (someone moving without pause, e.g. cooking)? Such a
   * period gives no new reading until it ends, but it is activity now. A period older than MOTION_MAX_MS is stuck.
   */
  movingNow(householdId: string, now: number, ctx: RuleContext): boolean {
    if (this.moving.size === 0) return false;
    for (const d of this.index(ctx, householdId)) {
      const since = this.moving.get(d);
      if (since !== undefined && now - since <= MOTION_MAX_MS && !this.offline.has(d)) return true;
    }
    return false;
  }

  /** Every activity sensor of the household is offline (none known: false). */
  allDead(householdId: string, ctx: RuleContext): boolean {
    if (this.offline.size === 0) return false;
    const devices = this.index(ctx, householdId);
    if (devices.size === 0) return false;
    for (const d of devices) if (!this.offline.has(d)) return false;
    return true;
  }

  /** Are all devices of these kinds in the household offline? (false when it has none) */
  allOfKindDead(householdId: string, kind: string, ctx: RuleContext): boolean {
    if (this.offline.size === 0) return false;
    let any = false;
    for (const d of this.index(ctx, householdId)) {
      const rec = ctx.devices.get(d);
      if (!rec || ctx.kindOf(rec.model) !== kind) continue;
      any = true;
      if (!this.offline.has(d)) return false;
    }
    return any;
  }

  snapshot(): unknown {
    return {
      h: [...this.houses].map(([id, s]) => [
        id,
        s.first,
        s.last,
        s.lastInHome,
        s.lastNonPower,
        s.lastDoor,
        s.seen,
        s.out ? 1 : 0,
        s.since,
        s.gateIn,
        s.lastDevice,
        s.lastField,
        s.drill ? 1 : 0,
      ]),
      d: [...this.devs].map(([id, s]) => [id, s.v, s.d, s.t, Math.round(s.bg * 10) / 10]),
      off: [...this.offline],
      mv: [...this.moving],
    };
  }

  restore(state: unknown): void {
    const s = state as { h?: unknown[][]; d?: unknown[][]; off?: string[]; mv?: [string, number][] } | undefined;
    this.houses.clear();
    this.devs.clear();
    this.offline.clear();
    this.moving.clear();
    for (const [id, since] of s?.mv ?? []) this.moving.set(id, since);
    for (const row of s?.h ?? []) {
      const [
        id,
        first,
        last,
        lastInHome,
        lastNonPower,
        lastDoor,
        seen,
        out,
        since,
        gateIn,
        lastDevice,
        lastField,
        drill,
      ] = row as [
        string,
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
        string,
        number,
      ];
      this.houses.set(id, {
        first,
        last,
        lastInHome,
        lastNonPower,
        lastDoor,
        seen,
        out: out === 1,
        since,
        gateIn,
        lastDevice,
        lastField,
        drill: drill === 1,
      });
    }
    for (const row of s?.d ?? []) {
      const [id, v, d, t, bg] = row as [string, number, number, number, number];
      this.devs.set(id, { v, d, t, bg });
    }
    for (const id of s?.off ?? []) this.offline.add(id);
  }

  // --- readings ------------------------------------------------------------------------------------------------

  private reading(r: Reading, ctx: RuleContext): ActivityNote | undefined {
    const householdId = r.placement.householdId;
    if (!householdId) return undefined;
    const kind = ctx.kindOf(r.model);
    const devices = this.index(ctx, householdId);
    if (kind && ACTIVITY_KINDS.has(kind) && !devices.has(r.deviceId)) devices.add(r.deviceId);
    // a reading is proof of life for the device
    if (this.offline.size > 0) this.offline.delete(r.deviceId);
    const base = { householdId, deviceId: r.deviceId, ts: r.ts, drill: r.drill, field: r.field, value: r.value };
    switch (r.field) {
      case 'motion': {
        // A PIR holds `true` while it keeps seeing motion and reports `false` after a quiet hold time; its heartbeat
        // repeats the state. A new `true` is motion now; a repeated `true` and the closing `false` say there was
        // motion during the period since it began (so they keep a long movement alive, but cannot bring back a
        // resident who went out after the period began).
        const on = r.value === true;
        const inHome = kind !== 'wristband';
        const dev = this.devs.get(r.deviceId);
        if (!dev) {
          this.devs.set(r.deviceId, { v: on ? 1 : 0, d: on ? r.ts : 0, t: r.ts, bg: 0 });
          if (on) this.moving.set(r.deviceId, r.ts);
          return on ? this.activity({ ...base, activity: true, inHome }) : undefined;
        }
        const was = dev.v === 1;
        const periodStart = dev.d;
        dev.v = on ? 1 : 0;
        dev.t = r.ts;
        // a new period; also a `true` long after the period began (a sensor that never reports the end)
        if (on && (!was || r.ts - periodStart > MOTION_MAX_MS)) {
          dev.d = r.ts;
          this.moving.set(r.deviceId, r.ts);
          return this.activity({ ...base, activity: true, inHome });
        }
        if (!was) return undefined;
        if (!on) this.moving.delete(r.deviceId);
        // the period was movement, not a quiet spell: the spell before it ended when it began
        return this.activity({ ...base, activity: true, inHome, since: periodStart, gapTo: periodStart });
      }
      case 'occupancy':
      case 'contact_open': {
        const v = r.value === true ? 1 : 0;
        const dev = this.devs.get(r.deviceId);
        if (!dev) {
          this.devs.set(r.deviceId, { v, d: 0, t: r.ts, bg: 0 });
          return undefined; // the first report says the state, not a change
        }
        dev.t = r.ts;
        if (dev.v === v) return undefined;
        dev.v = v;
        if (r.field === 'contact_open' && kind === 'door_contact' && this.isEntrance(r.deviceId, ctx)) {
          return this.passage({ ...base, activity: true, inHome: false, entrance: 'passage' });
        }
        return this.activity({ ...base, activity: true, inHome: true });
      }
      case 'water_total_l':
      case 'gas_total_m3': {
        const v = r.value as number;
        const dev = this.devs.get(r.deviceId);
        const counter = r.field === 'water_total_l' ? 'water' : 'gas';
        if (!dev) {
          this.devs.set(r.deviceId, { v, d: 0, t: r.ts, bg: 0 });
          return { ...base, activity: false, inHome: false, counter, delta: 0 };
        }
        const delta = v > dev.v ? v - dev.v : 0;
        const prevTs = dev.t;
        // a flow starts when the previous reading showed none, or it is long ago
        const start = delta > 0 && !(dev.d > 0 && r.ts - dev.t <= FLOW_PAUSE_MS);
        dev.v = v; // a smaller total: meter replaced or reset; start again from it
        dev.d = delta;
        dev.t = r.ts;
        const note: ActivityNote = { ...base, activity: start, inHome: start, counter, delta, since: prevTs };
        return start ? this.activity(note) : note;
      }
      case 'power_w': {
        const p = r.value as number;
        const margin = ctx.settings(householdId).inactivity.powerAboveBackgroundW;
        const dev = this.devs.get(r.deviceId);
        if (!dev) {
          this.devs.set(r.deviceId, { v: p, d: 0, t: r.ts, bg: 0 });
          return p > margin ? this.activity({ ...base, activity: true, inHome: true }) : undefined;
        }
        const prev = dev.v;
        const prevTs = dev.t;
        // learn while nothing else shows a person: the meter's own steps would keep it from ever learning a fridge
        const quiet = r.ts - (this.houses.get(householdId)?.lastNonPower ?? 0) >= QUIET_MS;
        if (quiet) {
          // stochastic quantile estimate of the unattended load; steps scale with the level
          const eta = Math.max(1, dev.bg * 0.05);
          dev.bg = Math.max(0, dev.bg + (p > dev.bg ? eta * BG_QUANTILE : -eta * (1 - BG_QUANTILE)));
        }
        dev.v = p;
        dev.t = r.ts;
        if (p - prev > margin && p > dev.bg + margin) {
          return this.activity({ ...base, activity: true, inHome: true, since: prevTs });
        }
        return undefined;
      }
      case 'heart_rate_bpm':
        return { ...base, activity: false, inHome: false, worn: true };
      default:
        return undefined;
    }
  }

  // --- events ----------------------------------------------------------------------------------------------------

  private eventNotes(e: DeviceEventRecord, ctx: RuleContext): ActivityNote[] {
    const ev = e.event;
    const householdId = e.placement.householdId;
    if (householdId) {
      if (ev.type !== 'sos' && ev.type !== 'cancel') return [];
      if (this.offline.size > 0) this.offline.delete(e.deviceId);
      const inHome = ctx.kindOf(e.model) !== 'wristband';
      const note = this.activity({
        householdId,
        deviceId: e.deviceId,
        ts: e.ts,
        drill: e.drill,
        eventType: ev.type,
        activity: true,
        inHome,
      });
      return [note];
    }
    if (ev.type !== 'door_access') return [];
    const out: ActivityNote[] = [];
    for (const h of this.linked(e, ctx)) {
      const base = { householdId: h, deviceId: e.deviceId, ts: e.ts, drill: e.drill, eventType: 'door_access' };
      if (!ev.granted) {
        // someone tried the door: seen, but nothing about where they are now
        const s = this.state(h, e.ts);
        s.seen = Math.max(s.seen, e.ts);
        out.push({ ...base, value: ev.direction, activity: false, inHome: false, sign: true });
        continue;
      }
      out.push(this.door({ ...base, value: ev.direction, activity: true, inHome: false, entrance: ev.direction }));
    }
    return out;
  }

  /** Households a building door event concerns: by person, else by a flat door passage just before / after. */
  private linked(e: DeviceEventRecord, ctx: RuleContext): string[] {
    const ev = e.event;
    if (ev.type !== 'door_access') return [];
    if (ev.personId && this.opts.householdOfPerson) {
      const h = this.opts.householdOfPerson(ev.personId);
      return h ? [h] : [];
    }
    const buildingId = e.placement.buildingId;
    const unitId = e.placement.unitId;
    if (!buildingId && !unitId) return [];
    const out: string[] = [];
    for (const [id, at] of this.recentDoors) {
      if (Math.abs(e.ts - at) > LINK_MS) {
        if (e.ts - at > LINK_MS) this.recentDoors.delete(id);
        continue;
      }
      const s = this.houses.get(id);
      if (!s?.lastDoor) continue;
      const h = ctx.household(id);
      if (!h) continue;
      if (unitId ? h.unitId !== unitId : h.buildingId !== buildingId) continue;
      // going out: the flat door came first; coming in: the flat door comes after (linked then, see passage())
      if (ev.direction === 'out' && s.lastDoor <= e.ts) out.push(id);
    }
    return out;
  }

  // --- state changes -------------------------------------------------------------------------------------------

  private state(householdId: string, ts: number): HouseState {
    let s = this.houses.get(householdId);
    if (!s) {
      s = {
        first: ts,
        last: 0,
        lastInHome: 0,
        lastNonPower: 0,
        lastDoor: 0,
        seen: 0,
        out: false,
        since: ts,
        gateIn: 0,
        lastDevice: '',
        lastField: '',
        drill: false,
      };
      this.houses.set(householdId, s);
    }
    return s;
  }

  /** Records an activity; in-home activity means home. */
  private activity(n: ActivityNote): ActivityNote {
    const s = this.state(n.householdId, n.ts);
    n.gapFrom = s.last;
    n.gapTo ??= n.ts;
    n.gapHome = !s.out;
    if (n.inHome) {
      s.lastInHome = Math.max(s.lastInHome, n.since ?? n.ts);
      // a back-filled reading, or a meter's report of use before the resident went out, does not bring them back
      if (s.out && (n.since ?? n.ts) >= s.since) {
        s.out = false;
        s.since = n.ts;
        n.returned = true;
      }
    }
    this.touch(s, n);
    return n;
  }

  /** An entrance door change: home → out, out → back (unless part of the same passage, or just after an `in`). */
  private passage(n: ActivityNote): ActivityNote {
    const s = this.state(n.householdId, n.ts);
    n.gapFrom = s.last;
    n.gapTo = n.ts;
    n.gapHome = !s.out;
    const samePassage = s.lastDoor > 0 && n.ts - s.lastDoor <= DEBOUNCE_MS && s.lastInHome <= s.lastDoor;
    const justCameIn = s.gateIn > 0 && n.ts - s.gateIn <= LINK_MS && s.gateIn > s.lastDoor;
    if (justCameIn) {
      if (s.out) {
        s.out = false;
        s.since = n.ts;
        n.returned = true;
      }
    } else if (!samePassage) {
      s.out = !s.out;
      s.since = n.ts;
      if (s.out) n.left = true;
      else n.returned = true;
    }
    s.lastDoor = n.ts;
    // flats whose door moved lately: what a building door event is matched against (not every home)
    this.recentDoors.delete(n.householdId);
    this.recentDoors.set(n.householdId, n.ts);
    this.touch(s, n);
    return n;
  }

  /** A building door event linked to the household. */
  private door(n: ActivityNote): ActivityNote {
    const s = this.state(n.householdId, n.ts);
    n.gapFrom = s.last;
    n.gapTo = n.ts;
    n.gapHome = !s.out;
    if (n.entrance === 'out' && !s.out) {
      s.out = true;
      s.since = n.ts;
      n.left = true;
    } else if (n.entrance === 'in') {
      s.gateIn = n.ts;
      if (s.out) {
        s.out = false;
        s.since = n.ts;
        n.returned = true;
      }
    }
    this.touch(s, n);
    return n;
  }

  private touch(s: HouseState, n: ActivityNote): void {
    if (n.field !== 'power_w') s.lastNonPower = Math.max(s.lastNonPower, n.ts);
    if (n.ts >= s.last) {
      s.last = n.ts;
      s.lastDevice = n.deviceId;
      s.lastField = n.field ?? n.eventType ?? '';
      s.drill = n.drill;
    }
    s.seen = Math.max(s.seen, n.ts);
  }

  private isEntrance(deviceId: string, ctx: RuleContext): boolean {
    if (this.opts.isEntrance) return this.opts.isEntrance(ctx.devices.get(deviceId), deviceId);
    // Without a registry field naming the flat's entrance: a household's only door contact is its entrance (the
    // product's kit puts one on the flat door). With several (fridge, cupboards) none is taken for the entrance,
    // because a fridge door read as "went out" would silence the inactivity rule; the building door still counts.
    const householdId = ctx.devices.get(deviceId)?.placement.householdId;
    if (!householdId) return false;
    let contacts = 0;
    for (const id of this.index(ctx, householdId)) {
      const d = ctx.devices.get(id);
      if (d && ctx.kindOf(d.model) === 'door_contact' && ++contacts > 1) return false;
    }
    return contacts === 1;
  }

  /** The household's activity devices: one pass over the directory the first time, then kept up by readings. */
  private index(ctx: RuleContext, householdId: string): Set<string> {
    if (!this.byHousehold) {
      const map = new Map<string, Set<string>>();
      for (const d of ctx.devices.all()) {
        const h = d.placement.householdId;
        const kind = ctx.kindOf(d.model);
        if (!h || !kind || !ACTIVITY_KINDS.has(kind)) continue;
        let set = map.get(h);
        if (!set) {
          set = new Set();
          map.set(h, set);
        }
        set.add(d.id);
      }
      this.byHousehold = map;
    }
    let set = this.byHousehold.get(householdId);
    if (!set) {
      set = new Set();
      this.byHousehold.set(householdId, set);
    }
    return set;
  }
}

/**
 * The lone-elderly home rules (inactivity, not seen, water, gas left on) all read readings, events and status
 * changes through one shared ActivityTracker; this is their common dispatch, so each rule only says what a note
 * means to it.
 */
export abstract class TrackedHomeRule {
  constructor(readonly tracker: ActivityTracker) {}

  onReadings(readings: readonly Reading[], ctx: RuleContext): void {
    for (const n of this.tracker.readings(readings, ctx)) this.note(n, ctx);
  }

  onEvent(e: DeviceEventRecord, ctx: RuleContext): void {
    for (const n of this.tracker.event(e, ctx)) this.note(n, ctx);
  }

  onStatus(change: StatusChange, ctx: RuleContext): void {
    // keeps the shared tracker current whichever rule is asked first
    const n = this.tracker.status(change, ctx);
    if (n) this.statusNote(n, ctx);
  }

  protected abstract note(n: ActivityNote, ctx: RuleContext): void;

  protected statusNote(_n: StatusNote, _ctx: RuleContext): void {}
}
