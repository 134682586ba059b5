import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import type { RulesConfig } from './config.ts';
import { FallRule, FireRule, SosRule } from './emergency.ts';
import { household, RuleHarness } from './harness.ts';
import type { Rule } from './types.ts';

const root = path.resolve(import.meta.dirname, '../..');
const S = 1000;
const MIN = 60 * S;

function config(): RulesConfig {
  const c = structuredClone(loadConfig({ env: {}, cwd: root }).rules);
  // pinned here, so a change of the shipped defaults does not change what these tests mean
  c.sos = { enabled: true };
  c.fall = { enabled: true, cancelWindowS: 120 };
  c.fire = { enabled: true, chargingAreaMaxTemperatureC: 60 };
  return c;
}

async function harness(rules: Rule[], cfg = config()) {
  const h = new RuleHarness({
    rules,
    config: cfg,
    households: [household('h-1', { colour: 'red' }), household('h-2', { buildingId: 'b-2', unitId: 'u-2-1' })],
  });
  await h.start();
  return { h, alerts: h.memory! };
}

describe('SosRule', () => {
  it('raises a critical resident-safety alert at once, keyed on the household, with subject and evidence', async () => {
    const { h, alerts } = await harness([new SosRule()]);
    h.addDevice('eb-1', 'native-emergency-button', { kind: 'household', householdId: 'h-1' });
    const t = h.clock.now() + 5 * S;
    await h.event('eb-1', { type: 'sos', id: 'e1' }, t);
    const [a] = alerts.ofType('sos');
    expect(a).toMatchObject({
      type: 'sos',
      severity: 'critical',
      category: 'resident_safety',
      status: 'open',
      key: 'sos|household:h-1',
      householdId: 'h-1',
      buildingId: 'b-1',
      gridId: 'g-1',
      unitId: 'u-1-1',
      communityId: 'c-1',
      deviceId: 'eb-1',
      colour: 'red',
      drill: false,
      count: 1,
      firstSeen: new Date(t).toISOString(),
    });
    expect(a!.notBefore).toBeUndefined();
    // the event's own id makes raising from it idempotent (alert_event)
    expect(a!.evidence).toEqual([{ ts: t, kind: 'event', deviceId: 'eb-1', eventType: 'sos', eventId: 'e1' }]);
    expect(a!.summary).not.toMatch(/\d{3}/); // no names or numbers of people, one line
  });

  it('dedups presses of the button and the wristband of one home into one alert with a count', async () => {
    const { h, alerts } = await harness([new SosRule()]);
    h.addDevice('eb-1', 'native-emergency-button', { kind: 'household', householdId: 'h-1' });
    h.addDevice('wb-1', 'native-wristband', { kind: 'household', householdId: 'h-1' });
    await h.event('eb-1', { type: 'sos' });
    await h.event('eb-1', { type: 'sos' }, h.clock.now() + S);
    await h.event('wb-1', { type: 'sos' }, h.clock.now() + S);
    expect(alerts.alerts).toHaveLength(1);
    expect(alerts.alerts[0]!.count).toBe(3);
  });

  it('marks alerts from a drill device as drill, and only those', async () => {
    const { h, alerts } = await harness([new SosRule()]);
    h.addDevice('drill-eb-1', 'native-emergency-button', { kind: 'household', householdId: 'h-2' }, { drill: true });
    h.addDevice('eb-1', 'native-emergency-button', { kind: 'household', householdId: 'h-1' });
    await h.event('drill-eb-1', { type: 'sos' });
    await h.event('eb-1', { type: 'sos' });
    expect(alerts.active('sos|household:h-2|drill')!.drill).toBe(true);
    expect(alerts.active('sos|household:h-1')!.drill).toBe(false);
  });

  it('keys on the device when it is not in a household, and stays quiet when disabled or for other events', async () => {
    const cfg = config();
    cfg.households = { 'h-2': { sos: { enabled: false } } };
    const { h, alerts } = await harness([new SosRule()], cfg);
    h.addDevice('eb-9', 'native-emergency-button', { kind: 'unit', unitId: 'u-1-1' });
    h.addDevice('eb-2', 'native-emergency-button', { kind: 'household', householdId: 'h-2' });
    await h.event('eb-9', { type: 'sos' });
    await h.event('eb-2', { type: 'sos' });
    await h.event('eb-2', { type: 'cancel' });
    expect(alerts.alerts.map((a) => a.key)).toEqual(['sos|device:eb-9']);
  });

  it('keeps working when another rule throws on the same message (the engine guards each rule)', async () => {
    const broken: Rule = {
      name: 'water',
      onEvent() {
        throw new Error('odd input');
      },
    };
    const { h, alerts } = await harness([broken, new SosRule()]);
    h.addDevice('eb-1', 'native-emergency-button', { kind: 'household', householdId: 'h-1' });
    await h.event('eb-1', { type: 'sos' });
    expect(alerts.ofType('sos')).toHaveLength(1);
  });
});

