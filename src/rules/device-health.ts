/**
 * Device health (issue 3, rule 12). Maintenance alerts, never "resident in danger" ones:
 *
 * - `device_offline` (minor, per device): the device went offline (last-seen timeout — the status tracker applies
 *   the model's `lastSeenTimeoutS` —, Last Will, unclean disconnect, or its own `offline`); resolves itself when it
 *   comes back online.
 * - `low_battery` (minor, per device): battery telemetry below `lowBatteryPct`, or the device's `low_battery` event;
 *   resolves itself when telemetry shows at least `lowBatteryPct` + 10 (a hysteresis, so a battery hovering at the
 *   threshold does not flap).
 * - `monitoring_lost` (major, per household): every activity sensor of a lone-elderly home is offline, so the
 *   inactivity rules are blind there; resolves when any of them is back.
 * - `devices_offline_mass` (major): `massOfflineCount` or more devices going offline within MASS_WINDOW_MS become
 *   mass alerts instead of one alert per device (see raiseMass for how they are keyed).
 *
 * Offline alerts are not raised the moment a status arrives: each offline device joins a batch that closes
 * MASS_WINDOW_MS after its first member (one scheduler timer); only then is it known whether this was one device or
 * a power cut. A minute's delay costs nothing for a minor maintenance alert, and it means a mass outage produces no
 * per-device alerts at all (rather than the first `massOfflineCount − 1` of them).
 *
 * After a start, for `graceMinutes`, offline statuses are remembered but not alerted (last-seen times loaded from the
 * store are old by the length of the downtime); at the end of the grace period every device still offline goes
 * through the same batch decision, on a timer, without any further message.
 */
import { type AlertInput, type AlertSubject, alertKey, type Evidence } from '../alerts/types.ts';
import type { DeviceEventRecord, Reading, StatusChange } from '../ingest/types.ts';
import type { DeviceRecord } from '../registry/types.ts';
import { ACTIVITY_KINDS } from './activity.ts';
import { eventEvidence, readingEvidence, subjectOf } from './emergency.ts';
import type { Rule, RuleContext, Timer } from './types.ts';

export function isActivitySensorKind(kind: string | undefined): boolean {
  return kind !== undefined && ACTIVITY_KINDS.has(kind);
}

/** Devices going offline within this long of each other are judged together. */
export const MASS_WINDOW_MS = 60_000;
/** A mass outage touching more buildings (or areas) than this is one alert, not one per building. */
export const MAX_MASS_ALERTS = 3;
/** Battery telemetry must be this many points above the threshold to clear a low-battery alert. */
const BATTERY_HYSTERESIS_PCT = 10;
/** A mass alert lists at most this many devices as evidence. */
const MAX_EVIDENCE = 20;

const GRACE_KEY = 'deviceHealth|grace';
const BATCH_KEY = 'deviceHealth|batch';

/** How an offline device has been alerted: not yet (grace or batch), on its own, or inside a mass alert. */
const Alerted = { Waiting: 0, Own: 1, Mass: 2 } as const;
type Alerted = (typeof Alerted)[keyof typeof Alerted];

interface OfflineState {
  since: number;
  drill: boolean;
  reason: StatusChange['reason'];
  alerted: Alerted;
}

export interface DeviceHealthOptions {
  /** When the service started (default: the clock's time at the rule's first call). */
  startedAt?: number;
}

export class DeviceHealthRule implements Rule {
  readonly name = 'deviceHealth' as const;
  private startedAt: number | undefined;
  private graceEnd = 0;
  private readonly offline = new Map<string, OfflineState>();
  /** offline devices waiting for the batch to close */
  private batch: string[] = [];
  /** devices with a low_battery alert that telemetry can clear */
  private readonly low = new Set<string>();
  /** device → key of the mass alert it belongs to */
  private readonly massMember = new Map<string, string>();
  /** mass alert key → members still offline */
  private readonly massLeft = new Map<string, number>();
  /** lone-elderly households whose monitoring is lost → whether all their sensors are drill devices */
  private readonly lost = new Map<string, boolean>();
  /** household → its activity sensors (built from the directory once, then extended as devices show up) */
  private sensors: Map<string, string[]> | undefined;

