/**
 * Emergency supplies in the relational store (migration `010_supplies`): depots, stock lots, the movement ledger,
 * transfers between depots and per-depot minimum overrides.
 *
 * - `supply_movement` is the ledger: append-only. The code only ever inserts into it, and the store refuses an
 *   UPDATE or DELETE of a row (a trigger in both dialects), so a correction is always a new movement.
 * - `supply_lot.quantity` is the running balance of a lot, kept in the same transaction as its movements (the sum of
 *   a lot's movement quantities always equals it). `CHECK (quantity >= 0)` makes negative stock impossible whatever
 *   the code does; every decrement is also a conditional `UPDATE … WHERE quantity >= n`, so two transactions taking
 *   the last units cannot both succeed: on PostgreSQL the second waits for the first's row lock and then finds the
 *   condition false (READ COMMITTED re-checks the WHERE on the new row version; the lots are also locked with
 *   SELECT … FOR UPDATE first), on SQLite writers are serialised by BEGIN IMMEDIATE.
 * - Days (received, expiry) are `YYYY-MM-DD` text in the community's time zone; instants are epoch ms (bigint).
 */
import { type Kysely, type Migration, PostgresAdapter, sql } from 'kysely';
import type { Database } from '../store/db.ts';
import {
  CONDITIONS,
  type Condition,
  MOVEMENT_KINDS,
  type MovementKind,
  TRANSFER_STATUSES,
  type TransferStatus,
} from './constants.ts';

export {
  CONDITIONS,
  type Condition,
  MOVEMENT_KINDS,
  type MovementKind,
  TRANSFER_STATUSES,
  type TransferStatus,
} from './constants.ts';

export interface SupplyDepotTable {
  id: string;
  level: string;
  community_id: string | null;
  street_id: string | null;
  district_id: string | null;
  /** {zh, en} (JSON) */
  name: string;
  /** the depot's configuration as last synced (JSON) */
  config: string;
  active: number;
  created_at: number;
  updated_at: number;
}

export interface SupplyLotTable {
  id: string;
  depot_id: string;
  item_id: string;
  quantity: number;
  received_on: string;
  expires_on: string | null;
  condition: Condition;
  last_inspected_at: number | null;
  /** where it came from: `supplier`, `import`, `transfer:<id>`, `sample`, … */
  origin: string | null;
  created_at: number;
  updated_at: number;
}

export interface SupplyMovementTable {
  id: string;
  /** the operation it belongs to (one issue across two lots is two rows with one op_id) */
  op_id: string;
  ts: number;
  depot_id: string;
  item_id: string;
  lot_id: string | null;
  kind: MovementKind;
  /** signed: + into the lot, − out of it, 0 for an inspection */
  quantity: number;
  /** the lot's quantity after this movement */
  balance_after: number | null;
  /** staff id, or `system:<what>` / `drill:<id>` */
  by: string;
  reason: string | null;
  /** issue: drill | incident | person | other; return: issue; receive: supplier | import | … */
  ref_kind: string | null;
  ref_id: string | null;
  transfer_id: string | null;
  /** the movement this one corrects */
  corrects: string | null;
  /** JSON: kind-specific facts (inspection result, disposal reason, lot dates) */
  data: string | null;
}

export interface SupplyTransferTable {
  id: string;
  item_id: string;
  quantity: number;
  from_depot_id: string;
  to_depot_id: string;
  status: TransferStatus;
  reason: string | null;
  requested_by: string;
  requested_at: number;
  decided_by: string | null;
  decided_at: number | null;
  decision_note: string | null;
  dispatched_by: string | null;
  dispatched_at: number | null;
  received_by: string | null;
  received_at: number | null;
  cancelled_by: string | null;
  cancelled_at: number | null;
  cancel_note: string | null;
  /** JSON TransferLot[]: what left the source depot */
  lots: string | null;
  updated_at: number;
}

export interface SupplyMinimumTable {
  depot_id: string;
  item_id: string;
  mode: 'absolute' | 'per1000';
  /** thousandths: absolute 12 → 12000, per1000 0.5 → 500 */
  value_milli: number;
  set_by: string;
  set_at: number;
}

