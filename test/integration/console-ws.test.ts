/**
 * `WS /ws` on real nodes (real Redis, SQLite, HTTP): sign-in and origin checks on the upgrade, the hello / welcome
 * / snapshot protocol, live alert events within a second, scope (a grid worker never hears of another grid), the
 * HTTP acknowledgement showing up live, catch-up after a drop, and fan-out from one node to a console on another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ServerMessage } from '../../src/contracts/console.ts';
import { ADMIN_PASSWORD, startNode, type TestNode } from '../support/system.ts';

let node: TestNode;
let node2: TestNode;
let admin: string;
let worker: string;

interface Console {
  ws: WebSocket;
  got: ServerMessage[];
  closed: Promise<number>;
  waitFor: (pred: (m: ServerMessage) => boolean, ms?: number) => Promise<ServerMessage>;
}

async function openConsole(
  n: TestNode,
  opts: { token?: string; origin?: string; hello?: object | false } = {},
): Promise<Console> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.origin) headers.origin = opts.origin;
  const ws = new WebSocket(`${n.base.replace('http', 'ws')}/ws`, { headers });
  const got: ServerMessage[] = [];
  const waiters: { pred: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[] = [];
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as ServerMessage;
    got.push(m);
    for (const w of [...waiters])
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
  });
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  if (opts.hello !== false) ws.send(JSON.stringify(opts.hello ?? { type: 'hello', v: 1 }));
  const waitFor = (pred: (m: ServerMessage) => boolean, ms = 3000) =>
    new Promise<ServerMessage>((resolve, reject) => {
      const hit = got.find(pred);
      if (hit) return resolve(hit);
      const t = setTimeout(() => reject(new Error('no such message in time')), ms);
      waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      });
    });
  return { ws, got, closed, waitFor };
}

async function sos(n: TestNode, householdId: string) {
  const h = (await n.system.registry.getHousehold(householdId))!;
  return (
    await n.system.alerts.raise({
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      keyOn: 'household',
      subject: { householdId, gridId: h.gridId, buildingId: h.buildingId, unitId: h.unitId, colour: h.colour },
      drill: false,
      ts: Date.now(),
      evidence: [],
      summary: 'SOS',
    })
  ).alert;
}

const alertEvent = (id: string, change?: string) => (m: ServerMessage) =>
  m.type === 'alert' && m.alert.id === id && (!change || m.change === change);

beforeAll(async () => {
  node = await startNode();
  admin = await node.login('admin', ADMIN_PASSWORD);
  await node.api(
    'POST',
    '/api/v1/staff',
    {
      username: 'gw.ws',
      name: '周网格',
      phone: '+8613800000031',
      roles: ['grid_worker'],
      coverage: { gridIds: ['g-limin-01'] },
      password: 'worker-password-ws',
    },
    admin,
  );
  worker = await node.login('gw.ws', 'worker-password-ws');
  // a second node on the same Redis and database: a multi-node deployment
  // (its own time-series spill: a spill directory belongs to one node)
  node2 = await startNode(
    { REDIS_URL: node.system.redis.url, GRIDWATCH__timeseries__spill__dir: 'spill-node2' },
    node.dataDir,
  );
}, 60_000);
afterAll(async () => {
  await node2?.stop({ keepData: true });
  await node?.stop();
});

describe('WS /ws', () => {
  it('refuses an unsigned upgrade (401) and a foreign origin (403)', async () => {
    await expect(openConsole(node)).rejects.toThrow('HTTP 401');
    await expect(openConsole(node, { token: admin, origin: 'https://evil.example' })).rejects.toThrow('HTTP 403');
    // the console's own origin is fine
    const own = await openConsole(node, { token: admin, origin: node.base });
    await own.waitFor((m) => m.type === 'snapshot');
    own.ws.close();
  });

  it('welcome and snapshot, then live events within a second; an acknowledgement shows up live', async () => {
    const c = await openConsole(node, { token: admin });
    const welcome = await c.waitFor((m) => m.type === 'welcome');
    expect(welcome).toMatchObject({ v: 1, smsOutbox: true, timezone: 'Asia/Shanghai', user: { username: 'admin' } });
    await c.waitFor((m) => m.type === 'snapshot');
    const t0 = Date.now();
    const a = await sos(node, 'h-limin-01-1-0101');
    const ev = await c.waitFor(alertEvent(a.id, 'opened'), 1000);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(ev.type === 'alert' && ev.alert).toMatchObject({ type: 'sos', status: 'open', gridId: 'g-limin-01' });
    // SMS of the first step: who has been told, numbers masked
    const n = await c.waitFor((m) => m.type === 'notification' && m.notification.alertId === a.id);
    expect(n.type === 'notification' && n.notification.recipient).toMatch(/^\+\d+\*{4}\d{4}$/);
    const r = await node.api('POST', `/api/v1/alerts/${a.id}/ack`, {}, worker);
    expect(r.status).toBe(200);
    const acked = await c.waitFor(alertEvent(a.id, 'acknowledged'));
    expect(acked.type === 'alert' && acked.alert.acknowledgedBy).toBeDefined();
    c.ws.close();
  });

  it('a grid worker hears only of their grids; the API refuses the other grid too', async () => {
    const w = await openConsole(node, { token: worker });
    const snap = await w.waitFor((m) => m.type === 'snapshot');
    expect(snap.type === 'snapshot' && snap.alerts.every((a) => a.gridId === 'g-limin-01')).toBe(true);
    const other = await sos(node, 'h-limin-04-1-0101');
    const mine = await sos(node, 'h-limin-01-1-0201');
    expect(other.gridId).not.toBe('g-limin-01');
    await w.waitFor(alertEvent(mine.id));
    await new Promise((r) => setTimeout(r, 200));
    expect(w.got.some((m) => m.type === 'alert' && m.alert.id === other.id)).toBe(false);
    expect((await node.api('POST', `/api/v1/alerts/${other.id}/ack`, {}, worker)).status).toBe(403);
    w.ws.close();
  });

  it('after a drop, a reconnect with `since` catches up on exactly what was missed', async () => {
    const c = await openConsole(node, { token: admin });
    await c.waitFor((m) => m.type === 'snapshot');
    const a = await sos(node, 'h-limin-01-1-0301');
    await c.waitFor(alertEvent(a.id));
    const last = [...c.got].reverse().find((m) => m.type === 'alert' || m.type === 'notification');
    const since = last && 'seq' in last ? last.seq : undefined;
    c.ws.terminate(); // the network drops
    const missed = await sos(node, 'h-limin-01-1-0401');
    await node.api('POST', `/api/v1/alerts/${a.id}/notes`, { note: '电话联系中' }, admin);
    const again = await openConsole(node, { token: admin, hello: { type: 'hello', v: 1, since } });
    await again.waitFor((m) => m.type === 'caught-up');
    expect(again.got.some((m) => m.type === 'snapshot')).toBe(false);
    const alerts = again.got.filter((m) => m.type === 'alert');
    expect(alerts.some((m) => m.type === 'alert' && m.alert.id === missed.id && m.change === 'opened')).toBe(true);
    expect(alerts.some((m) => m.type === 'alert' && m.alert.id === a.id && m.change === 'note')).toBe(true);
    // nothing from before the drop comes again
    expect(alerts.some((m) => m.type === 'alert' && m.alert.id === a.id && m.change === 'opened')).toBe(false);
    const seqs = again.got.flatMap((m) => (m.type === 'alert' || m.type === 'notification' ? [m.seq] : []));
    expect(new Set(seqs).size).toBe(seqs.length);
    again.ws.close();
  });

  it('an alert raised on one node reaches a console connected to another', async () => {
    const admin2 = await node2.login('admin', ADMIN_PASSWORD);
    const c = await openConsole(node2, { token: admin2 });
    await c.waitFor((m) => m.type === 'snapshot');
    const a = await sos(node, 'h-limin-01-1-0501');
    await c.waitFor(alertEvent(a.id, 'opened'), 1000);
    c.ws.close();
  });

  it('closes on a bad message or an unsupported version', async () => {
    const bad = await openConsole(node, { token: admin, hello: { type: 'subscribe', all: true } });
    expect(await bad.closed).toBe(4400);
    const v9 = await openConsole(node, { token: admin, hello: { type: 'hello', v: 9 } });
    expect(await v9.closed).toBe(4400);
    expect(v9.got.find((m) => m.type === 'error')).toMatchObject({ code: 'version' });
  });
});
