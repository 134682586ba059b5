import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import type { RulesConfig } from './config.ts';
import { DeviceHealthRule, isActivitySensorKind, MASS_WINDOW_MS } from './device-health.ts';
import { household, RuleHarness } from './harness.ts';

const root = path.resolve(import.meta.dirname, '../..');
const S = 1000;
const MIN = 60 * S;
const START = Date.UTC(2026, 2, 1, 16, 0);

function config(): RulesConfig {
  const c = structuredClone(loadConfig({ env: {}, cwd: root }).rules);
  c.deviceHealth = { enabled: true, lowBatteryPct: 20, graceMinutes: 10, massOfflineCount: 10 };
  return c;
}

/** Starts with the grace period already over unless `graceOver` is false. */
async function setup(opts: { cfg?: RulesConfig; rule?: DeviceHealthRule; graceOver?: boolean } = {}) {
  const h = new RuleHarness({
    rules: [opts.rule ?? new DeviceHealthRule({ startedAt: START })],
    config: opts.cfg ?? config(),
    households: [
      household('h-1', { loneElderly: true }),
      household('h-2', { loneElderly: false }),
      household('h-3', { loneElderly: true, buildingId: 'b-2' }),
    ],
  });
  await h.start();
  for (const hh of ['h-1', 'h-2', 'h-3']) {
    h.addDevice(`pir-${hh}`, 'native-motion', { kind: 'household', householdId: hh });
    h.addDevice(`dc-${hh}`, 'native-door-contact', { kind: 'household', householdId: hh });
    h.addDevice(`wm-${hh}`, 'native-water-meter', { kind: 'household', householdId: hh });
    h.addDevice(`sd-${hh}`, 'native-smoke-detector', { kind: 'household', householdId: hh });
  }
  if (opts.graceOver !== false) await h.advance(11 * MIN);
  return { h, alerts: h.memory! };
}

describe('isActivitySensorKind', () => {
  it('names the sensors that show a resident is active', () => {
    for (const k of ['motion_sensor', 'door_contact', 'water_meter', 'electricity_meter', 'gas_meter', 'wristband']) {
      expect(isActivitySensorKind(k)).toBe(true);
    }
    for (const k of ['smoke_detector', 'emergency_button', 'door_access', 'ebike_cutoff', undefined]) {
      expect(isActivitySensorKind(k)).toBe(false);
    }
  });
});

