/**
 * Home visits (五色五访) and away periods over HTTP on a real node; a red household overdue for its daily visit
 * becomes a minor alert that the next recorded visit clears.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

let node: TestNode;
let admin: string;
let worker: string;

beforeAll(async () => {
  node = await startNode();
  admin = await node.login('admin', ADMIN_PASSWORD);
  await node.api(
    'POST',
    '/api/v1/staff',
    {
      username: 'gw.visits',
      name: '周网格',
      phone: '+8613800000011',
      roles: ['grid_worker'],
      coverage: { gridIds: ['g-limin-01'] },
      password: 'worker-password-2',
    },
    admin,
  );
  worker = await node.login('gw.visits', 'worker-password-2');
});
afterAll(async () => node?.stop());

async function householdOf(gridId: string, colour: string): Promise<string> {
  const r = await node.api('GET', `/api/v1/households?gridId=${gridId}&colour=${colour}&limit=1`, undefined, admin);
  return r.body.items[0].id as string;
}

describe('visits', () => {
  it('lists never-visited households as overdue, red first in urgency; a visit takes one off the list', async () => {
    const overdue = await node.api('GET', '/api/v1/visits/overdue', undefined, worker);
    expect(overdue.status).toBe(200);
    // a grid worker sees their grid only
    expect(overdue.body.items.every((o: { gridId: string }) => o.gridId === 'g-limin-01')).toBe(true);
    const red = await householdOf('g-limin-01', 'red');
    expect(overdue.body.items.some((o: { householdId: string }) => o.householdId === red)).toBe(true);

    const v = await node.api('POST', `/api/v1/households/${red}/visits`, { outcome: 'ok', notes: '血压正常' }, worker);
    expect(v.status).toBe(201);
    expect(v.body).toMatchObject({ householdId: red, outcome: 'ok' });
    const after = await node.api('GET', '/api/v1/visits/overdue', undefined, worker);
    expect(after.body.items.some((o: { householdId: string }) => o.householdId === red)).toBe(false);
    const list = await node.api('GET', `/api/v1/households/${red}/visits`, undefined, worker);
    expect(list.body.items).toHaveLength(1);
  });

  it('raises visit_overdue for red households overdue by a day and clears it with the next visit', async () => {
    const rules = node.system.rules!;
    // the morning check, run now: never-visited red households are a day overdue at once
    await rules.visitRule.check(rules.engine.ctx);
    await rules.engine.idle();
    const open = await node.api('GET', '/api/v1/alerts?type=visit_overdue&status=open&limit=1000', undefined, admin);
    expect(open.body.items.length).toBeGreaterThan(0);
    const target = open.body.items.find((a: { gridId: string }) => a.gridId === 'g-limin-01');
    expect(target).toMatchObject({ category: 'visit', severity: 'minor', colour: 'red' });
    await node.api('POST', `/api/v1/households/${target.householdId}/visits`, { outcome: 'ok' }, worker);
    await waitFor('the overdue alert cleared', async () => {
      const a = await node.api('GET', `/api/v1/alerts/${target.id}`, undefined, admin);
      return a.body.status === 'resolved';
    });
  });

  it('rejects bad visits and stays in scope', async () => {
    const mine = await householdOf('g-limin-01', 'green');
    const foreign = await householdOf('g-limin-02', 'green');
    expect((await node.api('POST', `/api/v1/households/${mine}/visits`, { outcome: 'great' }, worker)).status).toBe(
      400,
    );
    expect(
      (
        await node.api(
          'POST',
          `/api/v1/households/${mine}/visits`,
          { outcome: 'ok', ts: '2099-01-01T00:00:00Z' },
          worker,
        )
      ).status,
    ).toBe(400);
    expect((await node.api('POST', `/api/v1/households/${foreign}/visits`, { outcome: 'ok' }, worker)).status).toBe(
      403,
    );
    expect((await node.api('POST', '/api/v1/households/h-none/visits', { outcome: 'ok' }, worker)).status).toBe(404);
    expect((await node.api('GET', `/api/v1/households/${mine}/visits`, undefined, worker)).body.items).toHaveLength(0);
  });
});

describe('away periods', () => {
  it('sets, lists and ends an away period; refuses bad ones', async () => {
    const h = await householdOf('g-limin-01', 'orange');
    const until = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const set = await node.api('POST', `/api/v1/households/${h}/away`, { until, reason: '住院' }, worker);
    expect(set.status).toBe(201);
    // the rules see it
    await waitFor(
      'rules know the away period',
      async () => (node.system.rules!.households.get(h)?.away?.length ?? 0) === 1,
    );
    const list = await node.api('GET', `/api/v1/households/${h}/away`, undefined, worker);
    expect(list.body.items).toHaveLength(1);
    const ended = await node.api('DELETE', `/api/v1/households/${h}/away/${set.body.id}`, undefined, worker);
    expect(ended.body.ended).toBeTruthy();
    await waitFor('rules know it ended', async () => (node.system.rules!.households.get(h)?.away?.length ?? 0) === 0);

    const past = new Date(Date.now() - 3_600_000).toISOString();
    expect((await node.api('POST', `/api/v1/households/${h}/away`, { until: past, reason: 'x' }, worker)).status).toBe(
      400,
    );
    const tooLong = new Date(Date.now() + 100 * 86_400_000).toISOString();
    expect(
      (await node.api('POST', `/api/v1/households/${h}/away`, { until: tooLong, reason: 'x' }, worker)).status,
    ).toBe(400);
    expect(
      (await node.api('POST', `/api/v1/households/${h}/away`, { until: 'soon', reason: 'x' }, worker)).status,
    ).toBe(400);
    expect((await node.api('DELETE', `/api/v1/households/${h}/away/nope`, undefined, worker)).status).toBe(404);
  });
});

describe('visits from alerts, and who may act', () => {
  it('an alert resolved on site counts as a visit; an evaluator may not set an away period', async () => {
    const h = await householdOf('g-limin-01', 'yellow');
    const { alert } = await node.system.alerts.raise({
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      keyOn: 'household',
      subject: { householdId: h, gridId: 'g-limin-01' },
      drill: false,
      ts: Date.now(),
      evidence: [{ ts: Date.now(), kind: 'event', eventType: 'sos' }],
      summary: 'SOS pressed',
    });
    const resolved = await node.api(
      'POST',
      `/api/v1/alerts/${alert.id}/resolve`,
      { outcome: 'handled_on_site' },
      worker,
    );
    expect(resolved.status).toBe(200);
    const visits = await node.api('GET', `/api/v1/households/${h}/visits`, undefined, worker);
    expect(visits.body.items).toEqual([expect.objectContaining({ alertId: alert.id, outcome: 'ok' })]);

    await node.api(
      'POST',
      '/api/v1/staff',
      {
        username: 'eval.visits',
        name: '钱评估',
        phone: '+8613800000012',
        roles: ['evaluator'],
        password: 'evaluator-pw-2',
      },
      admin,
    );
    const evaluator = await node.login('eval.visits', 'evaluator-pw-2');
    const until = new Date(Date.now() + 86_400_000).toISOString();
    expect((await node.api('POST', `/api/v1/households/${h}/away`, { until, reason: 'x' }, evaluator)).status).toBe(
      403,
    );
    expect((await node.api('GET', `/api/v1/households/${h}/away`, undefined, evaluator)).status).toBe(200);
  });
});
