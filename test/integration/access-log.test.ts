/**
 * Residents' personal details on a real node: full names and emergency contacts only for the household's grid
 * workers and grid leader, the community director and admins; masked for everyone else; every unmasked showing
 * written to the access log, which only admins read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startNode, type TestNode } from '../support/system.ts';

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON answers
type Json = any;

let node: TestNode;
let admin: string;
const tokens: Record<string, string> = {};
/** a household of grid 01 with residents and emergency contacts, one with residents only, and one of grid 02 */
const WITH_CONTACTS = 'h-limin-01-1-0101';
const RESIDENTS_ONLY = 'h-limin-01-1-0102';
let grid02Household: string;

const STAFF: Array<[string, string[], Json]> = [
  ['gw.mine', ['grid_worker'], { gridIds: ['g-limin-01'] }],
  ['gw.theirs', ['grid_worker'], { gridIds: ['g-limin-02'] }],
  ['gl.mine', ['grid_leader'], { gridIds: ['g-limin-01'] }],
  ['bl.mine', ['building_leader'], { gridIds: ['g-limin-01'] }],
  ['cm.all', ['committee_member'], { communityIds: ['c-limin'] }],
  ['dir.test', ['community_director'], { communityIds: ['c-limin'] }],
  ['duty.all', ['street_duty_officer'], undefined],
  // sees every grid as a committee member, but is the grid worker of grid 01 only
  ['gw.cm', ['grid_worker', 'committee_member'], { gridIds: ['g-limin-01'] }],
];

async function accessLog(query = ''): Promise<Json[]> {
  const r = await node.api('GET', `/api/v1/access-log?limit=1000${query}`, undefined, admin);
  expect(r.status).toBe(200);
  return r.body.items;
}

beforeAll(async () => {
  node = await startNode();
  admin = await node.login('admin', ADMIN_PASSWORD);
  for (const [username, roles, coverage] of STAFF) {
    const r = await node.api(
      'POST',
      '/api/v1/staff',
      { username, name: '某员工', phone: '+8613800008888', roles, coverage, password: `${username}-password` },
      admin,
    );
    expect(r.status, username).toBe(201);
    tokens[username] = await node.login(username, `${username}-password`);
  }
  const other = await node.api('GET', '/api/v1/households?gridId=g-limin-02&limit=1', undefined, admin);
  grid02Household = other.body.items[0].id;
});
afterAll(async () => node?.stop());

function expectShown(h: Json) {
  expect(h.personalDetails).toBe('shown');
  expect(h.residents.length).toBeGreaterThan(0);
  for (const r of h.residents) {
    expect(r.fullName).toEqual(expect.any(String));
    expect(r.fullName).not.toContain('*');
    expect(r.displayName).toContain('*');
  }
}

function expectMasked(h: Json) {
  expect(h.personalDetails).toBe('masked');
  expect(h).not.toHaveProperty('emergencyContacts');
  for (const r of h.residents) {
    expect(r).not.toHaveProperty('fullName');
    expect(r.displayName).toContain('*');
  }
}

