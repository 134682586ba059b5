/**
 * Night exit (issue 3, rule 7): a resident flagged at risk (e.g. dementia) leaves through the building door at night
 * and does not come back within `returnMinutes` → critical.
 *
 * Linking a door passage to a household. The door event names a `personId`, but the registry has no person →
 * household mapping yet, so the rule links by sequence instead: a granted door_access `out` at night on a building
 * (or unit) door concerns every at-risk household of that building (of that unit, for a unit door)
 * whose own flat door contact (a `door_contact` device in the household) opened within the LINK_MS before the exit.
 * That is the path a person walking out takes: flat door, stairs or lift, building door. When no household can be
 * linked this way the rule does nothing: alarming every at-risk home of the building for any resident going out at
 * night would be noise, and a flat without a door contact cannot be linked (it is still covered by the inactivity
 * rules). Every at-risk household is covered; in a lone-elderly one any in-home activity after the exit means "the
 * resident is back"
 * — with several residents, someone else's movement would cancel the wait, so there only the flat door opening
 * again (someone coming in) or the building door's `in` counts as a return. When the registry learns which person
 * lives where, the `personId` of the exit replaces this heuristic.
 *
 * The wait: a timer per household (`nightExit|<householdId>`) at exit + returnMinutes. Before it fires, any of these
 * cancels it: a granted `in` at the same building's doors (the same `personId` when the exit named one, else any),
 * motion or a door contact opening in the household. At the deadline the alert is raised; it resolves by itself when
 * the household shows activity again (or the same person comes back in through the door).
 */
import { alertKey, type Evidence } from '../alerts/types.ts';
import type { DeviceEventRecord, Reading } from '../ingest/types.ts';
import { subjectOf } from './emergency.ts';
import { inWindow, localTime, parseHHMM } from './time.ts';
import type { HouseholdInfo, Rule, RuleContext, Timer } from './types.ts';

/** A flat door opening this long before a building-door exit links the exit to that household. */
export const LINK_MS = 10 * 60_000;

interface Raised {
  /** the person named by the exit ('' when anonymous) */
  personId: string;
  drill: boolean;
}

interface FlatDoorOpen {
  ts: number;
  deviceId: string;
}

/** A household waiting for its resident to come back (also in the timer's data, for restarts). */
interface Pending {
  buildingId: string;
  exitTs: number;
  doorId: string;
  personId?: string;
}

export class NightExitRule implements Rule {
  readonly name = 'nightExit' as const;
  /** building → at-risk household → its flat door's latest opening (kept only for LINK_MS) */
  private readonly flatDoorOpens = new Map<string, Map<string, FlatDoorOpen>>();
  private readonly pending = new Map<string, Pending>();
  /** building → households with a pending wait */
  private readonly pendingByBuilding = new Map<string, Set<string>>();
  /** households with a raised night-exit alert waiting for the resident's return */
  private readonly raised = new Map<string, Raised>();

  static timerKey(householdId: string): string {
    return `nightExit|${householdId}`;
  }

  onReadings(readings: readonly Reading[], ctx: RuleContext): void {
    for (const r of readings) {
      if (r.field !== 'contact_open' && r.field !== 'motion') continue;
      const householdId = r.placement.householdId;
      if (!householdId) continue;
      // activity: motion seen, or a door of the flat opening. `false` readings are not counted: a contact's periodic
      // state report or a slow door closer after the resident left must not look like a return.
      if (r.value !== true) continue;
      // Where others live too, their movement says nothing about the resident who went out: only the flat door
      // opening (someone coming in) counts as a return there; alone, any activity does.
      const returnSign = r.field === 'contact_open' || ctx.household(householdId)?.loneElderly === true;
      if (returnSign && (this.pending.has(householdId) || this.raised.has(householdId)))
        this.activity(householdId, r, ctx);
      if (r.field === 'contact_open') this.flatDoorOpened(householdId, r, ctx);
    }
  }