describe('FallRule', () => {
  async function fallSetup(cfg = config()) {
    const r = await harness([new FallRule()], cfg);
    r.h.addDevice('wb-1', 'native-wristband', { kind: 'household', householdId: 'h-1' });
    r.h.addDevice('wb-2', 'native-wristband', { kind: 'household', householdId: 'h-1' });
    return r;
  }

  it('shows the fall at once with notifications held until the end of the cancel window', async () => {
    const { h, alerts } = await fallSetup();
    const t = h.clock.now() + 10 * S;
    await h.event('wb-1', { type: 'fall', id: 'f1' }, t);
    const a = alerts.active('fall|device:wb-1');
    expect(a).toMatchObject({ severity: 'critical', category: 'resident_safety', householdId: 'h-1', colour: 'red' });
    expect(a!.notBefore).toBe(new Date(t + 120 * S).toISOString());
    expect(h.scheduler.get('fall|wb-1')?.at).toBe(t + 120 * S);
  });

  it('is cancelled by the wearer within the window, with the device on the timeline', async () => {
    const { h, alerts } = await fallSetup();
    const t = h.clock.now();
    await h.event('wb-1', { type: 'fall' }, t);
    await h.event('wb-1', { type: 'cancel', ref: 'x' }, t + 30 * S);
    const [a] = alerts.ofType('fall');
    expect(a!.status).toBe('cancelled');
    expect(a!.outcome).toBe('cancelled by the wearer');
    expect(a!.timeline.at(-1)).toMatchObject({ action: 'cancelled', by: 'device:wb-1', via: 'device' });
    expect(h.scheduler.get('fall|wb-1')).toBeUndefined();
  });

  it("ignores a cancel from another wristband; the other wearer's fall stays", async () => {
    const { h, alerts } = await fallSetup();
    await h.event('wb-1', { type: 'fall' });
    await h.event('wb-2', { type: 'cancel' }, h.clock.now() + 10 * S);
    expect(alerts.active('fall|device:wb-1')).toBeDefined();
  });

  it('stays open after the window without any further message, and a late cancel does nothing', async () => {
    const { h, alerts } = await fallSetup();
    const t = h.clock.now();
    await h.event('wb-1', { type: 'fall' }, t);
    await h.advance(119 * S);
    expect(h.scheduler.get('fall|wb-1')).toBeDefined();
    await h.advance(1 * S); // the window ends on time
    expect(h.scheduler.get('fall|wb-1')).toBeUndefined();
    await h.event('wb-1', { type: 'cancel' }, t + 150 * S);
    const [a] = alerts.ofType('fall');
    expect(a!.status).toBe('open');
    expect(alerts.alerts).toHaveLength(1);
  });

  it('dedups a bouncing fall into one alert; a cancel then cancels it', async () => {
    const { h, alerts } = await fallSetup();
    const t = h.clock.now();
    await h.event('wb-1', { type: 'fall' }, t);
    await h.event('wb-1', { type: 'fall' }, t + 20 * S);
    expect(alerts.alerts).toHaveLength(1);
    expect(alerts.alerts[0]!.count).toBe(2);
    expect(h.scheduler.get('fall|wb-1')?.at).toBe(t + 140 * S);
    await h.event('wb-1', { type: 'cancel' }, t + 130 * S);
    expect(alerts.alerts[0]!.status).toBe('cancelled');
  });

  it('does not let the cancel of a second fall hide an earlier confirmed one', async () => {
    const { h, alerts } = await fallSetup();
    const t = h.clock.now();
    await h.event('wb-1', { type: 'fall' }, t);
    await h.advance(5 * MIN); // confirmed
    await h.event('wb-1', { type: 'fall' }, t + 10 * MIN);
    await h.event('wb-1', { type: 'cancel' }, t + 10 * MIN + 5 * S);
    expect(alerts.alerts).toHaveLength(1);
    expect(alerts.alerts[0]).toMatchObject({ status: 'open', count: 2 });
  });

  it('a new fall after a cancelled one is a new alert; a drill wristband makes a drill alert', async () => {
    const { h, alerts } = await fallSetup();
    h.addDevice('drill-wb', 'native-wristband', { kind: 'household', householdId: 'h-2' }, { drill: true });
    await h.event('wb-1', { type: 'fall' });
    await h.event('wb-1', { type: 'cancel' }, h.clock.now() + S);
    await h.event('wb-1', { type: 'fall' }, h.clock.now() + MIN);
    await h.event('drill-wb', { type: 'fall' });
    const falls = alerts.ofType('fall');
    expect(falls.map((a) => [a.deviceId, a.status, a.drill])).toEqual([
      ['wb-1', 'cancelled', false],
      ['wb-1', 'open', false],
      ['drill-wb', 'open', true],
    ]);
  });

  it('lets a drill wearer cancel the drill fall (drill alerts have keys of their own)', async () => {
    const { h, alerts } = await fallSetup();
    h.addDevice('drill-wb', 'native-wristband', { kind: 'household', householdId: 'h-1' }, { drill: true });
    await h.event('drill-wb', { type: 'fall' });
    await h.event('wb-1', { type: 'fall' });
    await h.event('drill-wb', { type: 'cancel' }, h.clock.now() + 10 * S);
    expect(alerts.alerts.map((x) => [x.key, x.status])).toEqual([
      ['fall|device:drill-wb|drill', 'cancelled'],
      ['fall|device:wb-1', 'open'],
    ]);
  });

  it('honours a per-household window and the enabled switch', async () => {
    const cfg = config();
    cfg.households = { 'h-1': { fall: { cancelWindowS: 30 } }, 'h-2': { fall: { enabled: false } } };
    const { h, alerts } = await fallSetup(cfg);
    h.addDevice('wb-3', 'native-wristband', { kind: 'household', householdId: 'h-2' });
    const t = h.clock.now();
    await h.event('wb-1', { type: 'fall' }, t);
    await h.event('wb-3', { type: 'fall' }, t);
    expect(alerts.active('fall|device:wb-1')!.notBefore).toBe(new Date(t + 30 * S).toISOString());
    await h.event('wb-1', { type: 'cancel' }, t + 40 * S);
    expect(alerts.alerts.map((a) => [a.deviceId, a.status])).toEqual([['wb-1', 'open']]);
  });
});

