/**
 * The relational store: one Kysely query layer over SQLite (embedded default) and PostgreSQL (deployed).
 *
 * Conventions that keep every query portable between the two:
 * - timestamps are epoch milliseconds in `bigint` columns (SQLite stores them as INTEGER; for PostgreSQL the pool
 *   parses int8 into a JS number, exact up to 2^53, i.e. far beyond any date we store). Numbers compare and sort
 *   the same way in both databases, which ISO text with mixed offsets would not.
 * - booleans are `integer` 0/1 (better-sqlite3 refuses to bind JS booleans; PostgreSQL's boolean type would need a
 *   different literal per dialect). Convert with `toBool` / `fromBool`.
 * - JSON is stored as text and parsed in code.
 * - ids are text chosen by the application (readable, stable: see src/registry/seed.ts), so no autoincrement
 *   syntax differs between the dialects.
 *
 * Other modules add their tables to `DB` below and their migrations to src/store/migrations.ts.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { DeviceStatus } from '../contracts/canonical.ts';
import type { Colour } from '../registry/types.ts';

/** 0 or 1; see the conventions above. */
export type Bool = number;

export interface DistrictTable {
  id: string;
  name: string;
}
export interface StreetTable {
  id: string;
  district_id: string;
  name: string;
}
export interface CommunityTable {
  id: string;
  street_id: string;
  name: string;
}
export interface GridTable {
  id: string;
  community_id: string;
  name: string;
}
/** A building belongs to exactly one grid (the unit of responsibility); community_id is kept for fast filters. */
export interface BuildingTable {
  id: string;
  grid_id: string;
  community_id: string;
  name: string;
}
/** A unit (单元, stairwell) of a building. */
export interface UnitTable {
  id: string;
  building_id: string;
  name: string;
}
/** A central e-bike charging area: attached to a building, or free-standing in a community (building_id null). */
export interface ChargingAreaTable {
  id: string;
  community_id: string;
  building_id: string | null;
  name: string;
}
/**
 * A household. building/grid/community are denormalised from the unit so that the hot lookups (households of a
 * grid, scope filters) are one indexed column; they are written together with unit_id and never diverge because
 * no code path moves a unit to another building.
 */
export interface HouseholdTable {
  id: string;
  unit_id: string;
  building_id: string;
  grid_id: string;
  community_id: string;
  room: string;
  address: string;
  colour: Colour;
  lone_elderly: Bool;
  at_risk: Bool;
  created_at: number;
}
/** full_name is personal data: only ever shown masked unless a later feature allows more. */
export interface ResidentTable {
  id: string;
  household_id: string;
  full_name: string;
  birth_year: number | null;
  lone_elderly: Bool;
  at_risk: Bool;
}
export interface EmergencyContactTable {
  id: string;
  household_id: string;
  /** order of calling, 0 first */
  position: number;
  name: string;
  phone: string;
  relation: string;
}
export interface StaffTable {
  id: string;
  username: string;
  name: string;
  /** E.164; null only for the bootstrap admin, who is created without one. */
  phone: string | null;
  /** scrypt$N$r$p$salt$hash */
  password_hash: string;
  disabled: Bool;
  created_at: number;
}
export interface StaffRoleTable {
  staff_id: string;
  role: string;
}
export interface StaffCoverageTable {
  staff_id: string;
  level: 'grid' | 'community' | 'street';
  node_id: string;
}
/** Only the sha256 of a session token is stored, so a leaked table does not leak usable tokens. */
export interface SessionTable {
  token_hash: string;
  staff_id: string;
  expires_at: number;
  created_at: number;
}
/**
 * A device. install_kind/install_id is what was provisioned; the placement columns (household … community) are
 * resolved once at provisioning so that listing by household, building or grid is an indexed lookup. The colour
 * is deliberately NOT copied here: households are re-classified over time, so it is joined from household.
 */
export interface DeviceTable {
  id: string;
  model: string;
  install_kind: 'household' | 'building' | 'unit' | 'area';
  install_id: string;
  household_id: string | null;
  unit_id: string | null;
  building_id: string | null;
  area_id: string | null;
  grid_id: string | null;
  community_id: string | null;
  drill: Bool;
  disabled: Bool;
  secret_hash: string;
  /** mosquitto's `$7$…` hash of the same secret, for a generated password_file; null for older devices */
  mosquitto_hash: string | null;
  status: DeviceStatus;
  last_seen: number | null;
  created_at: number;
}

/**
 * An alert (src/alerts/service.ts). The placement columns are copied from the alert's subject when it opens, so the
 * console's filters (household, grid) and scope checks are one indexed column, like device rows. `key` is the dedup
 * key (`<type>|<keyOn>:<id>`, src/alerts/types.ts); a partial unique index allows one row per key while the status
 * is open or acknowledged. Evidence is bounded JSON text (the first and the latest items).
 */