  onEvent(e: DeviceEventRecord, ctx: RuleContext): void {
    const ev = e.event;
    if (ev.type !== 'door_access' || !ev.granted) return;
    if (e.placement.householdId) return; // a building or unit door only
    const buildingId = e.placement.buildingId;
    if (!buildingId) return;
    if (ev.direction === 'in') this.entered(buildingId, e, ev.personId, ctx);
    else this.exited(buildingId, e, ev.personId, ctx);
  }

  onTimer(t: Timer, ctx: RuleContext): void {
    const householdId = t.data?.householdId;
    if (typeof householdId !== 'string') return;
    const p = this.pending.get(householdId) ?? pendingFromTimer(t);
    this.dropPending(householdId);
    if (!p) return;
    const info = ctx.household(householdId);
    const subject = subjectOf(ctx, info ? placementOf(info) : { householdId, buildingId: p.buildingId }, p.doorId);
    const flat = t.data?.flatDoorTs;
    const evidence: Evidence[] = [];
    if (typeof flat === 'number') {
      evidence.push({ ts: flat, kind: 'reading', field: 'contact_open', value: true, note: 'flat door opened' });
    }
    evidence.push({
      ts: p.exitTs,
      kind: 'event',
      deviceId: p.doorId,
      eventType: 'door_access',
      value: 'out',
      note: 'left through the building door at night',
    });
    const minutes = Math.round((t.at - p.exitTs) / 60_000);
    evidence.push({ ts: t.at, kind: 'rule', note: `not back after ${minutes} min` });
    const drill = t.data?.drill === true;
    ctx.raise({
      type: 'night_exit',
      category: 'resident_safety',
      severity: 'critical',
      subject,
      keyOn: 'household',
      drill,
      ts: t.at,
      evidence,
      summary: `At-risk resident left the building at night and has not come back within ${minutes} min`,
    });
    this.raised.set(householdId, { personId: p.personId ?? '', drill });
  }

  snapshot(): unknown {
    return { pending: [...this.pending], raised: [...this.raised] };
  }

  restore(state: unknown): void {
    const s = state as { pending?: [string, Pending][]; raised?: [string, Raised][] } | undefined;
    this.pending.clear();
    this.pendingByBuilding.clear();
    this.raised.clear();
    for (const [h, p] of s?.pending ?? []) this.addPending(h, p);
    for (const [h, r] of s?.raised ?? []) this.raised.set(h, r);
  }

  // --- inputs ----------------------------------------------------------------------------------------------------

  private flatDoorOpened(householdId: string, r: Reading, ctx: RuleContext): void {
    if (ctx.kindOf(r.model) !== 'door_contact') return;
    const h = ctx.household(householdId);
    if (!h?.atRisk) return;
    let building = this.flatDoorOpens.get(h.buildingId);
    if (!building) {
      building = new Map();
      this.flatDoorOpens.set(h.buildingId, building);
    }
    building.set(householdId, { ts: r.ts, deviceId: r.deviceId });
  }

  private exited(buildingId: string, e: DeviceEventRecord, personId: string | undefined, ctx: RuleContext): void {
    const opens = this.flatDoorOpens.get(buildingId);
    if (!opens) return;
    // a unit door's placement names its unit (a building door's does not)
    const unitId = e.placement.unitId;
    for (const [householdId, open] of opens) {
      if (e.ts - open.ts > LINK_MS) {
        opens.delete(householdId); // pruned: too old to link anything
        continue;
      }
      if (open.ts > e.ts) continue;
      const h = ctx.household(householdId);
      if (!h?.atRisk) continue;
      if (unitId && h.unitId !== unitId) continue; // a unit door: only the homes of that unit
      const settings = ctx.settings(householdId).nightExit;
      if (!settings.enabled) continue;
      const minute = localTime(e.ts, ctx.timezone).minuteOfDay;
      if (!inWindow(minute, parseHHMM(settings.start), parseHHMM(settings.end))) continue;
      const p: Pending = { buildingId, exitTs: e.ts, doorId: e.deviceId };
      if (personId) p.personId = personId;
      this.addPending(householdId, p);
      // this exit used the flat-door opening: a second resident's exit must not link to it again
      opens.delete(householdId);
      const data: Record<string, string | number | boolean> = {
        householdId,
        buildingId,
        doorId: e.deviceId,
        exitTs: e.ts,
        flatDoorTs: open.ts,
        drill: e.drill,
      };
      if (personId) data.personId = personId;
      ctx.scheduler.set({
        key: NightExitRule.timerKey(householdId),
        at: e.ts + settings.returnMinutes * 60_000,
        rule: 'nightExit',
        data,
      });
      ctx.log.debug({ householdId, door: e.deviceId }, 'night exit linked to an at-risk household; waiting for return');
    }
    if (opens.size === 0) this.flatDoorOpens.delete(buildingId);
  }

