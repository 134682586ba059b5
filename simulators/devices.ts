/**
 * Per-model device simulators: they turn a resident's day (resident.ts) into payloads IN THE MODEL'S OWN FORMAT.
 *
 * Two layers, because behaviour belongs to the kind of device and wire format to the model:
 *  - a Behaviour per device kind (water meter, wristband, door access, …) decides what happens, in canonical
 *    terms, plus the little vendor-relevant state a format needs (channel status bits, worn/charging);
 *  - an Encoder per model writes that in the model's format: canonical JSON for native models, the vendor's own
 *    shape for acme-wb200, zenmeter-em3, hikv-ac100 and volt-cb2 (using the vendors' code tables from devices/,
 *    so the simulator cannot drift from the decoder).
 *
 * Everything is deterministic in (device id, household id, simulated time): per-minute randomness is drawn from a
 * hash of the minute, not from a stream, so the same day comes out the same whatever the tick size.
 */
import { ACME_EVENT_CODES, ACME_STATUS_BITS, type AcmeEventCode } from '../devices/acme.ts';
import { HIKV_CODES } from '../devices/hikv.ts';
import { getModel } from '../devices/index.ts';
import type { DeviceKind, DeviceModel } from '../devices/types.ts';
import { VOLT_STATUS_BITS } from '../devices/volt.ts';
import { ZENMETER_ALARM_CODES } from '../devices/zenmeter.ts';
import type { Command, EventType } from '../src/contracts/canonical.ts';
import { hashSeed, mulberry32, Rng } from './random.ts';
import {
  ACTIVITY_EFFECTS,
  DAY_MS,
  HOUR_MS,
  localDay,
  localHour,
  localMidnight,
  MINUTE_MS,
  Resident,
  TZ_OFFSET_MS,
} from './resident.ts';

export interface SimDeviceSpec {
  deviceId: string;
  model: string;
  householdId?: string;
  buildingId?: string;
  unitId?: string;
  areaId?: string;
}

/** A person who passes a door access device: the elderly residents of the building's households. */
export interface DoorUser {
  personId: string;
  /** the resident seed (residentSeed(householdId)), so the door sees the same outings as the flat */
  seed: number;
}

export interface SimOptions {
  /** telemetry interval of chatty devices (meters, wristbands, mains devices), simulated seconds */
  intervalS: number;
  /** rare incidents, off unless asked so a demo does not drown in alarms */
  events?: { sos?: boolean; fall?: boolean };
  /** for door access devices: residents of the households behind this door (else synthetic residents) */
  doorUsers?: readonly DoorUser[];
}

/** Maps a simulated instant to the time written into the payload (identity unless the fleet says otherwise). */
export type StampFn = (simT: number) => number;

export interface SimMessage {
  topic: 'telemetry' | 'event';
  payload: unknown;
}

export interface CommandOutcome {
  accepted: boolean;
  reason?: string;
  messages: SimMessage[];
}

export interface DeviceSimulator {
  readonly spec: SimDeviceSpec;
  readonly model: DeviceModel;
  /** Moves the device to simulated time `now` and returns what it publishes, oldest first. */
  advance(now: number, stamp?: StampFn): SimMessage[];
  /** Handles a command from the service; the answer is what the device then publishes (its new state). */
  command(cmd: Command, now: number, stamp?: StampFn): CommandOutcome;
  /** The full current reading, as a device sends after a reconnect; nothing before the first advance. */
  report(now: number, stamp?: StampFn): SimMessage[];
  /** Raises one of the model's event types now (demo buttons, tests). Throws for types the model cannot raise. */
  trigger(type: string, now: number, stamp?: StampFn): SimMessage[];
}

/**
 * The device's answer to a command, published on its event topic after the command's own messages: the canonical
 * `cmd_ack` event whatever the model (ingest takes it before any vendor decoder). Its id (`ack-<command id>`) makes
 * a redelivered command's second answer count once.
 */
export function commandAck(cmd: Pick<Command, 'id'>, outcome: Pick<CommandOutcome, 'accepted' | 'reason'>): SimMessage {
  const ackId = `ack-${cmd.id}`;
  return {
    topic: 'event',
    payload: {
      type: 'cmd_ack',
      ...(ackId.length <= 64 ? { id: ackId } : {}),
      ref: cmd.id,
      ok: outcome.accepted,
      ...(!outcome.accepted && outcome.reason ? { message: outcome.reason.slice(0, 500) } : {}),
    },
  };
}

/** Seed of the elderly resident of a household: shared by every device in the flat and by the building door. */
export function residentSeed(householdId: string): number {
  return hashSeed('resident', householdId);
}

// ---------------------------------------------------------------------------------------------------------------
// Canonical layer
// ---------------------------------------------------------------------------------------------------------------

interface Channel {
  p: number;
  st: number;
}

/** Device state a vendor format needs beyond the canonical reading. */
interface Meta {
  worn?: boolean;
  charging?: boolean;
  channels?: Channel[];
  /** for cancel: the seq of the cancelled event */
  refSeq?: number;
}

type Canon =
  | { topic: 'telemetry'; at: number; body: Record<string, number | boolean>; meta?: Meta }
  | {
      topic: 'event';
      at: number;
      type: EventType;
      seq: number;
      /** names this run of the simulator, so event ids stay unique across restarts (see Behaviour.advance) */
      run: string;
      body: Record<string, unknown>;
      meta?: Meta;
    };

const ident: StampFn = (t) => t;

/** Per-minute uniform in [0, 1) from a hash: independent of how time was stepped. */
function minuteRand(seed: number, t: number, salt = 0): number {
  return mulberry32(hashSeed(seed, Math.floor(t / MINUTE_MS), salt))();
}

