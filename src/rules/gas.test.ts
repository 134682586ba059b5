import { beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { GasLeftOnRule, STALE_MS } from './gas.ts';
import { RuleHarness, household } from './harness.ts';
import { createHomeRules } from './inactivity.ts';

const CONFIG = loadConfig({ env: {} }).rules;
const MIN = 60_000;
const T0 = Date.UTC(2026, 2, 2, 2, 0); // Monday 10:00 Shanghai
const iso = (ts: number) => new Date(ts).toISOString();

describe('gas left on', () => {
  let h: RuleHarness;
  let total: number;
  const flow = async (ts: number, m3 = 0.02) => {
    total += m3;
    await h.reading('gm', 'gas_total_m3', Math.round(total * 1000) / 1000, ts);
  };
  const gas = () => h.memory!.ofType('gas_left_on');

  beforeEach(async () => {
    const home = createHomeRules();
    // any household with a gas meter, lone-elderly or not
    h = await new RuleHarness({
      rules: home.rules,
      config: CONFIG,
      households: [household('h1', { loneElderly: false })],
    }).start();
    h.addDevice('gm', 'native-gas-meter', { kind: 'household', householdId: 'h1' });
    h.addDevice('pir', 'native-motion', { kind: 'household', householdId: 'h1' });
    total = 1432.1;
    await h.reading('gm', 'gas_total_m3', total, T0);
  });

  it('gas flowing for over 45 min with nobody moving → major, on time between readings; dedups; resolves when it stops', async () => {
    for (let t = T0 + 7 * MIN; t <= T0 + 49 * MIN; t += 7 * MIN) await flow(t);
    await h.advanceTo(T0 + 51 * MIN);
    expect(gas()).toHaveLength(0);
    await h.advanceTo(T0 + 53 * MIN);
    expect(gas()).toHaveLength(1);
    expect(gas()[0]).toMatchObject({ severity: 'major', category: 'resident_safety', key: 'gas_left_on|household:h1' });
    expect(gas()[0]!.firstSeen).toBe(iso(T0 + 52 * MIN)); // flow started 10:07, + 45 min
    for (let t = T0 + 56 * MIN; t <= T0 + 90 * MIN; t += 7 * MIN) await flow(t);
    expect(gas()).toHaveLength(1);
    expect(gas()[0]!.count).toBe(1);
    await h.reading('gm', 'gas_total_m3', Math.round(total * 1000) / 1000, T0 + 95 * MIN); // no increase: off
    expect(gas()[0]).toMatchObject({ status: 'resolved', outcome: 'gas flow stopped' });
  });

  it('someone moving at home restarts the wait', async () => {
    for (let t = T0 + 5 * MIN; t <= T0 + 80 * MIN; t += 5 * MIN) {
      await flow(t);
      if (t === T0 + 30 * MIN) await h.reading('pir', 'motion', true, t + 1000);
      if (t === T0 + 35 * MIN) await h.reading('pir', 'motion', false, t + 1000);
    }
    // flow from 10:05, motion 10:30:01 – 10:35:01 → due 11:20:01
    expect(gas()).toHaveLength(0);
    await h.advanceTo(T0 + 85 * MIN);
    expect(gas()).toHaveLength(1);
    expect(gas()[0]!.firstSeen).toBe(iso(T0 + 80 * MIN + 1000));
  });

  it('a PIR holding motion (someone at the stove without pause) is presence', async () => {
    await h.reading('pir', 'motion', true, T0 + 4 * MIN);
    for (let t = T0 + 5 * MIN; t <= T0 + 90 * MIN; t += 5 * MIN) await flow(t);
    expect(gas()).toHaveLength(0);
  });

  it('short cooking does not alarm; increases that stop coming end the flow (resolved after the stale time)', async () => {
    for (let t = T0 + 5 * MIN; t <= T0 + 30 * MIN; t += 5 * MIN) await flow(t);
    await h.advanceTo(T0 + 3 * 60 * MIN);
    expect(gas()).toHaveLength(0);
    for (let t = T0 + 200 * MIN; t <= T0 + 250 * MIN; t += 5 * MIN) await flow(t);
    expect(gas()).toHaveLength(1);
    await h.advanceTo(T0 + 250 * MIN + STALE_MS + MIN);
    expect(gas()[0]).toMatchObject({ status: 'resolved', resolvedAt: iso(T0 + 250 * MIN + STALE_MS + 1) });
  });

  it('snapshot and restore keep the state', async () => {
    await flow(T0 + 5 * MIN);
    const rule = h.engine.rule<GasLeftOnRule>('gasLeftOn')!;
    const json = JSON.stringify(rule.snapshot());
    const again = new GasLeftOnRule(createHomeRules().tracker);
    again.restore(JSON.parse(json));
    expect(JSON.stringify(again.snapshot())).toBe(json);
    expect(GasLeftOnRule.timerKey('h1')).toBe('gas_left_on|h1');
  });
});
