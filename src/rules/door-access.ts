/**
 * Building door access (issue 3, rule 10): forced doors, doors held open too long, and repeated denied attempts.
 * All keyed on the door (device); the subject carries the building and its grid, so the grid's people are told.
 */
import { alertKey } from '../alerts/types.ts';
import type { DeviceEventRecord, Reading } from '../ingest/types.ts';
import { eventEvidence, subjectOf } from './emergency.ts';
import type { Rule, RuleContext } from './types.ts';

export class DoorAccessRule implements Rule {
  readonly name = 'doorAccess' as const;
  /** door → times of its latest denied attempts, oldest first, at most `deniedCount` of them */
  private readonly denied = new Map<string, number[]>();
  /** doors with an open door_held_open alert (so only their `contact_open: false` does any work) */
  private readonly heldOpen = new Set<string>();

  onEvent(e: DeviceEventRecord, ctx: RuleContext): void {
    const ev = e.event;
    if (ev.type !== 'door_forced' && ev.type !== 'door_held_open' && ev.type !== 'door_access') return;
    const settings = ctx.settings(e.placement.householdId).doorAccess;
    if (!settings.enabled) return;
    if (ev.type === 'door_forced') {
      ctx.raise({
        type: 'door_forced',
        category: 'security',
        severity: 'major',
        subject: subjectOf(ctx, e.placement, e.deviceId),
        keyOn: 'device',
        drill: e.drill,
        ts: e.ts,
        evidence: [eventEvidence(e)],
        summary: 'Building door forced open',
      });
    } else if (ev.type === 'door_held_open') {
      if (ev.seconds <= settings.heldOpenSeconds) return;
      ctx.raise({
        type: 'door_held_open',
        category: 'security',
        severity: 'minor',
        subject: subjectOf(ctx, e.placement, e.deviceId),
        keyOn: 'device',
        drill: e.drill,
        ts: e.ts,
        evidence: [eventEvidence(e, `limit ${settings.heldOpenSeconds} s`)],
        summary: `Building door held open for ${Math.round(ev.seconds)} s`,
      });
      this.heldOpen.add(e.deviceId);
    } else if (!ev.granted) {
      this.deniedAttempt(e, settings.deniedCount, settings.deniedWindowMinutes * 60_000, ctx);
    }
  }

  onReadings(readings: readonly Reading[], ctx: RuleContext): void {
    if (this.heldOpen.size === 0) return;
    for (const r of readings) {
      if (r.field !== 'contact_open' || r.value !== false || !this.heldOpen.has(r.deviceId)) continue;
      this.heldOpen.delete(r.deviceId);
      ctx.clear(
        alertKey({ type: 'door_held_open', keyOn: 'device', subject: { deviceId: r.deviceId }, drill: r.drill }),
        'door closed',
        r.ts,
      );
    }
  }

  snapshot(): unknown {
    return { denied: [...this.denied], heldOpen: [...this.heldOpen] };
  }

  restore(state: unknown): void {
    const s = state as { denied?: [string, number[]][]; heldOpen?: string[] } | undefined;
    this.denied.clear();
    this.heldOpen.clear();
    for (const [id, times] of s?.denied ?? []) this.denied.set(id, times);
    for (const id of s?.heldOpen ?? []) this.heldOpen.add(id);
  }

  /** Sliding window over the last `count` denials of this door: O(count) per denial, nothing kept beyond that. */
  private deniedAttempt(e: DeviceEventRecord, count: number, windowMs: number, ctx: RuleContext): void {
    let times = this.denied.get(e.deviceId);
    if (!times) {
      times = [];
      this.denied.set(e.deviceId, times);
    }
    times.push(e.ts);
    while (times.length > count) times.shift();
    // forget denials that fell out of the window
    while (times.length > 0 && e.ts - times[0]! > windowMs) times.shift();
    if (times.length < count) return;
    ctx.raise({
      type: 'door_denied_repeated',
      category: 'security',
      severity: 'minor',
      subject: subjectOf(ctx, e.placement, e.deviceId),
      keyOn: 'device',
      drill: e.drill,
      ts: e.ts,
      evidence: [eventEvidence(e, `${times.length} denied attempts within ${Math.round(windowMs / 60_000)} min`)],
      summary: `Repeated denied access attempts at a building door (${times.length} within ${Math.round(windowMs / 60_000)} min)`,
    });
  }
}
