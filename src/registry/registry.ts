/**
 * The registry over the relational store (SQLite or PostgreSQL through one Kysely query layer, src/store/db.ts).
 *
 * - `devices` is an in-memory directory (broker auth and ingest enrichment look a device up per message, so it
 *   must not cost a query); it is loaded at start, updated at once by provisionDevice and re-read by refresh().
 * - Scope (`scopeOf`) is synchronous because it runs per request: the grid → community → street index it needs
 *   is kept in memory and reloaded by `reload()` after seeding or importing.
 * - Lists page by keyset on `id` with an opaque cursor, so pages never skip or repeat rows while others insert.
 * - Validation failures are RegistryError('invalid', message, details) with one detail per problem, so the HTTP
 *   layer can answer 400 with everything that is wrong at once.
 */
import { randomBytes } from 'node:crypto';
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import { systemClock, type Cancel, type Clock } from '../clock/clock.ts';
import type { DeviceStatus } from '../contracts/canonical.ts';
import { isValidDeviceId } from '../contracts/topics.ts';
import { type Logger, maskName } from '../logger.ts';
import {
  type Database,
  type DB,
  type DeviceTable,
  type Dialect,
  fromBool,
  type HouseholdTable,
  type SessionTable,
  toBool,
} from '../store/db.ts';
import {
  type Coverage,
  type DeviceInfo,
  type DeviceStateRow,
  type HierarchyNode,
  type Household,
  type Page,
  type PageOpts,
  type Registry,
  RegistryError,
  type Resident,
  type Scope,
  SESSION_DEVICES,
  type SessionDevice,
  type SessionInfo,
  type Staff,
} from './port.ts';
import {
  DEVICE_SCRYPT,
  dummyHash,
  generateSecret,
  hashSecret,
  hashToken,
  mosquittoHash,
  type ScryptParams,
  verifySecret,
} from './secrets.ts';
import {
  COLOURS,
  type Colour,
  type DeviceDirectory,
  type DeviceRecord,
  type InstallTarget,
  type Placement,
  ROLES,
  type Role,
} from './types.ts';

export const PHONE_PATTERN = '^\\+[1-9]\\d{7,14}$';
export const USERNAME_PATTERN = '^[a-z0-9_.-]{3,32}$';
export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;
const phoneRe = new RegExp(PHONE_PATTERN);
const usernameRe = new RegExp(USERNAME_PATTERN);
const DEVICE_STATUSES: readonly DeviceStatus[] = ['online', 'offline', 'unknown'];

/** Roles whose holders see every household of the deployment, whatever their coverage. */
export const ALL_SCOPE_ROLES: ReadonlySet<Role> = new Set<Role>([
  'admin',
  'community_director',
  'street_duty_officer',
  'committee_member',
  'drill_controller',
  'evaluator',
]);

export const ADMIN_USERNAME = 'admin';

export interface ValidationProblem {
  field: string;
  message: string;
}

export function isValidPhone(phone: unknown): phone is string {
  return typeof phone === 'string' && phoneRe.test(phone);
}
export function isValidUsername(username: unknown): username is string {
  return typeof username === 'string' && usernameRe.test(username);
}
export function isRole(role: unknown): role is Role {
  return (ROLES as readonly unknown[]).includes(role);
}
export function isColour(colour: unknown): colour is Colour {
  return (COLOURS as readonly unknown[]).includes(colour);
}

function invalid(problems: ValidationProblem[]): RegistryError {
  const text = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
  return new RegistryError('invalid', text, problems);
}

/** Unique / primary-key violation in either dialect (better-sqlite3 error codes, PostgreSQL SQLSTATE 23505). */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

/** Validates page options; throws 'invalid' for a limit outside 1..1000 or a cursor that is not ours. */
export function pageArgs(page: Partial<PageOpts> | undefined): { limit: number; after?: string } {
  const limit = page?.limit ?? DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw invalid([{ field: 'limit', message: `must be an integer from 1 to ${MAX_PAGE}` }]);
  }
  if (page?.cursor === undefined || page.cursor === '') return { limit };
  const c = page.cursor;
  const after = /^[A-Za-z0-9_-]{1,400}$/.test(c) ? Buffer.from(c, 'base64url').toString('utf8') : '';
  if (after === '' || after.includes('\uFFFD')) throw invalid([{ field: 'cursor', message: 'is not a valid cursor' }]);
  return { limit, after };
}

function finishPage<T extends { id: string }>(rows: T[], limit: number): { rows: T[]; nextCursor?: string } {
  if (rows.length <= limit) return { rows };
  const kept = rows.slice(0, limit);
  return { rows: kept, nextCursor: encodeCursor(kept[kept.length - 1]!.id) };
}

function iso(ms: number | null | undefined): string | undefined {
  return ms === null || ms === undefined ? undefined : new Date(Number(ms)).toISOString();
}

/** Splits for IN lists and multi-row inserts: stays far below SQLite's and PostgreSQL's bind-parameter limits. */
export function chunks<T>(items: readonly T[], size = 500): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

type Q = Kysely<DB> | Transaction<DB>;

/** The placement columns of a device row. */
export type PlacementColumns = Pick<
  DeviceTable,
  'household_id' | 'unit_id' | 'building_id' | 'area_id' | 'grid_id' | 'community_id'
>;

export function installId(t: InstallTarget): string {
  switch (t.kind) {
    case 'household':
      return t.householdId;
    case 'building':
      return t.buildingId;
    case 'unit':
      return t.unitId;
    case 'area':
      return t.areaId;
  }
}

function installFrom(kind: DeviceTable['install_kind'], id: string): InstallTarget {
  switch (kind) {
    case 'household':
      return { kind, householdId: id };
    case 'building':
      return { kind, buildingId: id };
    case 'unit':
      return { kind, unitId: id };
    case 'area':
      return { kind, areaId: id };
  }
}

/**
 * Resolves install targets up the hierarchy in a few batched queries (one per target kind), for provisioning and
 * the CSV import. Missing targets are absent from the answer. Keyed by `${kind}:${id}`.
 */
