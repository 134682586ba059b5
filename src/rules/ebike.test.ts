import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import type { RulesConfig } from './config.ts';
import { EbikeRule } from './ebike.ts';
import { RuleHarness } from './harness.ts';

const root = path.resolve(import.meta.dirname, '../..');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function config(): RulesConfig {
  const c = structuredClone(loadConfig({ env: {}, cwd: root }).rules);
  c.ebike = { enabled: true, repeatCount: 3, repeatDays: 7 };
  return c;
}

async function setup(cfg = config()) {
  const h = new RuleHarness({ rules: [new EbikeRule()], config: cfg });
  await h.start();
  const co = h.addDevice('co-1', 'native-ebike-cutoff', { kind: 'building', buildingId: 'b-1' });
  co.placement = { buildingId: 'b-1', gridId: 'g-1', communityId: 'c-1' };
  h.addDevice('co-2', 'volt-cb2', { kind: 'building', buildingId: 'b-2' });
  h.addDevice('door-1', 'native-door-access', { kind: 'building', buildingId: 'b-1' });
  return { h, alerts: h.memory! };
}

const cutoff = { type: 'ebike_charging_cutoff', power_w: 230 } as const;

describe('EbikeRule', () => {
  it('records each cut-off as a minor ebike alert on the device, repeating into the same alert', async () => {
    const { h, alerts } = await setup();
    const t = h.clock.now();
    await h.event('co-1', cutoff, t);
    await h.event('co-1', cutoff, t + DAY);
    const a = alerts.active('ebike_charging|device:co-1')!;
    expect(a).toMatchObject({
      severity: 'minor',
      category: 'ebike',
      buildingId: 'b-1',
      gridId: 'g-1',
      count: 2,
      drill: false,
    });
    expect(a.evidence[0]).toMatchObject({ eventType: 'ebike_charging_cutoff', value: 230 });
    expect(alerts.ofType('ebike_charging_repeated')).toHaveLength(0);
  });

  it('raises a major alert at the third cut-off at one place within 7 days, and repeats into it', async () => {
    const { h, alerts } = await setup();
    const t = h.clock.now();
    await h.event('co-1', cutoff, t);
    await h.event('co-2', cutoff, t + HOUR); // another place does not count
    await h.event('co-1', cutoff, t + 3 * DAY);
    await h.event('co-1', cutoff, t + 6 * DAY);
    const r = alerts.active('ebike_charging_repeated|device:co-1')!;
    expect(r).toMatchObject({ severity: 'major', category: 'ebike', gridId: 'g-1', count: 1 });
    await h.event('co-1', cutoff, t + 6 * DAY + HOUR);
    expect(r.count).toBe(2);
    expect(alerts.ofType('ebike_charging_repeated')).toHaveLength(1);
    expect(alerts.active('ebike_charging_repeated|device:co-2')).toBeUndefined();
  });

  it('does not count cut-offs spread over more than 7 days', async () => {
    const { h, alerts } = await setup();
    const t = h.clock.now();
    await h.event('co-1', cutoff, t);
    await h.event('co-1', cutoff, t + 4 * DAY);
    await h.event('co-1', cutoff, t + 8 * DAY);
    expect(alerts.ofType('ebike_charging_repeated')).toHaveLength(0);
    await h.event('co-1', cutoff, t + 9 * DAY); // 4, 8, 9: three within 7 days
    expect(alerts.ofType('ebike_charging_repeated')).toHaveLength(1);
  });

  it('raises a minor maintenance alert for a tampered cut-off, and a major fire alert for its over-temperature', async () => {
    const { h, alerts } = await setup();
    await h.event('co-1', { type: 'tamper' });
    await h.event('door-1', { type: 'tamper' }); // not a cut-off: not this rule's
    await h.event('co-2', { type: 'overtemp', temperature_c: 75 });
    expect(alerts.alerts.map((a) => [a.key, a.severity, a.category])).toEqual([
      ['device_tamper|device:co-1', 'minor', 'maintenance'],
      ['ebike_overtemp|device:co-2', 'major', 'fire'],
    ]);
  });

  it('makes drill alerts from a drill cut-off only, and stays quiet when disabled', async () => {
    const cfg = config();
    const { h, alerts } = await setup(cfg);
    h.addDevice('drill-co', 'native-ebike-cutoff', { kind: 'building', buildingId: 'b-9' }, { drill: true });
    await h.event('drill-co', cutoff);
    await h.event('co-1', cutoff);
    expect(alerts.alerts.map((a) => [a.deviceId, a.drill])).toEqual([
      ['drill-co', true],
      ['co-1', false],
    ]);
    cfg.ebike.enabled = false;
    await h.event('co-2', cutoff);
    expect(alerts.alerts).toHaveLength(2);
  });

  it('keeps its counts across a snapshot and restore', async () => {
    const { h, alerts } = await setup();
    const rule = h.engine.rule<EbikeRule>('ebike')!;
    const t = h.clock.now();
    await h.event('co-1', cutoff, t);
    await h.event('co-1', cutoff, t + DAY);
    const snap = JSON.parse(JSON.stringify(rule.snapshot()));
    rule.restore({});
    rule.restore(snap);
    await h.event('co-1', cutoff, t + 2 * DAY);
    expect(alerts.ofType('ebike_charging_repeated')).toHaveLength(1);
  });
});
