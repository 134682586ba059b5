/**
 * Drills in the relational store (migration `009_drills`): the drill itself (scenario frozen at the start, the
 * participants, the state the runner needs to resume after a restart), its event log, tasks, evaluator notes,
 * ratings, and the alerts it caused. Times are epoch ms (src/store/db.ts conventions); JSON as text.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, Migration } from 'kysely';
import { type Page, type PageOpts, RegistryError } from '../registry/port.ts';
import { encodeCursor, isUniqueViolation, pageArgs } from '../registry/registry.ts';
import type { Database } from '../store/db.ts';
import type { Scenario } from './scenario.ts';

export const DRILL_STATUSES = ['running', 'paused', 'ended'] as const;
export type DrillStatus = (typeof DRILL_STATUSES)[number];
export const RATINGS = ['P', 'S', 'M', 'U'] as const;
export type Rating = (typeof RATINGS)[number];

export interface DrillTable {
  id: string;
  scenario_id: string;
  community_id: string;
  name: string;
  type: string;
  status: DrillStatus;
  /** the scenario as it was when the drill started (JSON) */
  scenario: string;
  /** Participant[] (JSON) */
  participants: string;
  /** grids whose consoles see the drill live (JSON string[]) */
  grid_ids: string;
  /** RunState (JSON) */
  state: string;
  started_at: number;
  started_by: string;
  ended_at: number | null;
  ended_by: string | null;
  updated_at: number;
}

export interface DrillEventTable {
  drill_id: string;
  seq: number;
  ts: number;
  kind: string;
  ref: string | null;
  by: string | null;
  data: string | null;
}

export interface DrillTaskTable {
  drill_id: string;
  task_id: string;
  status: 'open' | 'done';
  issued_at: number;
  done_at: number | null;
  done_by: string | null;
  note: string | null;
  /** TaskTarget (JSON): the households and places resolved when issued */
  targets: string;
}

export interface DrillNoteTable {
  id: string;
  drill_id: string;
  ts: number;
  by: string;
  text: string;
}

export interface DrillRatingTable {
  drill_id: string;
  objective_id: string;
  rating: Rating;
  note: string | null;
  by: string;
  ts: number;
}

export interface DrillAlertTable {
  drill_id: string;
  alert_id: string;
  inject_id: string | null;
  linked_at: number;
}

export interface DrillDB {
  drill: DrillTable;
  drill_event: DrillEventTable;
  drill_task: DrillTaskTable;
  drill_note: DrillNoteTable;
  drill_rating: DrillRatingTable;
  drill_alert: DrillAlertTable;
}