/** Outdoor / stairwell temperature: a daily curve, coolest before dawn, warmest mid-afternoon. */
function ambientC(t: number, base = 17): number {
  return base + 5 * Math.sin((2 * Math.PI * (localHour(t) - 9)) / 24);
}

function r1(v: number): number {
  return Math.round(v * 10) / 10;
}
function r3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** The longest gap a device catches up on: a laptop waking from sleep must not replay a week minute by minute. */
const MAX_CATCH_UP_MS = DAY_MS;

abstract class Behaviour {
  protected readonly rng: Rng;
  protected readonly seed: number;
  protected readonly intervalMs: number;
  private last: number | undefined;
  private nextTelemetry = 0;
  private seq: number;
  private run = 'r';
  private pending: Canon[] = [];
  /** local minute of the once-a-day report, seeded so a block of detectors does not report at once */
  protected readonly dailyAtMin: number;

  constructor(
    readonly spec: SimDeviceSpec,
    readonly model: DeviceModel,
    protected readonly opts: SimOptions,
  ) {
    this.seed = hashSeed('device', spec.deviceId);
    this.rng = new Rng(this.seed);
    this.intervalMs = Math.max(1, opts.intervalS) * 1000;
    this.dailyAtMin = this.rng.int(8 * 60, 20 * 60);
    this.seq = this.rng.int(1, 0xffff);
  }

  get started(): boolean {
    return this.last !== undefined;
  }

  advance(now: number): Canon[] {
    if (this.last === undefined) {
      this.last = now;
      // Ingest drops an event whose id it has seen recently. A restarted simulator must not reuse the ids of its
      // previous run, so the sequence starts from the start time (still deterministic for a given start).
      this.seq = (hashSeed('seq', this.seed, now) % 0xfffe) + 1;
      this.run = Math.floor(now / 1000).toString(36);
      // First contact after power-on: a full report, then telemetry on a seeded phase so 200 devices do not fire
      // in lockstep.
      this.nextTelemetry = now + this.intervalMs * this.rng.range(0.2, 1);
      this.start(now);
      return [this.snapshot(now)];
    }
    if (now <= this.last) return [];
    const from = Math.max(this.last, now - MAX_CATCH_UP_MS);
    const out = this.step(from, now);
    this.last = now;
    const due = this.pending.filter((c) => c.at <= now);
    this.pending = this.pending.filter((c) => c.at > now);
    return [...out, ...due].sort((a, b) => a.at - b.at);
  }

  /** Called once at the first advance (initial state that depends on the start time). */
  protected start(_now: number): void {}
  /** What happens in (from, to]. */
  protected abstract step(from: number, to: number): Canon[];
  /** The full current reading. */
  abstract snapshot(at: number): Canon;

  command(name: string, _args: Record<string, unknown>, _now: number): Canon[] | undefined {
    void name;
    return undefined;
  }

  trigger(type: EventType, now: number): Canon[] {
    return [this.event(type, now)];
  }

  protected event(type: EventType, at: number, body: Record<string, unknown> = {}, meta?: Meta): Canon {
    this.seq = (this.seq % 0xffff) + 1;
    return { topic: 'event', at, type, seq: this.seq, run: this.run, body, ...(meta ? { meta } : {}) };
  }

  protected later(c: Canon): void {
    this.pending.push(c);
  }

  /** True (once) when the periodic telemetry boundary falls in (from, to]; missed intervals are not replayed. */
  protected periodicDue(to: number, everyMs = this.intervalMs): boolean {
    if (to < this.nextTelemetry) return false;
    this.nextTelemetry = Math.max(this.nextTelemetry + everyMs, to + 1);
    return true;
  }

  /** Instants of the daily report (local minute `dailyAtMin`) in (from, to]. */
  protected dailyIn(from: number, to: number): number[] {
    const out: number[] = [];
    for (let d = localDay(from); d <= localDay(to); d++) {
      const at = localMidnight(d) + this.dailyAtMin * MINUTE_MS;
      if (at > from && at <= to) out.push(at);
    }
    return out;
  }

  /** Walks (from, to] in steps of at most a minute: for meters and batteries. */
  protected integrate(from: number, to: number, fn: (t: number, dtMs: number) => void): void {
    for (let t = from; t < to; ) {
      const next = Math.min(to, (Math.floor(t / MINUTE_MS) + 1) * MINUTE_MS);
      fn(t, next - t);
      t = next;
    }
  }
}

/** A battery that drains over its lifetime; a few devices start near empty so low-battery handling gets exercised. */
class Battery {
  private level: number;
  private t0 = 0;
  private start: number;
  constructor(
    rng: Rng,
    private readonly lifetimeDays: number,
  ) {
    this.start = rng.chance(0.03) ? rng.range(8, 19) : rng.range(35, 100);
    this.level = this.start;
  }
  begin(t: number): void {
    this.t0 = t;
  }
  at(t: number): number {
    this.level = Math.max(1, this.start - ((t - this.t0) / DAY_MS) * (95 / this.lifetimeDays));
    return Math.round(this.level);
  }
}

/** Household devices follow the household's resident; without a household, the device id is the seed. */
function residentFor(spec: SimDeviceSpec): Resident {
  return new Resident(spec.householdId ? residentSeed(spec.householdId) : hashSeed('resident', spec.deviceId));
}

// --- meters -----------------------------------------------------------------------------------------------------

class MeterBehaviour extends Behaviour {
  private readonly resident = residentFor(this.spec);
  private total: number;
  private readonly battery: Battery | undefined;
  private readonly fridgePhase = this.rng.int(0, 39);
  private lowReportedDay = -1;

