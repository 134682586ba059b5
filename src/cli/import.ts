/**
 * Bulk import of households, staff or devices from CSV into an existing hierarchy (loaded from a seed file):
 *
 *   npm run import -- households.csv            kind detected from the header row
 *   npm run import -- list.csv --kind staff     or given explicitly (households | staff | devices)
 *   npm run import -- devices.csv --secrets-out ./device-secrets.json
 *
 * All or nothing: every row is validated first (format, references to the hierarchy, duplicates within the file
 * and against the database); if any row fails, every problem is reported as `row N, column C: message` and
 * NOTHING is written. Otherwise all rows go in ONE transaction. Rows are numbered as a spreadsheet shows them: the
 * header is row 1, the first data row is row 2.
 *
 * Columns (UTF-8, comma-separated, header row required, unknown columns are an error; docs/import.md):
 *
 * households: id, unit_id, room, colour, lone_elderly, at_risk, residents, contact_name, contact_phone,
 *             contact_relation, address
 *   - id (h-…), unit_id (an existing unit) and room are required; (unit_id, room) must be free;
 *   - colour: red | orange | yellow | blue | green;
 *   - lone_elderly, at_risk: true/false, yes/no, 1/0, 是/否; empty = false;
 *   - residents: `;`-separated `name` or `name/birthYear` (e.g. `张秀兰/1941;王建国/1938`); each resident takes
 *     the household's lone_elderly / at_risk flags;
 *   - contact_*: one emergency contact, all three or none; phone in E.164 (+8613912345678);
 *   - address: optional, default community + building + unit + room (利民社区3号楼2单元501).
 * staff: username, name, phone, roles, grids, communities, streets
 *   - roles: `;`-separated role ids (grid_worker;grid_leader …); grids / communities / streets: `;`-separated ids
 *     of the coverage; every imported account gets a random password, returned once (--secrets-out file).
 * devices: id, model, household_id, unit_id, building_id, area_id, drill
 *   - exactly one of the four target columns; drill as lone_elderly; a secret is generated per device and
 *     returned once (--secrets-out file), only its scrypt hash is stored.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { isValidDeviceId } from '../contracts/topics.ts';
import type { DeviceTable, EmergencyContactTable, HouseholdTable, ResidentTable } from '../store/db.ts';
import {
  ADMIN_USERNAME,
  chunks,
  deviceRow,
  installKey,
  isColour,
  isRole,
  isValidPhone,
  isValidUsername,
  resolveInstalls,
  type SqlRegistry,
  staffIdFor,
  writeRolesAndCoverage,
} from '../registry/registry.ts';
import {
  contactId,
  type DeviceSecret,
  deviceSecretEntry,
  NODE_ID_PATTERN,
  residentId,
  type StaffPassword,
  writeSecretsFile,
} from '../registry/seed.ts';
import { generateSecret } from '../registry/secrets.ts';
import { COLOURS, type InstallTarget, ROLES, type Role } from '../registry/types.ts';

export const IMPORT_KINDS = ['households', 'staff', 'devices'] as const;
export type ImportKind = (typeof IMPORT_KINDS)[number];

export interface RowError {
  /** CSV record number, the header being row 1. */
  row: number;
  column?: string;
  message: string;
}

export type ImportResult =
  | { imported: number; deviceSecrets: DeviceSecret[]; staffPasswords: StaffPassword[] }
  | { errors: RowError[] };

export const COLUMNS: Readonly<Record<ImportKind, { required: readonly string[]; optional: readonly string[] }>> = {
  households: {
    required: ['id', 'unit_id', 'room', 'colour'],
    optional: ['lone_elderly', 'at_risk', 'residents', 'contact_name', 'contact_phone', 'contact_relation', 'address'],
  },
  staff: { required: ['username', 'name', 'phone', 'roles'], optional: ['grids', 'communities', 'streets'] },
  devices: { required: ['id', 'model'], optional: ['household_id', 'unit_id', 'building_id', 'area_id', 'drill'] },
};

