import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import type { RulesConfig } from './config.ts';
import { DoorAccessRule } from './door-access.ts';
import { RuleHarness } from './harness.ts';

const root = path.resolve(import.meta.dirname, '../..');
const S = 1000;
const MIN = 60 * S;

function config(): RulesConfig {
  const c = structuredClone(loadConfig({ env: {}, cwd: root }).rules);
  c.doorAccess = { enabled: true, heldOpenSeconds: 120, deniedCount: 5, deniedWindowMinutes: 10 };
  return c;
}

async function setup(cfg = config()) {
  const h = new RuleHarness({ rules: [new DoorAccessRule()], config: cfg });
  await h.start();
  const door = h.addDevice('door-b1', 'native-door-access', { kind: 'building', buildingId: 'b-1' });
  // what the registry resolves for a building door: its grid and community
  door.placement = { buildingId: 'b-1', gridId: 'g-1', communityId: 'c-1' };
  h.addDevice('door-b2', 'native-door-access', { kind: 'building', buildingId: 'b-2' });
  return { h, alerts: h.memory! };
}

const denied = { type: 'door_access', direction: 'in', method: 'card', granted: false } as const;

describe('DoorAccessRule', () => {
  it('raises a major security alert for a forced door, to the building grid, deduped per door', async () => {
    const { h, alerts } = await setup();
    await h.event('door-b1', { type: 'door_forced' });
    await h.event('door-b1', { type: 'door_forced' }, h.clock.now() + MIN);
    expect(alerts.alerts).toHaveLength(1);
    expect(alerts.alerts[0]).toMatchObject({
      type: 'door_forced',
      severity: 'major',
      category: 'security',
      key: 'door_forced|device:door-b1',
      buildingId: 'b-1',
      gridId: 'g-1',
      deviceId: 'door-b1',
      count: 2,
      drill: false,
    });
  });

  it('alarms a door held open over the limit (minor), not one held for 60 s, and clears when it closes', async () => {
    const { h, alerts } = await setup();
    await h.event('door-b1', { type: 'door_held_open', seconds: 60 });
    await h.event('door-b1', { type: 'door_held_open', seconds: 120 });
    expect(alerts.alerts).toHaveLength(0);
    await h.reading('door-b1', 'contact_open', false); // nothing to clear
    await h.event('door-b1', { type: 'door_held_open', seconds: 180 }, h.clock.now() + MIN);
    await h.event('door-b1', { type: 'door_held_open', seconds: 240 }, h.clock.now() + MIN);
    const a = alerts.active('door_held_open|device:door-b1')!;
    expect(a).toMatchObject({ severity: 'minor', category: 'security', count: 2 });
    expect(a.evidence[0]).toMatchObject({ eventType: 'door_held_open', value: 180 });
    await h.reading('door-b2', 'contact_open', false, h.clock.now() + MIN); // another door
    expect(a.status).toBe('open');
    await h.reading('door-b1', 'contact_open', false, h.clock.now() + MIN);
    expect(a.status).toBe('resolved');
    expect(a.outcome).toBe('door closed');
  });

  it('alarms 5 denied attempts within 10 min at one door, not 4, nor 5 spread out, nor granted ones', async () => {
    const { h, alerts } = await setup();
    const t = h.clock.now();
    for (let i = 0; i < 4; i++) await h.event('door-b1', denied, t + i * MIN);
    await h.event('door-b1', { ...denied, granted: true }, t + 4 * MIN);
    await h.event('door-b2', denied, t + 4 * MIN); // another door
    expect(alerts.alerts).toHaveLength(0);
    await h.event('door-b1', denied, t + 5 * MIN);
    const a = alerts.active('door_denied_repeated|device:door-b1')!;
    expect(a).toMatchObject({ severity: 'minor', category: 'security', count: 1, gridId: 'g-1' });
    await h.event('door-b1', denied, t + 6 * MIN);
    expect(a.count).toBe(2);
    expect(alerts.alerts).toHaveLength(1);

    // door-b2: five denials over 16 minutes never make 5 within 10
    for (let i = 1; i <= 4; i++) await h.event('door-b2', denied, t + (4 + i * 4) * MIN);
    expect(alerts.active('door_denied_repeated|device:door-b2')).toBeUndefined();
  });

  it('makes drill alerts from a drill door only, and stays quiet when disabled', async () => {
    const cfg = config();
    const { h, alerts } = await setup(cfg);
    h.addDevice('drill-door', 'native-door-access', { kind: 'building', buildingId: 'b-3' }, { drill: true });
    await h.event('drill-door', { type: 'door_forced' });
    await h.event('door-b1', { type: 'door_forced' });
    expect(alerts.alerts.map((a) => [a.deviceId, a.drill])).toEqual([
      ['drill-door', true],
      ['door-b1', false],
    ]);
    await h.event('drill-door', { type: 'door_held_open', seconds: 300 });
    await h.reading('drill-door', 'contact_open', false);
    expect(alerts.ofType('door_held_open').map((a) => [a.key, a.status])).toEqual([
      ['door_held_open|device:drill-door|drill', 'resolved'],
    ]);
    cfg.doorAccess.enabled = false;
    await h.event('door-b2', { type: 'door_forced' });
    expect(alerts.alerts).toHaveLength(3);
  });
});