  constructor(
    spec: SimDeviceSpec,
    model: DeviceModel,
    opts: SimOptions,
    private readonly kind: 'water_meter' | 'electricity_meter' | 'gas_meter',
  ) {
    super(spec, model, opts);
    this.total =
      kind === 'water_meter'
        ? this.rng.range(20_000, 150_000)
        : kind === 'electricity_meter'
          ? this.rng.range(1_000, 9_000)
          : this.rng.range(200, 3_000);
    this.battery = model.fields.includes('battery_pct') ? new Battery(this.rng, 6 * 365) : undefined;
  }

  protected override start(now: number): void {
    this.battery?.begin(now);
  }

  /** Household power at t: fridge cycling, standby, evening lights, and what the resident is doing. */
  private powerW(t: number): number {
    const seg = this.resident.segmentAt(t);
    const effect = ACTIVITY_EFFECTS[seg.activity];
    const minute = Math.floor(t / MINUTE_MS);
    const fridge = (minute + this.fridgePhase) % 40 < 14 ? 85 : 0;
    const h = localHour(t);
    const lights =
      effect.atHome && seg.activity !== 'sleep' && seg.activity !== 'nap' && (h >= 17.5 || h < 6.5) ? 30 : 0;
    const noise = 0.9 + 0.2 * minuteRand(this.seed, t, 1);
    return 6 + fridge + lights + effect.powerW * noise;
  }

  protected step(from: number, to: number): Canon[] {
    this.integrate(from, to, (t, dt) => {
      const effect = ACTIVITY_EFFECTS[this.resident.activityAt(t)];
      if (this.kind === 'water_meter') this.total += effect.waterLpm * (dt / MINUTE_MS);
      else if (this.kind === 'gas_meter') this.total += effect.gasM3h * (dt / HOUR_MS);
      else this.total += (this.powerW(t) / 1000) * (dt / HOUR_MS);
    });
    const out: Canon[] = [];
    if (this.battery) {
      for (const at of this.dailyIn(from, to)) {
        const level = this.battery.at(at);
        if (level < 20 && this.lowReportedDay !== localDay(at) && this.model.events.includes('low_battery')) {
          this.lowReportedDay = localDay(at);
          out.push(this.event('low_battery', at, { battery_pct: level }));
        }
      }
    }
    if (this.periodicDue(to)) out.push(this.snapshot(to));
    return out;
  }

  snapshot(at: number): Canon {
    const body: Record<string, number> = {};
    if (this.kind === 'water_meter') body.water_total_l = r1(this.total);
    else if (this.kind === 'gas_meter') body.gas_total_m3 = r3(this.total);
    else {
      body.energy_total_kwh = r3(this.total);
      body.power_w = r1(this.powerW(at));
    }
    if (this.battery) body.battery_pct = this.battery.at(at);
    return { topic: 'telemetry', at, body };
  }

  override trigger(type: EventType, now: number): Canon[] {
    if (type === 'low_battery') return [this.event(type, now, { battery_pct: this.battery?.at(now) ?? 10 })];
    return super.trigger(type, now);
  }
}

// --- motion -----------------------------------------------------------------------------------------------------

class MotionBehaviour extends Behaviour {
  private readonly resident = residentFor(this.spec);
  private readonly battery = new Battery(this.rng, 2 * 365);
  private motion = false;
  private quietMinutes = 0;

  protected override start(now: number): void {
    this.battery.begin(now);
    this.motion = this.moving(now);
  }

  private moving(t: number): boolean {
    return minuteRand(this.seed, t, 2) < ACTIVITY_EFFECTS[this.resident.activityAt(t)].motionP;
  }

  protected step(from: number, to: number): Canon[] {
    const out: Canon[] = [];
    // PIR logic: report motion as soon as it is seen; report "no motion" only after three quiet minutes, which is
    // what real sensors do to save battery and what inactivity rules expect.
    for (let m = Math.floor(from / MINUTE_MS) + 1; m * MINUTE_MS <= to; m++) {
      const t = m * MINUTE_MS;
      if (this.moving(t)) {
        this.quietMinutes = 0;
        if (!this.motion) {
          this.motion = true;
          out.push({ topic: 'telemetry', at: t, body: { motion: true } });
        }
      } else if (this.motion && ++this.quietMinutes >= 3) {
        this.motion = false;
        out.push({ topic: 'telemetry', at: t, body: { motion: false } });
      }
    }
    // Hourly heartbeat with the battery, so a silent flat can be told from a dead sensor.
    if (this.periodicDue(to, HOUR_MS)) out.push(this.snapshot(to));
    return out;
  }

  snapshot(at: number): Canon {
    return { topic: 'telemetry', at, body: { motion: this.motion, battery_pct: this.battery.at(at) } };
  }
}

// --- flat door contact ------------------------------------------------------------------------------------------

class DoorContactBehaviour extends Behaviour {
  private readonly resident = residentFor(this.spec);
  private readonly battery = new Battery(this.rng, 2 * 365);
  private open = false;

  protected override start(now: number): void {
    this.battery.begin(now);
  }

  private swing(at: number): Canon[] {
    const closeAt = at + this.rng.int(5, 12) * 1000;
    this.later({ topic: 'telemetry', at: closeAt, body: { contact_open: false } });
    return [{ topic: 'telemetry', at, body: { contact_open: true } }];
  }

  protected step(from: number, to: number): Canon[] {
    const out: Canon[] = [];
    // The door opens when the resident leaves and again on the way back in.
    for (const s of this.resident.startsBetween(from, to, 'out')) out.push(...this.swing(s.start));
    for (const s of this.resident.endsBetween(from, to, 'out')) out.push(...this.swing(s.end));
    for (const at of this.dailyIn(from, to)) out.push(this.snapshot(at));
    return out;
  }

  snapshot(at: number): Canon {
    return { topic: 'telemetry', at, body: { contact_open: this.open, battery_pct: this.battery.at(at) } };
  }
}

// --- wristband --------------------------------------------------------------------------------------------------

