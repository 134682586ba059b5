/**
 * Visit cadence (五色五访, rule 13): every morning the households overdue for a visit by their colour class are
 * listed (for the responsible person's daily digest, issue 4), and a red household overdue by a day or more becomes
 * a minor `visit_overdue` alert, cleared by the next recorded visit.
 */
import type { Colour } from '../registry/types.ts';
import type { OverdueHousehold } from '../visits/service.ts';
import { nextLocalMinute, parseHHMM } from './time.ts';
import type { Rule, RuleContext, Timer } from './types.ts';

const TIMER = 'visits|daily';

export class VisitCadenceRule implements Rule {
  readonly name = 'visits' as const;
  /** the last morning's overdue list (for the digest and the API) */
  lastOverdue: OverdueHousehold[] = [];
  private readonly alerted = new Set<string>();

  constructor(
    private readonly source: { overdue(cadenceDays: Record<Colour, number>): Promise<OverdueHousehold[]> },
    private readonly checkAt = '08:00',
  ) {}

  start(ctx: RuleContext): void {
    if (!ctx.scheduler.get(TIMER)) this.arm(ctx);
  }

  onTimer(timer: Timer, ctx: RuleContext): void {
    if (timer.key !== TIMER) return;
    this.arm(ctx);
    void this.check(ctx).catch((err: unknown) => ctx.log.error({ err }, 'visits: overdue check failed'));
  }

  /** Runs the check now (also used by tests and after a restart). */
  async check(ctx: RuleContext): Promise<OverdueHousehold[]> {
    const cfg = ctx.config().visits;
    if (!cfg.enabled) return [];
    const now = ctx.clock.now();
    const overdue = await this.source.overdue(cfg.days as Record<Colour, number>);
    this.lastOverdue = overdue;
    const stillDue = new Set<string>();
    for (const o of overdue) {
      if (o.colour !== 'red' || o.overdueDays < ctx.settings(o.householdId).visits.redOverdueAlertDays) continue;
      const h = ctx.household(o.householdId);
      stillDue.add(o.householdId);
      this.alerted.add(o.householdId);
      ctx.raise({
        type: 'visit_overdue',
        category: 'visit',
        severity: 'minor',
        keyOn: 'household',
        subject: {
          householdId: o.householdId,
          gridId: o.gridId,
          buildingId: h?.buildingId,
          unitId: h?.unitId,
          communityId: h?.communityId,
          colour: 'red',
        },
        drill: false,
        ts: now,
        evidence: [{ ts: now, kind: 'rule', note: `last visit ${o.lastVisit ?? 'never'}; due ${o.dueAt}` }],
        summary: `red household overdue for its daily visit by ${o.overdueDays} days`,
      });
    }
    for (const id of [...this.alerted]) {
      if (stillDue.has(id)) continue;
      this.alerted.delete(id);
      ctx.clear(`visit_overdue|household:${id}`, 'visited', now);
    }
    return overdue;
  }

  /** A visit was recorded: its overdue alert clears at once. */
  visited(householdId: string, ctx: RuleContext): void {
    if (!this.alerted.delete(householdId)) return;
    ctx.clear(`visit_overdue|household:${householdId}`, 'visited', ctx.clock.now());
  }

  snapshot(): unknown {
    return { alerted: [...this.alerted] };
  }

  restore(state: unknown): void {
    const s = state as { alerted?: string[] };
    for (const id of s.alerted ?? []) this.alerted.add(id);
  }

  private arm(ctx: RuleContext): void {
    const at = nextLocalMinute(ctx.clock.now() + 1, parseHHMM(this.checkAt), ctx.timezone);
    ctx.scheduler.set({ key: TIMER, at, rule: this.name });
  }
}
