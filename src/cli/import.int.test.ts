/**
 * CSV import against both stores: good files go in, a file with bad rows reports every bad row (row number and
 * column) and writes nothing. The CLI itself is run once end to end on SQLite.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getModel } from '../../devices/index.ts';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { SqlRegistry } from '../registry/registry.ts';
import { seedIfEmpty } from '../registry/seed.ts';
import { verifySecret } from '../registry/secrets.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { detectKind, type ImportResult, importCsv, type RowError } from './import.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SAMPLE = path.join(ROOT, 'config/sample-community.yaml');
// the real model registry: what the service itself accepts
const knownModel = (m: string) => getModel(m) !== undefined;
const LOW_COST = { N: 1024, r: 8, p: 1 };

function ok(r: ImportResult) {
  if ('errors' in r) throw new Error(`unexpected errors: ${JSON.stringify(r.errors)}`);
  return r;
}
function errs(r: ImportResult): RowError[] {
  if (!('errors' in r)) throw new Error('expected errors');
  return r.errors;
}

async function count(database: Database, table: 'household' | 'staff' | 'device' | 'resident'): Promise<number> {
  const r = await database.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

describe('detectKind', () => {
  it('tells the kind from the header row', () => {
    expect(detectKind(['id', 'unit_id', 'room', 'colour'])).toBe('households');
    expect(detectKind(['username', 'name'])).toBe('staff');
    expect(detectKind(['ID', 'Model'])).toBe('devices');
    expect(detectKind(['a', 'b'])).toBeUndefined();
  });
});

describe.each(['sqlite', 'postgres'] as const)('importCsv on %s', (kind) => {
  let dir: string;
  let pg: TestPostgres | undefined;
  let database: Database;
  let registry: SqlRegistry;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-import-'));
    pg = kind === 'postgres' ? await startTestPostgres() : undefined;
    database = await createDatabase({ url: pg?.url, sqliteFile: 'import.sqlite' }, dir);
    await migrateToLatest(database.db);
    registry = new SqlRegistry(database, { knownModel, sessionSweepMs: 0, scrypt: LOW_COST });
    await registry.start();
    const seeded = await seedIfEmpty(registry, SAMPLE, { env: {} });
    expect(seeded.seeded).toBe(true);
  });

  afterAll(async () => {
    await registry?.stop();
    await database?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('imports good households with residents and a contact', async () => {
    const before = await count(database, 'household');
    const csv = [
      'id,unit_id,room,colour,lone_elderly,at_risk,residents,contact_name,contact_phone,contact_relation,address',
      'h-limin-01-1-1101,u-limin-01-1,1101,red,是,yes,张秀兰/1941,王强,+8613912345678,儿子,',
      'h-limin-01-1-1102,u-limin-01-1,1102,green,,,"李明/1980;李小红/2010",,,,',
      'h-limin-02-2-1101,u-limin-02-2,1101,Blue,false,0,,,,,"利民社区2号楼2单元1101, 东侧"',
    ].join('\n');
    const r = ok(await importCsv(registry, undefined, csv));
    expect(r.imported).toBe(3);
    expect(await count(database, 'household')).toBe(before + 3);
    const h = (await registry.getHousehold('h-limin-01-1-1101'))!;
    expect(h).toMatchObject({
      address: '利民社区1号楼1单元1101',
      colour: 'red',
      loneElderly: true,
      atRisk: true,
      buildingId: 'b-limin-01',
      communityId: 'c-limin',
    });
    expect(h.residents).toEqual([
      { id: 'r-limin-01-1-1101-1', displayName: '张*兰', birthYear: 1941, loneElderly: true, atRisk: true },
    ]);
    expect(h.emergencyContacts).toEqual([{ name: '王强', phone: '+8613912345678', relation: '儿子' }]);
    expect((await registry.getHousehold('h-limin-01-1-1102'))!.residents).toHaveLength(2);
    expect((await registry.getHousehold('h-limin-02-2-1101'))!).toMatchObject({
      colour: 'blue',
      address: '利民社区2号楼2单元1101, 东侧',
    });
  });

  it('reports both bad rows with row numbers and columns, and imports nothing', async () => {
    const households = await count(database, 'household');
    const residents = await count(database, 'resident');
    const csv = [
      'id,unit_id,room,colour,residents,contact_phone,contact_name,contact_relation',
      'h-limin-01-1-1201,u-limin-01-1,1201,green,王五/1950,,,',
      'h-limin-01-1-1202,u-limin-01-1,1202,purple,王六/1950,,,',
      'h-limin-01-1-1203,u-limin-01-1,1203,yellow,,,,',
      'h-limin-99-1-0101,u-limin-99-1,101,red,,13912345678,某人,儿子',
    ].join('\n');
    const errors = errs(await importCsv(registry, 'households', csv));
    expect(errors).toEqual([
      { row: 3, column: 'colour', message: 'must be one of red, orange, yellow, blue, green' },
      { row: 5, column: 'unit_id', message: 'unit u-limin-99-1 does not exist' },
      { row: 5, column: 'contact_phone', message: 'must be an E.164 number such as +8613912345678' },
    ]);
    expect(new Set(errors.map((e) => e.row))).toEqual(new Set([3, 5]));
    expect(await count(database, 'household')).toBe(households);
    expect(await count(database, 'resident')).toBe(residents);
    expect(await registry.getHousehold('h-limin-01-1-1201')).toBeUndefined();
  });

  it('catches duplicates within the file and against the store', async () => {
    const csv = [
      'id,unit_id,room,colour',
      'h-limin-01-1-1101,u-limin-01-1,1301,green',
      'h-new-a,u-limin-01-1,1102,green',
      'h-new-b,u-limin-01-1,1401,green',
      'h-new-b,u-limin-01-1,1401,green',
    ].join('\n');
    const errors = errs(await importCsv(registry, undefined, csv));
    expect(errors).toEqual([
      { row: 2, column: 'id', message: 'household h-limin-01-1-1101 already exists' },
      { row: 3, column: 'room', message: 'room 1102 of unit u-limin-01-1 already has a household' },
      { row: 5, column: 'id', message: 'duplicate id (also in row 4)' },
      { row: 5, column: 'room', message: 'room 1401 of unit u-limin-01-1 is also in row 4' },
    ]);
  });

  it('reports header problems as row 1', async () => {
    expect(errs(await importCsv(registry, 'households', 'id,unit_id,colour,flat\nx,y,red,1'))).toEqual([
      { row: 1, column: 'flat', message: 'unknown column for households' },
      { row: 1, column: 'room', message: 'required column is missing' },
    ]);
    expect(errs(await importCsv(registry, undefined, 'a,b\n1,2'))[0]!.row).toBe(1);
    expect(errs(await importCsv(registry, undefined, ''))[0]!.row).toBe(1);
    expect(errs(await importCsv(registry, undefined, 'id,model\n"unclosed,x\n'))[0]!.message).toMatch(/not valid CSV/);
  });

  it('imports staff with generated passwords; bad rows are all reported', async () => {
    const before = await count(database, 'staff');
    const bad = [
      'username,name,phone,roles,grids,communities',
      'zhao.lei,赵磊,+8613822223333,grid_worker,g-limin-01,',
      'Bad Name,钱,+8613822224444,janitor,g-limin-09,',
      'gw.limin.01,孙,138,grid_worker,,c-nowhere',
    ].join('\n');
    const errors = errs(await importCsv(registry, undefined, bad));
    expect(errors.filter((e) => e.row === 2)).toEqual([]);
    expect(errors.filter((e) => e.row === 3).map((e) => e.column)).toEqual(['username', 'roles', 'grids']);
    expect(errors.filter((e) => e.row === 4).map((e) => e.column)).toEqual(['username', 'phone', 'communities']);
    expect(await count(database, 'staff')).toBe(before);

    const good = [
      'username,name,phone,roles,grids,communities,streets',
      'zhao.lei,赵磊,+8613822223333,grid_worker,g-limin-01,,',
      'qian.li,钱丽,+8613822224444,grid_leader;party_volunteer,,c-limin,',
    ].join('\n');
    const r = ok(await importCsv(registry, undefined, good));
    expect(r.imported).toBe(2);
    expect(r.staffPasswords.map((p) => p.username).sort()).toEqual(['qian.li', 'zhao.lei']);
    const zhao = r.staffPasswords.find((p) => p.username === 'zhao.lei')!;
    const s = (await registry.verifyLogin('zhao.lei', zhao.password))!;
    expect(s).toMatchObject({ id: 'st-zhao.lei', roles: ['grid_worker'] });
    expect(registry.scopeOf(s).gridIds).toEqual(['g-limin-01']);
    const qian = (await registry.getStaff('st-qian.li'))!;
    expect(qian.roles).toEqual(['grid_leader', 'party_volunteer']);
    expect(registry.scopeOf(qian).gridIds).toEqual(['g-limin-01', 'g-limin-02']);
  });

  it('imports devices with secrets returned once; bad rows are all reported', async () => {
    const before = await count(database, 'device');
    const bad = [
      'id,model,household_id,unit_id,building_id,area_id,drill',
      'imp-wb-1,native-wristband,h-limin-01-1-1101,,,,',
      'da-limin-01,native-door-access,,,b-limin-01,,',
      'imp-x,acme-nope,,u-limin-01-1,b-limin-01,,maybe',
      'imp-y,native-door-access,,,b-limin-77,,',
    ].join('\n');
    const errors = errs(await importCsv(registry, undefined, bad));
    expect(errors).toEqual([
      { row: 3, column: 'id', message: 'device da-limin-01 already exists' },
      { row: 4, column: 'model', message: 'unknown device model "acme-nope"' },
      { row: 4, message: 'exactly one of household_id, unit_id, building_id or area_id is required' },
      { row: 4, column: 'drill', message: 'must be true or false' },
      { row: 5, column: 'building_id', message: 'building b-limin-77 does not exist' },
    ]);
    expect(await count(database, 'device')).toBe(before);
    expect(registry.devices.get('imp-wb-1')).toBeUndefined();

    const good = [
      'id,model,household_id,unit_id,building_id,area_id,drill',
      'imp-wb-1,native-wristband,h-limin-01-1-1101,,,,',
      'imp-ec-1,volt-cb2,,u-limin-01-2,,,',
      'imp-drill-ca,native-charging-area,,,,a-limin-01,true',
    ].join('\n');
    const r = ok(await importCsv(registry, 'devices', good));
    expect(r.imported).toBe(3);
    expect(await count(database, 'device')).toBe(before + 3);
    const wb = r.deviceSecrets.find((s) => s.deviceId === 'imp-wb-1')!;
    const rec = registry.devices.get('imp-wb-1')!;
    expect(rec.placement).toMatchObject({ householdId: 'h-limin-01-1-1101', colour: 'red', gridId: 'g-limin-01' });
    expect(await verifySecret(wb.secret, rec.secretHash)).toBe(true);
    expect(registry.devices.get('imp-drill-ca')!.drill).toBe(true);
    expect(registry.devices.get('imp-ec-1')!.placement.unitId).toBe('u-limin-01-2');
  });
});

describe('npm run import (CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-import-cli-'));
    // the CLI opens <dataDir>/gridwatch.sqlite like the service: prepare it with the sample
    const database = await createDatabase({ sqliteFile: 'gridwatch.sqlite' }, dir);
    await migrateToLatest(database.db);
    const registry = new SqlRegistry(database, { knownModel, sessionSweepMs: 0, scrypt: LOW_COST });
    await registry.start();
    await seedIfEmpty(registry, SAMPLE, { env: {} });
    await database.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = async (args: string[]) => {
    const tsx = path.join(ROOT, 'node_modules/.bin/tsx');
    try {
      const r = await promisify(execFile)(tsx, ['src/cli/import.ts', ...args], {
        cwd: ROOT,
        env: { ...process.env, GRIDWATCH_DATA_DIR: dir, GRIDWATCH_CONFIG: '', DATABASE_URL: '' },
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  };

  it('imports a good file and writes the secrets to a 0600 file; rejects a bad one with row numbers', async () => {
    const good = path.join(dir, 'devices.csv');
    writeFileSync(good, 'id,model,building_id\ncli-door-1,native-door-access,b-limin-02\n');
    const out = path.join(dir, 'secrets.json');
    const r = await run([good, '--secrets-out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/imported 1 row/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const secrets = JSON.parse(readFileSync(out, 'utf8')) as { deviceSecrets: Array<{ deviceId: string }> };
    expect(secrets.deviceSecrets.map((s) => s.deviceId)).toEqual(['cli-door-1']);

    const bad = path.join(dir, 'bad.csv');
    writeFileSync(
      bad,
      'id,model,building_id\ncli-door-2,native-door-access,b-nowhere\ncli-door-1,native-door-access,b-limin-02\n',
    );
    const b = await run([bad, '--kind', 'devices']);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain('row 2, column building_id: building b-nowhere does not exist');
    expect(b.stderr).toContain('row 3, column id: device cli-door-1 already exists');
    expect(b.stderr).toMatch(/nothing was imported/);
  });
});
