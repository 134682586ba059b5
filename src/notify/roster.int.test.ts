/**
 * The duty roster against both relational stores (SQLite and a real PostgreSQL), with the sample community seeded
 * into a real registry: validation, windows, role- and grid-limited absences, paging and the in-memory cache.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getModel } from '../../devices/index.ts';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { VirtualClock } from '../clock/clock.ts';
import { RegistryError } from '../registry/port.ts';
import { SqlRegistry } from '../registry/registry.ts';
import { seedIfEmpty } from '../registry/seed.ts';
import type { Role } from '../registry/types.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { DutyRoster, ROSTER_CACHE_MS } from './roster.ts';

const SAMPLE = path.resolve(import.meta.dirname, '../../config/sample-community.yaml');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const GW1 = 'st-gw.limin.01';
const GW2 = 'st-gw.limin.02';
const GL = 'st-gl.limin.1';
const PV = 'st-pv.limin';
const BL = 'st-bl.limin';

async function expectError(p: Promise<unknown>, code: RegistryError['code']): Promise<RegistryError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RegistryError);
  expect((e as RegistryError).code).toBe(code);
  return e as RegistryError;
}

describe.each(['sqlite', 'postgres'] as const)('DutyRoster on %s', (kind) => {
  let dir: string;
  let pg: TestPostgres | undefined;
  let database: Database;
  let registry: SqlRegistry;
  let roster: DutyRoster;
  const clock = new VirtualClock(Date.UTC(2026, 2, 2, 8));

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-roster-'));
    pg = kind === 'postgres' ? await startTestPostgres() : undefined;
    database = await createDatabase({ url: pg?.url, sqliteFile: 'r.sqlite' }, dir);
    expect(await migrateToLatest(database.db)).toContain('006_duty_roster');
    registry = new SqlRegistry(database, {
      knownModel: (m) => getModel(m) !== undefined,
      clock,
      sessionSweepMs: 0,
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    await registry.start();
    await seedIfEmpty(registry, SAMPLE, { env: {} });
  });
  afterAll(async () => {
    await registry?.stop();
    await database?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await sql`delete from duty_absence`.execute(database.db);
    roster = new DutyRoster(database, clock, registry);
  });

  const all = async () => (await roster.list({}, { limit: 1000 })).items;

  it('refuses bad input with invalid / not_found and writes nothing', async () => {
    const now = clock.now();
    const ok = { staffId: GW1, substituteId: GW2, from: now, to: now + DAY };
    await expectError(roster.add({ ...ok, to: now }), 'invalid'); // to = from
    await expectError(roster.add({ ...ok, to: now - HOUR }), 'invalid'); // to before from
    await expectError(roster.add({ ...ok, to: now + 91 * DAY }), 'invalid'); // longer than 90 days
    await expectError(roster.add({ ...ok, from: now - 2 * DAY, to: now - DAY }), 'invalid'); // already over
    await expectError(roster.add({ ...ok, substituteId: GW1 }), 'invalid');
    await expectError(roster.add({ ...ok, staffId: 'st-nobody' }), 'not_found');
    await expectError(roster.add({ ...ok, substituteId: 'st-nobody' }), 'not_found');
    await expectError(roster.add({ ...ok, gridId: 'g-nowhere' }), 'not_found');
    await expectError(roster.add({ ...ok, role: 'janitor' as Role }), 'invalid');
    await expectError(roster.add({ ...ok, to: 'next tuesday' }), 'invalid');
    await expectError(roster.add({ ...ok, note: 'x'.repeat(501) }), 'invalid');
    await registry.updateStaff(PV, { disabled: true });
    try {
      await expectError(roster.add({ ...ok, substituteId: PV }), 'invalid');
      await expectError(roster.add({ ...ok, staffId: PV }), 'invalid');
    } finally {
      await registry.updateStaff(PV, { disabled: false });
    }
    // the bootstrap admin has no phone: useless as a substitute
    await registry.ensureAdmin('admin-password-for-tests');
    await expectError(roster.add({ ...ok, substituteId: 'st-admin' }), 'invalid');

    expect(await all()).toEqual([]);
    expect(await roster.substituteFor(GW1, { role: 'grid_worker', gridId: 'g-limin-01' })).toBeUndefined();
  });

  it('stores an absence with ISO times and answers only inside its window (from inclusive, to exclusive)', async () => {
    const now = clock.now();
    const a = await roster.add(
      {
        staffId: GW1,
        substituteId: GW2,
        from: new Date(now + HOUR).toISOString(),
        to: now + 3 * HOUR,
        note: '年假',
      },
      GL,
    );
    expect(a).toMatchObject({
      staffId: GW1,
      substituteId: GW2,
      from: new Date(now + HOUR).toISOString(),
      to: new Date(now + 3 * HOUR).toISOString(),
      note: '年假',
      createdBy: GL,
      createdAt: new Date(now).toISOString(),
    });
    expect(a.role).toBeUndefined();
    expect(a.gridId).toBeUndefined();
    expect(await roster.get(a.id)).toEqual(a);

    const q = { role: 'grid_worker' as const, gridId: 'g-limin-01' };
    expect(await roster.substituteFor(GW1, { ...q, at: now })).toBeUndefined();
    expect(await roster.substituteFor(GW1, { ...q, at: now + HOUR })).toBe(GW2);
    expect(await roster.substituteFor(GW1, { ...q, at: now + 3 * HOUR - 1 })).toBe(GW2);
    expect(await roster.substituteFor(GW1, { ...q, at: now + 3 * HOUR })).toBeUndefined();
    // an every-role, every-grid absence also covers a question without role or grid (a named recipient)
    expect(await roster.substituteFor(GW1, { at: now + 2 * HOUR })).toBe(GW2);
    // the substitute is not absent themselves
    expect(await roster.substituteFor(GW2, { ...q, at: now + 2 * HOUR })).toBeUndefined();
    // default moment: the clock's now
    expect(await roster.substituteFor(GW1, q)).toBeUndefined();

    expect((await roster.list({ activeAt: now }, { limit: 10 })).items).toEqual([]);
    expect((await roster.list({ activeAt: now + 2 * HOUR }, { limit: 10 })).items.map((x) => x.id)).toEqual([a.id]);
    expect((await roster.list({ from: now, to: now + HOUR }, { limit: 10 })).items).toEqual([]);
    expect((await roster.list({ from: now, to: now + HOUR + 1 }, { limit: 10 })).items).toHaveLength(1);
    expect((await roster.list({ from: now + 3 * HOUR }, { limit: 10 })).items).toEqual([]);
  });

  it('limits an absence to one role or one grid when told', async () => {
    const now = clock.now();
    // the grid leader is off as grid leader only; the grid worker only in grid 02
    await roster.add({ staffId: GL, substituteId: BL, to: now + DAY, role: 'grid_leader' });
    await roster.add({ staffId: GW1, substituteId: GW2, to: now + DAY, gridId: 'g-limin-02' });

    expect(await roster.substituteFor(GL, { role: 'grid_leader', gridId: 'g-limin-01' })).toBe(BL);
    expect(await roster.substituteFor(GL, { role: 'grid_worker', gridId: 'g-limin-01' })).toBeUndefined();
    expect(await roster.substituteFor(GL, { gridId: 'g-limin-01' })).toBeUndefined(); // named, no role
    expect(await roster.substituteFor(GW1, { role: 'grid_worker', gridId: 'g-limin-02' })).toBe(GW2);
    expect(await roster.substituteFor(GW1, { role: 'grid_worker', gridId: 'g-limin-01' })).toBeUndefined();
    expect(await roster.substituteFor(GW1, { role: 'grid_worker' })).toBeUndefined(); // alert without a grid
  });

  it('lets the latest created absence win when several cover the same moment', async () => {
    const now = clock.now();
    await roster.add({ staffId: GW1, substituteId: GW2, to: now + 2 * DAY });
    clock.advance(1000);
    const later = await roster.add({ staffId: GW1, substituteId: PV, to: now + DAY });
    expect(await roster.substituteFor(GW1, { role: 'grid_worker' })).toBe(PV);
    await roster.remove(later.id);
    expect(await roster.substituteFor(GW1, { role: 'grid_worker' })).toBe(GW2);
  });

  it('sees its own add and remove at once, and another node’s change within 30 s', async () => {
    const q = { role: 'grid_worker' as const, gridId: 'g-limin-01' };
    expect(await roster.substituteFor(GW1, q)).toBeUndefined(); // loads the (empty) cache
    const a = await roster.add({ staffId: GW1, substituteId: GW2, to: clock.now() + DAY });
    expect(await roster.substituteFor(GW1, q)).toBe(GW2);
    const removed = await roster.remove(a.id);
    expect(removed.id).toBe(a.id);
    expect(await roster.substituteFor(GW1, q)).toBeUndefined();
    await expectError(roster.remove(a.id), 'not_found');

    // another node writes to the same store: this node's cache is trusted for up to 30 s
    const other = new DutyRoster(database, clock, registry);
    const b = await other.add({ staffId: GW1, substituteId: PV, to: clock.now() + DAY });
    expect(await roster.substituteFor(GW1, q)).toBeUndefined();
    clock.advance(ROSTER_CACHE_MS);
    expect(await roster.substituteFor(GW1, q)).toBe(PV);
    await other.remove(b.id);
    expect(await roster.substituteFor(GW1, q)).toBe(PV);
    roster.invalidate();
    expect(await roster.substituteFor(GW1, q)).toBeUndefined();
  });

  it('answers for a moment before the cache was loaded from the store (absences that have ended since)', async () => {
    const start = clock.now();
    await roster.add({ staffId: GW1, substituteId: GW2, to: start + HOUR });
    clock.advance(2 * HOUR);
    expect(await roster.substituteFor(GW1, { role: 'grid_worker' })).toBeUndefined();
    expect(await roster.substituteFor(GW1, { role: 'grid_worker', at: start + 1 })).toBe(GW2);
  });

  it('lists newest first, keyset-paged, by staff member or by who is involved', async () => {
    const now = clock.now();
    const ids: string[] = [];
    for (const [staffId, substituteId] of [
      [GW1, GW2],
      [GW2, GW1],
      [GL, BL],
      [PV, GW1],
      [BL, GL],
    ] as const) {
      ids.push((await roster.add({ staffId, substituteId, to: now + DAY })).id);
      clock.advance(10);
    }
    const p1 = await roster.list({}, { limit: 2 });
    const p2 = await roster.list({}, { limit: 2, cursor: p1.nextCursor });
    const p3 = await roster.list({}, { limit: 2, cursor: p2.nextCursor });
    expect([...p1.items, ...p2.items, ...p3.items].map((x) => x.id)).toEqual([...ids].reverse());
    expect(p3.nextCursor).toBeUndefined();
    expect((await roster.list({ staffId: GW1 }, { limit: 10 })).items.map((x) => x.id)).toEqual([ids[0]]);
    expect((await roster.list({ substituteId: GW1 }, { limit: 10 })).items.map((x) => x.id)).toEqual([ids[3], ids[1]]);
    expect((await roster.list({ involves: GW1 }, { limit: 10 })).items.map((x) => x.id)).toEqual([
      ids[3],
      ids[1],
      ids[0],
    ]);
    await expectError(roster.list({}, { limit: 2, cursor: 'garbage' }), 'invalid');
  });
});