export async function resolveInstalls(q: Q, targets: readonly InstallTarget[]): Promise<Map<string, PlacementColumns>> {
  const out = new Map<string, PlacementColumns>();
  const ids = (kind: InstallTarget['kind']) => [
    ...new Set(targets.filter((t) => t.kind === kind).map((t) => installId(t))),
  ];
  for (const part of chunks(ids('household'))) {
    const rows = await q
      .selectFrom('household')
      .select(['id', 'unit_id', 'building_id', 'grid_id', 'community_id'])
      .where('id', 'in', part)
      .execute();
    for (const r of rows) {
      out.set(`household:${r.id}`, {
        household_id: r.id,
        unit_id: r.unit_id,
        building_id: r.building_id,
        area_id: null,
        grid_id: r.grid_id,
        community_id: r.community_id,
      });
    }
  }
  for (const part of chunks(ids('unit'))) {
    const rows = await q
      .selectFrom('unit')
      .innerJoin('building', 'building.id', 'unit.building_id')
      .select(['unit.id as id', 'unit.building_id as building_id', 'building.grid_id', 'building.community_id'])
      .where('unit.id', 'in', part)
      .execute();
    for (const r of rows) {
      out.set(`unit:${r.id}`, {
        household_id: null,
        unit_id: r.id,
        building_id: r.building_id,
        area_id: null,
        grid_id: r.grid_id,
        community_id: r.community_id,
      });
    }
  }
  for (const part of chunks(ids('building'))) {
    const rows = await q
      .selectFrom('building')
      .select(['id', 'grid_id', 'community_id'])
      .where('id', 'in', part)
      .execute();
    for (const r of rows) {
      out.set(`building:${r.id}`, {
        household_id: null,
        unit_id: null,
        building_id: r.id,
        area_id: null,
        grid_id: r.grid_id,
        community_id: r.community_id,
      });
    }
  }
  for (const part of chunks(ids('area'))) {
    const rows = await q
      .selectFrom('charging_area')
      .leftJoin('building', 'building.id', 'charging_area.building_id')
      .select([
        'charging_area.id as id',
        'charging_area.building_id as building_id',
        'charging_area.community_id as community_id',
        'building.grid_id as grid_id',
      ])
      .where('charging_area.id', 'in', part)
      .execute();
    for (const r of rows) {
      out.set(`area:${r.id}`, {
        household_id: null,
        unit_id: null,
        building_id: r.building_id,
        area_id: r.id,
        grid_id: r.grid_id ?? null,
        community_id: r.community_id,
      });
    }
  }
  return out;
}

export function installKey(t: InstallTarget): string {
  return `${t.kind}:${installId(t)}`;
}

/** Validation of a device to provision, shared by the API path, the seed and the CSV import. */
export function deviceProblems(
  input: { id?: unknown; model?: unknown; install?: unknown },
  knownModel: (id: string) => boolean,
): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  if (typeof input.id !== 'string' || !isValidDeviceId(input.id)) {
    problems.push({
      field: 'id',
      message: 'must be 1–64 letters, digits, "-" or "_", starting with a letter or digit',
    });
  }
  if (typeof input.model !== 'string' || !knownModel(input.model)) {
    problems.push({ field: 'model', message: `unknown device model ${JSON.stringify(input.model)}` });
  }
  const t = input.install as Partial<Record<string, unknown>> | undefined;
  const kinds: Record<string, string> = {
    household: 'householdId',
    building: 'buildingId',
    unit: 'unitId',
    area: 'areaId',
  };
  const key = typeof t?.kind === 'string' ? kinds[t.kind] : undefined;
  if (!t || !key || typeof t[key] !== 'string' || t[key] === '') {
    problems.push({
      field: 'install',
      message: 'exactly one of householdId, buildingId, unitId or areaId is required',
    });
  }
  return problems;
}

/** Both stored hashes of one device secret: scrypt for GridWatch itself, mosquitto's for a generated password_file. */
export interface DeviceSecretHashes {
  secret_hash: string;
  mosquitto_hash: string | null;
}

/** `hashes`: from hashDeviceSecrets(); a bare scrypt hash leaves the mosquitto hash empty (needs a rotation). */
export function deviceRow(
  input: { id: string; model: string; install: InstallTarget; drill?: boolean },
  placement: PlacementColumns,
  hashes: string | DeviceSecretHashes,
  now: number,
): DeviceTable {
  const { secret_hash, mosquitto_hash } =
    typeof hashes === 'string' ? { secret_hash: hashes, mosquitto_hash: null } : hashes;
  return {
    id: input.id,
    model: input.model,
    install_kind: input.install.kind,
    install_id: installId(input.install),
    ...placement,
    drill: fromBool(input.drill),
    disabled: 0,
    secret_hash,
    mosquitto_hash,
    status: 'unknown',
    last_seen: null,
    created_at: now,
  };
}

type DeviceJoinRow = Selectable<DeviceTable> & { colour: Colour | null };

function placementOf(r: DeviceJoinRow): Placement {
  const p: Placement = {};
  if (r.household_id) p.householdId = r.household_id;
  if (r.unit_id) p.unitId = r.unit_id;
  if (r.building_id) p.buildingId = r.building_id;
  if (r.area_id) p.areaId = r.area_id;
  if (r.grid_id) p.gridId = r.grid_id;
  if (r.community_id) p.communityId = r.community_id;
  if (r.colour) p.colour = r.colour;
  return p;
}

function recordOf(r: DeviceJoinRow): DeviceRecord {
  return {
    id: r.id,
    model: r.model,
    install: installFrom(r.install_kind, r.install_id),
    placement: placementOf(r),
    drill: toBool(r.drill),
    disabled: toBool(r.disabled),
    secretHash: r.secret_hash,
  };
}

function infoOf(r: DeviceJoinRow): DeviceInfo {
  const info: DeviceInfo = {
    id: r.id,
    model: r.model,
    install: installFrom(r.install_kind, r.install_id),
    placement: placementOf(r),
    drill: toBool(r.drill),
    disabled: toBool(r.disabled),
    status: DEVICE_STATUSES.includes(r.status) ? r.status : 'unknown',
    createdAt: iso(r.created_at)!,
  };
  const lastSeen = iso(r.last_seen);
  if (lastSeen) info.lastSeen = lastSeen;
  return info;
}

/** The in-memory device directory; reads never touch the database. */
class MemoryDeviceDirectory implements DeviceDirectory {
  private byId = new Map<string, DeviceRecord>();
  constructor(private readonly load: (id?: string) => Promise<DeviceRecord[]>) {}

