/**
 * The access log of personal details (PIPL): one row every time a response showed someone residents' full names
 * or emergency contacts unmasked: who, when, which household, what, from which address. Written BEFORE the
 * details leave (a response that cannot be logged is not sent), read by admins only, newest first.
 *
 * Rows keep the ids as they were (no foreign keys): the log must outlive a staff account that is removed or a
 * household that is re-registered.
 *
 * This file also holds migration `007_console_sessions`, which creates the table and extends the session table
 * for the console (public id, device, last use, user agent, sliding window).
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, type Migration, sql } from 'kysely';
import type { Clock } from '../clock/clock.ts';
import type { Database } from '../store/db.ts';
import { type Page, type PageOpts, RegistryError } from './port.ts';

/** What a row says was shown. */
export const ACCESS_KINDS = ['residents', 'emergency_contacts'] as const;
export type AccessKind = (typeof ACCESS_KINDS)[number];

export interface AccessLogTable {
  id: string;
  /** epoch ms */
  ts: number;
  staff_id: string;
  household_id: string;
  /** comma-separated AccessKind values */
  what: string;
  ip: string | null;
}

interface AccessLogDB {
  access_log: AccessLogTable;
}

export interface AccessLogEntry {
  id: string;
  /** ISO-8601 */
  at: string;
  staffId: string;
  householdId: string;
  what: AccessKind[];
  ip?: string;
}

export interface AccessLogFilter {
  staffId?: string;
  householdId?: string;
  /** epoch ms: rows at or after */
  since?: number;
}

const MAX_PAGE = 1000;

export class AccessLog {
  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
  ) {}

  private get db(): Kysely<AccessLogDB> {
    return this.database.db as unknown as Kysely<AccessLogDB>;
  }

  /** Records one showing of personal details; throws when it cannot (the caller must then not show them). */
  async record(input: { staffId: string; householdId: string; what: readonly AccessKind[]; ip?: string }) {
    const what = [...new Set(input.what)].filter((w) => (ACCESS_KINDS as readonly string[]).includes(w));
    if (what.length === 0) throw new RegistryError('invalid', 'what: nothing to record');
    const row: AccessLogTable = {
      id: randomUUID(),
      ts: this.clock.now(),
      staff_id: input.staffId,
      household_id: input.householdId,
      what: what.join(','),
      ip: input.ip ? input.ip.slice(0, 64) : null,
    };
    await this.db.insertInto('access_log').values(row).execute();
    return toEntry(row);
  }

  /** Newest first; keyset-paged on (ts, id) so pages neither skip nor repeat rows while new ones arrive. */
  async list(filter: AccessLogFilter, page: PageOpts): Promise<Page<AccessLogEntry>> {
    const limit = page.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new RegistryError('invalid', `limit: must be an integer from 1 to ${MAX_PAGE}`);
    }
    let q = this.db.selectFrom('access_log').selectAll();
    if (filter.staffId !== undefined) q = q.where('staff_id', '=', filter.staffId);
    if (filter.householdId !== undefined) q = q.where('household_id', '=', filter.householdId);
    if (filter.since !== undefined) q = q.where('ts', '>=', filter.since);
    if (page.cursor) {
      const [ts, id] = decodeCursor(page.cursor);
      q = q.where((eb) => eb.or([eb('ts', '<', ts), eb.and([eb('ts', '=', ts), eb('id', '<', id)])]));
    }
    const rows = await q
      .orderBy('ts', 'desc')
      .orderBy('id', 'desc')
      .limit(limit + 1)
      .execute();
    const items = rows.slice(0, limit).map(toEntry);
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    return last ? { items, nextCursor: encodeCursor(Number(last.ts), last.id) } : { items };
  }
}

function toEntry(r: AccessLogTable): AccessLogEntry {
  const e: AccessLogEntry = {
    id: r.id,
    at: new Date(Number(r.ts)).toISOString(),
    staffId: r.staff_id,
    householdId: r.household_id,
    what: r.what.split(',').filter(Boolean) as AccessKind[],
  };
  if (r.ip) e.ip = r.ip;
  return e;
}

function encodeCursor(ts: number, id: string): string {
  return Buffer.from(`${ts}|${id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  const text = /^[A-Za-z0-9_-]{1,400}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const bar = text.indexOf('|');
  const ts = Number(text.slice(0, bar));
  const id = text.slice(bar + 1);
  if (bar < 1 || !Number.isSafeInteger(ts) || id === '') {
    throw new RegistryError('invalid', 'cursor: not a valid cursor; use the nextCursor of a previous page');
  }
  return [ts, id];
}

/**
 * `007_console_sessions`: sessions get a public id (listing and revoking without ever showing the token), the
 * device they were signed in on, their last use, a short user agent and, for sliding (phone) sessions, the window
 * each use extends them by; and the access log table. One ALTER per column: SQLite adds one column at a time.
 */
export const consoleSessions007: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('session').addColumn('id', 'text').execute();
    await db.schema
      .alterTable('session')
      .addColumn('device', 'text', (c) => c.notNull().defaultTo('desk'))
      .execute();
    await db.schema.alterTable('session').addColumn('last_used_at', 'bigint').execute();
    await db.schema.alterTable('session').addColumn('user_agent', 'text').execute();
    await db.schema.alterTable('session').addColumn('sliding_ms', 'bigint').execute();
    // sessions signed in before this migration: an id derived from the token hash (which reveals nothing usable)
    await sql`update session set id = 's-' || substr(token_hash, 1, 20), last_used_at = created_at`.execute(db);
    await db.schema.createIndex('session_id_uq').on('session').column('id').unique().execute();

    await db.schema
      .createTable('access_log')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('staff_id', 'text', (c) => c.notNull())
      .addColumn('household_id', 'text', (c) => c.notNull())
      .addColumn('what', 'text', (c) => c.notNull())
      .addColumn('ip', 'text')
      .execute();
    const indexes: Array<[string, string[]]> = [
      ['access_log_ts_idx', ['ts', 'id']],
      ['access_log_staff_idx', ['staff_id', 'ts']],
      ['access_log_household_idx', ['household_id', 'ts']],
    ];
    for (const [name, columns] of indexes) {
      await db.schema.createIndex(name).on('access_log').columns(columns).execute();
    }
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('access_log').ifExists().execute();
    await db.schema.dropIndex('session_id_uq').ifExists().execute();
    for (const column of ['sliding_ms', 'user_agent', 'last_used_at', 'device', 'id']) {
      await db.schema.alterTable('session').dropColumn(column).execute();
    }
  },
};