/** The kind a header row belongs to: the column only that kind has. */
export function detectKind(header: readonly string[]): ImportKind | undefined {
  const h = new Set(header.map((c) => c.trim().toLowerCase()));
  if (h.has('room')) return 'households';
  if (h.has('username')) return 'staff';
  if (h.has('model')) return 'devices';
  return undefined;
}

const nodeIdRe = new RegExp(NODE_ID_PATTERN);
const MAX_ROWS = 200_000;

function parseBool(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  if (s === '' || s === 'false' || s === 'no' || s === '0' || s === 'n' || s === '否') return false;
  if (s === 'true' || s === 'yes' || s === '1' || s === 'y' || s === '是') return true;
  return undefined;
}

function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(';')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

interface Row {
  n: number;
  get(col: string): string;
}

/** Parses the CSV into rows keyed by header; header problems are row-1 errors. */
function readRows(
  csvText: string,
  kind: ImportKind | undefined,
): { kind: ImportKind; rows: Row[] } | { errors: RowError[] } {
  let records: string[][];
  try {
    records = parse(csvText, { bom: true, skip_empty_lines: true, trim: true, relax_column_count: false });
  } catch (e) {
    const err = e as Error & { lines?: number; records?: number };
    return { errors: [{ row: (err.records ?? 0) + 1, message: `not valid CSV: ${err.message}` }] };
  }
  const header = (records[0] ?? []).map((c) => c.trim().toLowerCase());
  if (header.length === 0) return { errors: [{ row: 1, message: 'the file is empty: a header row is required' }] };
  const k = kind ?? detectKind(header);
  if (!k) {
    return {
      errors: [
        { row: 1, message: 'cannot tell the kind from the header (no room, username or model column); use --kind' },
      ],
    };
  }
  const errors: RowError[] = [];
  const spec = COLUMNS[k];
  const known = new Set([...spec.required, ...spec.optional]);
  header.forEach((c, i) => {
    if (!known.has(c)) errors.push({ row: 1, column: c || `#${i + 1}`, message: `unknown column for ${k}` });
    else if (header.indexOf(c) !== i) errors.push({ row: 1, column: c, message: 'duplicate column' });
  });
  for (const c of spec.required) {
    if (!header.includes(c)) errors.push({ row: 1, column: c, message: 'required column is missing' });
  }
  if (records.length - 1 > MAX_ROWS) errors.push({ row: 1, message: `at most ${MAX_ROWS} rows per file` });
  if (errors.length > 0) return { errors };
  const index = new Map(header.map((c, i) => [c, i]));
  const rows = records.slice(1).map((rec, i) => ({
    n: i + 2,
    get: (col: string) => {
      const at = index.get(col);
      return at === undefined ? '' : (rec[at] ?? '').trim();
    },
  }));
  return { kind: k, rows };
}

/**
 * Validates and imports CSV text of one kind; nothing is written unless every row is valid. Reloads the registry's
 * in-memory caches afterwards.
 */
export async function importCsv(
  registry: SqlRegistry,
  kind: ImportKind | undefined,
  csvText: string,
): Promise<ImportResult> {
  const read = readRows(csvText, kind);
  if ('errors' in read) return read;
  if (read.rows.length === 0) return { imported: 0, deviceSecrets: [], staffPasswords: [] };
  switch (read.kind) {
    case 'households':
      return importHouseholds(registry, read.rows);
    case 'staff':
      return importStaff(registry, read.rows);
    case 'devices':
      return importDevices(registry, read.rows);
  }
}

/** Ids among `ids` that already exist in `table` (batched IN queries). */
async function existing(
  registry: SqlRegistry,
  table: 'household' | 'unit' | 'grid' | 'community' | 'street' | 'device',
  ids: readonly string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  for (const part of chunks([...new Set(ids)])) {
    for (const r of await registry.db.selectFrom(table).select('id').where('id', 'in', part).execute()) found.add(r.id);
  }
  return found;
}

