import { type ActivityNote, setEarliest, TrackedHomeRule } from './activity.ts';
import { durationText, householdSubject, localClock } from './inactivity.ts';
import type { Rule, RuleContext, Timer } from './types.ts';

/** Increases further apart than this are not one continuous flow. */
export const STALE_MS = 15 * 60_000;

interface GasState {
  /** start of the current flow, last increase (0: not flowing) */
  flowFrom: number;
  lastFlow: number;
  /** last in-home activity other than gas */
  presence: number;
  open: boolean;
  drill: boolean;
  meter: string;
}

export class GasLeftOnRule extends TrackedHomeRule implements Rule {
  readonly name = 'gasLeftOn' as const;
  private readonly state = new Map<string, GasState>();

  static timerKey(householdId: string): string {
    return `gas_left_on|${householdId}`;
  }

  onTimer(t: Timer, ctx: RuleContext): void {
    const householdId = t.data?.h;
    if (typeof householdId === 'string') this.evaluate(householdId, ctx);
  }

  snapshot(): unknown {
    return [...this.state].map(([id, s]) => [
      id,
      s.flowFrom,
      s.lastFlow,
      s.presence,
      s.open ? 1 : 0,
      s.drill ? 1 : 0,
      s.meter,
    ]);
  }

  restore(state: unknown): void {
    this.state.clear();
    for (const row of (state as unknown[][] | undefined) ?? []) {
      const [id, flowFrom, lastFlow, presence, open, drill, meter] = row as [
        string,
        number,
        number,
        number,
        number,
        number,
        string,
      ];
      this.state.set(id, { flowFrom, lastFlow, presence, open: open === 1, drill: drill === 1, meter });
    }
  }

  protected note(n: ActivityNote, ctx: RuleContext): void {
    if (n.counter === 'gas') {
      if (!ctx.household(n.householdId)) return;
      let s = this.state.get(n.householdId);
      if (!s) {
        s = { flowFrom: 0, lastFlow: 0, presence: 0, open: false, drill: n.drill, meter: n.deviceId };
        this.state.set(n.householdId, s);
      }
      s.drill = n.drill;
      s.meter = n.deviceId;
      if ((n.delta ?? 0) > 0) {
        if (!(s.lastFlow > 0 && n.ts - s.lastFlow <= STALE_MS)) s.flowFrom = n.ts;
        s.lastFlow = n.ts;
      } else {
        s.lastFlow = 0; // a reading without increase: the gas is off
      }
      this.evaluate(n.householdId, ctx);
      return;
    }
    if (!n.activity || !n.inHome) return;
    const s = this.state.get(n.householdId);
    if (!s) return;
    s.presence = Math.max(s.presence, n.ts);
    if (s.lastFlow > 0 && !s.open) this.evaluate(n.householdId, ctx);
  }

  private evaluate(householdId: string, ctx: RuleContext): void {
    const s = this.state.get(householdId);
    if (!s) return;
    const key = GasLeftOnRule.timerKey(householdId);
    const now = ctx.clock.now();
    const flowing = s.lastFlow > 0 && now - s.lastFlow <= STALE_MS;
    if (!flowing) {
      s.lastFlow = 0;
      ctx.scheduler.cancel(key);
      if (s.open) {
        s.open = false;
        ctx.clear(`gas_left_on|household:${householdId}`, 'gas flow stopped', now);
      }
      return;
    }
    const set = ctx.settings(householdId).gasLeftOn;
    const stale = s.lastFlow + STALE_MS + 1;
    if (!set.enabled) {
      setEarliest(ctx, { key, at: stale, rule: 'gasLeftOn', data: { h: householdId } });
      return;
    }
    if (this.tracker.movingNow(householdId, now, ctx)) s.presence = now; // someone moving without pause
    const since = Math.max(s.flowFrom, s.presence);
    const due = since + set.minutes * 60_000;
    if (!s.open && now >= due) {
      const h = ctx.household(householdId);
      if (h) {
        s.open = true;
        ctx.raise({
          type: 'gas_left_on',
          category: 'resident_safety',
          severity: 'major',
          subject: householdSubject(h),
          keyOn: 'household',
          drill: s.drill,
          ts: now,
          evidence: [
            { ts: s.flowFrom, kind: 'reading', deviceId: s.meter, field: 'gas_total_m3', note: 'gas flow started' },
            {
              ts: now,
              kind: 'rule',
              note: `gas flowing for ${durationText(now - s.flowFrom)}, nobody moving at home since ${localClock(since, ctx.timezone, now)}`,
            },
          ],
          summary: `Gas flowing for ${durationText(now - s.flowFrom)} with nobody moving at home`,
        });
      }
    }
    setEarliest(ctx, { key, at: s.open ? stale : Math.min(due, stale), rule: 'gasLeftOn', data: { h: householdId } });
  }
}
