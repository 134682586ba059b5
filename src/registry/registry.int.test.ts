/**
 * The same registry/store suite against both relational stores: SQLite (embedded default, a temp file) and a real
 * PostgreSQL 15 (deployed), so every query is proven portable.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getModel } from '../../devices/index.ts';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { VirtualClock } from '../clock/clock.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { type Household, RegistryError, type Scope, type Staff } from './port.ts';
import { SqlRegistry } from './registry.ts';
import { parseSeed, type SeedFile, type SeedResult, seedIfEmpty } from './seed.ts';
import { verifySecret } from './secrets.ts';
import { COLOURS, type Colour } from './types.ts';

const SAMPLE = path.resolve(import.meta.dirname, '../../config/sample-community.yaml');
// The registry takes the model check as a function; a fixed list keeps this suite independent of devices/.
// the real model registry: what the service itself accepts
const knownModel = (m: string) => getModel(m) !== undefined;
const ALL: Scope = { all: true, gridIds: [] };

/** Expected numbers, read from the sample itself so regenerating it does not break the suite. */
function expectations(seed: SeedFile) {
  const community = seed.districts[0]!.streets[0]!.communities[0]!;
  const households = community.grids.flatMap((g) =>
    g.buildings.flatMap((b) => b.units.flatMap((u) => (u.households ?? []).map((h) => ({ ...h, gridId: g.id })))),
  );
  const byColour = Object.fromEntries(COLOURS.map((c) => [c, households.filter((h) => h.colour === c).length]));
  return {
    grids: community.grids.length,
    buildings: community.grids.reduce((n, g) => n + g.buildings.length, 0),
    households,
    byColour: byColour as Record<Colour, number>,
    devices: seed.devices ?? [],
    staff: seed.staff ?? [],
  };
}

async function expectError(p: Promise<unknown>, code: RegistryError['code']): Promise<RegistryError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RegistryError);
  expect((e as RegistryError).code).toBe(code);
  return e as RegistryError;
}

