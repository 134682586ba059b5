/**
 * The duty roster on a real node (issue 4): an off-duty grid worker is replaced by their substitute in the SMS of a
 * critical alert, never silently skipped; the notification says who stood in for whom. Without a usable substitute
 * the off-duty worker is still told.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/alerts/types.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

let node: TestNode;
let admin: string;
let workerId: string;
let substituteId: string;
const WORKER_PHONE = '+8613800000001'; // gw.limin.01 in the sample community, grid g-limin-01
const SUBSTITUTE_PHONE = '+8613800000077';

beforeAll(async () => {
  node = await startNode();
  admin = await node.login('admin', ADMIN_PASSWORD);
  const staff = (await node.api('GET', '/api/v1/staff?limit=500', undefined, admin)).body.items as {
    id: string;
    username: string;
  }[];
  workerId = staff.find((s) => s.username === 'gw.limin.01')!.id;
  const created = await node.api(
    'POST',
    '/api/v1/staff',
    {
      username: 'gw.standin',
      name: '钱代班',
      phone: SUBSTITUTE_PHONE,
      roles: ['grid_worker'],
      coverage: { gridIds: ['g-limin-01'] },
      password: 'standin-password-1',
    },
    admin,
  );
  expect(created.status).toBe(201);
  substituteId = created.body.id;
});
afterAll(async () => node?.stop());

async function sos(householdId: string): Promise<Alert> {
  const h = (await node.system.registry.getHousehold(householdId))!;
  const { alert } = await node.system.alerts.raise({
    type: 'sos',
    category: 'resident_safety',
    severity: 'critical',
    keyOn: 'household',
    subject: {
      householdId: h.id,
      unitId: h.unitId,
      buildingId: h.buildingId,
      gridId: h.gridId,
      communityId: h.communityId,
      colour: h.colour,
    },
    drill: false,
    ts: Date.now(),
    evidence: [],
    summary: 'SOS',
  });
  return alert;
}

async function firstStep(alertId: string) {
  return waitFor('the first step', async () => {
    const items = (await node.system.notifications.list({ alertId }, { limit: 50 })).items.filter(
      (n) => n.step === 0 && n.status === 'queued',
    );
    return items.length >= 2 ? items : undefined;
  });
}

describe('duty roster', () => {
  it('an off-duty grid worker is replaced by the substitute', async () => {
    const now = Date.now();
    const r = await node.api(
      'POST',
      '/api/v1/roster',
      {
        staffId: workerId,
        substituteId,
        from: new Date(now - 60_000).toISOString(),
        to: new Date(now + 86_400_000).toISOString(),
        note: '年假',
      },
      admin,
    );
    expect(r.status).toBe(201);
    const households = await node.system.registry.listHouseholds(
      { gridId: 'g-limin-01' },
      { all: true, gridIds: [] },
      { limit: 2 },
    );
    const alert = await sos(households.items[0]!.id);
    const sent = await firstStep(alert.id);
    const phones = sent.map((n) => n.recipient);
    expect(phones).toContain(SUBSTITUTE_PHONE);
    expect(phones).not.toContain(WORKER_PHONE);
    const stoodIn = sent.find((n) => n.recipient === SUBSTITUTE_PHONE)!;
    expect(stoodIn.role).toBe(`grid_worker (substitute for ${workerId})`);
    expect(stoodIn.staffId).toBe(substituteId);

    // the substitute's account disabled: the worker is told although off duty, never nobody
    await node.api('DELETE', `/api/v1/roster/${r.body.id}`, undefined, admin);
    const r2 = await node.api(
      'POST',
      '/api/v1/roster',
      { staffId: workerId, substituteId, to: new Date(now + 86_400_000).toISOString() },
      admin,
    );
    expect(r2.status).toBe(201);
    const patch = await node.api('PATCH', `/api/v1/staff/${substituteId}`, { disabled: true }, admin);
    expect(patch.status).toBe(200);
    const alert2 = await sos(households.items[1]!.id);
    const sent2 = await firstStep(alert2.id);
    const worker = sent2.find((n) => n.recipient === WORKER_PHONE);
    expect(worker?.role).toBe('grid_worker (off duty, no substitute)');
    expect(sent2.map((n) => n.recipient)).not.toContain(SUBSTITUTE_PHONE);
  });

  it('refuses a roster entry with the worker as their own substitute, and changes nothing', async () => {
    const before = (await node.api('GET', '/api/v1/roster', undefined, admin)).body.items.length;
    const r = await node.api(
      'POST',
      '/api/v1/roster',
      { staffId: workerId, substituteId: workerId, to: new Date(Date.now() + 3_600_000).toISOString() },
      admin,
    );
    expect(r.status).toBe(400);
    expect((await node.api('GET', '/api/v1/roster', undefined, admin)).body.items.length).toBe(before);
  });
});
