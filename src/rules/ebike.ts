/**
 * E-bike charging in stairwells (issue 3, rule 11). Corridor cut-offs detect an e-bike's charging load and cut the
 * power; each cut-off is recorded as a minor `ebike_charging` alert on the device (repeats go into the same open
 * alert; batching into the building leader's daily digest is notification's job), and `repeatCount` cut-offs at the
 * same device within `repeatDays` become a major `ebike_charging_repeated`: someone keeps doing it, a visit is due.
 * A cut-off reporting `tamper` is a minor maintenance alert; going offline is the device-health rule's.
 * A cut-off's own `overtemp` (the socket or the load overheating in a stairwell, where e-bike fires start) is a
 * major fire alert, `ebike_overtemp`; a charging area's over-temperature is the fire rule's critical alert.
 */
import type { DeviceEventRecord } from '../ingest/types.ts';
import { eventEvidence, subjectOf } from './emergency.ts';
import type { Rule, RuleContext } from './types.ts';

const DAY_MS = 86_400_000;

export class EbikeRule implements Rule {
  readonly name = 'ebike' as const;
  /** cut-off device → times of its latest cut-offs, oldest first, at most `repeatCount` of them */
  private readonly cutoffs = new Map<string, number[]>();

  onEvent(e: DeviceEventRecord, ctx: RuleContext): void {
    const type = e.event.type;
    if (type !== 'ebike_charging_cutoff' && type !== 'tamper' && type !== 'overtemp') return;
    if (ctx.kindOf(e.model) !== 'ebike_cutoff') return;
    const settings = ctx.settings(e.placement.householdId).ebike;
    if (!settings.enabled) return;
    const subject = subjectOf(ctx, e.placement, e.deviceId);
    if (type === 'tamper') {
      ctx.raise({
        type: 'device_tamper',
        category: 'maintenance',
        severity: 'minor',
        subject,
        keyOn: 'device',
        drill: e.drill,
        ts: e.ts,
        evidence: [eventEvidence(e)],
        summary: 'E-bike charging cut-off reports tampering',
      });
      return;
    }
    if (type === 'overtemp') {
      ctx.raise({
        type: 'ebike_overtemp',
        category: 'fire',
        severity: 'major',
        subject,
        keyOn: 'device',
        drill: e.drill,
        ts: e.ts,
        evidence: [eventEvidence(e)],
        summary: 'Over-temperature at a stairwell e-bike charging cut-off',
      });
      return;
    }
    ctx.raise({
      type: 'ebike_charging',
      category: 'ebike',
      severity: 'minor',
      subject,
      keyOn: 'device',
      drill: e.drill,
      ts: e.ts,
      evidence: [eventEvidence(e)],
      summary: 'E-bike charging in a stairwell: power cut off',
    });
    const times = this.record(e.deviceId, e.ts, settings.repeatCount, settings.repeatDays * DAY_MS);
    if (times.length < settings.repeatCount) return;
    ctx.raise({
      type: 'ebike_charging_repeated',
      category: 'ebike',
      severity: 'major',
      subject,
      keyOn: 'device',
      drill: e.drill,
      ts: e.ts,
      evidence: [eventEvidence(e, `${times.length} cut-offs within ${settings.repeatDays} days`)],
      summary: `Repeated e-bike charging in a stairwell: ${times.length} cut-offs within ${settings.repeatDays} days, a visit is needed`,
    });
  }

  snapshot(): unknown {
    return { cutoffs: [...this.cutoffs] };
  }

  restore(state: unknown): void {
    const s = state as { cutoffs?: [string, number[]][] } | undefined;
    this.cutoffs.clear();
    for (const [id, times] of s?.cutoffs ?? []) this.cutoffs.set(id, times);
  }

  /** Sliding window: keeps at most `count` times per device, none older than `windowMs`. */
  private record(deviceId: string, ts: number, count: number, windowMs: number): number[] {
    let times = this.cutoffs.get(deviceId);
    if (!times) {
      times = [];
      this.cutoffs.set(deviceId, times);
    }
    times.push(ts);
    while (times.length > count) times.shift();
    while (times.length > 0 && ts - times[0]! > windowMs) times.shift();
    return times;
  }
}
