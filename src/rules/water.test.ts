import { beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { RuleHarness, household } from './harness.ts';
import { createHomeRules } from './inactivity.ts';
import { WaterRule } from './water.ts';

const CONFIG = loadConfig({ env: {} }).rules;
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 2, 1, 16, 0); // Monday 2 March 2026, 00:00 Shanghai
const at = (d: number, hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number);
  return T0 + d * DAY + (h ?? 0) * HOUR + (m ?? 0) * MIN;
};
const iso = (ts: number) => new Date(ts).toISOString();

describe('water rule', () => {
  let h: RuleHarness;
  let total: number;
  const use = async (litres: number, ts: number) => {
    total += litres;
    await h.reading('wm', 'water_total_l', total, ts);
  };
  const low = () => h.memory!.ofType('water_low');
  const cont = () => h.memory!.ofType('water_continuous');
  const passage = async (ts: number) => {
    await h.reading('door', 'contact_open', true, ts);
    await h.reading('door', 'contact_open', false, ts + 20_000);
  };

  beforeEach(async () => {
    const home = createHomeRules({ isEntrance: (_d, id) => id === 'door' });
    h = await new RuleHarness({ rules: home.rules, config: CONFIG, households: [household('h1')] }).start();
    const inH1 = { kind: 'household', householdId: 'h1' } as const;
    h.addDevice('wm', 'native-water-meter', inH1);
    h.addDevice('door', 'native-door-contact', inH1);
    total = 1000;
    await h.reading('door', 'contact_open', false, at(0, '06:00'));
    await h.reading('wm', 'water_total_l', total, at(0, '06:00'));
  });

  it('less than 10 L in 12 h → major on time, in 24 h → the same alert turns critical; resolves when use is back', async () => {
    await use(12, at(0, '08:00'));
    await h.advanceTo(at(0, '19:59'));
    expect(low()).toHaveLength(0);
    await h.advanceTo(at(0, '20:30'));
    expect(low()).toHaveLength(1);
    expect(low()[0]).toMatchObject({ severity: 'major', category: 'resident_safety', key: 'water_low|household:h1' });
    expect(low()[0]!.firstSeen).toBe(iso(at(0, '20:00')));
    await h.advanceTo(at(1, '08:30'));
    expect(low()).toHaveLength(1);
    expect(low()[0]).toMatchObject({ severity: 'critical', count: 2, lastSeen: iso(at(1, '08:00')) });
    await use(8, at(1, '09:00')); // not yet 10 L in the last 12 h
    expect(low()[0]!.status).toBe('open');
    await use(10, at(1, '09:30'));
    expect(low()[0]).toMatchObject({ status: 'resolved', outcome: 'water use back to normal (10 L within 12 h)' });
    await h.advanceTo(at(1, '21:00'));
    expect(low()).toHaveLength(1);
  });

  it('a major deadline in the night waits for 07:00', async () => {
    await use(12, at(0, '14:00'));
    await h.advanceTo(at(1, '06:59'));
    expect(low()).toHaveLength(0);
    await h.advanceTo(at(1, '07:30'));
    expect(low()[0]!.firstSeen).toBe(iso(at(1, '07:00')));
  });

  it('stays quiet while away and counts the window from the return', async () => {
    await use(12, at(0, '08:00'));
    await passage(at(0, '09:00'));
    await h.advanceTo(at(0, '21:59'));
    expect(low()).toHaveLength(0);
    await passage(at(0, '22:00')); // back
    await h.advanceTo(at(1, '09:59'));
    expect(low()).toHaveLength(0);
    await h.advanceTo(at(1, '10:30'));
    expect(low()[0]!.firstSeen).toBe(iso(at(0, '22:00') + 12 * HOUR)); // home since the door opened
  });

  it('stays quiet while the meter is offline', async () => {
    await use(12, at(0, '08:00'));
    await h.status('wm', 'offline', 'timeout', at(0, '10:00'));
    await h.advanceTo(at(2, '10:00'));
    expect(low()).toHaveLength(0);
  });

  it('water flowing in every half hour for 24 h → minor; resolves when a half hour passes without flow', async () => {
    for (let t = at(0, '07:00'); t < at(1, '08:00'); t += 10 * MIN) await use(0.5, t);
    expect(cont()).toHaveLength(1);
    expect(cont()[0]).toMatchObject({ severity: 'minor', key: 'water_continuous|household:h1' });
    // the 48th half hour with flow began at 06:30 the next day
    expect(cont()[0]!.firstSeen).toBe(iso(at(1, '06:30')));
    expect(cont()[0]!.summary).toMatch(/every half hour for 24 h/);
    expect(cont()[0]!.count).toBe(1); // dedup while it keeps flowing
    // the last flow came at 07:50; a reading without increase at 08:05; the 08:00 half hour ends dry
    await h.reading('wm', 'water_total_l', total, at(1, '08:05'));
    await h.advanceTo(at(1, '08:29'));
    expect(cont()[0]!.status).toBe('open');
    await h.advanceTo(at(1, '09:10'));
    expect(cont()[0]).toMatchObject({ status: 'resolved', outcome: 'water flow back to normal' });
    expect(cont()[0]!.resolvedAt).toBe(iso(at(1, '08:30')));
  });

  it('more than 2 m³ in a day → minor, resolved at midnight', async () => {
    await use(1500, at(0, '10:00'));
    expect(cont()).toHaveLength(0);
    await use(600, at(0, '11:00'));
    expect(cont()[0]).toMatchObject({ severity: 'minor', status: 'open' });
    expect(cont()[0]!.summary).toMatch(/2100 L used today/);
    await h.advanceTo(at(0, '23:59'));
    expect(cont()[0]!.status).toBe('open');
    await h.advanceTo(at(1, '00:30'));
    expect(cont()[0]).toMatchObject({ status: 'resolved', resolvedAt: iso(at(1, '00:00')) });
  });

  it('water_low is for lone-elderly homes only; uses its own timer keys', async () => {
    h.households.set('h1', household('h1', { loneElderly: false }));
    await use(12, at(0, '08:00'));
    await h.advanceTo(at(2, '08:00'));
    expect(low()).toHaveLength(0);
    expect(WaterRule.timerKey('h1', 'low')).toBe('water_low|h1');
  });

  it('snapshot and restore keep the state', async () => {
    await use(6, at(0, '08:00'));
    await use(6, at(0, '09:00'));
    const rule = h.engine.rule<WaterRule>('water')!;
    const json = JSON.stringify(rule.snapshot());
    const again = new WaterRule(createHomeRules().tracker);
    again.restore(JSON.parse(json));
    expect(JSON.stringify(again.snapshot())).toBe(json);
    expect(json.length).toBeLessThan(200);
  });
});