class WristbandBehaviour extends Behaviour {
  private readonly resident = residentFor(this.spec);
  private battery = this.rng.range(40, 100);
  private charging = false;
  private lowSent = false;

  private worn(): boolean {
    return !this.charging;
  }

  private heartRate(t: number): number {
    const effect = ACTIVITY_EFFECTS[this.resident.activityAt(t)];
    return Math.round(this.resident.profile.restingHr + effect.hrDelta + (minuteRand(this.seed, t, 3) - 0.5) * 6);
  }

  /** Today's rare incidents, only when the demo asked for them: at most one SOS and one fall a day. */
  private incidents(day: number): Array<{ at: number; type: 'sos' | 'fall'; cancelled: boolean }> {
    const r = new Rng(hashSeed('incidents', this.seed, day));
    const plan = this.resident.plan(localMidnight(day));
    const awake = (): number => r.range(plan.wake + HOUR_MS, plan.bed - HOUR_MS);
    const out: Array<{ at: number; type: 'sos' | 'fall'; cancelled: boolean }> = [];
    const sos = r.chance(0.25);
    const sosAt = awake();
    const fall = r.chance(0.25);
    const fallAt = awake();
    // Four falls in ten are false alarms the wearer cancels within the band's cancel window.
    const cancelled = r.chance(0.4);
    if (this.opts.events?.sos && sos) out.push({ at: Math.round(sosAt), type: 'sos', cancelled: false });
    if (this.opts.events?.fall && fall) out.push({ at: Math.round(fallAt), type: 'fall', cancelled });
    return out;
  }

  protected step(from: number, to: number): Canon[] {
    const out: Canon[] = [];
    this.integrate(from, to, (t, dt) => {
      const hours = dt / HOUR_MS;
      if (this.charging) {
        this.battery = Math.min(100, this.battery + 45 * hours);
        if (this.battery >= 98) this.charging = false;
      } else {
        this.battery = Math.max(0, this.battery - 0.6 * hours);
        // Put on the charger during the evening television once it runs low; worn again when full.
        if (this.battery < 25 && this.resident.activityAt(t) === 'tv') this.charging = true;
      }
      if (!this.lowSent && this.battery < 15) {
        this.lowSent = true;
        out.push(this.event('low_battery', t, { battery_pct: Math.round(this.battery) }));
      }
      if (this.battery > 30) this.lowSent = false;
    });
    if (this.opts.events?.sos || this.opts.events?.fall) {
      for (let d = localDay(from); d <= localDay(to); d++) {
        for (const inc of this.incidents(d)) {
          if (inc.at <= from || inc.at > to) continue;
          const ev = this.event(inc.type, inc.at);
          out.push(ev);
          if (inc.cancelled && ev.topic === 'event') {
            this.later(this.event('cancel', inc.at + this.rng.int(8, 25) * 1000, {}, { refSeq: ev.seq }));
          }
        }
      }
    }
    if (this.periodicDue(to)) out.push(this.snapshot(to));
    return out;
  }

  snapshot(at: number): Canon {
    const body: Record<string, number> = { battery_pct: Math.round(this.battery) };
    if (this.worn()) body.heart_rate_bpm = this.heartRate(at);
    return { topic: 'telemetry', at, body, meta: { worn: this.worn(), charging: this.charging } };
  }

  override command(name: string, _args: Record<string, unknown>, now: number): Canon[] | undefined {
    // Locate: the band vibrates and reports at once; its reading is the answer the console waits for.
    return name === 'locate' ? [this.snapshot(now)] : undefined;
  }

  override trigger(type: EventType, now: number): Canon[] {
    if (type === 'cancel') return [this.event('cancel', now)];
    if (type === 'low_battery') return [this.event(type, now, { battery_pct: Math.round(this.battery) })];
    return super.trigger(type, now);
  }
}

// --- emergency button, smoke and gas detectors (daily reporters) ------------------------------------------------

class DailyReporterBehaviour extends Behaviour {
  private readonly battery = new Battery(this.rng, 5 * 365);
  private readonly resident = residentFor(this.spec);
  private smoke = false;

  protected override start(now: number): void {
    this.battery.begin(now);
  }

  protected step(from: number, to: number): Canon[] {
    const out: Canon[] = [];
    for (const at of this.dailyIn(from, to)) {
      out.push(this.snapshot(at));
      const level = this.battery.at(at);
      if (level < 20 && this.model.events.includes('low_battery')) {
        out.push(this.event('low_battery', at, { battery_pct: level }));
      }
    }
    // The bedside button: pressed rarely, and only when the demo asked for SOS.
    if (this.model.kind === 'emergency_button' && this.opts.events?.sos) {
      for (let d = localDay(from); d <= localDay(to); d++) {
        const r = new Rng(hashSeed('button', this.seed, d));
        const plan = this.resident.plan(localMidnight(d));
        if (!r.chance(0.1)) continue;
        const at = Math.round(r.range(plan.wake, plan.bed));
        if (at > from && at <= to) out.push(this.event('sos', at));
      }
    }
    return out;
  }

  snapshot(at: number): Canon {
    const body: Record<string, number | boolean> = {};
    if (this.model.fields.includes('smoke')) body.smoke = this.smoke;
    if (this.model.fields.includes('temperature_c')) body.temperature_c = r1(ambientC(at, 21) - 2);
    body.battery_pct = this.battery.at(at);
    return { topic: 'telemetry', at, body };
  }

  override trigger(type: EventType, now: number): Canon[] {
    if (type === 'smoke' && this.model.fields.includes('smoke')) {
      // The alarm clears by itself a few minutes later in the simulation (someone opened the window).
      this.later({ topic: 'telemetry', at: now + 5 * MINUTE_MS, body: { smoke: false } });
      this.smoke = true;
      const out = [this.event('smoke', now), this.snapshot(now)];
      this.smoke = false;
      return out;
    }
    if (type === 'low_battery') return [this.event(type, now, { battery_pct: this.battery.at(now) })];
    return super.trigger(type, now);
  }
}

