/**
 * The duty roster: who is off duty when, and who stands in for them. An absence covers one staff member for a time
 * window, optionally only one role and/or one grid, and names a substitute. Escalation asks `substituteFor` for every
 * staff recipient of every step, so the active (and future) absences are kept in memory, reloaded at most every 30 s
 * and dropped at once when this node adds or removes one; another node's change shows here within those 30 s.
 *
 * Matching: an absence limited to a role covers only questions about that role (a named `staff:<id>` recipient asks
 * without a role, so only an every-role absence covers it); one limited to a grid covers only alerts of that grid.
 * When several absences cover the same moment, the latest created wins.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, Migration } from 'kysely';
import type { Clock } from '../clock/clock.ts';
import { type Page, type PageOpts, type Registry, RegistryError } from '../registry/port.ts';
import { ROLES, type Role } from '../registry/types.ts';
import type { Database } from '../store/db.ts';

const DAY = 86_400_000;
/** Absences are for days or weeks; a forgotten one must not replace somebody for good. */
export const MAX_ABSENCE_MS = 90 * DAY;
/** How long the in-memory copy of the active absences is trusted. */
export const ROSTER_CACHE_MS = 30_000;
const MAX_NOTE = 500;

export interface DutyAbsence {
  id: string;
  /** who is off duty */
  staffId: string;
  /** ISO-8601, inclusive */
  from: string;
  /** ISO-8601, exclusive */
  to: string;
  /** who stands in */
  substituteId: string;
  /** only this role; absent = every role */
  role?: Role;
  /** only this grid; absent = every grid */
  gridId?: string;
  note?: string;
  createdBy?: string;
  createdAt: string;
}

export interface NewDutyAbsence {
  staffId: string;
  substituteId: string;
  /** epoch ms or ISO-8601; default now */
  from?: number | string;
  /** epoch ms or ISO-8601 */
  to: number | string;
  role?: Role;
  gridId?: string;
  note?: string;
}

export interface DutyAbsenceFilter {
  /** absences of this staff member */
  staffId?: string;
  /** absences this staff member stands in for */
  substituteId?: string;
  /** absences of, or covered by, this staff member */
  involves?: string;
  /** covering this moment (epoch ms) */
  activeAt?: number;
  /** overlapping the window [from, to) (epoch ms) */
  from?: number;
  to?: number;
}

/** What `substituteFor` is asked about. */
export interface DutyQuery {
  role?: Role;
  gridId?: string;
  /** epoch ms; default now */
  at?: number;
}

export interface DutyAbsenceTable {
  id: string;
  staff_id: string;
  substitute_id: string;
  starts_at: number;
  ends_at: number;
  role: string | null;
  grid_id: string | null;
  note: string | null;
  created_by: string | null;
  created_at: number;
}

interface RosterDB {
  duty_absence: DutyAbsenceTable;
}

/** Migration 006 (registered in src/store/migrations.ts). */
export const dutyRoster006: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('duty_absence')
      .addColumn('id', 'text', (c) => c.primaryKey())
      // an absence goes with its staff member; a substitute cannot vanish from under an absence that names them
      .addColumn('staff_id', 'text', (c) => c.notNull().references('staff.id').onDelete('cascade'))
      .addColumn('substitute_id', 'text', (c) => c.notNull().references('staff.id'))
      .addColumn('starts_at', 'bigint', (c) => c.notNull())
      .addColumn('ends_at', 'bigint', (c) => c.notNull())
      .addColumn('role', 'text')
      .addColumn('grid_id', 'text')
      .addColumn('note', 'text')
      .addColumn('created_by', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    // the cache loads what has not ended yet; the API lists per staff member and newest first
    await db.schema.createIndex('duty_absence_ends').on('duty_absence').columns(['ends_at']).execute();
    await db.schema.createIndex('duty_absence_staff').on('duty_absence').columns(['staff_id', 'ends_at']).execute();
    await db.schema.createIndex('duty_absence_substitute').on('duty_absence').columns(['substitute_id']).execute();
    await db.schema.createIndex('duty_absence_created').on('duty_absence').columns(['created_at', 'id']).execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('duty_absence').ifExists().execute();
  },
};

interface Cached {
  loadedAt: number;
  /** absences ending after loadedAt, latest created first */
  rows: DutyAbsenceTable[];
}

