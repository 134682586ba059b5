/**
 * The statistics API on a real node with the sample community: the overview per grid and building, and the alert
 * KPIs after an SOS over MQTT that a grid worker acknowledges; scope (a grid worker sees their grid only, another
 * grid is a 403) and the checks of `days`. Exact figures per query are proven in src/alerts/stats.int.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

let node: TestNode;
let admin: string;
let gw1: string;
let devices: { deviceId: string; model: string; secret: string; householdId?: string }[];

beforeAll(async () => {
  node = await startNode();
  admin = await node.login('admin', ADMIN_PASSWORD);
  const secrets = JSON.parse(readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8'));
  devices = secrets.deviceSecrets;
  const pw = (secrets.staffPasswords as { username: string; password: string }[]).find(
    (p) => p.username === 'gw.limin.01',
  )!.password;
  gw1 = await node.login('gw.limin.01', pw);
});
afterAll(async () => node?.stop());

describe('OpenAPI', () => {
  it('documents the console routes of issue 5 with tags and summaries', async () => {
    const doc = await node.api('GET', '/docs/json');
    expect(doc.status).toBe(200);
    const routes: Array<[string, string]> = [
      ['/api/v1/stats/overview', 'get'],
      ['/api/v1/stats/alerts', 'get'],
      ['/api/v1/devices/{id}', 'get'],
      ['/api/v1/devices/{id}/commands', 'get'],
      ['/api/v1/devices/{id}/commands', 'post'],
      ['/api/v1/devices/{id}/rejects', 'get'],
    ];
    for (const [p, method] of routes) {
      const op = doc.body.paths[p]?.[method];
      expect(op, `${method} ${p}`).toBeDefined();
      expect(op.tags.length, `${method} ${p}`).toBeGreaterThan(0);
      expect(op.summary, `${method} ${p}`).toEqual(expect.any(String));
    }
  });
});

describe('GET /api/v1/stats/overview', () => {
  it('gives every grid with its buildings to a community-wide role, one grid to its grid worker', async () => {
    const all = await node.api('GET', '/api/v1/stats/overview', undefined, admin);
    expect(all.status).toBe(200);
    expect(all.body.grids.map((g: { gridId: string }) => g.gridId)).toEqual(['g-limin-01', 'g-limin-02']);
    expect(all.body.totals.households).toBe(150);
    const g1 = all.body.grids[0];
    expect(g1.buildings.length).toBeGreaterThan(0);
    expect(g1.buildings[0]).toMatchObject({
      buildingId: expect.any(String),
      name: expect.any(String),
      households: expect.any(Number),
      devices: expect.any(Number),
      offlineDevices: expect.any(Number),
      openAlerts: { critical: 0, major: 0, minor: 0, info: 0, total: 0 },
    });
    const sum = all.body.grids.reduce((n: number, g: { households: number }) => n + g.households, 0);
    expect(sum).toBe(150);

    const mine = await node.api('GET', '/api/v1/stats/overview', undefined, gw1);
    expect(mine.body.grids.map((g: { gridId: string }) => g.gridId)).toEqual(['g-limin-01']);
    expect(mine.body.totals.households).toBe(g1.households);
    const other = await node.api('GET', '/api/v1/stats/overview?gridId=g-limin-02', undefined, gw1);
    expect(other.status).toBe(403);
    expect((await node.api('GET', '/api/v1/stats/overview')).status).toBe(401);
  });
});

describe('GET /api/v1/stats/alerts', () => {
  it('counts an SOS of today by type, its acknowledgement time and the day in the community time zone', async () => {
    const button = devices.find(
      (d) => d.model === 'native-emergency-button' && d.householdId?.startsWith('h-limin-01'),
    )!;
    const c = await mqtt.connectAsync(node.mqttUrl, {
      clientId: button.deviceId,
      username: button.deviceId,
      password: button.secret,
      reconnectPeriod: 0,
    });
    await c.publishAsync(`gridwatch/${button.deviceId}/event`, JSON.stringify({ type: 'sos', id: 'st-1' }), { qos: 1 });
    await c.endAsync();
    const [sos] = await waitFor('the SOS alert', async () => {
      const items = (await node.api('GET', '/api/v1/alerts?type=sos', undefined, admin)).body.items;
      return items.length === 1 ? items : undefined;
    });
    expect((await node.api('POST', `/api/v1/alerts/${sos.id}/ack`, {}, gw1)).status).toBe(200);

    const r = await node.api('GET', '/api/v1/stats/alerts?days=7', undefined, gw1);
    expect(r.status).toBe(200);
    expect(r.body.timezone).toBe(node.config.timezone);
    expect(r.body.perDay).toHaveLength(7);
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: node.config.timezone }).format(new Date());
    expect(r.body.perDay[6]).toEqual({ date: today, total: 1, byType: { sos: 1 } });
    expect(r.body.types).toEqual(['sos']);
    expect(r.body.acknowledgement.byGrid).toEqual([
      { gridId: 'g-limin-01', name: expect.any(String), n: 1, medianS: expect.any(Number), p90S: expect.any(Number) },
    ]);
    expect(r.body.acknowledgement.overall.n).toBe(1);
    expect(r.body.outcomes).toMatchObject({ closed: 0, falseAlarms: 0, falseAlarmRate: null });
    expect(Object.keys(r.body.outcomes.byOutcome)).toEqual(
      expect.arrayContaining(['false_alarm_device', 'auto_cleared', 'cancelled']),
    );

    // the default window is 30 days
    expect((await node.api('GET', '/api/v1/stats/alerts', undefined, admin)).body.perDay).toHaveLength(30);
    for (const days of ['0', '367', 'x']) {
      const bad = await node.api('GET', `/api/v1/stats/alerts?days=${days}`, undefined, admin);
      expect(bad.status, days).toBe(400);
    }
    expect((await node.api('GET', '/api/v1/stats/alerts?gridId=g-limin-02', undefined, gw1)).status).toBe(403);
  });
});
