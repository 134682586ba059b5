/**
 * Emergency rules (issue 3, rules 1–3): SOS, falls with the wearer's cancel window, and fire (smoke and gas leaks in
 * homes, smoke or over-temperature in an e-bike charging area).
 *
 * Also home to the small helpers every rule of this family uses to describe what an alert concerns (`subjectOf`)
 * and what made it (`eventEvidence`, `readingEvidence`).
 */
import { type AlertInput, type AlertSubject, alertKey, type Evidence } from '../alerts/types.ts';
import type { CanonicalEvent } from '../contracts/canonical.ts';
import type { DeviceEventRecord, Reading } from '../ingest/types.ts';
import type { Placement } from '../registry/types.ts';
import type { Rule, RuleContext, Timer } from './types.ts';

// ---------------------------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------------------------

/**
 * What an alert concerns, from a device's placement: the household (its colour class looked up fresh, since a
 * household can be re-classed after the device was placed), unit, building, grid, community, area and the device.
 * Missing levels of a household device are filled from the household record.
 */
export function subjectOf(ctx: RuleContext, placement: Placement, deviceId?: string): AlertSubject {
  const h = placement.householdId ? ctx.household(placement.householdId) : undefined;
  const s: AlertSubject = {};
  if (placement.householdId) s.householdId = placement.householdId;
  const unitId = placement.unitId ?? h?.unitId;
  if (unitId) s.unitId = unitId;
  const buildingId = placement.buildingId ?? h?.buildingId;
  if (buildingId) s.buildingId = buildingId;
  const gridId = placement.gridId ?? h?.gridId;
  if (gridId) s.gridId = gridId;
  const communityId = placement.communityId ?? h?.communityId;
  if (communityId) s.communityId = communityId;
  if (placement.areaId) s.areaId = placement.areaId;
  if (deviceId) s.deviceId = deviceId;
  const colour = h?.colour ?? placement.colour;
  if (colour) s.colour = colour;
  return s;
}

/** The one number an event carries, if any (held-open seconds, cut-off power, temperature, battery). */
function eventValue(ev: CanonicalEvent): number | string | boolean | undefined {
  switch (ev.type) {
    case 'door_held_open':
      return ev.seconds;
    case 'ebike_charging_cutoff':
      return ev.power_w;
    case 'overtemp':
      return ev.temperature_c;
    case 'low_battery':
      return ev.battery_pct;
    case 'door_access':
      return `${ev.direction}${ev.granted ? '' : ' denied'}`;
    default:
      return undefined;
  }
}

export function eventEvidence(e: DeviceEventRecord, note?: string): Evidence {
  const ev: Evidence = { ts: e.ts, kind: 'event', deviceId: e.deviceId, eventType: e.event.type };
  if (e.event.id !== undefined) ev.eventId = e.event.id;
  const value = eventValue(e.event);
  if (value !== undefined) ev.value = value;
  if (note) ev.note = note;
  return ev;
}

