/** GET /api/v1/notifications on a real node: scope, masking of numbers, filters, errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startNode, type TestNode } from '../support/system.ts';

let node: TestNode;
let admin: string;
let worker: string;
let workerId: string;
let alertId: string;
let foreignAlertId: string;

beforeAll(async () => {
  node = await startNode();
  admin = await node.login('admin', ADMIN_PASSWORD);
  const created = await node.api(
    'POST',
    '/api/v1/staff',
    {
      username: 'gw.notify',
      name: '孙网格',
      phone: '+8613800000021',
      roles: ['grid_worker'],
      coverage: { gridIds: ['g-limin-01'] },
      password: 'worker-password-3',
    },
    admin,
  );
  workerId = created.body.id;
  worker = await node.login('gw.notify', 'worker-password-3');
  const raise = (householdId: string, gridId: string) =>
    node.system.alerts.raise({
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      keyOn: 'household',
      subject: { householdId, gridId },
      drill: false,
      ts: Date.now(),
      evidence: [],
      summary: 'SOS',
    });
  alertId = (await raise('h-limin-01-1-0101', 'g-limin-01')).alert.id;
  foreignAlertId = (await raise('h-x', 'g-limin-02')).alert.id;
  const n = node.system.notifications;
  await n.createPending({
    alertId,
    step: 0,
    recipient: '+8613800000021',
    staffId: workerId,
    role: 'grid_worker',
    body: 'SOS 1号楼',
    transport: 'outbox',
    drill: false,
  });
  await n.createPending({
    alertId,
    step: 0,
    recipient: '+8613900000099',
    staffId: 'st-gl',
    role: 'grid_leader',
    body: 'SOS 1号楼',
    transport: 'outbox',
    drill: false,
  });
  await n.createPending({
    alertId: foreignAlertId,
    step: 0,
    recipient: '+8613900000098',
    staffId: 'st-other',
    role: 'grid_worker',
    body: 'SOS',
    transport: 'outbox',
    drill: false,
  });
});
afterAll(async () => node?.stop());

describe('GET /api/v1/notifications', () => {
  it('shows admins everything with full numbers', async () => {
    const r = await node.api('GET', '/api/v1/notifications', undefined, admin);
    expect(r.body.items).toHaveLength(3);
    expect(r.body.items.map((n: { recipient: string }) => n.recipient)).toContain('+8613900000099');
  });

  it('shows a grid worker the messages of an alert in their grid, other people’s numbers masked', async () => {
    const r = await node.api('GET', `/api/v1/notifications?alertId=${alertId}`, undefined, worker);
    const byRole = Object.fromEntries(
      r.body.items.map((n: { role: string; recipient: string }) => [n.role, n.recipient]),
    );
    expect(byRole.grid_worker).toBe('+8613800000021');
    expect(byRole.grid_leader).toBe('+86139****0099');
    // without an alert: only their own messages
    const own = await node.api('GET', '/api/v1/notifications', undefined, worker);
    expect(own.body.items.map((n: { staffId: string }) => n.staffId)).toEqual([workerId]);
  });

  it('refuses alerts outside the grid and bad filters', async () => {
    expect((await node.api('GET', `/api/v1/notifications?alertId=${foreignAlertId}`, undefined, worker)).status).toBe(
      403,
    );
    expect((await node.api('GET', '/api/v1/notifications?alertId=nope', undefined, worker)).status).toBe(404);
    expect((await node.api('GET', '/api/v1/notifications?status=lost', undefined, admin)).status).toBe(400);
    expect((await node.api('GET', '/api/v1/notifications?since=yesterday', undefined, admin)).status).toBe(400);
    expect((await node.api('GET', '/api/v1/notifications')).status).toBe(401);
  });
});