  constructor(options: DeviceHealthOptions = {}) {
    if (options.startedAt !== undefined) this.startedAt = options.startedAt;
  }

  onStatus(s: StatusChange, ctx: RuleContext): void {
    this.begin(ctx);
    if (s.status === 'offline') this.wentOffline(s, ctx);
    else if (s.status === 'online') this.cameOnline(s, ctx);
  }

  onReadings(readings: readonly Reading[], ctx: RuleContext): void {
    for (const r of readings) {
      if (r.field !== 'battery_pct' || typeof r.value !== 'number') continue;
      const settings = ctx.settings(r.placement.householdId).deviceHealth;
      if (r.value < settings.lowBatteryPct) {
        if (this.low.has(r.deviceId) || !settings.enabled) continue;
        this.low.add(r.deviceId);
        ctx.raise(this.lowBattery(r.deviceId, r.placement, r.drill, r.ts, readingEvidence(r), ctx));
      } else if (r.value >= settings.lowBatteryPct + BATTERY_HYSTERESIS_PCT && this.low.has(r.deviceId)) {
        this.low.delete(r.deviceId);
        ctx.clear(key('low_battery', 'device', r.deviceId, r.drill), `battery back to ${r.value} %`, r.ts);
      }
    }
  }

  onEvent(e: DeviceEventRecord, ctx: RuleContext): void {
    if (e.event.type !== 'low_battery') return;
    if (!ctx.settings(e.placement.householdId).deviceHealth.enabled) return;
    this.low.add(e.deviceId);
    ctx.raise(this.lowBattery(e.deviceId, e.placement, e.drill, e.ts, eventEvidence(e), ctx));
  }

  onTimer(t: Timer, ctx: RuleContext): void {
    this.begin(ctx);
    if (t.key === GRACE_KEY) {
      if (ctx.clock.now() < this.graceEnd) return; // a timer left over from an earlier run
      const batched = new Set(this.batch);
      const waiting: string[] = [];
      for (const [id, o] of this.offline) if (o.alerted === Alerted.Waiting && !batched.has(id)) waiting.push(id);
      this.alertOffline(waiting, t.at, ctx);
    } else if (t.key === BATCH_KEY) {
      const ids = this.batch.filter((id) => this.offline.get(id)?.alerted === Alerted.Waiting);
      this.batch = [];
      this.alertOffline(ids, t.at, ctx);
    }
  }

  snapshot(): unknown {
    return {
      offline: [...this.offline],
      batch: this.batch,
      low: [...this.low],
      massMember: [...this.massMember],
      lost: [...this.lost],
    };
  }

  restore(state: unknown): void {
    const s = state as
      | {
          offline?: [string, OfflineState][];
          batch?: string[];
          low?: string[];
          massMember?: [string, string][];
          lost?: [string, boolean][];
        }
      | undefined;
    this.offline.clear();
    this.low.clear();
    this.massMember.clear();
    this.massLeft.clear();
    this.lost.clear();
    for (const [id, o] of s?.offline ?? []) this.offline.set(id, o);
    this.batch = [...(s?.batch ?? [])];
    for (const id of s?.low ?? []) this.low.add(id);
    for (const [id, k] of s?.massMember ?? []) {
      this.massMember.set(id, k);
      this.massLeft.set(k, (this.massLeft.get(k) ?? 0) + 1);
    }
    for (const [h, drill] of s?.lost ?? []) this.lost.set(h, drill);
  }

  // --- offline / online ------------------------------------------------------------------------------------------

  /** The first call fixes the start time and arms the end of the grace period. */
  private begin(ctx: RuleContext): void {
    if (this.graceEnd !== 0) return;
    this.startedAt ??= ctx.clock.now();
    const graceMs = ctx.settings().deviceHealth.graceMinutes * 60_000;
    this.graceEnd = Math.max(1, this.startedAt + graceMs);
    if (this.graceEnd > ctx.clock.now()) ctx.scheduler.set({ key: GRACE_KEY, at: this.graceEnd, rule: 'deviceHealth' });
  }