/** Migration 009 (registered in src/store/migrations.ts). */
export const drills009: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('drill')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('scenario_id', 'text', (c) => c.notNull())
      .addColumn('community_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('scenario', 'text', (c) => c.notNull())
      .addColumn('participants', 'text', (c) => c.notNull())
      .addColumn('grid_ids', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('started_at', 'bigint', (c) => c.notNull())
      .addColumn('started_by', 'text', (c) => c.notNull())
      .addColumn('ended_at', 'bigint')
      .addColumn('ended_by', 'text')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('drill_community_started')
      .on('drill')
      .columns(['community_id', 'started_at'])
      .execute();
    await db.schema.createIndex('drill_status').on('drill').columns(['status']).execute();
    await db.schema
      .createTable('drill_event')
      .addColumn('drill_id', 'text', (c) => c.notNull().references('drill.id').onDelete('cascade'))
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('ref', 'text')
      .addColumn('by', 'text')
      .addColumn('data', 'text')
      .addPrimaryKeyConstraint('drill_event_pk', ['drill_id', 'seq'])
      .execute();
    await db.schema
      .createTable('drill_task')
      .addColumn('drill_id', 'text', (c) => c.notNull().references('drill.id').onDelete('cascade'))
      .addColumn('task_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('issued_at', 'bigint', (c) => c.notNull())
      .addColumn('done_at', 'bigint')
      .addColumn('done_by', 'text')
      .addColumn('note', 'text')
      .addColumn('targets', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('drill_task_pk', ['drill_id', 'task_id'])
      .execute();
    await db.schema
      .createTable('drill_note')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('drill_id', 'text', (c) => c.notNull().references('drill.id').onDelete('cascade'))
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('by', 'text', (c) => c.notNull())
      .addColumn('text', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('drill_note_drill').on('drill_note').columns(['drill_id', 'ts']).execute();
    await db.schema
      .createTable('drill_rating')
      .addColumn('drill_id', 'text', (c) => c.notNull().references('drill.id').onDelete('cascade'))
      .addColumn('objective_id', 'text', (c) => c.notNull())
      .addColumn('rating', 'text', (c) => c.notNull())
      .addColumn('note', 'text')
      .addColumn('by', 'text', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('drill_rating_pk', ['drill_id', 'objective_id'])
      .execute();
    await db.schema
      .createTable('drill_alert')
      .addColumn('drill_id', 'text', (c) => c.notNull().references('drill.id').onDelete('cascade'))
      .addColumn('alert_id', 'text', (c) => c.notNull())
      .addColumn('inject_id', 'text')
      .addColumn('linked_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('drill_alert_pk', ['drill_id', 'alert_id'])
      .execute();
    await db.schema.createIndex('drill_alert_alert').on('drill_alert').columns(['alert_id']).execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['drill_alert', 'drill_rating', 'drill_note', 'drill_task', 'drill_event', 'drill']) {
      await db.schema.dropTable(t).ifExists().execute();
    }
  },
};

/** Someone taking part: staff matched by a scenario role relative to the scope, or named. */
export interface Participant {
  staffId: string;
  username: string;
  /** masked (张*兰) */
  name: string;
  roles: string[];
  /** the scenario roles they take part as */
  as: string[];
  named: boolean;
}

/** What the runner needs to resume a drill after a restart, and to compute the drill clock. */
export interface RunState {
  /** running periods, epoch ms; the last one open while running */
  segments: { from: number; to?: number }[];
  /** injects fired: when (epoch ms), by whom (`schedule` for timed and `after` triggers) */
  fired: Record<string, { at: number; by: string; error?: string }>;
  /** injects waiting for their time: due at this drill-clock ms */
  due: Record<string, number>;
  /** drill devices in use (ids) */
  devices: string[];
  /** the last inject that published from each drill device: alerts from that device are put down to it */
  lastInjectOf: Record<string, string>;
}

export interface DrillRecord {
  id: string;
  scenarioId: string;
  communityId: string;
  status: DrillStatus;
  scenario: Scenario;
  participants: Participant[];
  gridIds: string[];
  state: RunState;
  startedAt: number;
  startedBy: string;
  endedAt?: number;
  endedBy?: string;
  updatedAt: number;
}

export interface DrillEvent {
  seq: number;
  ts: number;
  kind: string;
  ref?: string;
  by?: string;
  data?: Record<string, unknown>;
}

export interface TaskTargets {
  households: { id: string; address: string; colour: string }[];
  places: { kind: string; id: string; name?: string }[];
}

export interface DrillTask {
  taskId: string;
  status: 'open' | 'done';
  issuedAt: number;
  doneAt?: number;
  doneBy?: string;
  note?: string;
  targets: TaskTargets;
}

export interface DrillNote {
  id: string;
  ts: number;
  by: string;
  text: string;
}

export interface DrillRating {
  objectiveId: string;
  rating: Rating;
  note?: string;
  by: string;
  ts: number;
}

function toRecord(r: DrillTable): DrillRecord {
  const d: DrillRecord = {
    id: r.id,
    scenarioId: r.scenario_id,
    communityId: r.community_id,
    status: r.status,
    scenario: JSON.parse(r.scenario) as Scenario,
    participants: JSON.parse(r.participants) as Participant[],
    gridIds: JSON.parse(r.grid_ids) as string[],
    state: JSON.parse(r.state) as RunState,
    startedAt: Number(r.started_at),
    startedBy: r.started_by,
    updatedAt: Number(r.updated_at),
  };
  if (r.ended_at !== null) d.endedAt = Number(r.ended_at);
  if (r.ended_by !== null) d.endedBy = r.ended_by;
  return d;
}

export class DrillStore {
  private readonly db: Kysely<DrillDB>;

  constructor(database: Database) {
    // only this module touches these tables, so their types stay here rather than in the shared DB type
    this.db = database.db as unknown as Kysely<DrillDB>;
  }

  async insert(d: DrillRecord): Promise<void> {
    await this.db
      .insertInto('drill')
      .values({
        id: d.id,
        scenario_id: d.scenarioId,
        community_id: d.communityId,
        name: d.scenario.name.zh,
        type: d.scenario.type,
        status: d.status,
        scenario: JSON.stringify(d.scenario),
        participants: JSON.stringify(d.participants),
        grid_ids: JSON.stringify(d.gridIds),
        state: JSON.stringify(d.state),
        started_at: d.startedAt,
        started_by: d.startedBy,
        ended_at: d.endedAt ?? null,
        ended_by: d.endedBy ?? null,
        updated_at: d.updatedAt,
      })
      .execute();
  }

  /** Writes status, state and end of a drill. */
  async save(d: DrillRecord): Promise<void> {
    await this.db
      .updateTable('drill')
      .set({
        status: d.status,
        state: JSON.stringify(d.state),
        ended_at: d.endedAt ?? null,
        ended_by: d.endedBy ?? null,
        updated_at: d.updatedAt,
      })
      .where('id', '=', d.id)
      .execute();
  }

  async get(id: string): Promise<DrillRecord | undefined> {
    const r = await this.db.selectFrom('drill').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toRecord(r) : undefined;
  }

  /** Running and paused drills. */
  async active(): Promise<DrillRecord[]> {
    const rows = await this.db.selectFrom('drill').selectAll().where('status', 'in', ['running', 'paused']).execute();
    return rows.map(toRecord);
  }

  /** Newest first, keyset-paged on (started_at, id). */
  async list(
    filter: { communityId?: string; status?: DrillStatus },
    page: Partial<PageOpts>,
  ): Promise<Page<DrillRecord>> {
    const { limit, after } = pageArgs(page);
    let q = this.db
      .selectFrom('drill')
      .selectAll()
      .orderBy('started_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit + 1);
    if (filter.communityId) q = q.where('community_id', '=', filter.communityId);
    if (filter.status) q = q.where('status', '=', filter.status);
    if (after !== undefined) {
      const i = after.indexOf(':');
      const ts = Number(after.slice(0, i));
      const id = after.slice(i + 1);
      if (i < 0 || !Number.isFinite(ts)) throw new RegistryError('invalid', 'cursor: is not a valid cursor');
      q = q.where((eb) => eb.or([eb('started_at', '<', ts), eb.and([eb('started_at', '=', ts), eb('id', '<', id)])]));
    }
    const rows = await q.execute();
    const items = rows.slice(0, limit).map(toRecord);
    if (rows.length <= limit) return { items };
    const last = items[items.length - 1]!;
    return { items, nextCursor: encodeCursor(`${last.startedAt}:${last.id}`) };
  }

  /** Appends to the drill's event log; `seq` orders it (a lost race on seq goes round again). */
  async event(drillId: string, e: Omit<DrillEvent, 'seq'>): Promise<DrillEvent> {
    for (let attempt = 0; ; attempt++) {
      const top = await this.db
        .selectFrom('drill_event')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .where('drill_id', '=', drillId)
        .executeTakeFirst();
      const seq = Number(top?.seq ?? 0) + 1;
      try {
        await this.db
          .insertInto('drill_event')
          .values({
            drill_id: drillId,
            seq,
            ts: e.ts,
            kind: e.kind,
            ref: e.ref ?? null,
            by: e.by ?? null,
            data: e.data ? JSON.stringify(e.data) : null,
          })
          .execute();
        return { ...e, seq };
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= 10) throw err;
      }
    }
  }

  async events(drillId: string): Promise<DrillEvent[]> {
    const rows = await this.db
      .selectFrom('drill_event')
      .selectAll()
      .where('drill_id', '=', drillId)
      .orderBy('seq')
      .execute();
    return rows.map((r) => {
      const e: DrillEvent = { seq: Number(r.seq), ts: Number(r.ts), kind: r.kind };
      if (r.ref !== null) e.ref = r.ref;
      if (r.by !== null) e.by = r.by;
      if (r.data !== null) e.data = JSON.parse(r.data) as Record<string, unknown>;
      return e;
    });
  }

  async issueTask(drillId: string, taskId: string, at: number, targets: TaskTargets): Promise<void> {
    try {
      await this.db
        .insertInto('drill_task')
        .values({
          drill_id: drillId,
          task_id: taskId,
          status: 'open',
          issued_at: at,
          done_at: null,
          done_by: null,
          note: null,
          targets: JSON.stringify(targets),
        })
        .execute();
    } catch (err) {
      if (!isUniqueViolation(err)) throw err; // issued before (a replay after a restart): keep the first
    }
  }

  /** open → done; false when it was not open (already done, or never issued). */
  async taskDone(drillId: string, taskId: string, at: number, by: string, note?: string): Promise<boolean> {
    const r = await this.db
      .updateTable('drill_task')
      .set({ status: 'done', done_at: at, done_by: by, note: note ?? null })
      .where('drill_id', '=', drillId)
      .where('task_id', '=', taskId)
      .where('status', '=', 'open')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async tasks(drillId: string): Promise<DrillTask[]> {
    const rows = await this.db
      .selectFrom('drill_task')
      .selectAll()
      .where('drill_id', '=', drillId)
      .orderBy('issued_at')
      .orderBy('task_id')
      .execute();
    return rows.map((r) => {
      const t: DrillTask = {
        taskId: r.task_id,
        status: r.status,
        issuedAt: Number(r.issued_at),
        targets: JSON.parse(r.targets) as TaskTargets,
      };
      if (r.done_at !== null) t.doneAt = Number(r.done_at);
      if (r.done_by !== null) t.doneBy = r.done_by;
      if (r.note !== null) t.note = r.note;
      return t;
    });
  }

  async addNote(drillId: string, ts: number, by: string, text: string): Promise<DrillNote> {
    const note: DrillNote = { id: randomUUID(), ts, by, text };
    await this.db.insertInto('drill_note').values({ id: note.id, drill_id: drillId, ts, by, text }).execute();
    return note;
  }

  async notes(drillId: string): Promise<DrillNote[]> {
    const rows = await this.db
      .selectFrom('drill_note')
      .selectAll()
      .where('drill_id', '=', drillId)
      .orderBy('ts')
      .orderBy('id')
      .execute();
    return rows.map((r) => ({ id: r.id, ts: Number(r.ts), by: r.by, text: r.text }));
  }

  /** One rating per objective: a second one replaces the first. */
  async rate(drillId: string, r: DrillRating): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .deleteFrom('drill_rating')
        .where('drill_id', '=', drillId)
        .where('objective_id', '=', r.objectiveId)
        .execute();
      await trx
        .insertInto('drill_rating')
        .values({
          drill_id: drillId,
          objective_id: r.objectiveId,
          rating: r.rating,
          note: r.note ?? null,
          by: r.by,
          ts: r.ts,
        })
        .execute();
    });
  }

  async ratings(drillId: string): Promise<DrillRating[]> {
    const rows = await this.db
      .selectFrom('drill_rating')
      .selectAll()
      .where('drill_id', '=', drillId)
      .orderBy('objective_id')
      .execute();
    return rows.map((r) => {
      const out: DrillRating = { objectiveId: r.objective_id, rating: r.rating, by: r.by, ts: Number(r.ts) };
      if (r.note !== null) out.note = r.note;
      return out;
    });
  }

  /** Records that an alert belongs to a drill; false when it was linked already. */
  async linkAlert(drillId: string, alertId: string, injectId: string | undefined, at: number): Promise<boolean> {
    try {
      await this.db
        .insertInto('drill_alert')
        .values({ drill_id: drillId, alert_id: alertId, inject_id: injectId ?? null, linked_at: at })
        .execute();
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async alerts(drillId: string): Promise<{ alertId: string; injectId?: string; linkedAt: number }[]> {
    const rows = await this.db
      .selectFrom('drill_alert')
      .selectAll()
      .where('drill_id', '=', drillId)
      .orderBy('linked_at')
      .execute();
    return rows.map((r) => ({
      alertId: r.alert_id,
      injectId: r.inject_id ?? undefined,
      linkedAt: Number(r.linked_at),
    }));
  }
}