async function importHouseholds(registry: SqlRegistry, rows: Row[]): Promise<ImportResult> {
  const errors: RowError[] = [];
  const err = (row: Row, column: string | undefined, message: string) =>
    errors.push(column ? { row: row.n, column, message } : { row: row.n, message });

  const unitIds = rows.map((r) => r.get('unit_id')).filter((u) => u !== '');
  const units = new Map<string, { building_id: string; grid_id: string; community_id: string; address: string }>();
  for (const part of chunks([...new Set(unitIds)])) {
    const found = await registry.db
      .selectFrom('unit')
      .innerJoin('building', 'building.id', 'unit.building_id')
      .innerJoin('community', 'community.id', 'building.community_id')
      .select([
        'unit.id as id',
        'unit.name as unit_name',
        'building.id as building_id',
        'building.name as building_name',
        'building.grid_id as grid_id',
        'community.id as community_id',
        'community.name as community_name',
      ])
      .where('unit.id', 'in', part)
      .execute();
    for (const u of found) {
      units.set(u.id, {
        building_id: u.building_id,
        grid_id: u.grid_id,
        community_id: u.community_id,
        address: `${u.community_name}${u.building_name}${u.unit_name}`,
      });
    }
  }
  const takenIds = await existing(
    registry,
    'household',
    rows.map((r) => r.get('id')),
  );
  const takenRooms = new Set<string>();
  for (const part of chunks([...units.keys()])) {
    for (const h of await registry.db
      .selectFrom('household')
      .select(['unit_id', 'room'])
      .where('unit_id', 'in', part)
      .execute()) {
      takenRooms.add(`${h.unit_id}\0${h.room}`);
    }
  }

  const seenIds = new Map<string, number>();
  const seenRooms = new Map<string, number>();
  const households: HouseholdTable[] = [];
  const residents: ResidentTable[] = [];
  const contacts: EmergencyContactTable[] = [];
  const now = Date.now();
  const thisYear = new Date(now).getUTCFullYear();
  for (const row of rows) {
    const before = errors.length;
    const id = row.get('id');
    if (!nodeIdRe.test(id)) err(row, 'id', 'must be 1–64 letters, digits, "-" or "_"');
    else if (takenIds.has(id)) err(row, 'id', `household ${id} already exists`);
    else if (seenIds.has(id)) err(row, 'id', `duplicate id (also in row ${seenIds.get(id)})`);
    else seenIds.set(id, row.n);
    const unitId = row.get('unit_id');
    const unit = units.get(unitId);
    if (unitId === '') err(row, 'unit_id', 'is required');
    else if (!unit) err(row, 'unit_id', `unit ${unitId} does not exist`);
    const room = row.get('room');
    if (room === '' || room.length > 20) err(row, 'room', 'is required (at most 20 characters)');
    else if (unit) {
      const key = `${unitId}\0${room}`;
      if (takenRooms.has(key)) err(row, 'room', `room ${room} of unit ${unitId} already has a household`);
      else if (seenRooms.has(key))
        err(row, 'room', `room ${room} of unit ${unitId} is also in row ${seenRooms.get(key)}`);
      else seenRooms.set(key, row.n);
    }
    const colour = row.get('colour').toLowerCase();
    if (!isColour(colour)) err(row, 'colour', `must be one of ${COLOURS.join(', ')}`);
    const lone = parseBool(row.get('lone_elderly'));
    if (lone === undefined) err(row, 'lone_elderly', 'must be true or false');
    const atRisk = parseBool(row.get('at_risk'));
    if (atRisk === undefined) err(row, 'at_risk', 'must be true or false');
    const people: Array<{ name: string; birthYear: number | null }> = [];
    for (const entry of list(row.get('residents'))) {
      const [name = '', year, ...extra] = entry.split('/').map((x) => x.trim());
      const birthYear = year === undefined || year === '' ? null : Number(year);
      if (name === '' || name.length > 100 || extra.length > 0) {
        err(row, 'residents', `"${entry}" must be name or name/birthYear`);
      } else if (birthYear !== null && (!Number.isInteger(birthYear) || birthYear < 1880 || birthYear > thisYear)) {
        err(row, 'residents', `birth year of "${name}" must be a year from 1880 to ${thisYear}`);
      } else people.push({ name, birthYear });
    }
    const cName = row.get('contact_name');
    const cPhone = row.get('contact_phone');
    const cRelation = row.get('contact_relation');
    const anyContact = cName !== '' || cPhone !== '' || cRelation !== '';
    if (anyContact) {
      if (cName === '') err(row, 'contact_name', 'is required when a contact is given');
      if (!isValidPhone(cPhone)) err(row, 'contact_phone', 'must be an E.164 number such as +8613912345678');
      if (cRelation === '') err(row, 'contact_relation', 'is required when a contact is given');
    }
    const address = row.get('address');
    if (address.length > 200) err(row, 'address', 'at most 200 characters');
    if (errors.length > before || !unit || !isColour(colour)) continue;
    households.push({
      id,
      unit_id: unitId,
      building_id: unit.building_id,
      grid_id: unit.grid_id,
      community_id: unit.community_id,
      room,
      address: address || `${unit.address}${room}`,
      colour,
      lone_elderly: lone ? 1 : 0,
      at_risk: atRisk ? 1 : 0,
      created_at: now,
    });
    for (const [i, p] of people.entries()) {
      residents.push({
        id: residentId(id, i),
        household_id: id,
        full_name: p.name,
        birth_year: p.birthYear,
        lone_elderly: lone ? 1 : 0,
        at_risk: atRisk ? 1 : 0,
      });
    }
    if (anyContact) {
      contacts.push({
        id: contactId(id, 0),
        household_id: id,
        position: 0,
        name: cName,
        phone: cPhone,
        relation: cRelation,
      });
    }
  }
  if (errors.length > 0) return { errors };
  await registry.db.transaction().execute(async (trx) => {
    for (const part of chunks(households, 400)) await trx.insertInto('household').values(part).execute();
    for (const part of chunks(residents, 400)) await trx.insertInto('resident').values(part).execute();
    for (const part of chunks(contacts, 400)) await trx.insertInto('emergency_contact').values(part).execute();
  });
  await registry.reload();
  return { imported: households.length, deviceSecrets: [], staffPasswords: [] };
}