export function readingEvidence(r: Reading, note?: string): Evidence {
  const ev: Evidence = { ts: r.ts, kind: 'reading', deviceId: r.deviceId, field: r.field, value: r.value };
  if (note) ev.note = note;
  return ev;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. SOS
// ---------------------------------------------------------------------------------------------------------------

/** SOS from a wristband or an emergency button: critical at once, no cancel window. */
export class SosRule implements Rule {
  readonly name = 'sos' as const;

  onEvent(e: DeviceEventRecord, ctx: RuleContext): void {
    if (e.event.type !== 'sos') return;
    const householdId = e.placement.householdId;
    if (!ctx.settings(householdId).sos.enabled) return;
    const button = ctx.kindOf(e.model) === 'emergency_button';
    ctx.raise({
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      subject: subjectOf(ctx, e.placement, e.deviceId),
      // two devices of one home (button and wristband) pressed together are one emergency
      keyOn: householdId ? 'household' : 'device',
      drill: e.drill,
      ts: e.ts,
      evidence: [eventEvidence(e)],
      summary: button ? 'SOS: emergency call button pressed' : 'SOS from a wristband',
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Fall, with the wearer's cancel window
// ---------------------------------------------------------------------------------------------------------------

/** How long a confirmed (not cancelled) fall is remembered as "already notified" for the same wristband. */
const CONFIRMED_MEMORY_MS = 6 * 3_600_000;

/**
 * A fall is raised at once (so the console shows it) with `notBefore` at the end of the cancel window, so nobody is
 * notified before the wearer had the chance to cancel. A `cancel` from the same wristband while the window is open
 * cancels the alert; after the window the alert stays open and a late cancel does nothing.
 *
 * Keyed on the wristband (the wearer), not the household: in a home of two, each wearer's fall and cancel are their
 * own. One subtlety: a second fall while an earlier, already confirmed fall of the same wearer is still open repeats
 * into that alert; cancelling the second fall must not cancel the confirmed first one, so the rule remembers
 * confirmed falls (for CONFIRMED_MEMORY_MS) and then leaves the alert open. It cannot see staff resolving an alert,
 * so in the worst case a cancel within that memory is ignored — a false alarm, never a hidden fall.
 */
export class FallRule implements Rule {
  readonly name = 'fall' as const;
  /** wristband → time of the fall whose window ended without a cancel */
  private readonly confirmed = new Map<string, number>();

  static timerKey(deviceId: string): string {
    return `fall|${deviceId}`;
  }

  onEvent(e: DeviceEventRecord, ctx: RuleContext): void {
    if (e.event.type === 'fall') this.fall(e, ctx);
    else if (e.event.type === 'cancel') this.cancel(e, ctx);
  }

  onTimer(t: Timer, _ctx: RuleContext): void {
    const deviceId = t.data?.deviceId;
    if (typeof deviceId !== 'string') return;
    // the window ended without a cancel: the alert stays open, notifications may go out (notBefore has passed)
    this.confirmed.set(deviceId, typeof t.data?.fallTs === 'number' ? t.data.fallTs : t.at);
  }

  snapshot(): unknown {
    return { confirmed: [...this.confirmed] };
  }

  restore(state: unknown): void {
    const s = state as { confirmed?: [string, number][] } | undefined;
    this.confirmed.clear();
    for (const [id, ts] of s?.confirmed ?? []) this.confirmed.set(id, ts);
  }

  private fall(e: DeviceEventRecord, ctx: RuleContext): void {
    const settings = ctx.settings(e.placement.householdId).fall;
    if (!settings.enabled) return;
    const windowMs = settings.cancelWindowS * 1000;
    const input: AlertInput = {
      type: 'fall',
      category: 'resident_safety',
      severity: 'critical',
      subject: subjectOf(ctx, e.placement, e.deviceId),
      keyOn: 'device',
      drill: e.drill,
      ts: e.ts,
      evidence: [eventEvidence(e, windowMs > 0 ? `cancel window ${settings.cancelWindowS} s` : undefined)],
      summary: 'Fall detected by a wristband',
    };
    if (windowMs > 0) input.notBefore = e.ts + windowMs;
    ctx.raise(input);
    const key = FallRule.timerKey(e.deviceId);
    if (windowMs > 0) {
      ctx.scheduler.set({ key, at: e.ts + windowMs, rule: 'fall', data: { deviceId: e.deviceId, fallTs: e.ts } });
    } else {
      ctx.scheduler.cancel(key);
      this.confirmed.set(e.deviceId, e.ts);
    }
  }

  private cancel(e: DeviceEventRecord, ctx: RuleContext): void {
    const key = FallRule.timerKey(e.deviceId);
    // no pending window (never fell, already cancelled, or the window is over): nothing to do
    if (!ctx.scheduler.get(key)) return;
    ctx.scheduler.cancel(key);
    const confirmedAt = this.confirmed.get(e.deviceId);
    if (confirmedAt !== undefined) {
      if (e.ts - confirmedAt < CONFIRMED_MEMORY_MS) {
        ctx.log.info({ deviceId: e.deviceId }, 'fall cancel ignored: an earlier fall of this wearer was confirmed');
        return;
      }
      this.confirmed.delete(e.deviceId);
    }
    const subject: AlertSubject = { deviceId: e.deviceId };
    ctx.cancel(
      alertKey({ type: 'fall', keyOn: 'device', subject, drill: e.drill }),
      'cancelled by the wearer',
      e.ts,
      `device:${e.deviceId}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Fire: smoke and gas leaks in homes, smoke or over-temperature in e-bike charging areas
// ---------------------------------------------------------------------------------------------------------------

/** While a condition lasts, continuous telemetry re-raises (bumping count and last-seen) at most this often. */
const FIRE_REMIND_MS = 5 * 60_000;
/** A charging area's temperature must fall this far below the limit before its over-temperature counts as over. */
const TEMPERATURE_HYSTERESIS_C = 5;

interface FireDeviceState {
  key: string;
  smoke: boolean;
  hot: boolean;
  lastRaise: number;
}

type FireType = 'smoke' | 'gas_leak' | 'charging_area_fire';

/**
 * Critical fire alerts, building-wide: the subject carries the building (and grid, community) so notification can
 * reach everyone responsible for it. Homes: `smoke` / `gas_leak` keyed on the household. Charging areas (every
 * device installed on an area: areas are the central e-bike charging areas): `charging_area_fire` keyed on the area,
 * from smoke (event or telemetry), an `overtemp` event, or telemetry temperature above the configured limit.
 * Detectors on a unit or building (stairwells) raise `smoke` keyed on that unit or building.
 *
 * Clearing: when every device that reported smoke for a key reports `smoke: false` again (and, in a charging area,
 * the temperature is back below limit − 5 °C), the alert resolves by itself with the reason. Gas leaks have no
 * "all clear" reading and wait for a person. Only devices in alarm are tracked, so the steady stream of
 * `smoke: false` telemetry costs one Map lookup.
 */
export class FireRule implements Rule {
  readonly name = 'fire' as const;
  private readonly devices = new Map<string, FireDeviceState>();
  /** alert key → number of devices still in alarm for it */
  private readonly perKey = new Map<string, number>();

  onEvent(e: DeviceEventRecord, ctx: RuleContext): void {
    const type = e.event.type;
    if (type !== 'smoke' && type !== 'gas_leak' && type !== 'overtemp') return;
    const settings = ctx.settings(e.placement.householdId).fire;
    if (!settings.enabled) return;
    const area = isChargingArea(e.placement);
    if (type === 'overtemp' && !area) return; // a corridor cut-off's over-temperature is the e-bike rule's
    const alertType: FireType = area ? 'charging_area_fire' : type === 'gas_leak' ? 'gas_leak' : 'smoke';
    const input = this.input(alertType, e.placement, e.deviceId, e.drill, e.ts, eventEvidence(e), ctx);
    ctx.raise(input);
    if (type === 'gas_leak') return;
    this.mark(e.deviceId, alertKey(input), type === 'overtemp' ? 'hot' : 'smoke', e.ts);
  }

  onReadings(readings: readonly Reading[], ctx: RuleContext): void {
    for (const r of readings) {
      if (r.field === 'smoke') this.smokeReading(r, ctx);
      else if (r.field === 'temperature_c' && isChargingArea(r.placement)) this.temperatureReading(r, ctx);
    }
  }

  snapshot(): unknown {
    return { devices: [...this.devices] };
  }

  restore(state: unknown): void {
    const s = state as { devices?: [string, FireDeviceState][] } | undefined;
    this.devices.clear();
    this.perKey.clear();
    for (const [id, d] of s?.devices ?? []) {
      this.devices.set(id, d);
      this.perKey.set(d.key, (this.perKey.get(d.key) ?? 0) + 1);
    }
  }

  private smokeReading(r: Reading, ctx: RuleContext): void {
    const state = this.devices.get(r.deviceId);
    if (r.value === true) {
      if (state?.smoke && r.ts - state.lastRaise < FIRE_REMIND_MS) return;
      if (!ctx.settings(r.placement.householdId).fire.enabled) return;
      const type: FireType = isChargingArea(r.placement) ? 'charging_area_fire' : 'smoke';
      const input = this.input(type, r.placement, r.deviceId, r.drill, r.ts, readingEvidence(r), ctx);
      ctx.raise(input);
      this.mark(r.deviceId, alertKey(input), 'smoke', r.ts);
    } else if (r.value === false && state?.smoke) {
      state.smoke = false;
      this.settle(r.deviceId, state, 'smoke cleared: the detector reports no smoke', r.ts, ctx);
    }
  }

  private temperatureReading(r: Reading, ctx: RuleContext): void {
    if (typeof r.value !== 'number') return;
    const state = this.devices.get(r.deviceId);
    const settings = ctx.settings(r.placement.householdId).fire;
    const limit = settings.chargingAreaMaxTemperatureC;
    if (r.value > limit) {
      if (state?.hot && r.ts - state.lastRaise < FIRE_REMIND_MS) return;
      if (!settings.enabled) return;
      const ev = readingEvidence(r, `above the ${limit} °C limit`);
      const input = this.input('charging_area_fire', r.placement, r.deviceId, r.drill, r.ts, ev, ctx);
      ctx.raise(input);
      this.mark(r.deviceId, alertKey(input), 'hot', r.ts);
    } else if (state?.hot && r.value < limit - TEMPERATURE_HYSTERESIS_C) {
      state.hot = false;
      this.settle(r.deviceId, state, `temperature back to ${r.value} °C, below the ${limit} °C limit`, r.ts, ctx);
    }
  }

  private input(
    type: FireType,
    placement: Placement,
    deviceId: string,
    drill: boolean,
    ts: number,
    evidence: Evidence,
    ctx: RuleContext,
  ): AlertInput {
    const subject = subjectOf(ctx, placement, deviceId);
    const keyOn: AlertInput['keyOn'] =
      type === 'charging_area_fire'
        ? 'area'
        : subject.householdId
          ? 'household'
          : subject.unitId
            ? 'unit'
            : subject.buildingId
              ? 'building'
              : subject.areaId
                ? 'area'
                : 'device';
    const summary =
      type === 'gas_leak'
        ? 'Gas leak detected in a home'
        : type === 'charging_area_fire'
          ? evidence.eventType === 'overtemp' || evidence.field === 'temperature_c'
            ? 'Over-temperature in an e-bike charging area'
            : 'Smoke in an e-bike charging area'
          : subject.householdId
            ? 'Smoke detected in a home'
            : 'Smoke detected in a stairwell or common area';
    return { type, category: 'fire', severity: 'critical', subject, keyOn, drill, ts, evidence: [evidence], summary };
  }

  private mark(deviceId: string, key: string, what: 'smoke' | 'hot', ts: number): void {
    let state = this.devices.get(deviceId);
    if (!state) {
      state = { key, smoke: false, hot: false, lastRaise: ts };
      this.devices.set(deviceId, state);
      this.perKey.set(key, (this.perKey.get(key) ?? 0) + 1);
    }
    state[what] = true;
    state.lastRaise = ts;
  }

  /** A device's condition ended; the alert clears when no device of its key is still in alarm. */
  private settle(deviceId: string, state: FireDeviceState, reason: string, ts: number, ctx: RuleContext): void {
    if (state.smoke || state.hot) return;
    this.devices.delete(deviceId);
    const left = (this.perKey.get(state.key) ?? 1) - 1;
    if (left > 0) {
      this.perKey.set(state.key, left);
      return;
    }
    this.perKey.delete(state.key);
    ctx.clear(state.key, reason, ts);
  }
}

/** Devices installed on an area are in a central e-bike charging area (the only kind of area in the registry). */
function isChargingArea(p: Placement): boolean {
  return p.areaId !== undefined && p.householdId === undefined;
}