describe.each(['sqlite', 'postgres'] as const)('registry on %s', (kind) => {
  const seedDoc = parseSeed(readFileSync(SAMPLE, 'utf8'));
  const exp = expectations(seedDoc);
  const clock = new VirtualClock(Date.now());
  let dir: string;
  let pg: TestPostgres | undefined;
  let database: Database;
  let registry: SqlRegistry;
  let seeded: SeedResult;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-registry-'));
    pg = kind === 'postgres' ? await startTestPostgres() : undefined;
    database = await createDatabase({ url: pg?.url, sqliteFile: 'registry.sqlite' }, dir);
    expect(database.dialect).toBe(kind);
    expect((await migrateToLatest(database.db))[0]).toBe('001_registry');
    // A lower scrypt cost keeps seeding ~200 device secrets quick on a 2-core box; the default cost is checked below
    // and in secrets.test.ts.
    registry = new SqlRegistry(database, { knownModel, clock, sessionSweepMs: 0, scrypt: { N: 1024, r: 8, p: 1 } });
    await registry.start();
    seeded = await seedIfEmpty(registry, SAMPLE, { env: {} });
  });

  afterAll(async () => {
    await registry?.stop();
    await database?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrations are idempotent; the store answers its readiness ping', async () => {
    expect(await migrateToLatest(database.db)).toEqual([]);
    expect(await database.ping()).toBe(true);
  });

  it('hashes at the default scrypt cost unless told otherwise', async () => {
    const plain = new SqlRegistry(database, { knownModel });
    expect(await plain.hash('x')).toMatch(/^scrypt\$16384\$8\$1\$/);
    // generated device secrets (192 random bits) get the cheap cost
    expect(await plain.hashDeviceSecret('x')).toMatch(/^scrypt\$1024\$8\$1\$/);
  });

  it('seeds the sample community: grids, buildings, households by colour, devices, staff', async () => {
    if (!seeded.seeded) throw new Error('not seeded');
    expect(seeded.counts).toMatchObject({
      communities: 1,
      grids: exp.grids,
      buildings: exp.buildings,
      households: exp.households.length,
      devices: exp.devices.length,
      staff: exp.staff.length,
    });
    expect(exp.grids).toBeGreaterThanOrEqual(2);
    expect(exp.buildings).toBeGreaterThanOrEqual(6);
    expect(exp.households.length).toBeGreaterThanOrEqual(150);
    expect((await registry.listNodes('grid')).map((n) => n.id)).toHaveLength(exp.grids);
    expect(await registry.listNodes('building')).toHaveLength(exp.buildings);
    for (const colour of COLOURS) {
      const page = await registry.listHouseholds({ colour }, ALL, { limit: 1000 });
      expect(page.items).toHaveLength(exp.byColour[colour]);
      expect(page.items.length).toBeGreaterThan(0);
    }
    expect(exp.byColour.red).toBeLessThan(exp.byColour.green);
    expect([...registry.devices.all()]).toHaveLength(exp.devices.length);
    const roles = new Set(exp.staff.flatMap((s) => s.roles));
    expect(roles.size).toBe(12);
  });

  it('returns every device secret once, and each verifies against the stored hash', async () => {
    if (!seeded.seeded) throw new Error('not seeded');
    expect(seeded.deviceSecrets).toHaveLength(exp.devices.length);
    expect(new Set(seeded.deviceSecrets.map((s) => s.secret)).size).toBe(exp.devices.length);
    for (const s of seeded.deviceSecrets.slice(0, 3)) {
      const rec = registry.devices.get(s.deviceId)!;
      expect(rec.model).toBe(s.model);
      expect(await verifySecret(s.secret, rec.secretHash)).toBe(true);
    }
    // no passwordEnv in the sample: every seeded account got a generated password
    expect(seeded.staffPasswords).toHaveLength(exp.staff.length);
    const gw = seeded.staffPasswords.find((p) => p.username === 'gw.limin.01')!;
    expect((await registry.verifyLogin('gw.limin.01', gw.password))?.roles).toEqual(['grid_worker']);
  });

  it('fills the directory placement up the hierarchy', () => {
    const home = exp.households.find((h) => h.loneElderly)!;
    const wm = registry.devices.get(`wm-${home.id.slice(2)}`)!;
    expect(wm.install).toEqual({ kind: 'household', householdId: home.id });
    expect(wm.placement).toMatchObject({
      householdId: home.id,
      gridId: home.gridId,
      communityId: 'c-limin',
      colour: home.colour,
    });
    expect(wm.placement.unitId).toMatch(/^u-limin-/);
    expect(wm.placement.buildingId).toMatch(/^b-limin-/);
    expect(wm.drill).toBe(false);
    const door = registry.devices.get('da-limin-03')!;
    expect(door.placement).toEqual({ buildingId: 'b-limin-03', gridId: door.placement.gridId, communityId: 'c-limin' });
    const area = registry.devices.get('drill-ca-limin-01')!;
    expect(area.drill).toBe(true);
    expect(area.placement).toEqual({ areaId: 'a-limin-01', communityId: 'c-limin' });
    expect(registry.devices.get('ec-limin-03-2')!.placement.unitId).toBe('u-limin-03-2');
  });

  it('seedIfEmpty is a no-op the second time', async () => {
    const again = await seedIfEmpty(registry, SAMPLE, { env: {} });
    expect(again.seeded).toBe(false);
    const page = await registry.listHouseholds({}, ALL, { limit: 1000 });
    expect(page.items).toHaveLength(exp.households.length);
  });

  it('lists households with filters, masked residents and contacts', async () => {
    const grid = exp.households[0]!.gridId;
    const page = await registry.listHouseholds({ gridId: grid, colour: 'red' }, ALL, { limit: 1000 });
    expect(page.items.length).toBe(exp.households.filter((h) => h.gridId === grid && h.colour === 'red').length);
    for (const h of page.items) expect(h).toMatchObject({ gridId: grid, colour: 'red', communityId: 'c-limin' });
    const b = await registry.listHouseholds({ buildingId: 'b-limin-03' }, ALL, { limit: 1000 });
    expect(b.items.length).toBeGreaterThan(0);
    expect(b.items.every((h) => h.buildingId === 'b-limin-03' && h.address.startsWith('利民社区3号楼'))).toBe(true);

    const lone = exp.households.find((h) => h.loneElderly && h.emergencyContacts?.length)!;
    const h = (await registry.getHousehold(lone.id)) as Household;
    expect(h.loneElderly).toBe(true);
    const fullName = lone.residents![0]!.name;
    expect(h.residents[0]!.displayName).not.toBe(fullName);
    expect(h.residents[0]!.displayName).toMatch(/\*/);
    expect([...h.residents[0]!.displayName][0]).toBe([...fullName][0]);
    expect(h.residents[0]!.birthYear).toBe(lone.residents![0]!.birthYear);
    expect(h.emergencyContacts[0]).toEqual(lone.emergencyContacts![0]);
    expect(JSON.stringify(h)).not.toContain(fullName);
    expect(await registry.getHousehold('h-nowhere')).toBeUndefined();
  });

  it('a grid worker sees only their grid; community coverage sees all its grids', async () => {
    const gw = (await registry.verifyLogin(
      'gw.limin.01',
      (seeded as Extract<SeedResult, { seeded: true }>).staffPasswords.find((p) => p.username === 'gw.limin.01')!
        .password,
    ))!;
    const scope = registry.scopeOf(gw);
    expect(scope).toEqual({ all: false, gridIds: ['g-limin-01'] });
    const mine = await registry.listHouseholds({}, scope, { limit: 1000 });
    expect(mine.items.length).toBe(exp.households.filter((h) => h.gridId === 'g-limin-01').length);
    expect(mine.items.every((h) => h.gridId === 'g-limin-01')).toBe(true);
    expect((await registry.listHouseholds({ gridId: 'g-limin-02' }, scope, { limit: 100 })).items).toEqual([]);
    const devices = await registry.listDevices({}, scope, { limit: 1000 });
    expect(devices.items.length).toBeGreaterThan(0);
    expect(devices.items.every((d) => d.placement.gridId === 'g-limin-01')).toBe(true);

    const depot = (await registry.getStaff('st-depot.limin'))!;
    expect(registry.scopeOf(depot)).toEqual({ all: false, gridIds: ['g-limin-01', 'g-limin-02'] });
    const duty = (await registry.getStaff('st-duty.heping'))!;
    expect(registry.scopeOf(duty).all).toBe(true);
    const none = { ...gw, roles: [], coverage: { gridIds: [], communityIds: [], streetIds: [] } } as Staff;
    expect((await registry.listHouseholds({}, registry.scopeOf(none), { limit: 10 })).items).toEqual([]);
  });

  it('paginates with keyset cursors, without duplicates or gaps', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await registry.listHouseholds({}, ALL, { limit: 7, cursor });
      expect(page.items.length).toBeLessThanOrEqual(7);
      seen.push(...page.items.map((h) => h.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(Math.ceil(exp.households.length / 7));
    expect(new Set(seen).size).toBe(exp.households.length);
    expect(seen).toEqual([...seen].sort());
    const exact = await registry.listHouseholds({}, ALL, { limit: exp.households.length });
    expect(exact.nextCursor).toBeUndefined();

    const devIds: string[] = [];
    cursor = undefined;
    do {
      const page = await registry.listDevices({}, ALL, { limit: 50, cursor });
      devIds.push(...page.items.map((d) => d.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(new Set(devIds).size).toBe(exp.devices.length);

    await expectError(registry.listHouseholds({}, ALL, { limit: 0 }), 'invalid');
    await expectError(registry.listHouseholds({}, ALL, { limit: 1001 }), 'invalid');
    await expectError(registry.listHouseholds({}, ALL, { limit: 10, cursor: '%%%' }), 'invalid');
    await expectError(registry.listHouseholds({ colour: 'pink' as Colour }, ALL, { limit: 10 }), 'invalid');
  });

  it('lists the hierarchy', async () => {
    expect(await registry.listNodes('district')).toEqual([{ id: 'd-xincheng', name: '新城区', level: 'district' }]);
    expect(await registry.listNodes('community', 's-heping')).toEqual([
      { id: 'c-limin', name: '利民社区', parentId: 's-heping', level: 'community' },
    ]);
    const units = await registry.listNodes('unit', 'b-limin-03');
    expect(units.map((u) => u.id)).toEqual(['u-limin-03-1', 'u-limin-03-2']);
    expect(await registry.listNodes('area', 'c-limin')).toEqual([
      { id: 'a-limin-01', name: '集中充电区', parentId: 'c-limin', level: 'area' },
    ]);
  });

  it('provisions a device: secret returned once, directory updated at once, verifySecret works', async () => {
    const home = exp.households.find((h) => !h.loneElderly)!;
    const { id, secret } = await registry.provisionDevice({
      id: 'test-wb-1',
      model: 'native-wristband',
      install: { kind: 'household', householdId: home.id },
    });
    expect(id).toBe('test-wb-1');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const rec = registry.devices.get('test-wb-1')!;
    expect(rec.placement).toMatchObject({ householdId: home.id, gridId: home.gridId, colour: home.colour });
    expect(await verifySecret(secret, rec.secretHash)).toBe(true);
    expect(await verifySecret(`${secret}x`, rec.secretHash)).toBe(false);
    const info = (await registry.getDevice('test-wb-1'))!;
    expect(info).toMatchObject({ id: 'test-wb-1', status: 'unknown', drill: false, disabled: false });
    expect(info).not.toHaveProperty('secretHash');
    expect(JSON.stringify(info)).not.toContain('scrypt');
    expect((await registry.listDevices({ householdId: home.id }, ALL, { limit: 10 })).items.map((d) => d.id)).toEqual([
      'test-wb-1',
    ]);

    const drill = await registry.provisionDevice({
      id: 'test-drill-door',
      model: 'native-door-access',
      install: { kind: 'building', buildingId: 'b-limin-01' },
      drill: true,
    });
    expect(registry.devices.get(drill.id)!.drill).toBe(true);
  });

  it('rejects duplicates (conflict), bad targets, models and ids (invalid)', async () => {
    await expectError(
      registry.provisionDevice({
        id: 'da-limin-01',
        model: 'native-door-access',
        install: { kind: 'building', buildingId: 'b-limin-01' },
      }),
      'conflict',
    );
    const bad = await expectError(
      registry.provisionDevice({
        id: 'x-1',
        model: 'native-door-access',
        install: { kind: 'building', buildingId: 'b-nowhere' },
      }),
      'invalid',
    );
    expect(bad.message).toMatch(/building b-nowhere does not exist/);
    const many = await expectError(
      registry.provisionDevice({
        id: 'bad/id+',
        model: 'nope',
        install: { kind: 'unit' } as never,
      }),
      'invalid',
    );
    expect(many.details?.map((d) => (d as { field: string }).field)).toEqual(['id', 'model', 'install']);
    expect(registry.devices.get('x-1')).toBeUndefined();
  });

  it('creates, updates, disables staff and sets passwords', async () => {
    const s = await registry.createStaff({
      username: 'wang.fang',
      name: '王芳',
      phone: '+8613811112222',
      roles: ['grid_worker'],
      coverage: { gridIds: ['g-limin-02'] },
      password: 'first-password-1',
    });
    expect(s).toMatchObject({
      id: 'st-wang.fang',
      username: 'wang.fang',
      roles: ['grid_worker'],
      coverage: { gridIds: ['g-limin-02'], communityIds: [], streetIds: [] },
      disabled: false,
    });
    expect(registry.scopeOf(s).gridIds).toEqual(['g-limin-02']);
    await expectError(
      registry.createStaff({
        username: 'wang.fang',
        name: '另一个',
        phone: '+8613811113333',
        roles: ['grid_worker'],
        password: 'another-password',
      }),
      'conflict',
    );
    const invalid = await expectError(
      registry.createStaff({
        username: 'X',
        name: '',
        phone: '13812345678',
        roles: ['janitor' as never],
        coverage: { gridIds: ['g-nowhere'] },
        password: 'short',
      }),
      'invalid',
    );
    expect(invalid.details?.map((d) => (d as { field: string }).field).sort()).toEqual(
      ['coverage.gridIds', 'name', 'password', 'phone', 'roles', 'username'].sort(),
    );

    const u = await registry.updateStaff(s.id, {
      name: '王芳芳',
      roles: ['grid_leader', 'party_volunteer'],
      coverage: { communityIds: ['c-limin'] },
    });
    expect(u.name).toBe('王芳芳');
    expect(u.roles).toEqual(['grid_leader', 'party_volunteer']);
    // only the given coverage level is replaced
    expect(u.coverage).toEqual({ gridIds: ['g-limin-02'], communityIds: ['c-limin'], streetIds: [] });
    expect(registry.scopeOf(u).gridIds).toEqual(['g-limin-01', 'g-limin-02']);
    await expectError(registry.updateStaff(s.id, { phone: 'nope' }), 'invalid');
    await expectError(registry.updateStaff('st-nobody', { name: 'x' }), 'not_found');

    expect((await registry.verifyLogin('wang.fang', 'first-password-1'))?.id).toBe(s.id);
    await registry.setPassword(s.id, 'second-password-2');
    expect(await registry.verifyLogin('wang.fang', 'first-password-1')).toBeUndefined();
    expect((await registry.verifyLogin('wang.fang', 'second-password-2'))?.id).toBe(s.id);
    await expectError(registry.setPassword(s.id, 'short'), 'invalid');
    await expectError(registry.setPassword('st-nobody', 'long-enough-pw'), 'not_found');

    const d = await registry.updateStaff(s.id, { disabled: true });
    expect(d.disabled).toBe(true);
    expect(await registry.verifyLogin('wang.fang', 'second-password-2')).toBeUndefined();
    await registry.updateStaff(s.id, { disabled: false });
    expect(await registry.verifyLogin('wang.fang', 'second-password-2')).toBeDefined();

    const all: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await registry.listStaff({ limit: 5, cursor });
      all.push(...page.items.map((x) => x.username));
      cursor = page.nextCursor;
    } while (cursor);
    expect(all).toContain('wang.fang');
    expect(new Set(all).size).toBe(all.length);
  });

  it('verifyLogin rejects unknown users, wrong passwords and disabled users in about the same time', async () => {
    await registry.createStaff({
      username: 'timing.test',
      name: '计时',
      phone: '+8613811114444',
      roles: ['evaluator'],
      password: 'timing-password-1',
    });
    // median of several runs: one sample on a shared 2-core box is too noisy
    const time = async (u: string, p: string) => {
      const runs: number[] = [];
      for (let i = 0; i < 7; i++) {
        const t0 = performance.now();
        expect(await registry.verifyLogin(u, p)).toBeUndefined();
        runs.push(performance.now() - t0);
      }
      return runs.sort((a, b) => a - b)[3]!;
    };
    const unknown = await time('no.such.user', 'timing-password-1');
    const wrong = await time('timing.test', 'wrong-password-1');
    const malformed = await time('NOT VALID', 'x');
    // all three pay one full scrypt; without the dummy verify the unknown user would answer without any
    expect(unknown).toBeGreaterThan(wrong / 4);
    expect(malformed).toBeGreaterThan(wrong / 4);
  });

  it('sessions: create, resolve, revoke, expire; disabling ends them', async () => {
    const staff = await registry.createStaff({
      username: 'session.user',
      name: '会话',
      phone: '+8613811115555',
      roles: ['grid_worker'],
      coverage: { gridIds: ['g-limin-01'] },
      password: 'session-password',
    });
    const a = await registry.createSession(staff.id, 60_000);
    expect(a.expiresAt.getTime()).toBe(clock.now() + 60_000);
    expect((await registry.resolveSession(a.token))?.id).toBe(staff.id);
    expect(await registry.resolveSession(`${a.token}x`)).toBeUndefined();
    expect(await registry.resolveSession('')).toBeUndefined();
    // only the hash is stored
    const rows = await database.db.selectFrom('session').select('token_hash').execute();
    expect(rows.some((r) => r.token_hash === a.token)).toBe(false);

    await registry.revokeSession(a.token);
    expect(await registry.resolveSession(a.token)).toBeUndefined();

    const b = await registry.createSession(staff.id, 60_000);
    clock.advance(60_001);
    expect(await registry.resolveSession(b.token)).toBeUndefined();
    expect(await registry.pruneExpiredSessions()).toBeGreaterThanOrEqual(1);

    const c = await registry.createSession(staff.id, 60_000);
    await registry.updateStaff(staff.id, { disabled: true });
    expect(await registry.resolveSession(c.token)).toBeUndefined();
    await expectError(registry.createSession(staff.id, 60_000), 'invalid');
    await expectError(registry.createSession('st-nobody', 60_000), 'not_found');

    await registry.updateStaff(staff.id, { disabled: false });
    const d = await registry.createSession(staff.id, 60_000);
    await registry.setPassword(staff.id, 'new-session-password');
    expect(await registry.resolveSession(d.token)).toBeUndefined();
  });

  it('ensureAdmin creates the bootstrap admin and resets only when the password changes', async () => {
    await expectError(registry.ensureAdmin('short'), 'invalid');
    await registry.ensureAdmin('admin-password-1');
    const admin = (await registry.verifyLogin('admin', 'admin-password-1'))!;
    expect(admin.roles).toEqual(['admin']);
    expect(admin.phone).toBe('');
    expect(registry.scopeOf(admin).all).toBe(true);
    const s = await registry.createSession(admin.id, 60_000);
    await registry.ensureAdmin('admin-password-1');
    expect((await registry.resolveSession(s.token))?.username).toBe('admin');
    await registry.ensureAdmin('admin-password-2');
    expect(await registry.resolveSession(s.token)).toBeUndefined();
    expect(await registry.verifyLogin('admin', 'admin-password-1')).toBeUndefined();
    expect(await registry.verifyLogin('admin', 'admin-password-2')).toBeDefined();
  });

  it('saveDeviceStates persists status and last-seen in one batch, never moving last-seen back', async () => {
    const ids = exp.devices.slice(0, Math.min(700, exp.devices.length)).map((d) => d.id);
    const t = Date.UTC(2026, 0, 1, 8, 0, 0);
    await registry.saveDeviceStates(ids.map((deviceId) => ({ deviceId, status: 'online', lastSeen: t })));
    const first = (await registry.getDevice(ids[0]!))!;
    expect(first.status).toBe('online');
    expect(first.lastSeen).toBe(new Date(t).toISOString());
    const online = await registry.listDevices({ status: 'online' }, ALL, { limit: 1000 });
    expect(online.items).toHaveLength(ids.length);

    await registry.saveDeviceStates([
      { deviceId: ids[0]!, status: 'offline', lastSeen: t - 60_000 },
      { deviceId: ids[1]!, status: 'offline' },
      { deviceId: ids[2]!, status: 'online', lastSeen: t + 1000 },
      { deviceId: ids[2]!, status: 'offline', lastSeen: t + 5000 },
      { deviceId: 'not-a-device', status: 'online', lastSeen: t },
    ]);
    const [d0, d1, d2] = await Promise.all(ids.slice(0, 3).map((id) => registry.getDevice(id)));
    expect(d0).toMatchObject({ status: 'offline', lastSeen: new Date(t).toISOString() });
    expect(d1).toMatchObject({ status: 'offline', lastSeen: new Date(t).toISOString() });
    expect(d2).toMatchObject({ status: 'offline', lastSeen: new Date(t + 5000).toISOString() });
    await registry.saveDeviceStates([]);
    const states = await registry.loadDeviceStates();
    expect(states.find((r) => r.deviceId === ids[2])).toEqual({
      deviceId: ids[2],
      status: 'offline',
      lastSeen: t + 5000,
    });
    expect(states.find((r) => r.deviceId === 'test-wb-1')).toEqual({ deviceId: 'test-wb-1', status: 'unknown' });
  });

  it('refresh re-reads one device or all of them from the store', async () => {
    await database.db.updateTable('device').set({ disabled: 1 }).where('id', '=', 'da-limin-01').execute();
    expect(registry.devices.get('da-limin-01')!.disabled).toBe(false);
    await registry.devices.refresh('da-limin-01');
    expect(registry.devices.get('da-limin-01')!.disabled).toBe(true);
    // a re-classified household: its devices carry the new colour after a refresh
    const home = exp.households.find((h) => h.loneElderly && h.colour !== 'red')!;
    await database.db.updateTable('household').set({ colour: 'red' }).where('id', '=', home.id).execute();
    await registry.devices.refresh();
    const kit = [...registry.devices.all()].filter((d) => d.placement.householdId === home.id);
    expect(kit.length).toBeGreaterThanOrEqual(9);
    for (const d of kit) expect(d.placement.colour).toBe('red');
    await registry.devices.refresh('no-such-device');
    expect(registry.devices.get('no-such-device')).toBeUndefined();
  });
});

describe.each(['sqlite', 'postgres'] as const)('seedIfEmpty on %s', (kind) => {
  let pg: TestPostgres | undefined;
  let database: Database;
  let registry: SqlRegistry;
  const small = (): SeedFile => ({
    version: 1,
    districts: [
      {
        id: 'd-t',
        name: '区',
        streets: [
          {
            id: 's-t',
            name: '街道',
            communities: [
              {
                id: 'c-t',
                name: '测试社区',
                grids: [
                  {
                    id: 'g-t-01',
                    name: '第一网格',
                    buildings: [
                      {
                        id: 'b-t-01',
                        name: '1号楼',
                        units: [
                          { id: 'u-t-01-1', name: '1单元', households: [{ id: 'h-t', room: '101', colour: 'red' }] },
                        ],
                      },
                    ],
                  },
                ],
              },
            ],
          },
        ],
      },
    ],
    staff: [
      { username: 'env.user', name: '甲', phone: '+8613800000001', roles: ['grid_worker'], passwordEnv: 'GW_TEST_PW' },
      { username: 'random.user', name: '乙', phone: '+8613800000002', roles: ['evaluator'] },
    ],
    devices: [{ id: 'wm-t', model: 'native-water-meter', household: 'h-t' }],
  });

  beforeAll(async () => {
    pg = kind === 'postgres' ? await startTestPostgres() : undefined;
    database = await createDatabase({ url: pg?.url, sqliteFile: ':memory:' }, os.tmpdir());
    await migrateToLatest(database.db);
    registry = new SqlRegistry(database, { knownModel, sessionSweepMs: 0, scrypt: { N: 1024, r: 8, p: 1 } });
    await registry.start();
  });
  afterAll(async () => {
    await registry?.stop();
    await database?.close();
    await pg?.stop();
  });

  it('writes everything in one transaction: a failure leaves the registry empty', async () => {
    // staff without any community: the registry still counts as empty, but the seed's username now collides
    await registry.createStaff({
      username: 'random.user',
      name: '先来的',
      phone: '+8613800000009',
      roles: ['grid_worker'],
      password: 'already-here-1',
    });
    await expect(seedIfEmpty(registry, small(), { env: {} })).rejects.toThrow();
    expect(await registry.listNodes('community')).toEqual([]);
    expect(await database.db.selectFrom('household').select('id').execute()).toEqual([]);
    expect(await database.db.selectFrom('device').select('id').execute()).toEqual([]);
    await database.db.deleteFrom('staff').where('username', '=', 'random.user').execute();
  });

  it('rejects an invalid seed object listing the problems, and a too-short password variable', async () => {
    const bad = small();
    bad.devices = [{ id: 'wm-t', model: 'unknown-model', household: 'h-nowhere' }];
    await expect(seedIfEmpty(registry, bad)).rejects.toThrow(/\/devices\/0\/model[\s\S]*\/devices\/0\/household/);
    await expect(seedIfEmpty(registry, small(), { env: { GW_TEST_PW: 'short' } })).rejects.toThrow(
      /\/staff\/0\/passwordEnv: GW_TEST_PW is shorter than 10/,
    );
  });

  it('takes staff passwords from the named variable, generates the others', async () => {
    const r = await seedIfEmpty(registry, small(), { env: { GW_TEST_PW: 'from-the-environment' } });
    if (!r.seeded) throw new Error('not seeded');
    expect(r.staffPasswords.map((p) => p.username)).toEqual(['random.user']);
    expect(await registry.verifyLogin('env.user', 'from-the-environment')).toBeDefined();
    expect(await registry.verifyLogin('random.user', r.staffPasswords[0]!.password)).toBeDefined();
    expect(r.deviceSecrets).toEqual([
      {
        deviceId: 'wm-t',
        model: 'native-water-meter',
        secret: expect.any(String),
        householdId: 'h-t',
        unitId: 'u-t-01-1',
        buildingId: 'b-t-01',
      },
    ]);
    expect((await registry.getHousehold('h-t'))!.address).toBe('测试社区1号楼1单元101');
    expect(registry.devices.get('wm-t')!.placement.colour).toBe('red');
    expect((await seedIfEmpty(registry, small())).seeded).toBe(false);
  });
});