  private wentOffline(s: StatusChange, ctx: RuleContext): void {
    if (this.offline.has(s.deviceId)) return;
    const rec = ctx.devices.get(s.deviceId);
    if (!rec || rec.disabled) return;
    this.index(rec, ctx);
    this.offline.set(s.deviceId, { since: s.ts, drill: rec.drill, reason: s.reason, alerted: Alerted.Waiting });
    if (ctx.clock.now() < this.graceEnd) return; // remembered; the grace timer decides
    this.batch.push(s.deviceId);
    if (!ctx.scheduler.get(BATCH_KEY)) {
      ctx.scheduler.set({ key: BATCH_KEY, at: ctx.clock.now() + MASS_WINDOW_MS, rule: 'deviceHealth' });
    }
  }

  private cameOnline(s: StatusChange, ctx: RuleContext): void {
    const rec = ctx.devices.get(s.deviceId);
    if (rec) this.index(rec, ctx); // a device provisioned after the start joins its home's sensors
    const o = this.offline.get(s.deviceId);
    if (!o) return;
    this.offline.delete(s.deviceId);
    if (o.alerted === Alerted.Own)
      ctx.clear(key('device_offline', 'device', s.deviceId, o.drill), 'device back online', s.ts);
    const massKey = this.massMember.get(s.deviceId);
    if (massKey !== undefined) {
      this.massMember.delete(s.deviceId);
      const left = (this.massLeft.get(massKey) ?? 1) - 1;
      if (left > 0) this.massLeft.set(massKey, left);
      else {
        this.massLeft.delete(massKey);
        ctx.clear(massKey, 'all devices of the outage back online', s.ts);
      }
    }
    const householdId = rec?.placement.householdId;
    const lostDrill = householdId ? this.lost.get(householdId) : undefined;
    if (rec && householdId && lostDrill !== undefined && isActivitySensorKind(ctx.kindOf(rec.model))) {
      this.lost.delete(householdId);
      ctx.clear(key('monitoring_lost', 'household', householdId, lostDrill), 'an activity sensor is back online', s.ts);
    }
  }

  /** The batch (or the grace period) closed: one alert per device, or mass alerts. */
  private alertOffline(ids: readonly string[], ts: number, ctx: RuleContext): void {
    if (ids.length === 0) return;
    const settings = ctx.settings().deviceHealth;
    const lostNow = this.newlyLost(ids, ctx);
    if (ids.length >= settings.massOfflineCount && settings.enabled) {
      this.raiseMass(ids, lostNow, ts, ctx);
    } else {
      for (const id of ids) this.raiseOwn(id, ctx);
      for (const h of lostNow) this.raiseLost(h, ts, ctx);
    }
    for (const h of lostNow) this.lost.set(h, this.householdDrill(h, ctx));
  }

  private raiseOwn(deviceId: string, ctx: RuleContext): void {
    const o = this.offline.get(deviceId);
    const rec = ctx.devices.get(deviceId);
    if (!o || !rec) return;
    if (!ctx.settings(rec.placement.householdId).deviceHealth.enabled) return;
    o.alerted = Alerted.Own;
    const kind = ctx.kindOf(rec.model);
    ctx.raise({
      type: 'device_offline',
      category: 'maintenance',
      severity: 'minor',
      subject: subjectOf(ctx, rec.placement, deviceId),
      keyOn: 'device',
      drill: rec.drill,
      ts: o.since,
      evidence: [statusEvidence(deviceId, o)],
      summary: `Device offline (${kind ?? rec.model}, ${reasonText(o.reason)})`,
    });
  }

  private raiseLost(householdId: string, ts: number, ctx: RuleContext): void {
    if (!ctx.settings(householdId).deviceHealth.enabled) return;
    const ids = this.sensors?.get(householdId) ?? [];
    const recs = ids.map((id) => ctx.devices.get(id)).filter((r): r is DeviceRecord => r !== undefined);
    const first = recs[0];
    if (!first) return;
    ctx.raise({
      type: 'monitoring_lost',
      category: 'maintenance',
      severity: 'major',
      subject: subjectOf(ctx, first.placement),
      keyOn: 'household',
      drill: this.householdDrill(householdId, ctx),
      ts,
      evidence: ids.flatMap((id) => {
        const o = this.offline.get(id);
        return o ? [statusEvidence(id, o)] : [];
      }),
      summary: `Monitoring lost in a lone-elderly home: all ${ids.length} activity sensors offline`,
    });
  }

