/**
 * The notifications' side of drills (src/notify/recipients.ts, `drillAudience`): a drill alert is texted to the
 * participants of its drill only — never to residents' emergency contacts unless the scenario names them — and to
 * nobody when no drill runs for it; a real alert is resolved as before.
 */
import { describe, expect, it } from 'vitest';
import { RecipientResolver } from '../notify/recipients.ts';
import type { Household, Scope, Staff } from '../registry/port.ts';

const staff = (id: string, roles: Staff['roles'], gridIds: string[], communityIds: string[] = []): Staff => ({
  id,
  username: id,
  name: '王小明',
  phone: `+86138000000${id.length}${id.charCodeAt(id.length - 1) % 10}`,
  roles,
  coverage: { gridIds, communityIds, streetIds: [] },
  disabled: false,
  createdAt: '2026-01-01T00:00:00Z',
});

const people = [
  staff('gw', ['grid_worker'], ['g-1']),
  staff('gl', ['grid_leader'], ['g-1']),
  staff('dir', ['community_director'], [], ['c-1']),
  staff('duty', ['street_duty_officer'], []),
];

const registry = {
  listStaff: async () => ({ items: people }),
  getHousehold: async () =>
    ({ emergencyContacts: [{ name: '李四', phone: '+8613900000001', relation: '女儿' }] }) as unknown as Household,
  scopeOf: (s: Staff): Scope =>
    s.roles.some((r) => r === 'community_director' || r === 'street_duty_officer')
      ? { all: true, gridIds: [] }
      : { all: false, gridIds: s.coverage.gridIds },
};

const TO = ['grid_worker', 'grid_leader', 'community_director', 'street_duty_officer', 'emergency_contacts'];
const where = { householdId: 'h-1', gridId: 'g-1', communityId: 'c-1' };

describe('drill alerts reach the drill’s participants only', () => {
  it('drops everyone outside the audience, emergency contacts included', async () => {
    const asked: unknown[] = [];
    const r = new RecipientResolver(registry, () => 0, 0, {
      drillAudience: (alert) => {
        asked.push(alert.id);
        return { drillId: 'd1', staffIds: new Set(['gw', 'dir']), emergencyContacts: false };
      },
    });
    const out = await r.resolve(TO, { ...where, id: 'a1', drill: true });
    expect(out.map((x) => x.staffId ?? x.as)).toEqual(['gw', 'dir']);
    expect(asked).toEqual(['a1']);
  });

  it('keeps emergency contacts when the scenario names them', async () => {
    const r = new RecipientResolver(registry, () => 0, 0, {
      drillAudience: () => ({ drillId: 'd1', staffIds: new Set(['gw']), emergencyContacts: true }),
    });
    const out = await r.resolve(TO, { ...where, id: 'a1', drill: true });
    expect(out.map((x) => x.staffId ?? x.as)).toEqual(['gw', 'emergency_contacts']);
  });

  it('no drill running for it: nobody, and the log says so', async () => {
    const warned: unknown[] = [];
    const r = new RecipientResolver(registry, () => 0, 0, {
      drillAudience: async () => undefined,
      log: { debug: () => {}, warn: (obj: unknown) => warned.push(obj) },
    });
    expect(await r.resolve(TO, { ...where, id: 'a2', drill: true })).toEqual([]);
    expect(warned).toEqual([
      expect.objectContaining({ event: 'drill_alert_without_drill', alertId: 'a2', dropped: 5 }),
    ]);
  });

  it('a real alert is resolved as before, whatever drill runs', async () => {
    const r = new RecipientResolver(registry, () => 0, 0, {
      drillAudience: () => ({ drillId: 'd1', staffIds: new Set(), emergencyContacts: false }),
    });
    const out = await r.resolve(TO, { ...where, id: 'a3', drill: false });
    expect(out.map((x) => x.staffId ?? x.as)).toEqual(['gw', 'gl', 'dir', 'duty', 'emergency_contacts']);
  });
});