// --- building door access ---------------------------------------------------------------------------------------

type Method = 'card' | 'face' | 'qr' | 'pin';
interface Passage {
  at: number;
  personId: string;
  direction: 'in' | 'out';
  method: Method;
  granted: boolean;
}

class DoorAccessBehaviour extends Behaviour {
  private readonly users: Array<{ personId: string; resident: Resident; method: Method }>;
  private readonly commuters: Array<{ personId: string; seed: number; method: Method }>;
  private readonly cache = new Map<number, Passage[]>();
  private openUntil = 0;

  constructor(spec: SimDeviceSpec, model: DeviceModel, opts: SimOptions) {
    super(spec, model, opts);
    const method = (): Method => {
      const x = this.rng.float();
      return x < 0.55 ? 'card' : x < 0.9 ? 'face' : x < 0.95 ? 'qr' : 'pin';
    };
    const users =
      opts.doorUsers && opts.doorUsers.length > 0
        ? opts.doorUsers
        : Array.from({ length: this.rng.int(2, 6) }, (_, i) => ({
            personId: `res-${spec.deviceId}-${i}`.slice(0, 64),
            seed: hashSeed('resident', spec.deviceId, i),
          }));
    this.users = users.map((u) => ({ personId: u.personId, resident: new Resident(u.seed), method: method() }));
    // Working neighbours who leave in the morning and come back in the evening: the bulk of a door's traffic.
    this.commuters = Array.from({ length: this.rng.int(6, 16) }, (_, i) => ({
      personId: `card-${String(hashSeed('card', spec.deviceId, i) % 100_000_000).padStart(8, '0')}`,
      seed: hashSeed('commuter', spec.deviceId, i),
      method: method(),
    }));
  }

  private passages(day: number): Passage[] {
    const cached = this.cache.get(day);
    if (cached) return cached;
    const r = new Rng(hashSeed('door', this.seed, day));
    const list: Passage[] = [];
    const pass = (at: number, personId: string, direction: 'in' | 'out', method: Method) => {
      // Now and then a card has expired or a face is not recognised; the person retries with the face reader.
      if (r.chance(0.03)) {
        list.push({ at: at - r.int(5, 20) * 1000, personId, direction, method, granted: false });
        list.push({ at, personId, direction, method: 'face', granted: true });
      } else list.push({ at, personId, direction, method, granted: true });
    };
    const midnight = localMidnight(day);
    for (const u of this.users) {
      for (const s of u.resident.plan(midnight).segments) {
        if (s.activity !== 'out') continue;
        // Leaving the flat, two floors of stairs, then the building door; the reverse on the way back.
        pass(s.start + r.int(40, 120) * 1000, u.personId, 'out', u.method);
        pass(s.end - r.int(40, 120) * 1000, u.personId, 'in', u.method);
      }
    }
    for (const c of this.commuters) {
      const cr = new Rng(hashSeed(c.seed, day));
      if (cr.chance(0.15)) continue; // a day off at home
      pass(midnight + Math.round(cr.normal(7.7, 0.4) * HOUR_MS), c.personId, 'out', c.method);
      pass(midnight + Math.round(cr.normal(18.6, 0.8) * HOUR_MS), c.personId, 'in', c.method);
    }
    list.sort((a, b) => a.at - b.at);
    this.cache.set(day, list);
    if (this.cache.size > 3) this.cache.delete(this.cache.keys().next().value as number);
    return list;
  }

  protected step(from: number, to: number): Canon[] {
    const out: Canon[] = [];
    for (let d = localDay(from); d <= localDay(to); d++) {
      for (const p of this.passages(d)) {
        if (p.at <= from || p.at > to) continue;
        const { at, ...body } = p;
        out.push(this.event('door_access', at, body));
        if (p.granted) this.openUntil = Math.max(this.openUntil, at + 8_000);
      }
      // Someone props the door while moving furniture, a few times a month.
      const r = new Rng(hashSeed('held', this.seed, d));
      if (r.chance(0.1)) {
        const at = localMidnight(d) + Math.round(r.range(9, 17) * HOUR_MS);
        if (at > from && at <= to) out.push(this.event('door_held_open', at, { seconds: r.int(120, 900) }));
      }
    }
    if (this.periodicDue(to)) out.push(this.snapshot(to));
    return out;
  }

  snapshot(at: number): Canon {
    return { topic: 'telemetry', at, body: { contact_open: at < this.openUntil } };
  }

  override command(name: string, _args: Record<string, unknown>, now: number): Canon[] | undefined {
    if (name !== 'open_door') return undefined;
    // Remote opening (e.g. for an ambulance crew): the door opens, and closes on its own after a few seconds.
    this.openUntil = now + 8_000;
    this.later({ topic: 'telemetry', at: now + 8_000, body: { contact_open: false } });
    return [this.snapshot(now)];
  }

  override trigger(type: EventType, now: number): Canon[] {
    if (type === 'door_access') {
      const u = this.users[0] ?? { personId: 'card-00000000', method: 'card' as const };
      return [this.event(type, now, { personId: u.personId, direction: 'in', method: u.method, granted: true })];
    }
    if (type === 'door_held_open') return [this.event(type, now, { seconds: 300 })];
    return super.trigger(type, now);
  }
}

// --- stairwell e-bike cut-off -----------------------------------------------------------------------------------

class CutoffBehaviour extends Behaviour {
  /** Two sockets per stairwell box; native models report their sum. */
  private readonly relayOpen = [false, false];
  private cutByCommand = false;
  private tempC = 18;

