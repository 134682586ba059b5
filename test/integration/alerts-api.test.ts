/**
 * The alert API against a real node (Redis, SQLite, broker, HTTP on loopback) seeded with the sample community.
 * Alerts are raised through the node's own AlertService (what the rules do), then listed, acknowledged, resolved
 * and annotated over HTTP, by an admin (all grids) and a grid worker (one grid).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertInput } from '../../src/alerts/types.ts';
import { ADMIN_PASSWORD, startNode, type TestNode } from '../support/system.ts';

const MINE = { householdId: 'h-limin-01-1-0101', buildingId: 'b-limin-01', gridId: 'g-limin-01' };
const THEIRS = { householdId: 'h-limin-04-1-0101', buildingId: 'b-limin-04', gridId: 'g-limin-02' };

let node: TestNode;
let admin: string;
let worker: string;
let evaluator: string;

function input(subject: AlertInput['subject'], type: string, ts = Date.now()): AlertInput {
  return {
    type,
    category: 'resident_safety',
    severity: 'critical',
    subject: { ...subject, communityId: 'c-limin', colour: 'red' },
    keyOn: 'household',
    drill: false,
    ts,
    evidence: [{ ts, kind: 'event', deviceId: 'btn-1', eventType: type }],
    summary: `${type} raised`,
  };
}

function expectError(r: { status: number; body: { error: string; message: string } }, status: number, code?: string) {
  expect(r.status).toBe(status);
  expect(typeof r.body.message).toBe('string');
  expect(r.body.message.length).toBeGreaterThan(5);
  if (code) expect(r.body.error).toBe(code);
}

beforeAll(async () => {
  node = await startNode();
  admin = await node.login('admin', ADMIN_PASSWORD);
  const staff = [
    { username: 'gw.alerts', roles: ['grid_worker'], coverage: { gridIds: ['g-limin-01'] }, phone: '+8613800000011' },
    { username: 'ev.alerts', roles: ['evaluator'], phone: '+8613800000012' },
  ];
  for (const s of staff) {
    const r = await node.api('POST', '/api/v1/staff', { ...s, name: '测试员', password: 'alerts-password-1' }, admin);
    expect(r.status).toBe(201);
  }
  worker = await node.login('gw.alerts', 'alerts-password-1');
  evaluator = await node.login('ev.alerts', 'alerts-password-1');
});
afterAll(async () => node?.stop());

describe('alert API', () => {
  it('lists alerts newest first in the contract shape, with filters and pages', async () => {
    const t0 = Date.now() - 60_000;
    const alerts = node.system.alerts;
    const sos = await alerts.raise(input(MINE, 'sos', t0));
    await alerts.raise(input(MINE, 'sos', t0 + 1000)); // a repeat, not a second alert
    const fall = await alerts.raise(input(THEIRS, 'fall', t0 + 2000));
    const water = await alerts.raise(input(MINE, 'water_low', t0 + 3000));

    const all = await node.api('GET', `/api/v1/alerts?since=${t0}`, undefined, admin);
    expect(all.status).toBe(200);
    expect(all.body.items.map((a: { id: string }) => a.id)).toEqual([water.alert.id, fall.alert.id, sos.alert.id]);
    const first = all.body.items[2];
    expect(first).toMatchObject({
      id: sos.alert.id,
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      status: 'open',
      householdId: MINE.householdId,
      buildingId: MINE.buildingId,
      gridId: MINE.gridId,
      colour: 'red',
      count: 2,
      firstSeen: new Date(t0).toISOString(),
      lastSeen: new Date(t0 + 1000).toISOString(),
      drill: false,
    });
    // every time in the answer is ISO-8601
    expect(first.timeline[0]).toEqual({
      ts: new Date(t0).toISOString(),
      action: 'opened',
      by: 'rule:sos',
      via: 'rule',
      note: 'sos raised',
    });
    expect(first.evidence[0].ts).toBe(new Date(t0).toISOString());

    const byType = await node.api('GET', '/api/v1/alerts?type=water_low', undefined, admin);
    expect(byType.body.items.map((a: { id: string }) => a.id)).toEqual([water.alert.id]);
    const byHousehold = await node.api(
      'GET',
      `/api/v1/alerts?householdId=${THEIRS.householdId}&status=open`,
      undefined,
      admin,
    );
    expect(byHousehold.body.items.map((a: { id: string }) => a.id)).toEqual([fall.alert.id]);
    const iso = await node.api('GET', `/api/v1/alerts?since=${new Date(t0 + 2000).toISOString()}`, undefined, admin);
    expect(iso.body.items).toHaveLength(2);

    const page1 = await node.api('GET', '/api/v1/alerts?limit=2', undefined, admin);
    expect(page1.body.items).toHaveLength(2);
    expect(page1.body.nextCursor).toEqual(expect.any(String));
    const page2 = await node.api('GET', `/api/v1/alerts?limit=2&cursor=${page1.body.nextCursor}`, undefined, admin);
    expect(page2.body.items).toHaveLength(1);
    expect(page2.body.nextCursor).toBeUndefined();

    const one = await node.api('GET', `/api/v1/alerts/${fall.alert.id}`, undefined, admin);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: fall.alert.id, type: 'fall', gridId: THEIRS.gridId });
  });

  it('acknowledges, resolves with an outcome and takes notes, on the timeline with who and how', async () => {
    const { alert } = await node.system.alerts.raise(input(MINE, 'inactivity'));
    const acked = await node.api('POST', `/api/v1/alerts/${alert.id}/ack`, { note: 'calling now' }, worker);
    expect(acked.status).toBe(200);
    expect(acked.body).toMatchObject({ status: 'acknowledged', acknowledgedBy: expect.any(String) });
    expect(acked.body.timeline.at(-1)).toMatchObject({ action: 'acknowledged', via: 'api', note: 'calling now' });
    // a second ack (no body at all) changes nothing
    const again = await node.api('POST', `/api/v1/alerts/${alert.id}/ack`, undefined, admin);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(acked.body);

    const resolved = await node.api(
      'POST',
      `/api/v1/alerts/${alert.id}/resolve`,
      { outcome: 'false_alarm_away', note: 'at her daughter' },
      worker,
    );
    expect(resolved.status).toBe(200);
    expect(resolved.body).toMatchObject({ status: 'resolved', outcome: 'false_alarm_away' });
    expect(resolved.body.resolvedAt).toEqual(expect.any(String));
    const noted = await node.api('POST', `/api/v1/alerts/${alert.id}/notes`, { note: 'visit tomorrow' }, worker);
    expect(noted.status).toBe(201);
    expect(noted.body.timeline.map((e: { action: string }) => e.action)).toEqual([
      'opened',
      'acknowledged',
      'resolved',
      'note',
    ]);
    expect(noted.body.timeline[2]).toMatchObject({
      by: acked.body.acknowledgedBy,
      note: 'false_alarm_away: at her daughter',
    });

    // closed is final
    expectError(await node.api('POST', `/api/v1/alerts/${alert.id}/ack`, {}, worker), 409, 'conflict');
    expectError(
      await node.api('POST', `/api/v1/alerts/${alert.id}/resolve`, { outcome: 'other' }, worker),
      409,
      'conflict',
    );
    // each change is also a point in the node's time-series store, for charting response times
    await node.system.timeseries.flush();
    const points = await node.system.timeseries.query({
      deviceId: `alert:inactivity|household:${MINE.householdId}`,
      from: Date.parse(alert.firstSeen),
      to: Date.now() + 1000,
    });
    expect(points.map((p) => p.field).sort()).toEqual([
      'alert_acknowledged',
      'alert_note',
      'alert_opened',
      'alert_resolved',
    ]);
    expect(points.find((p) => p.field === 'alert_resolved')!.value).toBeGreaterThanOrEqual(0);
    // the key is free again: the next raise is a new alert
    expect((await node.system.alerts.raise(input(MINE, 'inactivity'))).created).toBe(true);
  });

  it('answers bad requests with a 4xx in the error shape', async () => {
    const { alert } = await node.system.alerts.raise(input(MINE, 'gas_left_on'));
    expectError(await node.api('GET', '/api/v1/alerts'), 401, 'unauthorized');
    expectError(await node.api('GET', '/api/v1/alerts/no-such-alert', undefined, admin), 404, 'not_found');
    expectError(await node.api('POST', '/api/v1/alerts/no-such-alert/ack', {}, admin), 404, 'not_found');
    expectError(await node.api('POST', '/api/v1/alerts/no-such-alert/notes', { note: 'x' }, admin), 404);
    expectError(await node.api('GET', '/api/v1/alerts?status=closed', undefined, admin), 400);
    expectError(await node.api('GET', '/api/v1/alerts?since=yesterday', undefined, admin), 400, 'bad_request');
    expectError(await node.api('GET', '/api/v1/alerts?limit=0', undefined, admin), 400);
    expectError(await node.api('GET', '/api/v1/alerts?limit=1001', undefined, admin), 400);
    expectError(await node.api('GET', '/api/v1/alerts?cursor=bm9wZQ', undefined, admin), 400, 'invalid');
    expectError(await node.api('GET', '/api/v1/alerts?colour=red', undefined, admin), 400);
    expectError(await node.api('POST', `/api/v1/alerts/${alert.id}/resolve`, {}, admin), 400);
    expectError(
      await node.api('POST', `/api/v1/alerts/${alert.id}/resolve`, { outcome: 'fixed_it' }, admin),
      400,
      'bad_request',
    );
    expectError(await node.api('POST', `/api/v1/alerts/${alert.id}/ack`, { note: 'x', extra: 1 }, admin), 400);
    expectError(await node.api('POST', `/api/v1/alerts/${alert.id}/notes`, { note: '' }, admin), 400);
    expectError(await node.api('POST', `/api/v1/alerts/${alert.id}/notes`, { note: '   ' }, admin), 400);
    expectError(await node.api('POST', `/api/v1/alerts/${alert.id}/notes`, { note: 'x'.repeat(2001) }, admin), 400);
    // an evaluator watches; acting on an alert is for the people handling it
    expect((await node.api('GET', `/api/v1/alerts/${alert.id}`, undefined, evaluator)).status).toBe(200);
    expectError(await node.api('POST', `/api/v1/alerts/${alert.id}/ack`, {}, evaluator), 403, 'forbidden');
    // nothing changed by any of it
    expect(await node.system.alerts.get(alert.id)).toEqual(alert);
  });

  it("limits a grid worker to their grids' alerts", async () => {
    const mine = await node.system.alerts.raise(input(MINE, 'night_exit'));
    const theirs = await node.system.alerts.raise(input(THEIRS, 'night_exit'));
    const list = await node.api('GET', '/api/v1/alerts?limit=1000', undefined, worker);
    expect(list.status).toBe(200);
    const grids = new Set(list.body.items.map((a: { gridId: string }) => a.gridId));
    expect([...grids]).toEqual(['g-limin-01']);
    expect(list.body.items.some((a: { id: string }) => a.id === mine.alert.id)).toBe(true);
    expect((await node.api('GET', `/api/v1/alerts/${mine.alert.id}`, undefined, worker)).status).toBe(200);

    expectError(await node.api('GET', `/api/v1/alerts/${theirs.alert.id}`, undefined, worker), 403, 'forbidden');
    expectError(await node.api('POST', `/api/v1/alerts/${theirs.alert.id}/ack`, {}, worker), 403, 'forbidden');
    expectError(
      await node.api('POST', `/api/v1/alerts/${theirs.alert.id}/resolve`, { outcome: 'other' }, worker),
      403,
      'forbidden',
    );
    expectError(
      await node.api('POST', `/api/v1/alerts/${theirs.alert.id}/notes`, { note: 'x' }, worker),
      403,
      'forbidden',
    );
    expectError(await node.api('GET', '/api/v1/alerts?gridId=g-limin-02', undefined, worker), 403, 'forbidden');
    expectError(
      await node.api('GET', `/api/v1/alerts?householdId=${THEIRS.householdId}`, undefined, worker),
      403,
      'forbidden',
    );
    // the other grid's alert is untouched
    expect((await node.system.alerts.get(theirs.alert.id))!.status).toBe('open');
  });

  it('lists the rules with their settings, overrides and time zone', async () => {
    const r = await node.api('GET', '/api/v1/rules', undefined, worker);
    expect(r.status).toBe(200);
    expect(r.body.timezone).toBe('Asia/Shanghai');
    expect(r.body.rules).toEqual(node.config.rules);
    expect(r.body.rules.sos).toEqual({ enabled: true });
    expect(r.body.rules.byColour.red.inactivity).toEqual(expect.objectContaining({ coldStartHours: 2 }));
    expectError(await node.api('GET', '/api/v1/rules'), 401, 'unauthorized');
  });

  it('documents the alert routes in the OpenAPI document', async () => {
    const doc = await node.api('GET', '/docs/json');
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/alerts',
        '/api/v1/alerts/{id}',
        '/api/v1/alerts/{id}/ack',
        '/api/v1/alerts/{id}/resolve',
        '/api/v1/alerts/{id}/notes',
        '/api/v1/rules',
      ]),
    );
  });
});