  private entered(buildingId: string, e: DeviceEventRecord, personId: string | undefined, ctx: RuleContext): void {
    const waiting = this.pendingByBuilding.get(buildingId);
    if (waiting) {
      for (const householdId of [...waiting]) {
        const p = this.pending.get(householdId);
        if (!p || !samePerson(p.personId, personId)) continue;
        ctx.scheduler.cancel(NightExitRule.timerKey(householdId));
        this.dropPending(householdId);
      }
    }
    // a raised alert resolves when the same named person comes back in
    if (!personId || this.raised.size === 0) return;
    for (const [householdId, r] of this.raised) {
      if (r.personId !== personId) continue;
      if (ctx.household(householdId)?.buildingId !== buildingId) continue;
      this.raised.delete(householdId);
      ctx.clear(nightExitKey(householdId, r.drill), 'resident came back in through the building door', e.ts);
    }
  }

  private activity(householdId: string, r: Reading, ctx: RuleContext): void {
    const p = this.pending.get(householdId);
    if (p && r.ts > p.exitTs) {
      ctx.scheduler.cancel(NightExitRule.timerKey(householdId));
      this.dropPending(householdId);
    }
    const raised = this.raised.get(householdId);
    if (raised) {
      this.raised.delete(householdId);
      ctx.clear(nightExitKey(householdId, raised.drill), `resident back home: ${r.field} in the home`, r.ts);
    }
  }

  // --- state -----------------------------------------------------------------------------------------------------

  private addPending(householdId: string, p: Pending): void {
    const old = this.pending.get(householdId);
    if (old && old.buildingId !== p.buildingId) this.pendingByBuilding.get(old.buildingId)?.delete(householdId);
    this.pending.set(householdId, p);
    let set = this.pendingByBuilding.get(p.buildingId);
    if (!set) {
      set = new Set();
      this.pendingByBuilding.set(p.buildingId, set);
    }
    set.add(householdId);
  }

  private dropPending(householdId: string): void {
    const p = this.pending.get(householdId);
    if (!p) return;
    this.pending.delete(householdId);
    const set = this.pendingByBuilding.get(p.buildingId);
    set?.delete(householdId);
    if (set?.size === 0) this.pendingByBuilding.delete(p.buildingId);
  }
}

function nightExitKey(householdId: string, drill: boolean): string {
  return alertKey({ type: 'night_exit', keyOn: 'household', subject: { householdId }, drill });
}

/** A named exit is cancelled only by the same person coming back; an anonymous one by anyone coming in. */
function samePerson(exitPerson: string | undefined, inPerson: string | undefined): boolean {
  return exitPerson === undefined || exitPerson === inPerson;
}

function pendingFromTimer(t: Timer): Pending | undefined {
  const d = t.data;
  if (!d || typeof d.buildingId !== 'string' || typeof d.exitTs !== 'number' || typeof d.doorId !== 'string') {
    return undefined;
  }
  const p: Pending = { buildingId: d.buildingId, exitTs: d.exitTs, doorId: d.doorId };
  if (typeof d.personId === 'string') p.personId = d.personId;
  return p;
}

function placementOf(h: HouseholdInfo) {
  return {
    householdId: h.id,
    unitId: h.unitId,
    buildingId: h.buildingId,
    gridId: h.gridId,
    communityId: h.communityId,
    colour: h.colour,
  };
}