export class DutyRoster {
  private readonly db: Kysely<RosterDB>;
  private cache?: Cached;
  private loading?: Promise<Cached>;
  /** bumped by every change on this node, so a load that started before it is not kept */
  private generation = 0;

  constructor(
    database: Database,
    private readonly clock: Clock,
    /** to check that the staff member and the substitute exist and are enabled, and that a grid exists */
    private readonly registry: Pick<Registry, 'getStaff' | 'listNodes'>,
  ) {
    // only this module touches the table, so its type stays here rather than in the shared DB type
    this.db = database.db as unknown as Kysely<RosterDB>;
  }

  /** Records an absence. Invalid input throws RegistryError('invalid' | 'not_found') and writes nothing. */
  async add(input: NewDutyAbsence, by?: string): Promise<DutyAbsence> {
    const now = this.clock.now();
    const from = input.from === undefined ? now : toMs(input.from, 'from');
    const to = toMs(input.to, 'to');
    if (to <= from) throw new RegistryError('invalid', 'to must be after from');
    if (to - from > MAX_ABSENCE_MS) throw new RegistryError('invalid', 'an absence may last at most 90 days');
    if (to <= now) throw new RegistryError('invalid', 'the absence has already ended');
    if (input.substituteId === input.staffId) {
      throw new RegistryError('invalid', 'the substitute must be somebody else');
    }
    if (input.role !== undefined && !(ROLES as readonly string[]).includes(input.role)) {
      throw new RegistryError('invalid', `unknown role ${String(input.role)}`);
    }
    if (input.note !== undefined && input.note.length > MAX_NOTE) {
      throw new RegistryError('invalid', `the note may have at most ${MAX_NOTE} characters`);
    }
    const [staff, substitute] = await Promise.all([
      this.registry.getStaff(input.staffId),
      this.registry.getStaff(input.substituteId),
    ]);
    if (!staff) throw new RegistryError('not_found', `no staff member ${input.staffId}`);
    if (!substitute) throw new RegistryError('not_found', `no staff member ${input.substituteId} (substitute)`);
    if (staff.disabled) throw new RegistryError('invalid', `staff member ${staff.id} is disabled`);
    if (substitute.disabled) throw new RegistryError('invalid', `the substitute ${substitute.id} is disabled`);
    if (!substitute.phone) throw new RegistryError('invalid', `the substitute ${substitute.id} has no phone number`);
    if (input.gridId !== undefined) {
      const grids = await this.registry.listNodes('grid');
      if (!grids.some((g) => g.id === input.gridId)) throw new RegistryError('not_found', `no grid ${input.gridId}`);
    }
    const row: DutyAbsenceTable = {
      id: randomUUID(),
      staff_id: input.staffId,
      substitute_id: input.substituteId,
      starts_at: from,
      ends_at: to,
      role: input.role ?? null,
      grid_id: input.gridId ?? null,
      note: input.note ?? null,
      created_by: by ?? null,
      created_at: now,
    };
    await this.db.insertInto('duty_absence').values(row).execute();
    this.invalidate();
    return toAbsence(row);
  }

  /** Deletes an absence and returns it; not_found when there is none. */
  async remove(id: string): Promise<DutyAbsence> {
    const row = await this.db.selectFrom('duty_absence').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new RegistryError('not_found', `no absence ${id}`);
    await this.db.deleteFrom('duty_absence').where('id', '=', id).execute();
    this.invalidate();
    return toAbsence(row);
  }

  async get(id: string): Promise<DutyAbsence | undefined> {
    const row = await this.db.selectFrom('duty_absence').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toAbsence(row) : undefined;
  }