describe('DeviceHealthRule: offline devices', () => {
  it('raises a minor maintenance alert when the batch window closes, on time, and clears when back online', async () => {
    const { h, alerts } = await setup();
    const t = h.clock.now();
    await h.status('sd-h-1', 'offline', 'timeout', t);
    await h.advance(MASS_WINDOW_MS - S);
    expect(alerts.alerts).toHaveLength(0);
    await h.advance(S);
    const a = alerts.active('device_offline|device:sd-h-1')!;
    expect(a).toMatchObject({
      category: 'maintenance',
      severity: 'minor',
      householdId: 'h-1',
      deviceId: 'sd-h-1',
      drill: false,
    });
    expect(a.firstSeen).toBe(new Date(t).toISOString());
    expect(a.evidence[0]).toMatchObject({ kind: 'status', deviceId: 'sd-h-1', value: 'offline' });
    await h.status('sd-h-1', 'offline', 'last_will'); // already known: no second alert
    await h.advance(2 * MIN);
    expect(alerts.alerts).toHaveLength(1);
    await h.status('sd-h-1', 'online', 'message');
    expect(a.status).toBe('resolved');
    expect(a.outcome).toBe('device back online');
  });

  it('stays quiet for a device back online before the batch closes, and for devices it does not know', async () => {
    const { h, alerts } = await setup();
    await h.status('pir-h-1', 'offline', 'disconnect');
    await h.status('ghost', 'offline', 'timeout');
    await h.status('pir-h-1', 'online', 'message', h.clock.now() + 20 * S);
    await h.advance(5 * MIN);
    expect(alerts.alerts).toHaveLength(0);
  });

  it('marks the alert of a drill device as drill', async () => {
    const { h, alerts } = await setup();
    h.addDevice('drill-sd', 'native-smoke-detector', { kind: 'household', householdId: 'h-2' }, { drill: true });
    await h.status('drill-sd', 'offline', 'timeout');
    await h.status('sd-h-2', 'offline', 'timeout');
    await h.advance(MASS_WINDOW_MS);
    expect(alerts.active('device_offline|device:drill-sd|drill')!.drill).toBe(true);
    expect(alerts.active('device_offline|device:sd-h-2')!.drill).toBe(false);
  });

  it('remembers but does not alert offline devices during the grace period, then alerts those still offline on time', async () => {
    const { h, alerts } = await setup({ graceOver: false });
    await h.status('sd-h-1', 'offline', 'timeout', START + MIN);
    await h.status('sd-h-2', 'offline', 'timeout', START + 2 * MIN);
    await h.status('sd-h-2', 'online', 'message', START + 3 * MIN);
    await h.advanceTo(START + 10 * MIN - S);
    expect(alerts.alerts).toHaveLength(0);
    await h.advance(S); // grace ends: no message needed
    expect(alerts.alerts.map((a) => a.key)).toEqual(['device_offline|device:sd-h-1']);
    expect(alerts.alerts[0]!.firstSeen).toBe(new Date(START + MIN).toISOString());
  });

  it('without a start time, takes the grace period from its first call', async () => {
    const { h, alerts } = await setup({ rule: new DeviceHealthRule(), graceOver: false });
    const first = START + 30 * MIN;
    await h.status('sd-h-1', 'offline', 'timeout', first);
    await h.advanceTo(first + 9 * MIN);
    expect(alerts.alerts).toHaveLength(0);
    await h.advance(MIN);
    expect(alerts.alerts).toHaveLength(1);
  });
});

describe('DeviceHealthRule: low battery', () => {
  it('raises once below the threshold and clears only at threshold + 10', async () => {
    const { h, alerts } = await setup();
    await h.reading('dc-h-1', 'battery_pct', 50);
    await h.reading('dc-h-1', 'battery_pct', 20);
    expect(alerts.alerts).toHaveLength(0);
    await h.reading('dc-h-1', 'battery_pct', 19);
    await h.reading('dc-h-1', 'battery_pct', 18);
    const a = alerts.active('low_battery|device:dc-h-1')!;
    expect(a).toMatchObject({ category: 'maintenance', severity: 'minor', count: 1 });
    await h.reading('dc-h-1', 'battery_pct', 25);
    expect(a.status).toBe('open');
    await h.reading('dc-h-1', 'battery_pct', 30);
    expect(a.status).toBe('resolved');
  });

  it('raises on a low_battery event, repeating into the same alert; telemetry can clear it', async () => {
    const { h, alerts } = await setup();
    await h.event('wm-h-1', { type: 'low_battery', battery_pct: 12 });
    await h.event('wm-h-1', { type: 'low_battery' });
    const a = alerts.active('low_battery|device:wm-h-1')!;
    expect(a.count).toBe(2);
    expect(a.evidence[0]).toMatchObject({ eventType: 'low_battery', value: 12 });
    await h.reading('wm-h-1', 'battery_pct', 95);
    expect(a.status).toBe('resolved');
  });

  it('uses the household threshold and the drill flag', async () => {
    const cfg = config();
    cfg.households = { 'h-2': { deviceHealth: { lowBatteryPct: 40 } } };
    const { h, alerts } = await setup({ cfg });
    h.addDevice('drill-dc', 'native-door-contact', { kind: 'household', householdId: 'h-1' }, { drill: true });
    await h.reading('dc-h-2', 'battery_pct', 35);
    await h.reading('dc-h-1', 'battery_pct', 35);
    await h.reading('drill-dc', 'battery_pct', 5);
    expect(alerts.alerts.map((a) => [a.deviceId, a.drill])).toEqual([
      ['dc-h-2', false],
      ['drill-dc', true],
    ]);
  });
});

