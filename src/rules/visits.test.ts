import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import type { OverdueHousehold } from '../visits/service.ts';
import { household, RuleHarness } from './harness.ts';
import { VisitCadenceRule } from './visits.ts';

const config = loadConfig({ env: {} }).rules;

function overdueOf(id: string, colour: OverdueHousehold['colour'], days: number): OverdueHousehold {
  return { householdId: id, colour, gridId: 'g-1', dueAt: '2026-03-01T00:00:00.000Z', overdueDays: days };
}

describe('visit cadence', () => {
  it('checks every morning at 08:00 without any message; a red household overdue by a day becomes one minor alert', async () => {
    let list: OverdueHousehold[] = [
      overdueOf('h-red', 'red', 1.5),
      overdueOf('h-red-new', 'red', 0.2),
      overdueOf('h-green', 'green', 30),
    ];
    const rule = new VisitCadenceRule({ overdue: async () => list });
    // starts 2026-03-02 00:00 Shanghai
    const h = await new RuleHarness({
      rules: [rule],
      config,
      households: [household('h-red', { colour: 'red' })],
    }).start();
    await h.advance(7 * 3_600_000 + 59 * 60_000); // 07:59: not yet
    expect(h.memory!.alerts).toHaveLength(0);
    await h.advance(60_000);
    await new Promise((r) => setImmediate(r));
    await h.engine.idle();
    const alerts = h.memory!.ofType('visit_overdue');
    expect(alerts.map((a) => [a.householdId, a.severity, a.category])).toEqual([['h-red', 'minor', 'visit']]);
    expect(rule.lastOverdue).toHaveLength(3);

    // the next morning, still overdue: the same alert, counted again
    await h.advance(24 * 3_600_000);
    await new Promise((r) => setImmediate(r));
    await h.engine.idle();
    expect(h.memory!.ofType('visit_overdue')).toHaveLength(1);
    expect(h.memory!.ofType('visit_overdue')[0]!.count).toBe(2);

    // a visit clears it at once; and it is not raised again once no longer overdue
    rule.visited('h-red', h.engine.ctx);
    await h.engine.idle();
    expect(h.memory!.ofType('visit_overdue')[0]!.status).toBe('resolved');
    list = [overdueOf('h-green', 'green', 31)];
    await h.advance(24 * 3_600_000);
    await new Promise((r) => setImmediate(r));
    await h.engine.idle();
    expect(h.memory!.ofType('visit_overdue')).toHaveLength(1);
  });
});