  /** Today's stairwell charging attempt (evening) and cleaner's vacuum (morning), if any. */
  private day(d: number) {
    const r = new Rng(hashSeed('cutoff', this.seed, d));
    const midnight = localMidnight(d);
    return {
      attempt: r.chance(0.3)
        ? { at: midnight + Math.round(r.range(19, 22.5) * HOUR_MS), ch: r.int(0, 1), powerW: r1(r.range(160, 320)) }
        : undefined,
      // Not a charger signature: the box leaves it alone, which is the point of load recognition.
      vacuum: r.chance(0.4)
        ? { from: midnight + Math.round(r.range(9, 11) * HOUR_MS), minutes: r.int(10, 20), powerW: r.range(600, 900) }
        : undefined,
    };
  }

  private loadAt(t: number): number {
    const v = this.day(localDay(t)).vacuum;
    return v && t >= v.from && t < v.from + v.minutes * MINUTE_MS && !this.relayOpen[0] ? r1(v.powerW) : 0;
  }

  private channels(t: number): Channel[] {
    const over = this.tempC > 60 ? VOLT_STATUS_BITS.over_temp : 0;
    return this.relayOpen.map((open, i) => ({
      p: i === 0 ? this.loadAt(t) : 0,
      st: (open ? VOLT_STATUS_BITS.relay_open : 0) | over,
    }));
  }

  private cut(at: number, ch: number, powerW: number): Canon {
    this.relayOpen[ch] = true;
    const channels = this.channels(at);
    channels[ch] = { p: powerW, st: VOLT_STATUS_BITS.charger_load | VOLT_STATUS_BITS.relay_open };
    return this.event('ebike_charging_cutoff', at, { power_w: powerW }, { channels });
  }

  protected step(from: number, to: number): Canon[] {
    const out: Canon[] = [];
    this.tempC = r1(ambientC(to, 16) + 2);
    for (let d = localDay(from); d <= localDay(to); d++) {
      // The box re-arms by itself at 07:00 after an automatic cut, so the socket serves cleaners again; a cut by
      // command stays until the service restores it.
      const rearm = localMidnight(d) + 7 * HOUR_MS;
      if (rearm > from && rearm <= to && !this.cutByCommand) {
        this.relayOpen.fill(false);
        out.push(this.snapshot(rearm));
      }
      const a = this.day(d).attempt;
      if (a && a.at > from && a.at <= to && !this.relayOpen[a.ch]) out.push(this.cut(a.at, a.ch, a.powerW));
    }
    if (this.periodicDue(to)) out.push(this.snapshot(to));
    return out;
  }

  snapshot(at: number): Canon {
    const channels = this.channels(at);
    return {
      topic: 'telemetry',
      at,
      body: { power_w: r1(channels.reduce((s, c) => s + c.p, 0)), temperature_c: this.tempC },
      meta: { channels },
    };
  }

  override command(name: string, _args: Record<string, unknown>, now: number): Canon[] | undefined {
    if (name === 'cut_power') {
      this.relayOpen.fill(true);
      this.cutByCommand = true;
    } else if (name === 'restore_power') {
      this.relayOpen.fill(false);
      this.cutByCommand = false;
    } else return undefined;
    return [this.snapshot(now)];
  }

  override trigger(type: EventType, now: number): Canon[] {
    if (type === 'ebike_charging_cutoff') return [this.cut(now, 0, 231.5)];
    if (type === 'overtemp') {
      this.tempC = 72;
      return [this.event('overtemp', now, { temperature_c: 72 }, { channels: this.channels(now) })];
    }
    return super.trigger(type, now);
  }
}

// --- central charging area --------------------------------------------------------------------------------------

class ChargingAreaBehaviour extends Behaviour {
  private readonly ports = this.rng.int(12, 30);
  private cutAll = false;
  private smoke = false;
  private readonly cache = new Map<number, Array<{ from: number; to: number; powerW: number }>>();

  /** Charging sessions plugged in on local day d: most in the evening, a few delivery riders at midday. */
  private sessions(d: number) {
    const cached = this.cache.get(d);
    if (cached) return cached;
    const midnight = localMidnight(d);
    const list: Array<{ from: number; to: number; powerW: number }> = [];
    for (let port = 0; port < this.ports; port++) {
      const r = new Rng(hashSeed('port', this.seed, d, port));
      if (r.chance(0.7)) {
        const start = midnight + Math.round(Math.min(23.5, Math.max(17, r.normal(19.75, 1.2))) * HOUR_MS);
        list.push({ from: start, to: start + Math.round(r.range(4, 8) * HOUR_MS), powerW: r.range(150, 260) });
      }
      if (r.chance(0.2)) {
        const start = midnight + Math.round(r.range(11, 15) * HOUR_MS);
        list.push({ from: start, to: start + Math.round(r.range(2, 4) * HOUR_MS), powerW: r.range(150, 260) });
      }
    }
    this.cache.set(d, list);
    if (this.cache.size > 3) this.cache.delete(this.cache.keys().next().value as number);
    return list;
  }

  private powerW(t: number): number {
    if (this.cutAll) return 0;
    let sum = 0;
    for (const d of [localDay(t) - 1, localDay(t)]) {
      for (const s of this.sessions(d)) {
        if (t < s.from || t >= s.to) continue;
        // Constant current, then the last 45 minutes taper off (constant voltage).
        const left = s.to - t;
        sum += left < 45 * MINUTE_MS ? s.powerW * (0.3 + (0.7 * left) / (45 * MINUTE_MS)) : s.powerW;
      }
    }
    return r1(sum);
  }

  protected step(_from: number, to: number): Canon[] {
    return this.periodicDue(to) ? [this.snapshot(to)] : [];
  }

  snapshot(at: number): Canon {
    const power = this.powerW(at);
    // The cabinet warms with the load it carries: ~2.5 °C per kW above ambient.
    const temp = r1(ambientC(at, 17) + power * 0.0025 + (minuteRand(this.seed, at, 4) - 0.5));
    return {
      topic: 'telemetry',
      at,
      body: { power_w: power, temperature_c: temp, smoke: this.smoke, occupancy: power > 0 },
    };
  }