async function importStaff(registry: SqlRegistry, rows: Row[]): Promise<ImportResult> {
  const errors: RowError[] = [];
  const err = (row: Row, column: string, message: string) => errors.push({ row: row.n, column, message });
  const refs = {
    grids: await existing(
      registry,
      'grid',
      rows.flatMap((r) => list(r.get('grids'))),
    ),
    communities: await existing(
      registry,
      'community',
      rows.flatMap((r) => list(r.get('communities'))),
    ),
    streets: await existing(
      registry,
      'street',
      rows.flatMap((r) => list(r.get('streets'))),
    ),
  };
  const taken = new Set<string>();
  for (const part of chunks([...new Set(rows.map((r) => r.get('username')))])) {
    for (const s of await registry.db.selectFrom('staff').select('username').where('username', 'in', part).execute()) {
      taken.add(s.username);
    }
  }
  const seen = new Map<string, number>();
  const valid: Array<{ username: string; name: string; phone: string; roles: Role[]; cov: Record<string, string[]> }> =
    [];
  for (const row of rows) {
    const before = errors.length;
    const username = row.get('username');
    if (!isValidUsername(username)) err(row, 'username', 'must be 3–32 characters of a-z, 0-9, ".", "_" or "-"');
    else if (username === ADMIN_USERNAME)
      err(row, 'username', `"${ADMIN_USERNAME}" is reserved for the bootstrap admin`);
    else if (taken.has(username)) err(row, 'username', `username ${username} is taken`);
    else if (seen.has(username)) err(row, 'username', `duplicate username (also in row ${seen.get(username)})`);
    else seen.set(username, row.n);
    const name = row.get('name');
    if (name === '' || name.length > 100) err(row, 'name', 'is required (at most 100 characters)');
    const phone = row.get('phone');
    if (!isValidPhone(phone)) err(row, 'phone', 'must be an E.164 number such as +8613812345678');
    const roles = list(row.get('roles'));
    if (roles.length === 0) err(row, 'roles', `at least one of ${ROLES.join(', ')}`);
    for (const r of roles) if (!isRole(r)) err(row, 'roles', `unknown role ${r}`);
    const cov: Record<string, string[]> = {};
    for (const [col, what] of [
      ['grids', 'grid'],
      ['communities', 'community'],
      ['streets', 'street'],
    ] as const) {
      cov[col] = list(row.get(col));
      for (const id of cov[col]) if (!refs[col].has(id)) err(row, col, `${what} ${id} does not exist`);
    }
    if (errors.length === before) valid.push({ username, name, phone, roles: roles as Role[], cov });
  }
  if (errors.length > 0) return { errors };
  // Hash before the transaction (slow, and must not hold the write lock); four at a time for libuv's pool.
  const staffPasswords: StaffPassword[] = [];
  const prepared: Array<{ v: (typeof valid)[number]; hash: string }> = [];
  for (const part of chunks(valid, 4)) {
    prepared.push(
      ...(await Promise.all(
        part.map(async (v) => {
          const password = generateSecret();
          staffPasswords.push({ username: v.username, password });
          return { v, hash: await registry.hash(password) };
        }),
      )),
    );
  }
  const now = Date.now();
  await registry.db.transaction().execute(async (trx) => {
    for (const { v, hash } of prepared) {
      const id = staffIdFor(v.username);
      await trx
        .insertInto('staff')
        .values({
          id,
          username: v.username,
          name: v.name,
          phone: v.phone,
          password_hash: hash,
          disabled: 0,
          created_at: now,
        })
        .execute();
      await writeRolesAndCoverage(trx, id, v.roles, {
        gridIds: v.cov.grids ?? [],
        communityIds: v.cov.communities ?? [],
        streetIds: v.cov.streets ?? [],
      });
    }
  });
  await registry.reload();
  return { imported: prepared.length, deviceSecrets: [], staffPasswords };
}