  /** Newest created first, keyset-paged; filters combine with AND. */
  async list(filter: DutyAbsenceFilter, page: PageOpts): Promise<Page<DutyAbsence>> {
    let q = this.db.selectFrom('duty_absence').selectAll();
    if (filter.staffId !== undefined) q = q.where('staff_id', '=', filter.staffId);
    if (filter.substituteId !== undefined) q = q.where('substitute_id', '=', filter.substituteId);
    if (filter.involves !== undefined) {
      const who = filter.involves;
      q = q.where((eb) => eb.or([eb('staff_id', '=', who), eb('substitute_id', '=', who)]));
    }
    if (filter.activeAt !== undefined) {
      q = q.where('starts_at', '<=', filter.activeAt).where('ends_at', '>', filter.activeAt);
    }
    if (filter.from !== undefined) q = q.where('ends_at', '>', filter.from);
    if (filter.to !== undefined) q = q.where('starts_at', '<', filter.to);
    if (page.cursor) {
      const [ts, id] = decodeCursor(page.cursor);
      q = q.where((eb) => eb.or([eb('created_at', '<', ts), eb.and([eb('created_at', '=', ts), eb('id', '<', id)])]));
    }
    const rows = await q
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(page.limit + 1)
      .execute();
    const items = rows.slice(0, page.limit).map(toAbsence);
    const last = rows.length > page.limit ? rows[page.limit - 1] : undefined;
    return { items, nextCursor: last ? encodeCursor(Number(last.created_at), last.id) : undefined };
  }

  /**
   * The substitute of `staffId` at that moment for that role and grid, or undefined when they are on duty. One hop
   * only: the caller follows chains and decides whether the substitute can be reached.
   */
  async substituteFor(staffId: string, query: DutyQuery = {}): Promise<string | undefined> {
    const at = query.at ?? this.clock.now();
    const rows = await this.rowsAt(at);
    for (const r of rows) {
      if (r.staff_id !== staffId) continue;
      if (!(Number(r.starts_at) <= at && at < Number(r.ends_at))) continue;
      if (r.role !== null && r.role !== query.role) continue;
      if (r.grid_id !== null && r.grid_id !== query.gridId) continue;
      return r.substitute_id;
    }
    return undefined;
  }

  /** Forget the in-memory copy (also done by add and remove on this node). */
  invalidate(): void {
    this.generation++;
    this.cache = undefined;
    this.loading = undefined;
  }

  /** Candidate rows for a moment, latest created first: the cache for now and later, the store for the past. */
  private async rowsAt(at: number): Promise<DutyAbsenceTable[]> {
    const now = this.clock.now();
    let c = this.cache;
    if (!c || now - c.loadedAt >= ROSTER_CACHE_MS || now < c.loadedAt) c = await this.load();
    if (at >= c.loadedAt) return c.rows;
    // a moment before the cache's horizon: absences that ended since are not in it
    return this.db
      .selectFrom('duty_absence')
      .selectAll()
      .where('starts_at', '<=', at)
      .where('ends_at', '>', at)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
  }

  private load(): Promise<Cached> {
    if (this.loading) return this.loading;
    const generation = this.generation;
    const loadedAt = this.clock.now();
    const p = this.db
      .selectFrom('duty_absence')
      .selectAll()
      .where('ends_at', '>', loadedAt)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute()
      .then((rows) => {
        const cached: Cached = { loadedAt, rows };
        if (generation === this.generation) this.cache = cached;
        return cached;
      })
      .finally(() => {
        if (this.loading === p) this.loading = undefined;
      });
    this.loading = p;
    return p;
  }
}

function toMs(v: number | string, name: string): number {
  const t = typeof v === 'number' ? v : /^\d{1,16}$/.test(v) ? Number(v) : Date.parse(v);
  if (Number.isNaN(new Date(t).getTime()))
    throw new RegistryError('invalid', `${name}: "${String(v)}" is neither ISO-8601 nor epoch ms`);
  return t;
}

function encodeCursor(ts: number, id: string): string {
  return Buffer.from(`${ts}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  const [ts, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const n = Number(ts);
  if (!Number.isFinite(n) || !id) {
    throw new RegistryError('invalid', 'bad cursor: use the nextCursor of a previous page');
  }
  return [n, id];
}

function toAbsence(r: DutyAbsenceTable): DutyAbsence {
  return {
    id: r.id,
    staffId: r.staff_id,
    from: new Date(Number(r.starts_at)).toISOString(),
    to: new Date(Number(r.ends_at)).toISOString(),
    substituteId: r.substitute_id,
    role: (r.role ?? undefined) as Role | undefined,
    gridId: r.grid_id ?? undefined,
    note: r.note ?? undefined,
    createdBy: r.created_by ?? undefined,
    createdAt: new Date(Number(r.created_at)).toISOString(),
  };
}
