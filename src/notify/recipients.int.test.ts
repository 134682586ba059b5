import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNode, type TestNode } from '../../test/support/system.ts';
import { RecipientResolver } from './recipients.ts';

let node: TestNode;
let resolver: RecipientResolver;
beforeAll(async () => {
  node = await startNode();
  resolver = new RecipientResolver(node.system.registry);
});
afterAll(async () => node?.stop());

const alert = { householdId: 'h-limin-01-1-0301', gridId: 'g-limin-01', communityId: 'c-limin' };

describe('RecipientResolver on the sample community', () => {
  it('finds the grid worker and grid leader of the household’s grid, the director and the street duty officer', async () => {
    const names = async (to: string[]) => (await resolver.resolve(to, alert)).map((r) => `${r.as}:${r.staffId}`);
    expect(await names(['grid_worker'])).toEqual(['grid_worker:st-gw.limin.01']);
    expect(await names(['grid_leader'])).toEqual(['grid_leader:st-gl.limin.1']);
    expect(await names(['community_director'])).toEqual(['community_director:st-dir.limin']);
    expect(await names(['street_duty_officer'])).toEqual(['street_duty_officer:st-duty.heping']);
    // another grid's worker is not told
    const other = await resolver.resolve(['grid_worker'], { ...alert, gridId: 'g-limin-02' });
    expect(other.map((r) => r.staffId)).toEqual(['st-gw.limin.02']);
  });

  it('reaches emergency contacts and named staff, each phone once, names masked', async () => {
    const r = await resolver.resolve(['emergency_contacts', 'grid_worker', 'staff:st-gw.limin.01'], alert);
    const contacts = r.filter((x) => x.as === 'emergency_contacts');
    expect(contacts.length).toBeGreaterThan(0);
    expect(contacts.every((c) => /^\+86/.test(c.phone) && c.displayName.includes('*'))).toBe(true);
    // the named grid worker is the same person as the grid worker: one message
    expect(r.filter((x) => x.staffId === 'st-gw.limin.01')).toHaveLength(1);
  });

  it('never picks a disabled account', async () => {
    const admin = await node.login('admin', 'admin-password-for-tests');
    await node.api('PATCH', '/api/v1/staff/st-gl.limin.1', { disabled: true }, admin);
    resolver.invalidate();
    expect(await resolver.resolve(['grid_leader'], alert)).toEqual([]);
  });
});