async function importDevices(registry: SqlRegistry, rows: Row[]): Promise<ImportResult> {
  const errors: RowError[] = [];
  const err = (row: Row, column: string | undefined, message: string) =>
    errors.push(column ? { row: row.n, column, message } : { row: row.n, message });
  const targetCols = [
    ['household_id', 'household'],
    ['unit_id', 'unit'],
    ['building_id', 'building'],
    ['area_id', 'area'],
  ] as const;
  const targetOf = (row: Row): InstallTarget | undefined => {
    const set = targetCols.filter(([c]) => row.get(c) !== '');
    if (set.length !== 1) return undefined;
    const [col, kind] = set[0]!;
    const id = row.get(col);
    switch (kind) {
      case 'household':
        return { kind, householdId: id };
      case 'unit':
        return { kind, unitId: id };
      case 'building':
        return { kind, buildingId: id };
      case 'area':
        return { kind, areaId: id };
    }
  };
  const targets = rows.map(targetOf);
  const placements = await resolveInstalls(
    registry.db,
    targets.filter((t): t is InstallTarget => t !== undefined),
  );
  const taken = await existing(
    registry,
    'device',
    rows.map((r) => r.get('id')),
  );
  const seen = new Map<string, number>();
  const valid: Array<{ id: string; model: string; install: InstallTarget; drill: boolean }> = [];
  rows.forEach((row, i) => {
    const before = errors.length;
    const id = row.get('id');
    if (!isValidDeviceId(id))
      err(row, 'id', 'must be 1–64 letters, digits, "-" or "_", starting with a letter or digit');
    else if (taken.has(id)) err(row, 'id', `device ${id} already exists`);
    else if (seen.has(id)) err(row, 'id', `duplicate id (also in row ${seen.get(id)})`);
    else seen.set(id, row.n);
    const model = row.get('model');
    if (!registry.knownModel(model)) err(row, 'model', `unknown device model ${JSON.stringify(model)}`);
    const t = targets[i];
    if (!t) {
      err(row, undefined, 'exactly one of household_id, unit_id, building_id or area_id is required');
    } else if (!placements.has(installKey(t))) {
      const col = targetCols.find(([, k]) => k === t.kind)![0];
      err(row, col, `${t.kind} ${row.get(col)} does not exist`);
    }
    const drill = parseBool(row.get('drill'));
    if (drill === undefined) err(row, 'drill', 'must be true or false');
    if (errors.length === before && t) valid.push({ id, model, install: t, drill: !!drill });
  });
  if (errors.length > 0) return { errors };
  const deviceSecrets: DeviceSecret[] = [];
  const deviceRows: DeviceTable[] = [];
  const now = Date.now();
  for (const part of chunks(valid, 4)) {
    deviceRows.push(
      ...(await Promise.all(
        part.map(async (d) => {
          const secret = generateSecret();
          const placement = placements.get(installKey(d.install))!;
          deviceSecrets.push(deviceSecretEntry(d, secret, placement));
          return deviceRow(d, placement, await registry.hashDeviceSecrets(secret), now);
        }),
      )),
    );
  }
  await registry.db.transaction().execute(async (trx) => {
    for (const part of chunks(deviceRows, 400)) await trx.insertInto('device').values(part).execute();
  });
  await registry.reload();
  return { imported: deviceRows.length, deviceSecrets, staffPasswords: [] };
}

