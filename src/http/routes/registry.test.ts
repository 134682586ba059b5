import { describe, expect, it } from 'vitest';
import type { Coverage } from '../../registry/port.ts';
import type { Role } from '../../registry/types.ts';
import { seesPersonalDetails } from './registry.ts';

const none: Coverage = { gridIds: [], communityIds: [], streetIds: [] };
const staff = (roles: Role[], coverage = none) => ({ roles, coverage });
const h = { gridId: 'g-1' };

describe('seesPersonalDetails', () => {
  it('grid workers and leaders: only for the grids their own coverage reaches', () => {
    expect(seesPersonalDetails(staff(['grid_worker']), h, ['g-1'])).toBe(true);
    expect(seesPersonalDetails(staff(['grid_leader']), h, ['g-1', 'g-2'])).toBe(true);
    expect(seesPersonalDetails(staff(['grid_worker']), h, ['g-2'])).toBe(false);
    expect(seesPersonalDetails(staff(['grid_worker', 'committee_member']), h, ['g-2'])).toBe(false);
  });

  it('community director: their communities, or everything without coverage; admins everywhere', () => {
    expect(seesPersonalDetails(staff(['community_director']), h, [])).toBe(true);
    const elsewhere = { ...none, communityIds: ['c-2'] };
    expect(seesPersonalDetails(staff(['community_director'], elsewhere), h, ['g-7'])).toBe(false);
    expect(seesPersonalDetails(staff(['community_director'], elsewhere), h, ['g-1'])).toBe(true);
    expect(seesPersonalDetails(staff(['admin']), h, [])).toBe(true);
  });

  it('the street duty officer (the last escalation step): households of the grids their street covers', () => {
    expect(seesPersonalDetails(staff(['street_duty_officer']), h, ['g-1'])).toBe(true);
    expect(seesPersonalDetails(staff(['street_duty_officer']), h, ['g-2'])).toBe(false);
  });

  it('nobody else, whatever their coverage', () => {
    for (const role of [
      'building_leader',
      'unit_leader',
      'committee_member',
      'party_volunteer',
      'depot_keeper',
      'drill_controller',
      'evaluator',
    ] as Role[]) {
      expect(seesPersonalDetails(staff([role]), h, ['g-1']), role).toBe(false);
    }
  });
});
