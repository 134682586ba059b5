/**
 * Recipients and the duty roster, on the sample community in a real registry (SQLite) and a real DutyRoster: an
 * off-duty staff member is replaced by their substitute, never silently skipped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getModel } from '../../devices/index.ts';
import { VirtualClock } from '../clock/clock.ts';
import { SqlRegistry } from '../registry/registry.ts';
import { seedIfEmpty } from '../registry/seed.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { type DutyLookup, type Recipient, RecipientResolver } from './recipients.ts';
import { DutyRoster, type NewDutyAbsence } from './roster.ts';

const SAMPLE = path.resolve(import.meta.dirname, '../../config/sample-community.yaml');
const DAY = 86_400_000;
const GW1 = 'st-gw.limin.01';
const GW2 = 'st-gw.limin.02';
const GL = 'st-gl.limin.1';
const PV = 'st-pv.limin';
const UL = 'st-ul.limin';
const BL = 'st-bl.limin';
const CM = 'st-cm.limin';

const alert = { householdId: 'h-limin-01-1-0301', gridId: 'g-limin-01', communityId: 'c-limin' };

let dir: string;
let database: Database;
let registry: SqlRegistry;
let roster: DutyRoster;
let resolver: RecipientResolver;
const clock = new VirtualClock(Date.UTC(2026, 2, 2, 8));

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'gw-recipients-roster-'));
  database = await createDatabase({ sqliteFile: 'r.sqlite' }, dir);
  await migrateToLatest(database.db);
  registry = new SqlRegistry(database, {
    knownModel: (m) => getModel(m) !== undefined,
    clock,
    sessionSweepMs: 0,
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  await registry.start();
  await seedIfEmpty(registry, SAMPLE, { env: {} });
  await registry.ensureAdmin('admin-password-for-tests');
});
afterAll(async () => {
  await registry?.stop();
  await database?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await sql`delete from duty_absence`.execute(database.db);
  roster = new DutyRoster(database, clock, registry);
  resolver = new RecipientResolver(registry, () => clock.now(), 60_000, { roster });
});
afterEach(async () => {
  for (const id of [PV, UL, GW2]) await registry.updateStaff(id, { disabled: false });
});

const off = (staffId: string, substituteId: string, extra: Partial<NewDutyAbsence> = {}) =>
  roster.add({ staffId, substituteId, to: clock.now() + DAY, ...extra });
const brief = (rs: Recipient[]) =>
  rs.map((r) => ({ as: r.as, staffId: r.staffId, substituteFor: r.substituteFor, offDuty: r.offDuty }));

describe('RecipientResolver with a duty roster', () => {
  it('reaches everyone as before while nobody is off duty', async () => {
    const plain = new RecipientResolver(registry, () => clock.now());
    const to = ['grid_worker', 'grid_leader', 'community_director', 'staff:st-bl.limin'];
    expect(await resolver.resolve(to, alert)).toEqual(await plain.resolve(to, alert));
    expect(brief(await resolver.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: GW1, substituteFor: undefined, offDuty: undefined },
    ]);
  });

  it('replaces an off-duty grid worker by the substitute, for as long as the absence lasts', async () => {
    await off(GW1, GW2, { note: '病假' });
    const [r, ...rest] = await resolver.resolve(['grid_worker'], alert);
    expect(rest).toEqual([]);
    expect(r).toMatchObject({ as: 'grid_worker', staffId: GW2, substituteFor: GW1, phone: '+8613800000002' });
    expect(r!.offDuty).toBeUndefined();
    expect(r!.displayName).toContain('*');
    clock.advance(DAY);
    expect(brief(await resolver.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: GW1, substituteFor: undefined, offDuty: undefined },
    ]);
  });

  it('follows a chain of off-duty substitutes up to 3 hops', async () => {
    await off(GW1, GW2);
    await off(GW2, PV);
    await off(PV, UL);
    expect(brief(await resolver.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: UL, substituteFor: GW1, offDuty: undefined },
    ]);
    // a fourth hop is too far: the original is kept, marked off duty
    await off(UL, BL);
    expect(brief(await resolver.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: GW1, substituteFor: undefined, offDuty: true },
    ]);
  });

  it('passes over a disabled substitute to the one after them, else keeps the original', async () => {
    await off(GW1, PV);
    await off(PV, UL);
    await registry.updateStaff(PV, { disabled: true });
    resolver.invalidate();
    expect(brief(await resolver.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: UL, substituteFor: GW1, offDuty: undefined },
    ]);
    await registry.updateStaff(UL, { disabled: true });
    resolver.invalidate();
    expect(brief(await resolver.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: GW1, substituteFor: undefined, offDuty: true },
    ]);
  });

  it('asks about the substitute for the same role and grid as the original', async () => {
    await off(GW1, GW2);
    // GW2 is off only as a grid leader, and only in grid 02: on duty for this grid worker's alert
    await off(GW2, CM, { role: 'grid_leader' });
    await off(GW2, PV, { gridId: 'g-limin-02' });
    expect(brief(await resolver.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: GW2, substituteFor: GW1, offDuty: undefined },
    ]);
    // off for every role in this grid: the chain goes on
    await off(GW2, CM, { gridId: 'g-limin-01' });
    expect(brief(await resolver.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: CM, substituteFor: GW1, offDuty: undefined },
    ]);
  });

  it('stops at a cycle and keeps the original', async () => {
    await off(GW1, GW2);
    await off(GW2, GW1);
    expect(brief(await resolver.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: GW1, substituteFor: undefined, offDuty: true },
    ]);
  });

  it('passes over a substitute without a phone (the roster lookup is a narrow interface)', async () => {
    const subs: Record<string, string> = { [GW1]: 'st-admin' };
    const lookup: DutyLookup = { substituteFor: async (id) => subs[id] };
    const r = new RecipientResolver(registry, () => clock.now(), 60_000, { roster: lookup });
    expect(brief(await r.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: GW1, substituteFor: undefined, offDuty: true },
    ]);
    subs['st-admin'] = GW2;
    expect(brief(await r.resolve(['grid_worker'], alert))).toEqual([
      { as: 'grid_worker', staffId: GW2, substituteFor: GW1, offDuty: undefined },
    ]);
  });

  it('keeps the original when the roster cannot be read', async () => {
    const warnings: unknown[] = [];
    const broken: DutyLookup = {
      substituteFor: async () => {
        throw new Error('database is locked');
      },
    };
    const r = new RecipientResolver(registry, () => clock.now(), 60_000, {
      roster: broken,
      log: { debug: () => {}, warn: (o: unknown) => void warnings.push(o) },
    });
    expect(brief(await r.resolve(['grid_worker', 'grid_leader'], alert))).toEqual([
      { as: 'grid_worker', staffId: GW1, substituteFor: undefined, offDuty: undefined },
      { as: 'grid_leader', staffId: GL, substituteFor: undefined, offDuty: undefined },
    ]);
    expect(warnings).toHaveLength(2);
  });

  it('tells a substitute who is also on the list once', async () => {
    await off(GW1, GL);
    expect(brief(await resolver.resolve(['grid_worker', 'grid_leader'], alert))).toEqual([
      { as: 'grid_worker', staffId: GL, substituteFor: GW1, offDuty: undefined },
    ]);
  });

  it('applies a role-limited absence only to that role, a grid-limited one only to that grid', async () => {
    await off(GL, BL, { role: 'grid_leader' });
    await off(GW1, GW2, { gridId: 'g-limin-02' });
    expect(brief(await resolver.resolve(['grid_leader', 'grid_worker'], alert))).toEqual([
      { as: 'grid_leader', staffId: BL, substituteFor: GL, offDuty: undefined },
      { as: 'grid_worker', staffId: GW1, substituteFor: undefined, offDuty: undefined },
    ]);
    // the named grid leader is asked about as a person, not as a grid leader: still on duty
    expect(brief(await resolver.resolve([`staff:${GL}`], alert))).toEqual([
      { as: `staff:${GL}`, staffId: GL, substituteFor: undefined, offDuty: undefined },
    ]);
  });

  it('replaces named staff entries too', async () => {
    await off(BL, PV);
    expect(brief(await resolver.resolve([`staff:${BL}`], alert))).toEqual([
      { as: `staff:${BL}`, staffId: PV, substituteFor: BL, offDuty: undefined },
    ]);
  });

  it('never turns a list empty because of the roster', async () => {
    const to = ['grid_worker', 'grid_leader', 'building_leader', 'community_director', 'street_duty_officer'];
    const before = await resolver.resolve(to, alert);
    // everybody is off, each one standing in for the next in a ring
    const ids = before.map((r) => r.staffId!);
    for (const [i, id] of ids.entries()) await off(id, ids[(i + 1) % ids.length]!);
    const after = await resolver.resolve(to, alert);
    expect(after.length).toBeGreaterThan(0);
    expect(after.map((r) => r.staffId)).toEqual(ids);
    expect(after.every((r) => r.offDuty === true)).toBe(true);
  });
});