export interface AlertTable {
  id: string;
  type: string;
  category: string;
  severity: string;
  status: string;
  key: string;
  household_id: string | null;
  unit_id: string | null;
  building_id: string | null;
  area_id: string | null;
  grid_id: string | null;
  community_id: string | null;
  device_id: string | null;
  colour: Colour | null;
  summary: string;
  count: number;
  first_seen: number;
  last_seen: number;
  not_before: number | null;
  drill: Bool;
  evidence: string;
  resolved_at: number | null;
  outcome: string | null;
  acknowledged_at: number | null;
  acknowledged_by: string | null;
  updated_at: number;
}
/** Every change of an alert, in order (`seq` from 1 per alert). */
export interface AlertTimelineTable {
  alert_id: string;
  seq: number;
  ts: number;
  action: string;
  by: string;
  via: string;
  note: string | null;
}

/** Which device event went into which alert: the idempotency key of raising from an event (see AlertService.raise). */
export interface AlertEventTable {
  device_id: string;
  event_id: string;
  /** one event may raise several alerts: it counts once per alert key */
  alert_key: string;
  alert_id: string;
  /** event time, epoch ms: rows past the retention are pruned */
  ts: number;
}

export interface DB {
  district: DistrictTable;
  street: StreetTable;
  community: CommunityTable;
  grid: GridTable;
  building: BuildingTable;
  unit: UnitTable;
  charging_area: ChargingAreaTable;
  household: HouseholdTable;
  resident: ResidentTable;
  emergency_contact: EmergencyContactTable;
  staff: StaffTable;
  staff_role: StaffRoleTable;
  staff_coverage: StaffCoverageTable;
  session: SessionTable;
  device: DeviceTable;
  alert: AlertTable;
  alert_timeline: AlertTimelineTable;
  alert_event: AlertEventTable;
}

export type Dialect = 'sqlite' | 'postgres';

export interface Database {
  db: Kysely<DB>;
  dialect: Dialect;
  /** Readiness probe (`select 1`): true when the store answers, false (never a throw) when it does not. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

function pinger(db: Kysely<DB>): () => Promise<boolean> {
  return async () => {
    try {
      await sql`select 1`.execute(db);
      return true;
    } catch {
      return false;
    }
  };
}

export function toBool(v: unknown): boolean {
  return v === 1 || v === true || v === '1';
}
export function fromBool(v: boolean | undefined): Bool {
  return v ? 1 : 0;
}

export function isPostgresUrl(url: string | undefined): url is string {
  return !!url && /^postgres(ql)?:\/\//i.test(url);
}

/**
 * Opens the configured store: PostgreSQL when `url` is a postgres URL, else SQLite at `sqliteFile` resolved against
 * `dataDir` (`:memory:` is allowed for tests). The caller runs migrations (src/store/migrate.ts) afterwards.
 */
export async function createDatabase(cfg: { url?: string; sqliteFile: string }, dataDir: string): Promise<Database> {
  if (cfg.url) {
    if (!isPostgresUrl(cfg.url)) {
      // Never echo the URL: it may carry a password.
      throw new Error('database.url must start with postgres:// or postgresql://');
    }
    const pool = new pg.Pool({
      connectionString: cfg.url,
      max: 10,
      // int8 (oid 20) arrives as a string by default; our int8 columns are epoch ms and COUNT(*) results, all far
      // below 2^53, so parse them to numbers here, per pool, instead of changing pg's global parsers.
      types: {
        getTypeParser: (oid, format) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)),
      },
    });
    // An idle client losing its connection (server restart) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    // Fail fast with a clear error at start rather than on the first request.
    const client = await pool.connect().catch(async (e: unknown) => {
      await pool.end().catch(() => {});
      throw new Error(`cannot connect to PostgreSQL: ${(e as Error).message}`);
    });
    client.release();
    return { db, dialect: 'postgres', ping: pinger(db), close: () => db.destroy() };
  }

  const file = cfg.sqliteFile === ':memory:' ? ':memory:' : path.resolve(dataDir, cfg.sqliteFile);
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const sqlite = new SQLite(file);
  // WAL: readers never block the writer; foreign keys are off by default in SQLite; busy_timeout lets a second
  // process (the import CLI next to a running service) wait for the write lock instead of failing at once.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('synchronous = NORMAL');
  cachePreparedStatements(sqlite);
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, dialect: 'sqlite', ping: pinger(db), close: () => db.destroy() };
}

/**
 * Kysely's SQLite driver prepares every query anew; the same few hundred statements run all day, so keep them
 * prepared (better-sqlite3 statements are reusable; nothing here streams, which would hold one busy). Bounded: an
 * odd statement (a long IN list) replaces the oldest.
 */
function cachePreparedStatements(sqlite: SQLite.Database, max = 1000): void {
  const prepare = sqlite.prepare.bind(sqlite);
  const cache = new Map<string, SQLite.Statement>();
  const cached = (source: string) => {
    let st = cache.get(source);
    if (st) return st;
    st = prepare(source);
    if (cache.size >= max) cache.delete(cache.keys().next().value!);
    cache.set(source, st);
    return st;
  };
  sqlite.prepare = cached as typeof sqlite.prepare;
}