export interface SupplyDB {
  supply_depot: SupplyDepotTable;
  supply_lot: SupplyLotTable;
  supply_movement: SupplyMovementTable;
  supply_transfer: SupplyTransferTable;
  supply_minimum: SupplyMinimumTable;
}

const list = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(', '));

/** Migration 010 (registered in src/store/migrations.ts). */
export const supplies010: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    await db.schema
      .createTable('supply_depot')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('level', 'text', (c) => c.notNull().check(sql`level in ('community', 'street', 'district')`))
      .addColumn('community_id', 'text')
      .addColumn('street_id', 'text')
      .addColumn('district_id', 'text')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('config', 'text', (c) => c.notNull())
      .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('supply_lot')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('depot_id', 'text', (c) => c.notNull().references('supply_depot.id'))
      .addColumn('item_id', 'text', (c) => c.notNull())
      // the store itself refuses negative stock, whatever a bug in the code would do
      .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity >= 0`))
      .addColumn('received_on', 'text', (c) => c.notNull())
      .addColumn('expires_on', 'text')
      .addColumn('condition', 'text', (c) => c.notNull().check(sql`condition in (${list(CONDITIONS)})`))
      .addColumn('last_inspected_at', 'bigint')
      .addColumn('origin', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addCheckConstraint('supply_lot_dates_ck', sql`expires_on is null or expires_on >= received_on`)
      .execute();
    await db.schema.createIndex('supply_lot_depot_item').on('supply_lot').columns(['depot_id', 'item_id']).execute();
    await db.schema.createIndex('supply_lot_expires').on('supply_lot').columns(['expires_on']).execute();
    await db.schema
      .createTable('supply_movement')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('op_id', 'text', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('depot_id', 'text', (c) => c.notNull().references('supply_depot.id'))
      .addColumn('item_id', 'text', (c) => c.notNull())
      .addColumn('lot_id', 'text', (c) => c.references('supply_lot.id'))
      .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in (${list(MOVEMENT_KINDS)})`))
      .addColumn('quantity', 'integer', (c) => c.notNull())
      .addColumn('balance_after', 'integer', (c) => c.check(sql`balance_after >= 0`))
      .addColumn('by', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('ref_kind', 'text')
      .addColumn('ref_id', 'text')
      .addColumn('transfer_id', 'text')
      .addColumn('corrects', 'text')
      .addColumn('data', 'text')
      .execute();
    const movementIndexes: Array<[string, string[]]> = [
      ['supply_movement_ts', ['ts', 'id']],
      ['supply_movement_depot_ts', ['depot_id', 'ts']],
      ['supply_movement_lot', ['lot_id']],
      ['supply_movement_op', ['op_id']],
      ['supply_movement_ref', ['ref_kind', 'ref_id']],
      ['supply_movement_transfer', ['transfer_id']],
    ];
    for (const [name, columns] of movementIndexes) {
      await db.schema.createIndex(name).on('supply_movement').columns(columns).execute();
    }
    // append-only: the ledger refuses edits and deletions in the store itself
    if (postgres) {
      await sql`create function supply_movement_append_only() returns trigger language plpgsql as $$
        begin raise exception 'supply_movement is append-only: record a correcting movement instead'; end $$`.execute(
        db,
      );
      await sql`create trigger supply_movement_no_change before update or delete on supply_movement
        for each row execute function supply_movement_append_only()`.execute(db);
    } else {
      for (const op of ['update', 'delete']) {
        await sql`create trigger ${sql.raw(`supply_movement_no_${op}`)} before ${sql.raw(op)} on supply_movement
          begin select raise(abort, 'supply_movement is append-only: record a correcting movement instead'); end`.execute(
          db,
        );
      }
    }
    await db.schema
      .createTable('supply_transfer')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('item_id', 'text', (c) => c.notNull())
      .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity > 0`))
      .addColumn('from_depot_id', 'text', (c) => c.notNull().references('supply_depot.id'))
      .addColumn('to_depot_id', 'text', (c) => c.notNull().references('supply_depot.id'))
      .addColumn('status', 'text', (c) => c.notNull().check(sql`status in (${list(TRANSFER_STATUSES)})`))
      .addColumn('reason', 'text')
      .addColumn('requested_by', 'text', (c) => c.notNull())
      .addColumn('requested_at', 'bigint', (c) => c.notNull())
      .addColumn('decided_by', 'text')
      .addColumn('decided_at', 'bigint')
      .addColumn('decision_note', 'text')
      .addColumn('dispatched_by', 'text')
      .addColumn('dispatched_at', 'bigint')
      .addColumn('received_by', 'text')
      .addColumn('received_at', 'bigint')
      .addColumn('cancelled_by', 'text')
      .addColumn('cancelled_at', 'bigint')
      .addColumn('cancel_note', 'text')
      .addColumn('lots', 'text')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addCheckConstraint('supply_transfer_depots_ck', sql`from_depot_id <> to_depot_id`)
      .execute();
    const transferIndexes: Array<[string, string[]]> = [
      ['supply_transfer_requested', ['requested_at', 'id']],
      ['supply_transfer_from', ['from_depot_id', 'status']],
      ['supply_transfer_to', ['to_depot_id', 'status']],
    ];
    for (const [name, columns] of transferIndexes) {
      await db.schema.createIndex(name).on('supply_transfer').columns(columns).execute();
    }
    await db.schema
      .createTable('supply_minimum')
      .addColumn('depot_id', 'text', (c) => c.notNull().references('supply_depot.id'))
      .addColumn('item_id', 'text', (c) => c.notNull())
      .addColumn('mode', 'text', (c) => c.notNull().check(sql`mode in ('absolute', 'per1000')`))
      .addColumn('value_milli', 'bigint', (c) => c.notNull().check(sql`value_milli >= 0`))
      .addColumn('set_by', 'text', (c) => c.notNull())
      .addColumn('set_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('supply_minimum_pk', ['depot_id', 'item_id'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of ['supply_minimum', 'supply_transfer', 'supply_movement', 'supply_lot', 'supply_depot']) {
      await db.schema.dropTable(t).ifExists().execute();
    }
    if (db.getExecutor().adapter instanceof PostgresAdapter) {
      await sql`drop function if exists supply_movement_append_only()`.execute(db);
    }
  },
};

export type SupplyQ = Kysely<SupplyDB>;

/**
 * SQLite allows one writer per file, and better-sqlite3 waits for the lock synchronously (busy_timeout), blocking the
 * event loop: two connections to one file in one process (two stores in a test, the CLI next to a service) would
 * deadlock. So write transactions on SQLite are queued in-process first (as the alert service does); across
 * processes SQLite's own lock (BEGIN IMMEDIATE with busy_timeout) queues them.
 */
let sqliteWriteQueue: Promise<unknown> = Promise.resolve();
function queueSqliteWrite<T>(fn: () => Promise<T>): Promise<T> {
  const run = sqliteWriteQueue.then(fn, fn);
  sqliteWriteQueue = run.catch(() => {});
  return run;
}

/** The supplies tables over the shared store, with the one write-transaction helper every change goes through. */
export class SupplyStore {
  readonly db: SupplyQ;

  constructor(readonly database: Database) {
    // only this module touches these tables, so their types stay here rather than in the shared DB type
    this.db = database.db as unknown as SupplyQ;
  }

  get postgres(): boolean {
    return this.database.dialect === 'postgres';
  }

  /**
   * Runs `fn` in one write transaction: all of it or nothing. PostgreSQL: a plain transaction, rows locked with
   * SELECT … FOR UPDATE (`lock`). SQLite: BEGIN IMMEDIATE behind the in-process queue. `fn` must use the `q` it is
   * given, never `this.db`.
   */
  write<T>(fn: (q: SupplyQ) => Promise<T>): Promise<T> {
    if (this.postgres) return this.db.transaction().execute(fn);
    return queueSqliteWrite(() =>
      this.db.connection().execute(async (conn) => {
        await sql`begin immediate`.execute(conn);
        try {
          const out = await fn(conn);
          await sql`commit`.execute(conn);
          return out;
        } catch (e) {
          await sql`rollback`.execute(conn).catch(() => {});
          throw e;
        }
      }),
    );
  }
}