  get(deviceId: string): DeviceRecord | undefined {
    return this.byId.get(deviceId);
  }
  async refresh(deviceId?: string): Promise<void> {
    if (deviceId !== undefined) {
      const [rec] = await this.load(deviceId);
      if (rec) this.byId.set(deviceId, rec);
      else this.byId.delete(deviceId);
      return;
    }
    // Build aside and swap, so readers never see a half-loaded directory.
    const next = new Map<string, DeviceRecord>();
    for (const rec of await this.load()) next.set(rec.id, rec);
    this.byId = next;
  }
  all(): Iterable<DeviceRecord> {
    return this.byId.values();
  }
  put(rec: DeviceRecord): void {
    this.byId.set(rec.id, rec);
  }
  get size(): number {
    return this.byId.size;
  }
}

export interface SqlRegistryOptions {
  /** Whether a device model id exists (devices/index.ts); injected so the registry does not depend on devices/. */
  knownModel: (modelId: string) => boolean;
  logger?: Logger;
  /** Session expiry and created_at times; a virtual clock in tests. */
  clock?: Clock;
  /** How often expired sessions are deleted (default hourly; 0 disables the timer). */
  sessionSweepMs?: number;
  /** scrypt cost for hashes written by this registry; only tests and benchmarks lower it. */
  scrypt?: ScryptParams;
}

interface GridIndex {
  communityOfGrid: Map<string, string>;
  gridsOfCommunity: Map<string, string[]>;
  gridsOfStreet: Map<string, string[]>;
}

/** Each hierarchy level's parent column. */
const PARENT_COLUMN = {
  street: 'district_id',
  community: 'street_id',
  grid: 'community_id',
  building: 'grid_id',
  unit: 'building_id',
} as const;

export class SqlRegistry implements Registry {
  readonly name = 'registry';
  readonly devices: MemoryDeviceDirectory;
  readonly knownModel: (modelId: string) => boolean;
  private readonly clock: Clock;
  private readonly log?: Logger;
  private readonly scryptParams?: ScryptParams;
  private index: GridIndex = { communityOfGrid: new Map(), gridsOfCommunity: new Map(), gridsOfStreet: new Map() };
  private stopSweep?: Cancel;

  constructor(
    readonly database: Database,
    private readonly opts: SqlRegistryOptions,
  ) {
    this.knownModel = opts.knownModel;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger;
    this.scryptParams = opts.scrypt;
    this.devices = new MemoryDeviceDirectory((id) => this.loadDeviceRecords(id));
  }

  get db(): Kysely<DB> {
    return this.database.db;
  }
  get dialect(): Dialect {
    return this.database.dialect;
  }

  /** Loads the device directory and the grid index; the schema must be migrated before (src/store/migrate.ts). */
  async start(): Promise<void> {
    await this.reload();
    // Computed now so that the first login of an unknown user does not take twice as long as later ones.
    await dummyHash(this.scryptParams);
    await this.pruneExpiredSessions();
    const every = this.opts.sessionSweepMs ?? 3_600_000;
    if (every > 0) {
      this.stopSweep = this.clock.setInterval(() => {
        this.pruneExpiredSessions().catch((e: unknown) => this.log?.warn({ err: e }, 'session sweep failed'));
      }, every);
    }
    this.log?.info({ devices: this.devices.size, grids: this.index.communityOfGrid.size }, 'registry loaded');
  }

  async stop(): Promise<void> {
    this.stopSweep?.();
    this.stopSweep = undefined;
  }

  /** Re-reads everything cached in memory: call after bulk changes made outside this object (seed, import). */
  async reload(): Promise<void> {
    await this.loadGridIndex();
    await this.devices.refresh();
  }

  /** Hashes a password with this registry's scrypt parameters (the defaults unless a test lowered them). */
  hash(secret: string): Promise<string> {
    return hashSecret(secret, this.scryptParams);
  }

  /** Hashes a generated device secret (see DEVICE_SCRYPT). */
  hashDeviceSecret(secret: string): Promise<string> {
    return hashSecret(secret, this.scryptParams ?? DEVICE_SCRYPT);
  }

  /** Both hashes of a new device secret, as the device row stores them: whenever a secret is made or replaced. */
  async hashDeviceSecrets(secret: string): Promise<DeviceSecretHashes> {
    const [secret_hash, mosquitto_hash] = await Promise.all([this.hashDeviceSecret(secret), mosquittoHash(secret)]);
    return { secret_hash, mosquitto_hash };
  }

  /**
   * Replaces a device's secret with a new one, shown only in the answer: both hashes change together, so the old
   * secret stops working on the embedded broker, the broker hooks and (after the files are regenerated) mosquitto.
   * The caller ends the device's current session (EmbeddedBroker.disconnectDevice) if it must reconnect now.
   */
  async rotateDeviceSecret(id: string): Promise<{ id: string; secret: string }> {
    const secret = generateSecret();
    const hashes = await this.hashDeviceSecrets(secret);
    const res = await this.db.updateTable('device').set(hashes).where('id', '=', id).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new RegistryError('not_found', `device ${id} does not exist`);
    await this.devices.refresh(id);
    this.log?.info({ deviceId: id }, 'device secret rotated');
    return { id, secret };
  }

