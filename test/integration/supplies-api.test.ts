/**
 * Emergency supplies through the real node (Redis, SQLite, HTTP, the alert engine and escalation, the console's
 * live channel) with the demo sample (keepers and opening stock): roles, the mutual-aid flow end to end (issue to a
 * drill → shortfall alert → sources → transfer requested, approved at the neighbour, received → the alert clears),
 * bad input, minimums, the ledger, CSV import and export, the live `stock` message, the keeper's digest, and every
 * movement surviving a restart on the same data dir.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ServerMessage } from '../../src/contracts/console.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON answers of many shapes; tests assert on them
type Json = any;

const ENV = { GRIDWATCH__supplies__sample: 'true' };

let node: TestNode;
const tokens: Record<string, string> = {};

function password(username: string): string {
  const secrets = JSON.parse(readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8')) as {
    staffPasswords: { username: string; password: string }[];
  };
  return secrets.staffPasswords.find((p) => p.username === username)!.password;
}

async function signIn(): Promise<void> {
  tokens.admin = await node.login('admin', ADMIN_PASSWORD);
  for (const u of ['depot.limin', 'depot.xingfu', 'gw.limin.01', 'dir.limin', 'depot.heping']) {
    tokens[u] = await node.login(u, password(u));
  }
}

const as = (who: string) => ({
  get: (url: string) => node.api('GET', url, undefined, tokens[who]),
  post: (url: string, body: unknown = {}) => node.api('POST', url, body, tokens[who]),
  put: (url: string, body: unknown) => node.api('PUT', url, body, tokens[who]),
});

async function raw(method: string, url: string, who: string, body?: string, type = 'text/csv') {
  const res = await fetch(node.base + url, {
    method,
    headers: { authorization: `Bearer ${tokens[who]}`, ...(body !== undefined ? { 'content-type': type } : {}) },
    body,
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  let parsed: Json = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // CSV, HTML
  }
  return { status: res.status, body: parsed, text, bytes, headers: res.headers };
}

beforeAll(async () => {
  node = await startNode(ENV);
  await signIn();
});

afterAll(async () => {
  await node?.stop();
});

describe('supplies over HTTP', () => {
  it('the sample: four depots of three levels, keepers created, opening stock with its named failures', async () => {
    const r = await as('admin').get('/api/v1/supplies/depots');
    expect(r.status).toBe(200);
    expect(r.body.items.map((d: Json) => [d.id, d.level])).toEqual([
      ['dp-limin', 'community'],
      ['dp-xingfu', 'community'],
      ['dp-heping', 'street'],
      ['dp-xincheng', 'district'],
    ]);
    const limin = r.body.items[0];
    expect(limin).toMatchObject({ population: 330, populationSource: 'registry', keeper: { username: 'depot.limin' } });
    expect(limin.summary.expired).toBeGreaterThan(0);
    expect(limin.summary.belowMinimum).toBeGreaterThan(0);
    expect(limin.summary.openAlerts).toBeGreaterThan(0);

    const d = await as('depot.limin').get('/api/v1/supplies/depots/dp-limin');
    expect(d.status).toBe(200);
    expect(d.body.canManage).toBe(true);
    const kits = d.body.levels.find((l: Json) => l.itemId === 'first_aid_kit');
    expect(kits).toMatchObject({ total: 6, usable: 0, expired: 6, minimum: 4, belowMinimum: true });
    const types = d.body.alerts.map((a: Json) => a.type);
    expect(types).toEqual(
      expect.arrayContaining([
        'supplies_expired',
        'supplies_expiring',
        'supplies_inspection_overdue',
        'supplies_below_minimum',
      ]),
    );
    const lots = await as('depot.limin').get('/api/v1/supplies/depots/dp-limin/lots?itemId=sandbag');
    expect(lots.body.items[0]).toMatchObject({ itemId: 'sandbag', quantity: 40, expiry: 'minor', daysToExpiry: 25 });
    const cat = await as('gw.limin.01').get('/api/v1/supplies/catalogue');
    expect(cat.body.items.map((i: Json) => i.id)).toContain('generator');
    expect(cat.body.quotas.community.find((q: Json) => q.itemId === 'sandbag')).toEqual({
      itemId: 'sandbag',
      per1000: 100,
    });
  });

  it('who sees what: a grid worker sees the depots over their grids, read only; keepers see every depot', async () => {
    const gw = await as('gw.limin.01').get('/api/v1/supplies/depots');
    expect(gw.body.items.map((d: Json) => d.id)).toEqual(['dp-limin', 'dp-heping', 'dp-xincheng']);
    expect(gw.body.items.every((d: Json) => d.canManage === false)).toBe(true);
    expect((await as('gw.limin.01').get('/api/v1/supplies/depots/dp-xingfu')).status).toBe(403);
    expect((await as('gw.limin.01').get('/api/v1/supplies/depots/dp-nowhere')).status).toBe(404);
    const keeper = await as('depot.xingfu').get('/api/v1/supplies/depots');
    expect(keeper.body.items.map((d: Json) => [d.id, d.canManage])).toEqual([
      ['dp-limin', false],
      ['dp-xingfu', true],
      ['dp-heping', false],
      ['dp-xincheng', false],
    ]);
    const shortGw = await as('gw.limin.01').get('/api/v1/supplies/shortfalls');
    expect(shortGw.body.items.map((c: Json) => c.communityId)).toEqual(['c-limin']);
    const shortAll = await as('admin').get('/api/v1/supplies/shortfalls');
    expect(shortAll.body.items.map((c: Json) => [c.communityId, c.population])).toEqual([
      ['c-limin', 330],
      ['c-xingfu', 4800],
    ]);
    expect((await node.api('GET', '/api/v1/supplies/depots')).status).toBe(401);

    const receive = { depotId: 'dp-limin', itemId: 'tent', quantity: 1 };
    expect((await as('gw.limin.01').post('/api/v1/supplies/movements/receive', receive)).status).toBe(403);
    expect((await as('depot.xingfu').post('/api/v1/supplies/movements/receive', receive)).status).toBe(403);
    expect((await as('dir.limin').post('/api/v1/supplies/movements/receive', receive)).status).toBe(201);
    expect((await as('depot.limin').post('/api/v1/supplies/movements/receive', receive)).status).toBe(201);
    expect((await as('admin').post('/api/v1/supplies/movements/receive', receive)).status).toBe(201);
  });

  it('bad input: clear 400s naming the field, and nothing recorded', async () => {
    const before = (await as('admin').get('/api/v1/supplies/movements?depotId=dp-limin&limit=1000')).body.items.length;
    const neg = await as('depot.limin').post('/api/v1/supplies/movements/receive', {
      depotId: 'dp-limin',
      itemId: 'sandbag',
      quantity: -5,
    });
    expect(neg.status).toBe(400);
    expect(neg.body.message).toContain('quantity: must be a whole number from 1');
    const dates = await as('depot.limin').post('/api/v1/supplies/movements/receive', {
      depotId: 'dp-limin',
      itemId: 'unobtainium',
      quantity: 3,
      receivedOn: '2025-06-01',
      expiresOn: '2025-05-01',
    });
    expect(dates.status).toBe(400);
    expect(dates.body.details.map((x: Json) => x.field).sort()).toEqual(['expiresOn', 'itemId']);
    const tooMany = await as('depot.limin').post('/api/v1/supplies/movements/issue', {
      depotId: 'dp-limin',
      itemId: 'generator',
      quantity: 5,
      to: { kind: 'incident', ref: 'power-cut' },
    });
    expect(tooMany.status).toBe(409);
    expect(tooMany.body.message).toContain('only 1 usable generator');
    const extra = await as('depot.limin').post('/api/v1/supplies/movements/issue', {
      depotId: 'dp-limin',
      itemId: 'generator',
      quantity: 1,
      to: { kind: 'incident', ref: 'x', name: '张三' },
    });
    expect(extra.status).toBe(400);
    const after = (await as('admin').get('/api/v1/supplies/movements?depotId=dp-limin&limit=1000')).body.items.length;
    expect(after).toBe(before);
  });

  it('issue to a drill → shortfall alert → sources → transfer from the neighbour, approved there, received → the alert clears', async () => {
    const keeper = as('depot.limin');
    const neighbour = as('depot.xingfu');
    // 利民 holds 40 sandbags (minimum 33): 10 go to a drill
    const issued = await keeper.post('/api/v1/supplies/movements/issue', {
      depotId: 'dp-limin',
      itemId: 'sandbag',
      quantity: 10,
      to: { kind: 'drill', ref: 'drill-flood-1' },
      reason: 'flood drill: sandbag wall',
    });
    expect(issued.status).toBe(201);
    expect(issued.body.levels[0]).toMatchObject({ itemId: 'sandbag', usable: 30, minimum: 33, belowMinimum: true });
    const alerts = (await keeper.get('/api/v1/supplies/depots/dp-limin')).body.alerts;
    const shortAlert = alerts.find((a: Json) => a.type === 'supplies_below_minimum' && a.itemId === 'sandbag');
    expect(shortAlert).toMatchObject({ severity: 'major', status: 'open' });

    const sources = await keeper.get('/api/v1/supplies/depots/dp-limin/sources?itemId=sandbag');
    expect(sources.body.level).toMatchObject({ usable: 30, shortfall: 3 });
    expect(sources.body.sources[0]).toMatchObject({ depotId: 'dp-xingfu', relation: 'same_street', usable: 600 });
    expect(sources.body.sources.map((s: Json) => s.depotId)).toEqual(['dp-xingfu', 'dp-heping', 'dp-xincheng']);

    const req = await keeper.post('/api/v1/supplies/transfers', {
      fromDepotId: 'dp-xingfu',
      toDepotId: 'dp-limin',
      itemId: 'sandbag',
      quantity: 20,
      reason: 'below minimum after the drill',
    });
    expect(req.status).toBe(201);
    expect(req.body).toMatchObject({ status: 'requested', actions: ['cancel'] });
    // only the source's side approves; only the destination receives
    expect((await keeper.post(`/api/v1/supplies/transfers/${req.body.id}/approve`)).status).toBe(403);
    expect((await as('depot.heping').post(`/api/v1/supplies/transfers/${req.body.id}/approve`)).status).toBe(403);
    const seen = await neighbour.get(`/api/v1/supplies/transfers?depotId=dp-xingfu&status=requested`);
    expect(seen.body.items[0]).toMatchObject({ id: req.body.id, actions: ['approve', 'decline'] });
    const approved = await neighbour.post(`/api/v1/supplies/transfers/${req.body.id}/approve`, {
      note: 'take them',
      dispatch: true,
    });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'in_transit', decidedBy: 'st-depot.xingfu', actions: [] });
    expect((await neighbour.post(`/api/v1/supplies/transfers/${req.body.id}/receive`)).status).toBe(403);
    expect(
      (await keeper.get('/api/v1/supplies/depots/dp-limin')).body.levels.find((l: Json) => l.itemId === 'sandbag'),
    ).toMatchObject({ incoming: 20, belowMinimum: true });
    const got = await keeper.post(`/api/v1/supplies/transfers/${req.body.id}/receive`, { note: '20 bags, dry' });
    expect(got.status).toBe(200);
    expect(got.body.status).toBe('received');

    const after = (await keeper.get('/api/v1/supplies/depots/dp-limin')).body;
    expect(after.levels.find((l: Json) => l.itemId === 'sandbag')).toMatchObject({ usable: 50, belowMinimum: false });
    expect(after.alerts.find((a: Json) => a.id === shortAlert.id)).toBeUndefined();
    const closed = await as('admin').get(`/api/v1/alerts/${shortAlert.id}`);
    expect(closed.body).toMatchObject({ status: 'resolved', category: 'supplies', communityId: 'c-limin' });
    // the ledger shows both ends, filtered by transfer
    const moves = await as('admin').get(`/api/v1/supplies/movements?transferId=${req.body.id}`);
    expect(moves.body.items.map((m: Json) => [m.kind, m.depotId, m.quantity])).toEqual([
      ['transfer_in', 'dp-limin', 20],
      ['transfer_out', 'dp-xingfu', -20],
    ]);
  });

  it('supplies alerts go to the depot keeper in the digest, never as an SMS', async () => {
    const d = (await as('admin').get('/api/v1/supplies/depots/dp-limin')).body;
    const alertId = d.alerts.find((a: Json) => a.severity === 'major').id;
    const n = await waitFor('a digest notification', async () => {
      const r = await as('admin').get(`/api/v1/notifications?alertId=${alertId}`);
      return r.body.items.length > 0 ? r.body.items : undefined;
    });
    expect(n.every((x: Json) => x.transport === 'digest' && x.status === 'bundled')).toBe(true);
    expect(n.map((x: Json) => x.staffId)).toEqual(['st-depot.limin']);
  });

  it('minimums: the director overrides, the keeper may not; the per-1,000 quota follows the population', async () => {
    const m = await as('depot.limin').get('/api/v1/supplies/depots/dp-limin/minimums');
    expect(m.body.population).toBe(330);
    expect(m.body.items.find((x: Json) => x.itemId === 'bottled_water')).toMatchObject({
      minimum: 5,
      source: 'quota',
      quota: { per1000: 15 },
    });
    const body = { items: [{ itemId: 'bottled_water', mode: 'absolute', value: 2 }] };
    expect((await as('depot.limin').put('/api/v1/supplies/depots/dp-limin/minimums', body)).status).toBe(403);
    const set = await as('dir.limin').put('/api/v1/supplies/depots/dp-limin/minimums', body);
    expect(set.status).toBe(200);
    expect(set.body.items.find((x: Json) => x.itemId === 'bottled_water')).toMatchObject({
      minimum: 2,
      source: 'override',
      setBy: 'st-dir.limin',
    });
    // 3 cases held ≥ 2: the bottled-water shortfall alert cleared
    const alerts = (await as('admin').get('/api/v1/supplies/depots/dp-limin')).body.alerts;
    expect(alerts.some((a: Json) => a.type === 'supplies_below_minimum' && a.itemId === 'bottled_water')).toBe(false);
    const bad = await as('dir.limin').put('/api/v1/supplies/depots/dp-limin/minimums', {
      items: [{ itemId: 'bottled_water', mode: 'per1000', value: -1 }],
    });
    expect(bad.status).toBe(400);
  });

  it('the ledger: filters and keyset pages', async () => {
    const all = await as('admin').get('/api/v1/supplies/movements?depotId=dp-limin&limit=1000');
    const p1 = await as('admin').get('/api/v1/supplies/movements?depotId=dp-limin&limit=5');
    expect(p1.body.items).toHaveLength(5);
    const p2 = await as('admin').get(
      `/api/v1/supplies/movements?depotId=dp-limin&limit=1000&cursor=${p1.body.nextCursor}`,
    );
    expect([...p1.body.items, ...p2.body.items].map((m: Json) => m.id)).toEqual(all.body.items.map((m: Json) => m.id));
    const receives = await as('admin').get('/api/v1/supplies/movements?depotId=dp-limin&kind=receive&itemId=sandbag');
    expect(receives.body.items.every((m: Json) => m.kind === 'receive' && m.itemId === 'sandbag')).toBe(true);
    const since = await as('admin').get(`/api/v1/supplies/movements?since=${Date.now() + 60_000}`);
    expect(since.body.items).toEqual([]);
    expect((await as('admin').get('/api/v1/supplies/movements?since=yesterday')).status).toBe(400);
    // a grid worker reads the ledger of the depots over their grids only
    const gw = await as('gw.limin.01').get('/api/v1/supplies/movements?limit=1000');
    expect(new Set(gw.body.items.map((m: Json) => m.depotId))).not.toContain('dp-xingfu');
  });

  it('CSV import: all or nothing, with line-numbered errors; dry run; then the stock is there', async () => {
    const bad = [
      'depot_id,item_id,quantity,received_on,expires_on,condition',
      'dp-limin,flashlight,5,2026-01-10,,good',
      'dp-limin,warp_drive,2,2026-01-10,,good',
      'dp-limin,battery_aa,10,2026-01-10,2025-12-01,good',
      'dp-xingfu,blanket,1,,,good',
      'dp-limin,blanket,-4,,,broken',
    ].join('\n');
    const before = (await as('admin').get('/api/v1/supplies/movements?limit=1000')).body.items.length;
    const r = await raw('POST', '/api/v1/supplies/import', 'depot.limin', bad, 'text/csv');
    expect(r.status).toBe(400);
    expect(r.body.message).toContain('nothing was imported');
    expect(r.body.details).toEqual([
      { line: 3, column: 'item_id', message: 'unknown item "warp_drive"' },
      { line: 4, column: 'expires_on', message: 'must not be before received_on (2026-01-10)' },
      { line: 5, column: 'depot_id', message: 'you may not stock depot dp-xingfu' },
      { line: 6, column: 'quantity', message: 'must be a whole number from 1 to 1000000' },
      { line: 6, column: 'condition', message: 'must be one of good, damaged, faulty' },
    ]);
    expect((await as('admin').get('/api/v1/supplies/movements?limit=1000')).body.items.length).toBe(before);
    const header = await raw('POST', '/api/v1/supplies/import', 'depot.limin', 'depot,item\nx,y\n', 'text/csv');
    expect(header.status).toBe(400);
    expect(header.body.details[0]).toMatchObject({ line: 1 });

    const good =
      'depot_id,item_id,quantity,received_on,last_inspected_on,note\ndp-limin,flashlight,5,2026-01-10,2026-01-10,shelf B\ndp-limin,battery_aa,24,,,\n';
    const dry = await raw('POST', '/api/v1/supplies/import?dryRun=true', 'depot.limin', good, 'text/csv');
    expect(dry.body).toEqual({ dryRun: true, lines: 2, depotIds: ['dp-limin'] });
    expect((await as('admin').get('/api/v1/supplies/movements?limit=1000')).body.items.length).toBe(before);
    const ok = await as('depot.limin').post('/api/v1/supplies/import', { csv: good });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ lots: 2, depotIds: ['dp-limin'] });
    const imported = await as('admin').get(`/api/v1/supplies/movements?opId=${ok.body.opId}`);
    expect(imported.body.items.map((m: Json) => [m.itemId, m.quantity, m.ref.kind])).toEqual(
      expect.arrayContaining([
        ['flashlight', 5, 'import'],
        ['battery_aa', 24, 'import'],
      ]),
    );
  });

  it('exports: the stock report as CSV (items, lots) and as a printable page; the expiry calendar', async () => {
    const csv = await raw('GET', '/api/v1/supplies/report.csv?depotId=dp-limin', 'depot.limin');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toContain('text/csv');
    // UTF-8 with a BOM, so that spreadsheets read the Chinese names
    expect(csv.bytes.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(csv.text.startsWith('\uFEFFdepot_id,depot,level,population,item_id')).toBe(true);
    expect(csv.text).toContain('dp-limin,利民社区应急物资储备点,community,330,sandbag,防汛沙袋');
    const lots = await raw('GET', '/api/v1/supplies/report.csv?detail=lots&lang=en', 'admin');
    expect(lots.text).toContain('First-aid kit');
    const html = await raw('GET', '/api/v1/supplies/report.html?communityId=c-limin', 'gw.limin.01');
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(html.text).toContain('应急物资库存报告');
    expect(html.text).toContain('利民社区应急物资储备点');
    expect(html.text).not.toContain('<script');
    const cal = await as('depot.limin').get('/api/v1/supplies/expiry-calendar?depotId=dp-limin');
    expect(cal.body.months).toHaveLength(12);
    expect(cal.body.expired.totals).toEqual(expect.arrayContaining([{ itemId: 'first_aid_kit', quantity: 6 }]));
  });

  it('live: a movement reaches a keeper’s console and the grid’s, as a `stock` message', async () => {
    const open = async (token: string) => {
      const ws = new WebSocket(`${node.base.replace('http', 'ws')}/ws`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const got: ServerMessage[] = [];
      ws.on('message', (d) => got.push(JSON.parse(String(d)) as ServerMessage));
      await new Promise((r, j) => {
        ws.once('open', r);
        ws.once('error', j);
      });
      ws.send(JSON.stringify({ type: 'hello', v: 1 }));
      await waitFor('welcome', async () => got.some((m) => m.type === 'snapshot'), 5000);
      return { ws, got };
    };
    const keeper = await open(tokens['depot.xingfu']!);
    const worker = await open(tokens['gw.limin.01']!);
    try {
      const r = await as('depot.limin').post('/api/v1/supplies/movements/receive', {
        depotId: 'dp-limin',
        itemId: 'life_jacket',
        quantity: 2,
      });
      const find = (got: ServerMessage[]) =>
        got.find((m) => m.type === 'stock' && m.opId === r.body.opId) as Extract<ServerMessage, { type: 'stock' }>;
      const msg = await waitFor('stock message', async () => find(keeper.got), 5000);
      expect(msg).toMatchObject({
        type: 'stock',
        change: 'receive',
        depotIds: ['dp-limin'],
        itemId: 'life_jacket',
        by: 'st-depot.limin',
      });
      expect(msg.levels[0]).toMatchObject({ depotId: 'dp-limin', itemId: 'life_jacket', total: 12 });
      await waitFor('stock message on the grid worker', async () => find(worker.got), 5000);
    } finally {
      keeper.ws.close();
      worker.ws.close();
    }
  });

  it('every movement survives a restart on the same data dir; the sample is not given twice', async () => {
    const before = (await as('admin').get('/api/v1/supplies/movements?limit=1000')).body.items;
    const depots = (await as('admin').get('/api/v1/supplies/depots')).body.items;
    await node.stop({ keepData: true });
    node = await startNode(ENV, node.dataDir);
    await signIn();
    const after = (await as('admin').get('/api/v1/supplies/movements?limit=1000')).body.items;
    expect(after).toEqual(before);
    const again = (await as('admin').get('/api/v1/supplies/depots')).body.items;
    expect(again.map((d: Json) => [d.id, d.summary.items])).toEqual(depots.map((d: Json) => [d.id, d.summary.items]));
    const staff = (await as('admin').get('/api/v1/staff?limit=1000')).body.items;
    expect(staff.filter((s: Json) => s.username === 'depot.xingfu')).toHaveLength(1);
  });
});