describe('DeviceHealthRule: monitoring lost', () => {
  it('raises a major maintenance alert when all activity sensors of a lone-elderly home are offline', async () => {
    const { h, alerts } = await setup();
    await h.status('pir-h-1', 'offline', 'timeout');
    await h.status('dc-h-1', 'offline', 'timeout');
    await h.advance(MASS_WINDOW_MS);
    expect(alerts.ofType('monitoring_lost')).toHaveLength(0); // the water meter still reports
    await h.status('wm-h-1', 'offline', 'timeout');
    await h.advance(MASS_WINDOW_MS);
    const lost = alerts.active('monitoring_lost|household:h-1')!;
    expect(lost).toMatchObject({ severity: 'major', category: 'maintenance', householdId: 'h-1', count: 1 });
    expect(lost.evidence.map((e) => e.deviceId).sort()).toEqual(['dc-h-1', 'pir-h-1', 'wm-h-1']);
    expect(alerts.ofType('device_offline')).toHaveLength(3);
    // the smoke detector is no activity sensor: it coming back changes nothing
    await h.status('sd-h-1', 'offline', 'timeout');
    await h.status('sd-h-1', 'online', 'message');
    expect(lost.status).toBe('open');
    await h.status('dc-h-1', 'online', 'message');
    expect(lost.status).toBe('resolved');
    expect(lost.outcome).toMatch(/back online/);
    expect(alerts.active('device_offline|device:dc-h-1')).toBeUndefined();
    expect(alerts.active('device_offline|device:pir-h-1')).toBeDefined();
  });

  it('is never raised for a household that is not lone-elderly', async () => {
    const { h, alerts } = await setup();
    for (const d of ['pir-h-2', 'dc-h-2', 'wm-h-2']) await h.status(d, 'offline', 'timeout');
    await h.advance(2 * MASS_WINDOW_MS);
    expect(alerts.ofType('monitoring_lost')).toHaveLength(0);
    expect(alerts.ofType('device_offline')).toHaveLength(3);
  });

  it('counts devices provisioned after the start as sensors of their home', async () => {
    const { h, alerts } = await setup();
    await h.status('pir-h-3', 'offline', 'timeout');
    await h.status('dc-h-3', 'offline', 'timeout'); // builds the index: wm-h-3 is a sensor
    h.addDevice('wb-h-3', 'native-wristband', { kind: 'household', householdId: 'h-3' });
    await h.status('wb-h-3', 'online', 'message'); // a new device shows up
    await h.status('wm-h-3', 'offline', 'timeout');
    await h.advance(MASS_WINDOW_MS);
    expect(alerts.ofType('monitoring_lost')).toHaveLength(0); // the new wristband still reports
    await h.status('wb-h-3', 'offline', 'timeout');
    await h.advance(MASS_WINDOW_MS);
    expect(alerts.ofType('monitoring_lost')).toHaveLength(1);
  });
});