  /**
   * Mass outage. The alert key needs a building, area, unit, household or device (there is no community key), so:
   * devices are grouped by building (area for charging areas); up to MAX_MASS_ALERTS groups get one alert each,
   * keyed on their building (a power or network cut of one or two buildings is best handled per building: the
   * building's people go and look); a wider outage (a street-wide network or platform problem) becomes ONE alert,
   * keyed on the most affected building, whose summary names the number of devices and buildings. Homes that lost
   * their monitoring in the outage are counted in the summary instead of one `monitoring_lost` each; they still
   * resolve as their sensors come back.
   */
  private raiseMass(ids: readonly string[], lostNow: readonly string[], ts: number, ctx: RuleContext): void {
    const groups = new Map<string, { keyOn: AlertInput['keyOn']; subject: AlertSubject; ids: string[] }>();
    for (const id of ids) {
      const rec = ctx.devices.get(id);
      if (!rec) continue;
      const full = subjectOf(ctx, rec.placement);
      const [keyOn, groupId] = groupOf(full, id);
      const gk = `${keyOn}:${groupId}`;
      let g = groups.get(gk);
      if (!g) {
        g = { keyOn, subject: groupSubject(full, keyOn, id), ids: [] };
        groups.set(gk, g);
      }
      g.ids.push(id);
    }
    const list = [...groups.values()];
    if (list.length === 0) return;
    const lostNote = lostNow.length > 0 ? `; monitoring lost in ${lostNow.length} lone-elderly homes` : '';
    if (list.length <= MAX_MASS_ALERTS) {
      for (const g of list) {
        const lostHere = lostNow.filter((h) => ctx.household(h)?.buildingId === g.subject.buildingId).length;
        const note = lostHere > 0 ? `; monitoring lost in ${lostHere} lone-elderly homes` : '';
        const where = g.keyOn === 'building' ? 'in one building' : g.keyOn === 'area' ? 'in a charging area' : '';
        this.raiseMassAlert(
          g.keyOn,
          g.subject,
          g.ids,
          ts,
          `${g.ids.length} devices ${where} went offline within a minute${note}`,
          ctx,
        );
      }
      return;
    }
    list.sort((a, b) => b.ids.length - a.ids.length || groupName(a).localeCompare(groupName(b)));
    const top = list[0]!;
    const all = list.flatMap((g) => g.ids);
    const subject: AlertSubject = { ...top.subject };
    const summary = `${all.length} devices in ${list.length} buildings or areas went offline within a minute${lostNote}`;
    this.raiseMassAlert(top.keyOn, subject, all, ts, summary, ctx);
  }

  private raiseMassAlert(
    keyOn: AlertInput['keyOn'],
    subject: AlertSubject,
    ids: readonly string[],
    ts: number,
    summary: string,
    ctx: RuleContext,
  ): void {
    const evidence: Evidence[] = [
      { ts, kind: 'rule', note: `${ids.length} devices offline within ${MASS_WINDOW_MS / 1000} s` },
    ];
    let drill = true;
    for (const id of ids) {
      const rec = ctx.devices.get(id);
      if (!rec?.drill) drill = false;
      const o = this.offline.get(id);
      if (o && evidence.length <= MAX_EVIDENCE) evidence.push(statusEvidence(id, o));
    }
    const input: AlertInput = {
      type: 'devices_offline_mass',
      category: 'maintenance',
      severity: 'major',
      subject,
      keyOn,
      drill,
      ts,
      evidence,
      summary,
    };
    const k = alertKey(input);
    ctx.raise(input);
    for (const id of ids) {
      const o = this.offline.get(id);
      if (!o) continue;
      o.alerted = Alerted.Mass;
      const before = this.massMember.get(id);
      if (before === k) continue;
      this.massMember.set(id, k);
      this.massLeft.set(k, (this.massLeft.get(k) ?? 0) + 1);
    }
  }

  // --- monitoring lost -------------------------------------------------------------------------------------------