// ------------------------------------------------------------------------------------------------ CLI

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      kind: { type: 'string' },
      'secrets-out': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== 1) {
    process.stderr.write(
      'usage: npm run import -- <file.csv> [--kind households|staff|devices] [--secrets-out file.json]\n' +
        'Columns: see docs/import.md. Nothing is imported unless every row is valid.\n',
    );
    return values.help ? 0 : 2;
  }
  const kind = values.kind;
  if (kind !== undefined && !(IMPORT_KINDS as readonly string[]).includes(kind)) {
    process.stderr.write(`--kind must be one of ${IMPORT_KINDS.join(', ')}\n`);
    return 2;
  }
  const file = positionals[0]!;
  const text = await readFile(file, 'utf8');

  // Loaded here, not at the top: tests import importCsv without pulling in the config loader or device models.
  const { loadConfig } = await import('../config/load.ts');
  const { createDatabase } = await import('../store/db.ts');
  const { migrateToLatest } = await import('../store/migrate.ts');
  const { SqlRegistry } = await import('../registry/registry.ts');
  const { getModel } = await import('../../devices/index.ts');
  // Opened exactly as the service opens it, so the import lands where the running service reads.
  const cfg = loadConfig();
  // Decided before importing: secrets that cannot be written after the commit would leave devices nobody can use.
  const out =
    values['secrets-out'] ??
    path.join(cfg.dataDir, `import-secrets-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  if (values['secrets-out'] === undefined) mkdirSync(cfg.dataDir, { recursive: true });
  if (!existsSync(path.dirname(path.resolve(out)))) {
    process.stderr.write(`cannot write secrets: ${path.dirname(out)} does not exist\n`);
    return 2;
  }
  const database = await createDatabase(cfg.database, cfg.dataDir);
  try {
    await migrateToLatest(database.db);
    const registry = new SqlRegistry(database, { knownModel: (id) => getModel(id) !== undefined });
    const result = await importCsv(registry, kind as ImportKind | undefined, text);
    if ('errors' in result) {
      for (const e of result.errors) {
        process.stderr.write(`${file}: row ${e.row}${e.column ? `, column ${e.column}` : ''}: ${e.message}\n`);
      }
      process.stderr.write(`${result.errors.length} problem(s); nothing was imported.\n`);
      return 1;
    }
    process.stdout.write(`imported ${result.imported} row(s) from ${file}\n`);
    if (result.deviceSecrets.length > 0 || result.staffPasswords.length > 0) {
      // Secrets exist only now: written to a 0600 file, never printed (terminals and CI logs keep scrollback).
      await writeSecretsFile(out, { deviceSecrets: result.deviceSecrets, staffPasswords: result.staffPasswords });
      process.stdout.write(`secrets written to ${out} (mode 0600); hand them over, then delete the file\n`);
    }
    return 0;
  } finally {
    await database.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`import: ${(e as Error).message}\n`);
      process.exit(2);
    },
  );
}