  override command(name: string, _args: Record<string, unknown>, now: number): Canon[] | undefined {
    if (name === 'cut_power') this.cutAll = true;
    else if (name === 'restore_power') this.cutAll = false;
    else return undefined;
    return [this.snapshot(now)];
  }

  override trigger(type: EventType, now: number): Canon[] {
    if (type === 'overtemp') return [this.event('overtemp', now, { temperature_c: 68.5 })];
    if (type === 'smoke') {
      this.smoke = true;
      const out = [this.event('smoke', now), this.snapshot(now)];
      this.smoke = false;
      this.later({ topic: 'telemetry', at: now + 10 * MINUTE_MS, body: { smoke: false } });
      return out;
    }
    return super.trigger(type, now);
  }
}

type BehaviourFactory = (spec: SimDeviceSpec, model: DeviceModel, opts: SimOptions) => Behaviour;

const BEHAVIOURS: Readonly<Record<DeviceKind, BehaviourFactory>> = {
  water_meter: (s, m, o) => new MeterBehaviour(s, m, o, 'water_meter'),
  electricity_meter: (s, m, o) => new MeterBehaviour(s, m, o, 'electricity_meter'),
  gas_meter: (s, m, o) => new MeterBehaviour(s, m, o, 'gas_meter'),
  motion_sensor: (s, m, o) => new MotionBehaviour(s, m, o),
  door_contact: (s, m, o) => new DoorContactBehaviour(s, m, o),
  wristband: (s, m, o) => new WristbandBehaviour(s, m, o),
  emergency_button: (s, m, o) => new DailyReporterBehaviour(s, m, o),
  smoke_detector: (s, m, o) => new DailyReporterBehaviour(s, m, o),
  gas_detector: (s, m, o) => new DailyReporterBehaviour(s, m, o),
  door_access: (s, m, o) => new DoorAccessBehaviour(s, m, o),
  ebike_cutoff: (s, m, o) => new CutoffBehaviour(s, m, o),
  charging_area: (s, m, o) => new ChargingAreaBehaviour(s, m, o),
};

// ---------------------------------------------------------------------------------------------------------------
// Encoders: canonical → the model's wire format
// ---------------------------------------------------------------------------------------------------------------

type Encoder = (c: Canon, stamp: number) => SimMessage;

const seconds = (ms: number) => Math.floor(ms / 1000);

function nativeId(run: string, seq: number): string {
  return `${run}-${seq}`;
}

const nativeEncoder: Encoder = (c, stamp) => {
  if (c.topic === 'telemetry') return { topic: 'telemetry', payload: { ...c.body, ts: stamp } };
  const body: Record<string, unknown> = { type: c.type, id: nativeId(c.run, c.seq), ...c.body, ts: stamp };
  if (c.meta?.refSeq !== undefined) body.ref = nativeId(c.run, c.meta.refSeq);
  return { topic: 'event', payload: body };
};

function unsupported(model: string, c: Canon): never {
  throw new Error(`${model} cannot express ${c.topic === 'event' ? `event ${c.type}` : 'this reading'}`);
}

const ACME_CODE_BY_TYPE = new Map(
  Object.entries(ACME_EVENT_CODES).map(([code, c]) => [c.type as EventType, Number(code) as AcmeEventCode]),
);

const acmeEncoder: Encoder = (c, stamp) => {
  if (c.topic === 'telemetry') {
    const worn = c.meta?.worn ?? typeof c.body.heart_rate_bpm === 'number';
    const st = (worn ? ACME_STATUS_BITS.worn : 0) | (c.meta?.charging ? ACME_STATUS_BITS.charging : 0);
    return {
      topic: 'telemetry',
      payload: {
        // The band reports 0 while off the wrist; the decoder drops it using the worn bit.
        hr: worn ? c.body.heart_rate_bpm : 0,
        bat: Math.round(Number(c.body.battery_pct)) / 100,
        st: `0x${st.toString(16).padStart(2, '0')}`,
        t: seconds(stamp),
      },
    };
  }
  const evt = ACME_CODE_BY_TYPE.get(c.type) ?? unsupported('acme-wb200', c);
  const payload: Record<string, unknown> = { evt, seq: c.seq & 0xffff, t: seconds(stamp) };
  if (c.meta?.refSeq !== undefined) payload.ref = c.meta.refSeq & 0xffff;
  if (typeof c.body.battery_pct === 'number') payload.bat = Math.round(c.body.battery_pct) / 100;
  return { topic: 'event', payload };
};

const zenmeterEncoder: Encoder = (c, stamp) => {
  if (c.topic === 'telemetry') {
    const payload: Record<string, number> = { ts: seconds(stamp) };
    if (typeof c.body.energy_total_kwh === 'number') payload.E = Math.round(c.body.energy_total_kwh * 1000);
    if (typeof c.body.power_w === 'number') payload.P = Math.round(c.body.power_w) / 1000;
    return { topic: 'telemetry', payload };
  }
  const alm =
    Object.entries(ZENMETER_ALARM_CODES).find(([, a]) => a.type === c.type)?.[0] ?? unsupported('zenmeter-em3', c);
  return { topic: 'event', payload: { alm, ts: seconds(stamp) } };
};

/** "2026-11-25T08:00:00+08:00": Hikvision devices send local time with the zone. */
function hikvTime(ms: number): string {
  return `${new Date(seconds(ms) * 1000 + TZ_OFFSET_MS).toISOString().slice(0, 19)}+08:00`;
}