describe('FireRule', () => {
  async function fireSetup(cfg = config()) {
    const r = await harness([new FireRule()], cfg);
    r.h.addDevice('sd-1', 'native-smoke-detector', { kind: 'household', householdId: 'h-1' });
    r.h.addDevice('sd-2', 'native-smoke-detector', { kind: 'household', householdId: 'h-1' });
    r.h.addDevice('gd-1', 'native-gas-detector', { kind: 'household', householdId: 'h-1' });
    r.h.addDevice('ca-1', 'native-charging-area', { kind: 'area', areaId: 'a-1' });
    r.h.addDevice('sd-u', 'native-smoke-detector', { kind: 'unit', unitId: 'u-1-1' });
    return r;
  }

  it('raises critical building-wide smoke and gas-leak alerts for a home', async () => {
    const { h, alerts } = await fireSetup();
    await h.event('sd-1', { type: 'smoke' });
    await h.event('gd-1', { type: 'gas_leak' });
    expect(alerts.active('smoke|household:h-1')).toMatchObject({
      category: 'fire',
      severity: 'critical',
      buildingId: 'b-1',
      gridId: 'g-1',
      deviceId: 'sd-1',
      drill: false,
    });
    expect(alerts.active('gas_leak|household:h-1')).toMatchObject({
      category: 'fire',
      severity: 'critical',
      buildingId: 'b-1',
    });
  });

  it('raises on smoke telemetry, dedups steady smoke, and clears when the detector reports no smoke', async () => {
    const { h, alerts } = await fireSetup();
    const t = h.clock.now();
    await h.reading('sd-1', 'smoke', false, t);
    expect(alerts.alerts).toHaveLength(0);
    await h.reading('sd-1', 'smoke', true, t + MIN);
    await h.reading('sd-1', 'smoke', true, t + 2 * MIN); // steady: no new raise yet
    const a = alerts.active('smoke|household:h-1')!;
    expect(a.count).toBe(1);
    await h.reading('sd-1', 'smoke', true, t + 7 * MIN); // still smoking 6 min later: a reminder repeat
    expect(a.count).toBe(2);
    await h.reading('sd-1', 'smoke', false, t + 8 * MIN);
    expect(a.status).toBe('resolved');
    expect(a.outcome).toMatch(/smoke cleared/);
    expect(alerts.alerts).toHaveLength(1);
  });

  it('clears only when every detector of the home is clear', async () => {
    const { h, alerts } = await fireSetup();
    await h.reading('sd-1', 'smoke', true);
    await h.event('sd-2', { type: 'smoke' });
    const a = alerts.active('smoke|household:h-1')!;
    expect(a.count).toBe(2);
    await h.reading('sd-1', 'smoke', false, h.clock.now() + MIN);
    expect(a.status).toBe('open');
    await h.reading('sd-2', 'smoke', false, h.clock.now() + MIN);
    expect(a.status).toBe('resolved');
  });

  it('raises charging_area_fire on over-temperature in a charging area, clearing below the limit with a margin', async () => {
    const { h, alerts } = await fireSetup();
    const t = h.clock.now();
    await h.reading('ca-1', 'temperature_c', 59, t);
    expect(alerts.alerts).toHaveLength(0);
    await h.reading('ca-1', 'temperature_c', 65, t + MIN);
    const a = alerts.active('charging_area_fire|area:a-1')!;
    expect(a).toMatchObject({ category: 'fire', severity: 'critical', areaId: 'a-1' });
    expect(a.evidence[0]).toMatchObject({ field: 'temperature_c', value: 65 });
    await h.reading('ca-1', 'temperature_c', 58, t + 2 * MIN);
    expect(a.status).toBe('open');
    await h.reading('ca-1', 'temperature_c', 50, t + 3 * MIN);
    expect(a.status).toBe('resolved');
  });

  it('raises charging_area_fire on a smoke or overtemp event in a charging area', async () => {
    const { h, alerts } = await fireSetup();
    await h.event('ca-1', { type: 'overtemp', temperature_c: 70 });
    await h.event('ca-1', { type: 'smoke' }, h.clock.now() + S);
    const a = alerts.active('charging_area_fire|area:a-1')!;
    expect(a.count).toBe(2);
    expect(a.summary).toMatch(/Over-temperature/);
    // smoke over, temperature down: the area is clear
    await h.reading('ca-1', 'smoke', false, h.clock.now() + MIN);
    expect(a.status).toBe('open');
    await h.reading('ca-1', 'temperature_c', 30, h.clock.now() + MIN);
    expect(a.status).toBe('resolved');
  });

  it('stays quiet on hot homes, smoke-free telemetry, and when disabled; stairwell smoke keys on the unit', async () => {
    const cfg = config();
    cfg.households = { 'h-2': { fire: { enabled: false } } };
    const { h, alerts } = await fireSetup(cfg);
    h.addDevice('sd-3', 'native-smoke-detector', { kind: 'household', householdId: 'h-2' });
    await h.reading('sd-1', 'temperature_c', 90); // a home's temperature is not this rule's business
    await h.reading('ca-1', 'smoke', false);
    await h.event('sd-3', { type: 'smoke' });
    expect(alerts.alerts).toHaveLength(0);
    await h.event('sd-u', { type: 'smoke' });
    expect(alerts.alerts.map((a) => a.key)).toEqual(['smoke|unit:u-1-1']);
  });

  it('marks alerts from a drill detector as drill', async () => {
    const { h, alerts } = await fireSetup();
    h.addDevice('drill-sd', 'native-smoke-detector', { kind: 'household', householdId: 'h-2' }, { drill: true });
    await h.reading('drill-sd', 'smoke', true);
    await h.reading('sd-1', 'smoke', true);
    expect(alerts.active('smoke|household:h-2|drill')!.drill).toBe(true);
    expect(alerts.active('smoke|household:h-1')!.drill).toBe(false);
  });

  it('survives a snapshot and restore: a later all-clear still resolves', async () => {
    const { h, alerts } = await fireSetup();
    await h.reading('sd-1', 'smoke', true);
    const rule = h.engine.rule<FireRule>('fire')!;
    const snap = JSON.parse(JSON.stringify(rule.snapshot()));
    rule.restore({});
    rule.restore(snap);
    await h.reading('sd-1', 'smoke', false, h.clock.now() + MIN);
    expect(alerts.ofType('smoke')[0]!.status).toBe('resolved');
  });
});