describe('who sees residents’ personal details', () => {
  it('the household’s grid worker: full names and contacts, and one access-log row', async () => {
    const before = Date.now();
    const r = await node.api('GET', `/api/v1/households/${WITH_CONTACTS}`, undefined, tokens['gw.mine']);
    expect(r.status).toBe(200);
    expect(r.body.gridId).toBe('g-limin-01');
    expectShown(r.body);
    expect(r.body.residents.map((x: Json) => x.fullName)).toEqual(['李成勇', '李兰琴']);
    expect(r.body.emergencyContacts).toEqual([{ name: '韦涛', phone: '+8613758481618', relation: '侄子' }]);
    const rows = await accessLog('&staffId=st-gw.mine');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      staffId: 'st-gw.mine',
      householdId: WITH_CONTACTS,
      what: ['residents', 'emergency_contacts'],
      ip: '127.0.0.1',
    });
    expect(Date.parse(rows[0].at)).toBeGreaterThanOrEqual(before - 1000);
    expect(rows[0].id).toEqual(expect.any(String));

    // a household without contacts: what was shown is what is logged
    const plain = await node.api('GET', `/api/v1/households/${RESIDENTS_ONLY}`, undefined, tokens['gw.mine']);
    expectShown(plain.body);
    expect(plain.body.emergencyContacts).toEqual([]);
    expect((await accessLog(`&householdId=${RESIDENTS_ONLY}`)).map((x) => x.what)).toEqual([['residents']]);
  });

  it('the grid leader, the community director and admins also see them, each showing logged', async () => {
    for (const who of ['gl.mine', 'dir.test']) {
      const r = await node.api('GET', `/api/v1/households/${WITH_CONTACTS}`, undefined, tokens[who]);
      expect(r.status).toBe(200);
      expectShown(r.body);
      expect(await accessLog(`&staffId=st-${who}`)).toHaveLength(1);
    }
    const a = await node.api('GET', `/api/v1/households/${grid02Household}`, undefined, admin);
    expectShown(a.body);
    expect((await accessLog('&staffId=st-admin'))[0]).toMatchObject({ householdId: grid02Household });
  });

  it('everyone else sees masked names and no contacts, and nothing is logged', async () => {
    const before = (await accessLog()).length;
    for (const who of ['bl.mine', 'cm.all', 'duty.all']) {
      const r = await node.api('GET', `/api/v1/households/${WITH_CONTACTS}`, undefined, tokens[who]);
      expect(r.status, who).toBe(200);
      expectMasked(r.body);
    }
    // all grids in scope as a committee member, details only where they are the grid worker
    const theirs = await node.api('GET', `/api/v1/households/${grid02Household}`, undefined, tokens['gw.cm']);
    expectMasked(theirs.body);
    // another grid's worker does not even see the household
    const outside = await node.api('GET', `/api/v1/households/${WITH_CONTACTS}`, undefined, tokens['gw.theirs']);
    expect(outside.status).toBe(403);
    // lists are always masked and never logged
    const list = await node.api('GET', '/api/v1/households?limit=1000', undefined, tokens['gw.mine']);
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain('李成勇');
    expect(JSON.stringify(list.body)).not.toContain('fullName');
    expect(await accessLog()).toHaveLength(before);

    const mine = await node.api('GET', `/api/v1/households/${WITH_CONTACTS}`, undefined, tokens['gw.cm']);
    expectShown(mine.body);
    expect(await accessLog()).toHaveLength(before + 1);
  });
});

describe('GET /api/v1/access-log', () => {
  it('is for admins only', async () => {
    for (const who of ['gw.mine', 'dir.test', 'cm.all']) {
      const r = await node.api('GET', '/api/v1/access-log', undefined, tokens[who]);
      expect(r.status, who).toBe(403);
      expect(r.body.error).toBe('forbidden');
    }
    expect((await node.api('GET', '/api/v1/access-log')).status).toBe(401);
  });

  it('lists newest first with filters, and pages by cursor without gaps or repeats', async () => {
    for (let i = 0; i < 5; i++) {
      await node.api('GET', `/api/v1/households/${WITH_CONTACTS}`, undefined, tokens['gl.mine']);
    }
    const all = await accessLog();
    const times = all.map((x) => Date.parse(x.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const r = await node.api(
        'GET',
        `/api/v1/access-log?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        undefined,
        admin,
      );
      expect(r.status).toBe(200);
      expect(r.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...r.body.items.map((x: Json) => x.id));
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all.map((x) => x.id));

    const byLeader = await accessLog('&staffId=st-gl.mine');
    expect(byLeader).toHaveLength(6);
    expect(byLeader.every((x) => x.staffId === 'st-gl.mine')).toBe(true);
    const byHousehold = await accessLog(`&householdId=${RESIDENTS_ONLY}`);
    expect(byHousehold.every((x) => x.householdId === RESIDENTS_ONLY)).toBe(true);
    const future = await accessLog(`&since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(future).toEqual([]);
    expect(await accessLog(`&since=${Date.parse(all.at(-1).at)}`)).toHaveLength(all.length);
  });

  it('answers bad parameters with 400', async () => {
    for (const q of ['since=yesterday', 'cursor=not!a!cursor', 'cursor=Zm9v', 'limit=0', 'limit=5000', 'who=me']) {
      const r = await node.api('GET', `/api/v1/access-log?${q}`, undefined, admin);
      expect(r.status, q).toBe(400);
      expect(typeof r.body.message).toBe('string');
    }
  });
});