const HIKV_KEY = (name: string): [number, number] => {
  const entry = Object.entries(HIKV_CODES).find(([, c]) => c.name === name);
  if (!entry) throw new Error(`no HIKV code ${name}`);
  return entry[0].split('/').map(Number) as [number, number];
};

/** Passage (method, granted) → the AC100's sub code; verifyMode names the method where the code does not. */
const HIKV_PASSAGE: Record<Method, { granted: string; denied: string; verifyMode: string }> = {
  card: { granted: 'LEGAL_CARD_PASS', denied: 'CARD_OUT_OF_DATE', verifyMode: 'card' },
  face: { granted: 'FACE_VERIFY_PASS', denied: 'FACE_VERIFY_FAIL', verifyMode: 'face' },
  qr: { granted: 'LEGAL_CARD_PASS', denied: 'CARD_NO_RIGHT', verifyMode: 'qrCode' },
  pin: { granted: 'CARD_AND_PSW_PASS', denied: 'CARD_NO_RIGHT', verifyMode: 'password' },
};

const hikvEncoder: Encoder = (c, stamp) => {
  const time = hikvTime(stamp);
  if (c.topic === 'telemetry') {
    return { topic: 'telemetry', payload: { AcsWorkStatus: { magneticStatus: [c.body.contact_open ? 1 : 0], time } } };
  }
  let name: string;
  const extra: Record<string, unknown> = {};
  switch (c.type) {
    case 'door_access': {
      const method = c.body.method as Method;
      const personId = String(c.body.personId);
      name = c.body.granted ? HIKV_PASSAGE[method].granted : HIKV_PASSAGE[method].denied;
      extra.employeeNoString = personId;
      extra.cardNo = String(hashSeed('cardNo', personId) % 100_000_000).padStart(8, '0');
      extra.verifyMode = HIKV_PASSAGE[method].verifyMode;
      extra.cardReaderNo = c.body.direction === 'out' ? 2 : 1;
      break;
    }
    case 'door_forced':
      name = 'DOOR_OPEN_ABNORMAL';
      break;
    case 'door_held_open':
      name = 'DOOR_OPEN_TIMEOUT';
      extra.openDuration = c.body.seconds;
      break;
    case 'tamper':
      name = 'HOST_DISMANTLE_ALARM';
      break;
    default:
      unsupported('hikv-ac100', c);
  }
  const [major, sub] = HIKV_KEY(name);
  return {
    topic: 'event',
    payload: {
      AccessControllerEvent: {
        deviceName: 'AC100',
        majorEventType: major,
        subEventType: sub,
        doorNo: 1,
        serialNo: c.seq,
        time,
        ...extra,
      },
    },
  };
};

const voltEncoder: Encoder = (c, stamp) => {
  const ch = c.meta?.channels ?? [{ p: Number(c.body.power_w ?? 0), st: 0 }];
  if (c.topic === 'telemetry') {
    const payload: Record<string, unknown> = { ch, ts: seconds(stamp) };
    if (typeof c.body.temperature_c === 'number') payload.tmp = c.body.temperature_c;
    return { topic: 'telemetry', payload };
  }
  const seqTs = { seq: c.seq, ts: seconds(stamp) };
  switch (c.type) {
    case 'ebike_charging_cutoff':
      return { topic: 'event', payload: { ch, alarm: 'CHG_CUT', ...seqTs } };
    case 'overtemp':
      return { topic: 'event', payload: { ch, tmp: c.body.temperature_c, alarm: 'OVER_TEMP', ...seqTs } };
    case 'tamper':
      return { topic: 'event', payload: { alarm: 'COVER_OPEN', ...seqTs } };
    default:
      return unsupported('volt-cb2', c);
  }
};

/** Vendor models and their encoders; every native model uses the canonical encoder. */
const VENDOR_ENCODERS: Readonly<Record<string, Encoder>> = {
  'acme-wb200': acmeEncoder,
  'zenmeter-em3': zenmeterEncoder,
  'hikv-ac100': hikvEncoder,
  'volt-cb2': voltEncoder,
};

/** Whether a model can be simulated (every registered model can; the test holds us to it). */
export function canSimulate(model: DeviceModel): boolean {
  return model.kind in BEHAVIOURS && (model.vendor === 'native' || model.id in VENDOR_ENCODERS);
}

export function createSimulator(spec: SimDeviceSpec, opts: SimOptions): DeviceSimulator {
  const model = getModel(spec.model);
  if (!model) throw new Error(`device ${spec.deviceId}: unknown model ${spec.model}`);
  const encode = model.vendor === 'native' ? nativeEncoder : VENDOR_ENCODERS[model.id];
  if (!encode) throw new Error(`device ${spec.deviceId}: no simulator encoder for model ${model.id}`);
  const behaviour = BEHAVIOURS[model.kind](spec, model, opts);
  const emit = (list: Canon[], stamp: StampFn) => list.map((c) => encode(c, Math.round(stamp(c.at))));
  return {
    spec,
    model,
    advance: (now, stamp = ident) => emit(behaviour.advance(now), stamp),
    report: (now, stamp = ident) => (behaviour.started ? emit([behaviour.snapshot(now)], stamp) : []),
    command(cmd, now, stamp = ident) {
      if (!model.commands.includes(cmd.name)) {
        return { accepted: false, reason: `${model.id} does not support command ${cmd.name}`, messages: [] };
      }
      const out = behaviour.command(cmd.name, cmd.args ?? {}, now);
      if (!out) return { accepted: false, reason: `command ${cmd.name} not simulated`, messages: [] };
      return { accepted: true, messages: emit(out, stamp) };
    },
    trigger(type, now, stamp = ident) {
      if (!model.events.includes(type)) throw new Error(`${model.id} does not raise ${type}`);
      // model.events only lists canonical event types (devices/devices.test.ts checks the decoders against them).
      return emit(behaviour.trigger(type as EventType, now), stamp);
    },
  };
}