describe('DeviceHealthRule: many devices at once', () => {
  function building(h: RuleHarness, b: string, n: number, prefix = b): string[] {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = `${prefix}-co-${i}`;
      const d = h.addDevice(id, 'native-ebike-cutoff', { kind: 'building', buildingId: b });
      d.placement = { buildingId: b, gridId: 'g-1', communityId: 'c-1' };
      ids.push(id);
    }
    return ids;
  }

  it('turns 12 devices of one building going offline within a minute into ONE major alert, resolved when all are back', async () => {
    const { h, alerts } = await setup();
    const ids = building(h, 'b-7', 12);
    const t = h.clock.now();
    for (const [i, id] of ids.entries()) await h.status(id, 'offline', 'timeout', t + i * 4 * S);
    await h.advance(MASS_WINDOW_MS);
    expect(alerts.alerts).toHaveLength(1);
    const a = alerts.alerts[0]!;
    expect(a).toMatchObject({
      type: 'devices_offline_mass',
      key: 'devices_offline_mass|building:b-7',
      severity: 'major',
      category: 'maintenance',
      buildingId: 'b-7',
      gridId: 'g-1',
      drill: false,
    });
    expect(a.summary).toMatch(/^12 devices/);
    for (const id of ids.slice(0, 11)) await h.status(id, 'online', 'message');
    expect(a.status).toBe('open');
    await h.status(ids[11]!, 'online', 'message');
    expect(a.status).toBe('resolved');
    expect(alerts.alerts).toHaveLength(1);
  });

  it('keeps nine devices as nine alerts (below the mass threshold)', async () => {
    const { h, alerts } = await setup();
    for (const id of building(h, 'b-7', 9)) await h.status(id, 'offline', 'timeout');
    await h.advance(MASS_WINDOW_MS);
    expect(alerts.ofType('device_offline')).toHaveLength(9);
    expect(alerts.ofType('devices_offline_mass')).toHaveLength(0);
  });

  it('raises one alert per building for an outage of two buildings', async () => {
    const { h, alerts } = await setup();
    for (const id of [...building(h, 'b-7', 6), ...building(h, 'b-8', 6)]) await h.status(id, 'offline', 'timeout');
    await h.advance(MASS_WINDOW_MS);
    expect(alerts.alerts.map((a) => a.key).sort()).toEqual([
      'devices_offline_mass|building:b-7',
      'devices_offline_mass|building:b-8',
    ]);
  });

  it('raises a single alert for a wide outage, keyed on the most affected building, folding lost homes in', async () => {
    const { h, alerts } = await setup();
    const ids = [...building(h, 'b-7', 3)];
    for (let b = 10; b < 20; b++) ids.push(...building(h, `b-${b}`, 1));
    ids.push('pir-h-1', 'dc-h-1', 'wm-h-1'); // a lone-elderly home loses its monitoring in the outage
    for (const id of ids) await h.status(id, 'offline', 'timeout');
    await h.advance(MASS_WINDOW_MS);
    expect(alerts.alerts).toHaveLength(1);
    const a = alerts.alerts[0]!;
    expect(a.key).toBe('devices_offline_mass|building:b-1'); // 3 of h-1's sensors; b-7 also has 3; b-1 < b-7
    expect(a.summary).toBe(
      '16 devices in 12 buildings or areas went offline within a minute; monitoring lost in 1 lone-elderly homes',
    );
    expect(a.evidence.length).toBeLessThanOrEqual(21);
    // the home's sensor coming back still resolves its (folded) loss without error, and the mass alert waits for all
    await h.status('pir-h-1', 'online', 'message');
    expect(a.status).toBe('open');
  });

  it('a mass outage still offline at the end of the grace period becomes a mass alert, not one per device', async () => {
    const { h, alerts } = await setup({ graceOver: false });
    for (const id of building(h, 'b-7', 15)) await h.status(id, 'offline', 'timeout', START + MIN);
    await h.advanceTo(START + 10 * MIN);
    expect(alerts.alerts.map((a) => a.key)).toEqual(['devices_offline_mass|building:b-7']);
  });

  it('marks a mass alert as drill only when every device in it is a drill device', async () => {
    const { h, alerts } = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const d = h.addDevice(
        `drill-co-${i}`,
        'native-ebike-cutoff',
        { kind: 'building', buildingId: 'b-drill' },
        { drill: true },
      );
      ids.push(d.id);
    }
    for (const id of ids) await h.status(id, 'offline', 'timeout');
    await h.advance(MASS_WINDOW_MS);
    expect(alerts.alerts.map((a) => [a.key, a.drill])).toEqual([['devices_offline_mass|building:b-drill|drill', true]]);
  });
});