  /** Every device with its mosquitto hash (null: provisioned before the hash was kept), ordered by id. */
  async mosquittoAccounts(): Promise<Array<{ id: string; disabled: boolean; mosquittoHash: string | null }>> {
    const rows = await this.db
      .selectFrom('device')
      .select(['id', 'disabled', 'mosquitto_hash'])
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ id: r.id, disabled: toBool(r.disabled), mosquittoHash: r.mosquitto_hash }));
  }

  private async loadGridIndex(): Promise<void> {
    const rows = await this.db
      .selectFrom('grid')
      .innerJoin('community', 'community.id', 'grid.community_id')
      .select(['grid.id as id', 'grid.community_id as community_id', 'community.street_id as street_id'])
      .orderBy('grid.id')
      .execute();
    const index: GridIndex = { communityOfGrid: new Map(), gridsOfCommunity: new Map(), gridsOfStreet: new Map() };
    for (const r of rows) {
      index.communityOfGrid.set(r.id, r.community_id);
      const c = index.gridsOfCommunity.get(r.community_id) ?? [];
      c.push(r.id);
      index.gridsOfCommunity.set(r.community_id, c);
      const s = index.gridsOfStreet.get(r.street_id) ?? [];
      s.push(r.id);
      index.gridsOfStreet.set(r.street_id, s);
    }
    this.index = index;
  }

  private deviceQuery(q: Q = this.db) {
    return q
      .selectFrom('device')
      .leftJoin('household', 'household.id', 'device.household_id')
      .selectAll('device')
      .select('household.colour as colour');
  }

  private async loadDeviceRecords(id?: string): Promise<DeviceRecord[]> {
    let query = this.deviceQuery();
    if (id !== undefined) query = query.where('device.id', '=', id);
    const rows = await query.execute();
    return rows.map((r) => recordOf(r as DeviceJoinRow));
  }

  // ---------------------------------------------------------------- hierarchy

  async listNodes(level: HierarchyNode['level'], parentId?: string): Promise<HierarchyNode[]> {
    const db = this.db;
    const node = (id: string, name: string, parent: string | null | undefined): HierarchyNode =>
      parent ? { id, name, parentId: parent, level } : { id, name, level };
    switch (level) {
      case 'district': {
        const rows = await db.selectFrom('district').select(['id', 'name']).orderBy('id').execute();
        return rows.map((r) => node(r.id, r.name, undefined));
      }
      case 'street':
      case 'community':
      case 'grid':
      case 'building':
      case 'unit': {
        const parentColumn = PARENT_COLUMN[level];
        // The five tables share (id, name, <parent>_id); Kysely cannot type a table chosen at run time, so the
        // query is typed as the street table's, which has the same shape.
        let q = db
          .selectFrom(level as 'street')
          .select(['id', 'name', `${parentColumn as 'district_id'} as parent`])
          .orderBy('id');
        if (parentId !== undefined) q = q.where(parentColumn as 'district_id', '=', parentId);
        return (await q.execute()).map((r) => node(r.id, r.name, r.parent));
      }
      case 'area': {
        // An area's parent is its building when it has one, else its community.
        let q = db.selectFrom('charging_area').select(['id', 'name', 'building_id', 'community_id']).orderBy('id');
        if (parentId !== undefined) {
          q = q.where((eb) =>
            eb.or([
              eb('building_id', '=', parentId),
              eb.and([eb('building_id', 'is', null), eb('community_id', '=', parentId)]),
            ]),
          );
        }
        return (await q.execute()).map((r) => node(r.id, r.name, r.building_id ?? r.community_id));
      }
      default:
        throw invalid([{ field: 'level', message: `unknown level ${JSON.stringify(level)}` }]);
    }
  }

  // ---------------------------------------------------------------- households

  async listHouseholds(
    filter: { gridId?: string; colour?: Colour; buildingId?: string },
    scope: Scope,
    page: PageOpts,
  ): Promise<Page<Household>> {
    const { limit, after } = pageArgs(page);
    if (filter.colour !== undefined && !isColour(filter.colour)) {
      throw invalid([{ field: 'colour', message: `must be one of ${COLOURS.join(', ')}` }]);
    }
    if (!scope.all && scope.gridIds.length === 0) return { items: [] };
    let q = this.db
      .selectFrom('household')
      .selectAll()
      .orderBy('id')
      .limit(limit + 1);
    if (!scope.all) q = q.where('grid_id', 'in', [...scope.gridIds]);
    if (filter.gridId !== undefined) q = q.where('grid_id', '=', filter.gridId);
    if (filter.colour !== undefined) q = q.where('colour', '=', filter.colour);
    if (filter.buildingId !== undefined) q = q.where('building_id', '=', filter.buildingId);
    if (after !== undefined) q = q.where('id', '>', after);
    const { rows, nextCursor } = finishPage(await q.execute(), limit);
    const items = await this.assembleHouseholds(rows);
    return nextCursor ? { items, nextCursor } : { items };
  }

  async getHousehold(id: string): Promise<Household | undefined> {
    const row = await this.db.selectFrom('household').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return (await this.assembleHouseholds([row]))[0];
  }

  async residentNames(householdId: string): Promise<Map<string, string>> {
    const rows = await this.db
      .selectFrom('resident')
      .select(['id', 'full_name'])
      .where('household_id', '=', householdId)
      .orderBy('id')
      .execute();
    return new Map(rows.map((r) => [r.id, r.full_name]));
  }

  /** Attaches residents (masked) and emergency contacts with two queries for the whole page. */
  private async assembleHouseholds(rows: Selectable<HouseholdTable>[]): Promise<Household[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const residents = new Map<string, Resident[]>();
    const contacts = new Map<string, Household['emergencyContacts']>();
    for (const part of chunks(ids)) {
      const rs = await this.db
        .selectFrom('resident')
        .selectAll()
        .where('household_id', 'in', part)
        .orderBy('household_id')
        .orderBy('id')
        .execute();
      for (const r of rs) {
        const res: Resident = {
          id: r.id,
          displayName: maskName(r.full_name),
          loneElderly: toBool(r.lone_elderly),
          atRisk: toBool(r.at_risk),
        };
        if (r.birth_year !== null) res.birthYear = Number(r.birth_year);
        const list = residents.get(r.household_id) ?? [];
        list.push(res);
        residents.set(r.household_id, list);
      }
      const cs = await this.db
        .selectFrom('emergency_contact')
        .selectAll()
        .where('household_id', 'in', part)
        .orderBy('household_id')
        .orderBy('position')
        .execute();
      for (const c of cs) {
        const list = contacts.get(c.household_id) ?? [];
        list.push({ name: c.name, phone: c.phone, relation: c.relation });
        contacts.set(c.household_id, list);
      }
    }
    return rows.map((r) => ({
      id: r.id,
      address: r.address,
      communityId: r.community_id,
      gridId: r.grid_id,
      buildingId: r.building_id,
      unitId: r.unit_id,
      room: r.room,
      colour: r.colour,
      loneElderly: toBool(r.lone_elderly),
      atRisk: toBool(r.at_risk),
      residents: residents.get(r.id) ?? [],
      emergencyContacts: contacts.get(r.id) ?? [],
    }));
  }

  // ---------------------------------------------------------------- devices

  async listDevices(
    filter: { householdId?: string; buildingId?: string; gridId?: string; model?: string; status?: DeviceStatus },
    scope: Scope,
    page: PageOpts,
  ): Promise<Page<DeviceInfo>> {
    const { limit, after } = pageArgs(page);
    if (filter.status !== undefined && !DEVICE_STATUSES.includes(filter.status)) {
      throw invalid([{ field: 'status', message: `must be one of ${DEVICE_STATUSES.join(', ')}` }]);
    }
    if (!scope.all && scope.gridIds.length === 0) return { items: [] };
    let q = this.deviceQuery()
      .orderBy('device.id')
      .limit(limit + 1);
    // Devices without a grid (an area that belongs to no building) are visible only to community-wide scopes.
    if (!scope.all) q = q.where('device.grid_id', 'in', [...scope.gridIds]);
    if (filter.householdId !== undefined) q = q.where('device.household_id', '=', filter.householdId);
    if (filter.buildingId !== undefined) q = q.where('device.building_id', '=', filter.buildingId);
    if (filter.gridId !== undefined) q = q.where('device.grid_id', '=', filter.gridId);
    if (filter.model !== undefined) q = q.where('device.model', '=', filter.model);
    if (filter.status !== undefined) q = q.where('device.status', '=', filter.status);
    if (after !== undefined) q = q.where('device.id', '>', after);
    const { rows, nextCursor } = finishPage((await q.execute()) as DeviceJoinRow[], limit);
    const items = rows.map(infoOf);
    return nextCursor ? { items, nextCursor } : { items };
  }

  async getDevice(id: string): Promise<DeviceInfo | undefined> {
    const row = await this.deviceQuery().where('device.id', '=', id).executeTakeFirst();
    return row ? infoOf(row as DeviceJoinRow) : undefined;
  }

  async provisionDevice(input: {
    id: string;
    model: string;
    install: InstallTarget;
    drill?: boolean;
  }): Promise<{ id: string; secret: string }> {
    const problems = deviceProblems(input, this.knownModel);
    if (input.drill !== undefined && typeof input.drill !== 'boolean') {
      problems.push({ field: 'drill', message: 'must be a boolean' });
    }
    if (problems.length > 0) throw invalid(problems);
    const placement = (await resolveInstalls(this.db, [input.install])).get(installKey(input.install));
    if (!placement) {
      throw invalid([
        { field: 'install', message: `${input.install.kind} ${installId(input.install)} does not exist` },
      ]);
    }
    const existing = await this.db.selectFrom('device').select('id').where('id', '=', input.id).executeTakeFirst();
    if (existing) throw new RegistryError('conflict', `device ${input.id} already exists`);
    const secret = generateSecret();
    const row = deviceRow(input, placement, await this.hashDeviceSecrets(secret), this.clock.now());
    try {
      await this.db.insertInto('device').values(row).execute();
    } catch (e) {
      // Two provisioning calls racing on one id: the second loses here.
      if (isUniqueViolation(e)) throw new RegistryError('conflict', `device ${input.id} already exists`);
      throw e;
    }
    await this.devices.refresh(input.id);
    this.log?.info({ deviceId: input.id, model: input.model, drill: !!input.drill }, 'device provisioned');
    return { id: input.id, secret };
  }

  /**
   * One statement per 300 rows inside one transaction: UPDATE … FROM a VALUES list works in both PostgreSQL and
   * SQLite ≥ 3.33. last_seen never moves backwards (several ingest nodes may report the same device).
   */
  async saveDeviceStates(rows: readonly DeviceStateRow[]): Promise<void> {
    const latest = new Map<string, DeviceStateRow>();
    for (const r of rows) {
      if (!DEVICE_STATUSES.includes(r.status)) continue;
      const prev = latest.get(r.deviceId);
      if (!prev || (r.lastSeen ?? 0) >= (prev.lastSeen ?? 0)) latest.set(r.deviceId, r);
    }
    if (latest.size === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (const part of chunks([...latest.values()], 300)) {
        const values = sql.join(
          part.map(
            (r) =>
              sql`(${r.deviceId}, ${r.status}, cast(${r.lastSeen === undefined ? null : Math.trunc(r.lastSeen)} as bigint))`,
          ),
        );
        await sql`with v(id, status, last_seen) as (values ${values})
          update device set
            status = v.status,
            last_seen = case
              when v.last_seen is null then device.last_seen
              when device.last_seen is null or v.last_seen > device.last_seen then v.last_seen
              else device.last_seen end
          from v where device.id = v.id`.execute(trx);
      }
    });
  }

  /** Persisted status and last-seen of every device, for the status tracker to resume from after a restart. */
  async loadDeviceStates(): Promise<DeviceStateRow[]> {
    const rows = await this.db.selectFrom('device').select(['id', 'status', 'last_seen']).orderBy('id').execute();
    return rows.map((r) => {
      const row: DeviceStateRow = {
        deviceId: r.id,
        status: DEVICE_STATUSES.includes(r.status) ? r.status : 'unknown',
      };
      if (r.last_seen !== null) row.lastSeen = Number(r.last_seen);
      return row;
    });
  }

  // ---------------------------------------------------------------- staff

  async listStaff(page: PageOpts): Promise<Page<Staff>> {
    const { limit, after } = pageArgs(page);
    let q = this.db
      .selectFrom('staff')
      .selectAll()
      .orderBy('id')
      .limit(limit + 1);
    if (after !== undefined) q = q.where('id', '>', after);
    const { rows, nextCursor } = finishPage(await q.execute(), limit);
    const items = await this.assembleStaff(rows);
    return nextCursor ? { items, nextCursor } : { items };
  }

  async getStaff(id: string): Promise<Staff | undefined> {
    const row = await this.db.selectFrom('staff').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? (await this.assembleStaff([row]))[0] : undefined;
  }

  private async assembleStaff(rows: Selectable<DB['staff']>[], q: Q = this.db): Promise<Staff[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const roles = new Map<string, Role[]>();
    const cover = new Map<string, Coverage>();
    for (const part of chunks(ids)) {
      for (const r of await q
        .selectFrom('staff_role')
        .selectAll()
        .where('staff_id', 'in', part)
        .orderBy('role')
        .execute()) {
        if (!isRole(r.role)) continue;
        const list = roles.get(r.staff_id) ?? [];
        list.push(r.role);
        roles.set(r.staff_id, list);
      }
      for (const c of await q
        .selectFrom('staff_coverage')
        .selectAll()
        .where('staff_id', 'in', part)
        .orderBy('node_id')
        .execute()) {
        const cv = cover.get(c.staff_id) ?? { gridIds: [], communityIds: [], streetIds: [] };
        if (c.level === 'grid') cv.gridIds.push(c.node_id);
        else if (c.level === 'community') cv.communityIds.push(c.node_id);
        else if (c.level === 'street') cv.streetIds.push(c.node_id);
        cover.set(c.staff_id, cv);
      }
    }
    return rows.map((r) => ({
      id: r.id,
      username: r.username,
      name: r.name,
      // The bootstrap admin has no phone; '' keeps the Staff shape simple and is never a valid SMS recipient.
      phone: r.phone ?? '',
      roles: roles.get(r.id) ?? [],
      coverage: cover.get(r.id) ?? { gridIds: [], communityIds: [], streetIds: [] },
      disabled: toBool(r.disabled),
      createdAt: iso(r.created_at)!,
    }));
  }

  /** Checks that coverage nodes exist; problems are reported per missing id. */
  private async coverageProblems(cov: Partial<Coverage> | undefined, q: Q = this.db): Promise<ValidationProblem[]> {
    const problems: ValidationProblem[] = [];
    if (!cov) return problems;
    const levels: Array<['gridIds' | 'communityIds' | 'streetIds', 'grid' | 'community' | 'street']> = [
      ['gridIds', 'grid'],
      ['communityIds', 'community'],
      ['streetIds', 'street'],
    ];
    for (const [key, table] of levels) {
      const ids = cov[key];
      if (ids === undefined) continue;
      if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) {
        problems.push({ field: `coverage.${key}`, message: 'must be a list of ids' });
        continue;
      }
      const unique = [...new Set(ids)];
      const found = new Set<string>();
      for (const part of chunks(unique)) {
        for (const r of await q.selectFrom(table).select('id').where('id', 'in', part).execute()) found.add(r.id);
      }
      for (const id of unique) {
        if (!found.has(id)) problems.push({ field: `coverage.${key}`, message: `${table} ${id} does not exist` });
      }
    }
    return problems;
  }

  private readonly staffListeners: (() => void)[] = [];

  /** Called after a staff account was created or changed (caches of who gets SMS forget what they knew). */
  onStaffChange(listener: () => void): void {
    this.staffListeners.push(listener);
  }

  private staffChanged(): void {
    for (const l of this.staffListeners) l();
  }

  async createStaff(input: {
    username: string;
    name: string;
    phone: string;
    roles: Role[];
    coverage?: Partial<Coverage>;
    password: string;
  }): Promise<Staff> {
    const problems = staffProblems(input, true);
    problems.push(...(await this.coverageProblems(input.coverage)));
    if (problems.length > 0) throw invalid(problems);
    const taken = await this.db
      .selectFrom('staff')
      .select('id')
      .where('username', '=', input.username)
      .executeTakeFirst();
    if (taken) throw new RegistryError('conflict', `username ${input.username} is taken`);
    const row = {
      id: staffIdFor(input.username),
      username: input.username,
      name: input.name.trim(),
      phone: input.phone,
      password_hash: await this.hash(input.password),
      disabled: 0,
      created_at: this.clock.now(),
    };
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('staff').values(row).execute();
        await writeRolesAndCoverage(trx, row.id, input.roles, input.coverage);
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new RegistryError('conflict', `username ${input.username} is taken`);
      throw e;
    }
    this.staffChanged();
    return (await this.getStaff(row.id))!;
  }

  async updateStaff(
    id: string,
    patch: { name?: string; phone?: string; roles?: Role[]; coverage?: Partial<Coverage>; disabled?: boolean },
  ): Promise<Staff> {
    const existing = await this.db.selectFrom('staff').select('id').where('id', '=', id).executeTakeFirst();
    if (!existing) throw new RegistryError('not_found', `staff ${id} does not exist`);
    const problems = staffProblems(patch, false);
    if (patch.disabled !== undefined && typeof patch.disabled !== 'boolean') {
      problems.push({ field: 'disabled', message: 'must be a boolean' });
    }
    problems.push(...(await this.coverageProblems(patch.coverage)));
    if (problems.length > 0) throw invalid(problems);
    await this.db.transaction().execute(async (trx) => {
      const set: Partial<DB['staff']> = {};
      if (patch.name !== undefined) set.name = patch.name.trim();
      if (patch.phone !== undefined) set.phone = patch.phone;
      if (patch.disabled !== undefined) set.disabled = fromBool(patch.disabled);
      if (Object.keys(set).length > 0) await trx.updateTable('staff').set(set).where('id', '=', id).execute();
      if (patch.roles !== undefined) await trx.deleteFrom('staff_role').where('staff_id', '=', id).execute();
      if (patch.coverage !== undefined) {
        for (const [key, level] of COVERAGE_LEVELS) {
          if (patch.coverage[key] !== undefined) {
            await trx.deleteFrom('staff_coverage').where('staff_id', '=', id).where('level', '=', level).execute();
          }
        }
      }
      await writeRolesAndCoverage(trx, id, patch.roles ?? [], patch.coverage);
      // A disabled account must lose access at once, not when its sessions expire.
      if (patch.disabled === true) await trx.deleteFrom('session').where('staff_id', '=', id).execute();
    });
    this.staffChanged();
    return (await this.getStaff(id))!;
  }

  /** Sets a new password and ends every session of the account (a reset is often a reaction to a leak). */
  async setPassword(id: string, password: string): Promise<void> {
    if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH) {
      throw invalid([{ field: 'password', message: `must be at least ${MIN_PASSWORD_LENGTH} characters` }]);
    }
    const hash = await this.hash(password);
    const found = await this.db.transaction().execute(async (trx) => {
      const r = await trx.updateTable('staff').set({ password_hash: hash }).where('id', '=', id).executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      await trx.deleteFrom('session').where('staff_id', '=', id).execute();
      return true;
    });
    if (!found) throw new RegistryError('not_found', `staff ${id} does not exist`);
  }

  async verifyLogin(username: string, password: string): Promise<Staff | undefined> {
    const row =
      typeof username === 'string' && isValidUsername(username)
        ? await this.db.selectFrom('staff').selectAll().where('username', '=', username).executeTakeFirst()
        : undefined;
    const pw = typeof password === 'string' ? password : '';
    // Always pay one scrypt, also for unknown users, so the answer time does not tell which usernames exist.
    const ok = await verifySecret(pw, row?.password_hash ?? (await dummyHash(this.scryptParams)));
    if (!row || !ok || toBool(row.disabled)) return undefined;
    return (await this.assembleStaff([row]))[0];
  }

  async ensureAdmin(password: string): Promise<void> {
    if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH) {
      throw invalid([
        { field: 'GRIDWATCH_ADMIN_PASSWORD', message: `must be at least ${MIN_PASSWORD_LENGTH} characters` },
      ]);
    }
    const row = await this.db.selectFrom('staff').selectAll().where('username', '=', ADMIN_USERNAME).executeTakeFirst();
    if (row) {
      const hasRole = await this.db
        .selectFrom('staff_role')
        .select('role')
        .where('staff_id', '=', row.id)
        .where('role', '=', 'admin')
        .executeTakeFirst();
      // Runs at every start: leave the account (and its sessions) alone when nothing changed.
      if (hasRole && !toBool(row.disabled) && (await verifySecret(password, row.password_hash))) return;
      const hash = await this.hash(password);
      await this.db.transaction().execute(async (trx) => {
        await trx.updateTable('staff').set({ password_hash: hash, disabled: 0 }).where('id', '=', row.id).execute();
        if (!hasRole) await trx.insertInto('staff_role').values({ staff_id: row.id, role: 'admin' }).execute();
        await trx.deleteFrom('session').where('staff_id', '=', row.id).execute();
      });
      this.log?.info('bootstrap admin password reset');
      return;
    }
    const id = staffIdFor(ADMIN_USERNAME);
    const hash = await this.hash(password);
    try {
      await this.insertAdmin(id, hash);
    } catch (e) {
      // Another node sharing the database created it at the same moment (from the same environment): done.
      if (isUniqueViolation(e)) return;
      throw e;
    }
    this.log?.info('bootstrap admin created');
  }

  private async insertAdmin(id: string, hash: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('staff')
        .values({
          id,
          username: ADMIN_USERNAME,
          name: '系统管理员',
          phone: null,
          password_hash: hash,
          disabled: 0,
          created_at: this.clock.now(),
        })
        .execute();
      await trx.insertInto('staff_role').values({ staff_id: id, role: 'admin' }).execute();
    });
  }

  // ---------------------------------------------------------------- sessions

  /** The session table with the console's columns (migration 007_console_sessions). */
  private get sessions(): Kysely<SessionDB> {
    return this.db as unknown as Kysely<SessionDB>;
  }

  async createSession(
    staffId: string,
    ttlMs: number,
    opts: { device?: SessionDevice; sliding?: boolean; userAgent?: string } = {},
  ): Promise<{ token: string; expiresAt: Date; id: string; device: SessionDevice }> {
    const device = opts.device ?? 'desk';
    const problems: ValidationProblem[] = [];
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) problems.push({ field: 'ttlMs', message: 'must be positive' });
    if (!SESSION_DEVICES.includes(device)) {
      problems.push({ field: 'device', message: `must be one of ${SESSION_DEVICES.join(', ')}` });
    }
    if (problems.length > 0) throw invalid(problems);
    const staff = await this.db
      .selectFrom('staff')
      .select(['id', 'disabled'])
      .where('id', '=', staffId)
      .executeTakeFirst();
    if (!staff) throw new RegistryError('not_found', `staff ${staffId} does not exist`);
    if (toBool(staff.disabled)) throw new RegistryError('invalid', `staff ${staffId} is disabled`);
    const token = randomBytes(32).toString('base64url');
    const id = `s-${randomBytes(12).toString('base64url')}`;
    const now = this.clock.now();
    const window = Math.round(ttlMs);
    const expiresAt = now + window;
    const userAgent = typeof opts.userAgent === 'string' ? opts.userAgent.trim().slice(0, MAX_USER_AGENT) : '';
    await this.sessions
      .insertInto('session')
      .values({
        token_hash: hashToken(token),
        id,
        staff_id: staffId,
        device,
        expires_at: expiresAt,
        created_at: now,
        last_used_at: now,
        user_agent: userAgent === '' ? null : userAgent,
        sliding_ms: opts.sliding ? window : null,
      })
      .execute();
    return { token, expiresAt: new Date(expiresAt), id, device };
  }

  async resolveSession(token: string): Promise<Staff | undefined> {
    return (await this.authenticateSession(token))?.staff;
  }

  /**
   * The staff member and session of a token. A use is recorded at most once an hour per session (a conditional
   * UPDATE, so several nodes do not all write): last_used_at, and for a sliding session the expiry, moved to
   * `sliding_ms` after now. A session of a disabled account resolves to nothing.
   */
  async authenticateSession(
    token: string,
  ): Promise<{ staff: Staff; session: SessionInfo; renewed: boolean } | undefined> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 200) return undefined;
    const now = this.clock.now();
    const tokenHash = hashToken(token);
    const row = await this.sessions
      .selectFrom('session')
      .innerJoin('staff', 'staff.id', 'session.staff_id')
      .selectAll('staff')
      .select([
        'session.id as s_id',
        'session.device as s_device',
        'session.created_at as s_created_at',
        'session.last_used_at as s_last_used_at',
        'session.expires_at as s_expires_at',
        'session.user_agent as s_user_agent',
        'session.sliding_ms as s_sliding_ms',
      ])
      .where('session.token_hash', '=', tokenHash)
      .where('session.expires_at', '>', now)
      .executeTakeFirst();
    if (!row || toBool(row.disabled)) return undefined;
    let lastUsed = Number(row.s_last_used_at ?? row.s_created_at);
    let expires = Number(row.s_expires_at);
    let renewed = false;
    if (now - lastUsed >= SESSION_TOUCH_MS) {
      const sliding = row.s_sliding_ms === null ? undefined : Number(row.s_sliding_ms);
      const nextExpires = sliding !== undefined ? Math.max(expires, now + sliding) : expires;
      const r = await this.sessions
        .updateTable('session')
        .set({ last_used_at: now, expires_at: nextExpires })
        .where('token_hash', '=', tokenHash)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', now - SESSION_TOUCH_MS)]))
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) > 0) {
        renewed = nextExpires !== expires;
        lastUsed = now;
        expires = nextExpires;
      }
    }
    const staff = (await this.assembleStaff([row]))[0]!;
    return {
      staff,
      renewed,
      session: sessionInfo({
        id: row.s_id,
        staff_id: row.id,
        device: row.s_device,
        created_at: row.s_created_at,
        last_used_at: lastUsed,
        expires_at: expires,
        user_agent: row.s_user_agent,
      }),
    };
  }

  async revokeSession(token: string): Promise<void> {
    if (typeof token !== 'string' || token.length === 0) return;
    await this.db.deleteFrom('session').where('token_hash', '=', hashToken(token)).execute();
  }

  async listSessions(staffId: string): Promise<SessionInfo[]> {
    const rows = await this.sessions
      .selectFrom('session')
      .select(SESSION_COLUMNS)
      .where('staff_id', '=', staffId)
      .where('expires_at', '>', this.clock.now())
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    return rows.map(sessionInfo);
  }

  async getSession(id: string): Promise<SessionInfo | undefined> {
    if (typeof id !== 'string' || id.length === 0 || id.length > 100) return undefined;
    const row = await this.sessions
      .selectFrom('session')
      .select(SESSION_COLUMNS)
      .where('id', '=', id)
      .where('expires_at', '>', this.clock.now())
      .executeTakeFirst();
    return row ? sessionInfo(row) : undefined;
  }

  async revokeSessionById(id: string): Promise<boolean> {
    if (typeof id !== 'string' || id.length === 0 || id.length > 100) return false;
    const r = await this.sessions.deleteFrom('session').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Returns how many live sessions ended (expired ones are deleted too, not counted). */
  async revokeStaffSessions(staffId: string): Promise<number> {
    const now = this.clock.now();
    const live = await this.db
      .deleteFrom('session')
      .where('staff_id', '=', staffId)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    await this.db.deleteFrom('session').where('staff_id', '=', staffId).execute();
    return Number(live.numDeletedRows);
  }

  /** Deletes expired sessions; returns how many. Expired ones are already refused, this only keeps the table small. */
  async pruneExpiredSessions(): Promise<number> {
    const r = await this.db.deleteFrom('session').where('expires_at', '<=', this.clock.now()).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  // ---------------------------------------------------------------- scope

  scopeOf(staff: Staff): Scope {
    if (staff.roles.some((r) => ALL_SCOPE_ROLES.has(r))) return { all: true, gridIds: [] };
    return { all: false, gridIds: this.coveredGrids(staff) };
  }

  coveredGrids(staff: Staff): string[] {
    const grids = new Set<string>(staff.coverage.gridIds);
    for (const c of staff.coverage.communityIds) for (const g of this.index.gridsOfCommunity.get(c) ?? []) grids.add(g);
    for (const s of staff.coverage.streetIds) for (const g of this.index.gridsOfStreet.get(s) ?? []) grids.add(g);
    return [...grids].sort();
  }
}

/** A session's use is written at most this often (sliding expiry, last use): reads stay reads. */
export const SESSION_TOUCH_MS = 3_600_000;
const MAX_USER_AGENT = 100;

/** The session table with the columns of migration 007_console_sessions. */
interface ConsoleSessionTable extends SessionTable {
  id: string | null;
  device: string;
  last_used_at: number | null;
  user_agent: string | null;
  /** the window each use extends a sliding (phone) session by; null: a fixed end */
  sliding_ms: number | null;
}
interface SessionDB extends Omit<DB, 'session'> {
  session: ConsoleSessionTable;
}

const SESSION_COLUMNS = [
  'id',
  'staff_id',
  'device',
  'created_at',
  'last_used_at',
  'expires_at',
  'user_agent',
] as const satisfies ReadonlyArray<keyof ConsoleSessionTable>;

function sessionInfo(r: Pick<ConsoleSessionTable, (typeof SESSION_COLUMNS)[number]>): SessionInfo {
  const info: SessionInfo = {
    id: r.id ?? '',
    staffId: r.staff_id,
    device: r.device === 'phone' ? 'phone' : 'desk',
    createdAt: iso(r.created_at)!,
    lastUsedAt: iso(r.last_used_at ?? r.created_at)!,
    expiresAt: iso(r.expires_at)!,
  };
  if (r.user_agent) info.userAgent = r.user_agent;
  return info;
}

const COVERAGE_LEVELS: ReadonlyArray<['gridIds' | 'communityIds' | 'streetIds', 'grid' | 'community' | 'street']> = [
  ['gridIds', 'grid'],
  ['communityIds', 'community'],
  ['streetIds', 'street'],
];

/** Staff ids are derived from the (immutable) username: readable in logs and stable across re-imports. */
export function staffIdFor(username: string): string {
  return `st-${username}`;
}

export async function writeRolesAndCoverage(
  trx: Q,
  staffId: string,
  roles: readonly Role[],
  coverage: Partial<Coverage> | undefined,
): Promise<void> {
  const uniqueRoles = [...new Set(roles)];
  if (uniqueRoles.length > 0) {
    await trx
      .insertInto('staff_role')
      .values(uniqueRoles.map((role) => ({ staff_id: staffId, role })))
      .execute();
  }
  const cov: Array<{ staff_id: string; level: 'grid' | 'community' | 'street'; node_id: string }> = [];
  for (const [key, level] of COVERAGE_LEVELS) {
    for (const nodeId of new Set(coverage?.[key] ?? [])) cov.push({ staff_id: staffId, level, node_id: nodeId });
  }
  for (const part of chunks(cov)) await trx.insertInto('staff_coverage').values(part).execute();
}

/** Field checks of a staff create (all required) or update (only what is present). */
export function staffProblems(
  input: { username?: unknown; name?: unknown; phone?: unknown; roles?: unknown; password?: unknown },
  create: boolean,
): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  if (create || input.username !== undefined) {
    if (!isValidUsername(input.username)) {
      problems.push({ field: 'username', message: 'must be 3–32 characters of a-z, 0-9, ".", "_" or "-"' });
    }
  }
  if (create || input.name !== undefined) {
    if (typeof input.name !== 'string' || input.name.trim().length === 0 || input.name.length > 100) {
      problems.push({ field: 'name', message: 'must be a non-empty name of at most 100 characters' });
    }
  }
  if (create || input.phone !== undefined) {
    if (!isValidPhone(input.phone)) {
      problems.push({ field: 'phone', message: 'must be an E.164 number such as +8613812345678' });
    }
  }
  if (create || input.roles !== undefined) {
    if (!Array.isArray(input.roles)) {
      problems.push({ field: 'roles', message: 'must be a list of roles' });
    } else {
      for (const r of input.roles) {
        if (!isRole(r)) problems.push({ field: 'roles', message: `unknown role ${JSON.stringify(r)}` });
      }
    }
  }
  if (create || input.password !== undefined) {
    if (typeof input.password !== 'string' || input.password.length < MIN_PASSWORD_LENGTH) {
      problems.push({ field: 'password', message: `must be at least ${MIN_PASSWORD_LENGTH} characters` });
    }
  }
  return problems;
}