  /** Lone-elderly households of these devices whose activity sensors are now all offline (and were not before). */
  private newlyLost(ids: readonly string[], ctx: RuleContext): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    for (const id of ids) {
      const rec = ctx.devices.get(id);
      const householdId = rec?.placement.householdId;
      if (!rec || !householdId || seen.has(householdId) || this.lost.has(householdId)) continue;
      seen.add(householdId);
      if (!isActivitySensorKind(ctx.kindOf(rec.model))) continue;
      if (!ctx.household(householdId)?.loneElderly) continue;
      const sensors = this.sensors?.get(householdId);
      if (!sensors || sensors.length === 0) continue;
      if (sensors.every((d) => this.offline.has(d))) out.push(householdId);
    }
    return out;
  }

  /** A household's monitoring_lost is a drill when all its activity sensors are drill devices. */
  private householdDrill(householdId: string, ctx: RuleContext): boolean {
    const ids = this.sensors?.get(householdId) ?? [];
    return ids.length > 0 && ids.every((id) => ctx.devices.get(id)?.drill === true);
  }

  /** Keeps the household → activity sensors index: built from the directory once, extended by new devices. */
  private index(rec: DeviceRecord, ctx: RuleContext): void {
    if (!this.sensors) {
      this.sensors = new Map();
      for (const d of ctx.devices.all()) this.addSensor(d, ctx);
    }
    this.addSensor(rec, ctx);
  }

  private addSensor(rec: DeviceRecord, ctx: RuleContext): void {
    const householdId = rec.placement.householdId;
    if (!householdId || rec.disabled || !isActivitySensorKind(ctx.kindOf(rec.model))) return;
    const list = this.sensors!.get(householdId);
    if (!list) this.sensors!.set(householdId, [rec.id]);
    else if (!list.includes(rec.id)) list.push(rec.id);
  }

  private lowBattery(
    deviceId: string,
    placement: DeviceRecord['placement'],
    drill: boolean,
    ts: number,
    evidence: Evidence,
    ctx: RuleContext,
  ): AlertInput {
    return {
      type: 'low_battery',
      category: 'maintenance',
      severity: 'minor',
      subject: subjectOf(ctx, placement, deviceId),
      keyOn: 'device',
      drill,
      ts,
      evidence: [evidence],
      summary: 'Device battery low: replace the battery',
    };
  }
}

function key(type: string, keyOn: AlertInput['keyOn'], id: string, drill: boolean): string {
  const subject: AlertSubject = keyOn === 'household' ? { householdId: id } : { deviceId: id };
  return alertKey({ type, keyOn, subject, drill });
}

function statusEvidence(deviceId: string, o: OfflineState): Evidence {
  return { ts: o.since, kind: 'status', deviceId, value: 'offline', note: reasonText(o.reason) };
}

function reasonText(reason: StatusChange['reason']): string {
  switch (reason) {
    case 'timeout':
      return 'silent longer than its reporting budget';
    case 'last_will':
      return 'connection lost (last will)';
    case 'disconnect':
      return 'connection dropped';
    default:
      return 'reported offline';
  }
}

/** The group of a device in a mass outage: its building, else its area, unit, household, or itself. */
function groupOf(s: AlertSubject, deviceId: string): [AlertInput['keyOn'], string] {
  if (s.buildingId) return ['building', s.buildingId];
  if (s.areaId) return ['area', s.areaId];
  if (s.unitId) return ['unit', s.unitId];
  if (s.householdId) return ['household', s.householdId];
  return ['device', deviceId];
}

/** A mass alert's subject: the place only (not one household's colour or one device). */
function groupSubject(s: AlertSubject, keyOn: AlertInput['keyOn'], deviceId: string): AlertSubject {
  const out: AlertSubject = {};
  if (s.buildingId) out.buildingId = s.buildingId;
  if (s.gridId) out.gridId = s.gridId;
  if (s.communityId) out.communityId = s.communityId;
  if (keyOn === 'area' && s.areaId) out.areaId = s.areaId;
  if (keyOn === 'unit' && s.unitId) out.unitId = s.unitId;
  if (keyOn === 'household' && s.householdId) out.householdId = s.householdId;
  if (keyOn === 'device') out.deviceId = deviceId;
  return out;
}

function groupName(g: { subject: AlertSubject }): string {
  const s = g.subject;
  return s.buildingId ?? s.areaId ?? s.unitId ?? s.householdId ?? s.deviceId ?? '';
}
