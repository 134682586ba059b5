/**
 * Notification records: every SMS sent or attempted, whatever the transport. A record is written BEFORE the
 * transport is called (sending is not idempotent: after a crash the record and its provider id tell whether to look
 * the message up rather than send it again), and its status only ever moves forward.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, Migration } from 'kysely';
import type { Clock } from '../clock/clock.ts';
import type { Page, PageOpts } from '../registry/port.ts';
import { RegistryError } from '../registry/port.ts';
import type { Database } from '../store/db.ts';

export const NOTIFICATION_STATUSES = [
  'pending',
  'queued',
  'sent',
  'delivered',
  'undelivered',
  'failed',
  'capped',
  'bundled',
] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

/** Order of progress: a status may only be replaced by one of a higher rank (Twilio retries callbacks out of order). */
const RANK: Record<NotificationStatus, number> = {
  pending: 0,
  queued: 1,
  sent: 2,
  bundled: 3,
  capped: 3,
  delivered: 4,
  undelivered: 4,
  failed: 4,
};

export interface StatusChange {
  status: NotificationStatus;
  /** ISO-8601 */
  at: string;
  detail?: string;
}

export interface Notification {
  id: string;
  alertId: string;
  recipient: string;
  staffId?: string;
  role?: string;
  body: string;
  transport: string;
  providerId?: string;
  status: NotificationStatus;
  step: number;
  drill: boolean;
  createdAt: string;
  updatedAt: string;
  errorCode?: string;
  statusHistory: StatusChange[];
  /** a held notification (bundle, digest) that went out inside this carrier notification */
  batchId?: string;
}

export interface NotificationTable {
  id: string;
  alert_id: string;
  dedupe_key: string;
  recipient: string;
  staff_id: string | null;
  role: string | null;
  body: string;
  transport: string;
  provider_id: string | null;
  status: string;
  step: number;
  drill: number;
  created_at: number;
  updated_at: number;
  error_code: string | null;
  history: string;
  batch_id: string | null;
}

interface NotifyDB {
  notification: NotificationTable;
}

export const notifications004: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('notification')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('alert_id', 'text', (c) => c.notNull())
      // alert + step + recipient: a redelivered job finds the record instead of sending twice
      .addColumn('dedupe_key', 'text', (c) => c.notNull().unique())
      .addColumn('recipient', 'text', (c) => c.notNull())
      .addColumn('staff_id', 'text')
      .addColumn('role', 'text')
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('transport', 'text', (c) => c.notNull())
      .addColumn('provider_id', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('step', 'integer', (c) => c.notNull())
      .addColumn('drill', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('error_code', 'text')
      .addColumn('history', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('notification_alert').on('notification').columns(['alert_id']).execute();
    await db.schema.createIndex('notification_provider').on('notification').columns(['provider_id']).execute();
    await db.schema.createIndex('notification_created').on('notification').columns(['created_at', 'id']).execute();
  },
};

/**
 * Bundles and digests: one SMS (the "carrier", a notification of its own) stands for several held notifications,
 * which point at it through `batch_id`.
 */
export const notificationBatches005: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('notification').addColumn('batch_id', 'text').execute();
    await db.schema.createIndex('notification_held').on('notification').columns(['status', 'recipient']).execute();
  },
};

export interface NewNotification {
  alertId: string;
  step: number;
  recipient: string;
  staffId?: string;
  role?: string;
  body: string;
  transport: string;
  drill: boolean;
}

export class NotificationStore {
  private readonly db: Kysely<NotifyDB>;

  /** told after every change of a record (created, status moved, batched, withdrawn): the console's live view */
  onChange?: (n: Notification) => void;

  constructor(
    database: Database,
    private readonly clock: Clock,
  ) {
    // only this module touches the table, so its type stays here rather than in the shared DB type
    this.db = database.db as unknown as Kysely<NotifyDB>;
  }

  static dedupeKey(n: Pick<NewNotification, 'alertId' | 'step' | 'recipient'>): string {
    return `${n.alertId}|${n.step}|${n.recipient}`;
  }

  /** Writes the record before sending; a second call for the same alert, step and recipient returns the first. */
  async createPending(n: NewNotification): Promise<{ notification: Notification; created: boolean }> {
    const key = NotificationStore.dedupeKey(n);
    const existing = await this.db
      .selectFrom('notification')
      .selectAll()
      .where('dedupe_key', '=', key)
      .executeTakeFirst();
    if (existing) return { notification: toNotification(existing), created: false };
    const now = this.clock.now();
    const row: NotificationTable = {
      id: randomUUID(),
      alert_id: n.alertId,
      dedupe_key: key,
      recipient: n.recipient,
      staff_id: n.staffId ?? null,
      role: n.role ?? null,
      body: n.body,
      transport: n.transport,
      provider_id: null,
      status: 'pending',
      step: n.step,
      drill: n.drill ? 1 : 0,
      created_at: now,
      updated_at: now,
      error_code: null,
      history: JSON.stringify([{ status: 'pending', at: new Date(now).toISOString() }]),
      batch_id: null,
    };
    try {
      await this.db.insertInto('notification').values(row).execute();
      return { notification: this.changed(toNotification(row)), created: true };
    } catch (e) {
      // another worker created it between our look and our insert: theirs counts
      const again = await this.db
        .selectFrom('notification')
        .selectAll()
        .where('dedupe_key', '=', key)
        .executeTakeFirst();
      if (again) return { notification: toNotification(again), created: false };
      throw e;
    }
  }

  async getByDedupeKey(key: string): Promise<Notification | undefined> {
    const row = await this.db.selectFrom('notification').selectAll().where('dedupe_key', '=', key).executeTakeFirst();
    return row ? toNotification(row) : undefined;
  }

  /** Held notifications (status `bundled`, not yet in a carrier) of one recipient and transport, oldest first. */
  async held(filter: { recipient: string; drill: boolean; transport: string }): Promise<Notification[]> {
    const rows = await this.db
      .selectFrom('notification')
      .selectAll()
      .where('status', '=', 'bundled')
      .where('recipient', '=', filter.recipient)
      .where('transport', '=', filter.transport)
      .where('drill', '=', filter.drill ? 1 : 0)
      .where('batch_id', 'is', null)
      .orderBy('created_at', 'asc')
      .orderBy('id', 'asc')
      .limit(500)
      .execute();
    return rows.map(toNotification);
  }

  /** Recipients with held notifications of a transport (`digest`), drill and real apart. */
  async heldRecipients(transport: string): Promise<{ recipient: string; drill: boolean }[]> {
    const rows = await this.db
      .selectFrom('notification')
      .select(['recipient', 'drill'])
      .distinct()
      .where('status', '=', 'bundled')
      .where('transport', '=', transport)
      .where('batch_id', 'is', null)
      .execute();
    return rows.map((r) => ({ recipient: r.recipient, drill: Number(r.drill) === 1 }));
  }

  /**
   * Writes the carrier of a bundle or digest (keyed by `dedupeKey`, so a redelivered job finds it) and links the
   * held notifications to it, in one transaction; a second call returns the first carrier and links nothing.
   */
  async createBatch(
    n: NewNotification & { dedupeKey: string; memberIds: readonly string[] },
  ): Promise<{ notification: Notification; created: boolean }> {
    const existing = await this.getByDedupeKey(n.dedupeKey);
    if (existing) return { notification: existing, created: false };
    const now = this.clock.now();
    const at = new Date(now).toISOString();
    const row: NotificationTable = {
      id: randomUUID(),
      alert_id: n.alertId,
      dedupe_key: n.dedupeKey,
      recipient: n.recipient,
      staff_id: n.staffId ?? null,
      role: n.role ?? null,
      body: n.body,
      transport: n.transport,
      provider_id: null,
      status: 'pending',
      step: n.step,
      drill: n.drill ? 1 : 0,
      created_at: now,
      updated_at: now,
      error_code: null,
      history: JSON.stringify([{ status: 'pending', at, detail: `${n.memberIds.length} held message(s)` }]),
      batch_id: null,
    };
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('notification').values(row).execute();
        for (const id of n.memberIds) {
          const m = await trx.selectFrom('notification').select('history').where('id', '=', id).executeTakeFirst();
          if (!m) continue;
          const history = JSON.parse(m.history) as StatusChange[];
          history.push({ status: 'bundled', at, detail: `sent inside ${row.id}` });
          await trx
            .updateTable('notification')
            .set({ batch_id: row.id, updated_at: now, history: JSON.stringify(history) })
            .where('id', '=', id)
            .where('batch_id', 'is', null)
            .execute();
        }
      });
      return { notification: this.changed(toNotification(row)), created: true };
    } catch (e) {
      const again = await this.getByDedupeKey(n.dedupeKey);
      if (again) return { notification: again, created: false };
      throw e;
    }
  }

  /** A held notification that will not go out (its alert closed first): `capped`, with the reason. */
  async withdraw(id: string, detail: string): Promise<void> {
    const now = this.clock.now();
    await this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('notification').selectAll().where('id', '=', id).executeTakeFirst();
      if (row?.status !== 'bundled' || row.batch_id) return;
      const history = JSON.parse(row.history) as StatusChange[];
      history.push({ status: 'capped', at: new Date(now).toISOString(), detail });
      await trx
        .updateTable('notification')
        .set({ status: 'capped', updated_at: now, history: JSON.stringify(history) })
        .where('id', '=', id)
        .execute();
    });
  }

  /** The transport accepted the message: keep its id (to look it up after a timeout) and status. */
  async accepted(id: string, providerId: string, status: NotificationStatus): Promise<Notification> {
    return this.advance(id, status, { providerId });
  }

  async failed(id: string, code: string, detail: string): Promise<Notification> {
    return this.advance(id, 'failed', { errorCode: code, detail });
  }

  /** A delivery-status callback: by the provider's id; never moves backwards; unknown ids are ignored. */
  async statusFromProvider(
    providerId: string,
    status: NotificationStatus,
    errorCode?: string,
  ): Promise<Notification | undefined> {
    const row = await this.db
      .selectFrom('notification')
      .select('id')
      .where('provider_id', '=', providerId)
      .executeTakeFirst();
    if (!row) return undefined;
    return this.advance(row.id, status, { errorCode });
  }

  /** Moves to `status` if it is progress; returns the record either way. */
  async advance(
    id: string,
    status: NotificationStatus,
    extra: { providerId?: string; errorCode?: string; detail?: string } = {},
  ): Promise<Notification> {
    let moved = false;
    const out = await this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('notification').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new RegistryError('not_found', `no notification ${id}`);
      const current = row.status as NotificationStatus;
      const providerChanged = extra.providerId !== undefined && extra.providerId !== row.provider_id;
      if (RANK[status] <= RANK[current] && !providerChanged) return toNotification(row);
      moved = true;
      const now = this.clock.now();
      const history = JSON.parse(row.history) as StatusChange[];
      const next = RANK[status] > RANK[current] ? status : current;
      if (next !== current) history.push({ status: next, at: new Date(now).toISOString(), detail: extra.detail });
      const patch = {
        status: next,
        updated_at: now,
        history: JSON.stringify(history),
        provider_id: extra.providerId ?? row.provider_id,
        error_code: extra.errorCode ?? row.error_code,
      };
      await trx.updateTable('notification').set(patch).where('id', '=', id).execute();
      return toNotification({ ...row, ...patch });
    });
    return moved ? this.changed(out) : out;
  }

  /** Tells the listener (never throws into the caller: the write is done). */
  private changed(n: Notification): Notification {
    try {
      this.onChange?.(n);
    } catch {
      // a listener failure must not undo or fail a recorded notification
    }
    return n;
  }

  async get(id: string): Promise<Notification | undefined> {
    const row = await this.db.selectFrom('notification').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toNotification(row) : undefined;
  }

  /** Newest first, keyset-paged. */
  async list(
    filter: { alertId?: string; status?: NotificationStatus; since?: number; staffId?: string },
    page: PageOpts,
  ): Promise<Page<Notification>> {
    let q = this.db.selectFrom('notification').selectAll();
    if (filter.alertId) q = q.where('alert_id', '=', filter.alertId);
    if (filter.staffId) q = q.where('staff_id', '=', filter.staffId);
    if (filter.status) q = q.where('status', '=', filter.status);
    if (filter.since !== undefined) q = q.where('created_at', '>=', filter.since);
    if (page.cursor) {
      const [ts, id] = decodeCursor(page.cursor);
      q = q.where((eb) => eb.or([eb('created_at', '<', ts), eb.and([eb('created_at', '=', ts), eb('id', '<', id)])]));
    }
    const rows = await q
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(page.limit + 1)
      .execute();
    const items = rows.slice(0, page.limit).map(toNotification);
    const last = rows.length > page.limit ? rows[page.limit - 1] : undefined;
    return { items, nextCursor: last ? encodeCursor(Number(last.created_at), last.id) : undefined };
  }
}

function encodeCursor(ts: number, id: string): string {
  return Buffer.from(`${ts}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  const [ts, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const n = Number(ts);
  if (!Number.isFinite(n) || !id)
    throw new RegistryError('invalid', 'bad cursor: use the nextCursor of a previous page');
  return [n, id];
}

function toNotification(r: NotificationTable): Notification {
  return {
    id: r.id,
    alertId: r.alert_id,
    recipient: r.recipient,
    staffId: r.staff_id ?? undefined,
    role: r.role ?? undefined,
    body: r.body,
    transport: r.transport,
    providerId: r.provider_id ?? undefined,
    status: r.status as NotificationStatus,
    step: Number(r.step),
    drill: Number(r.drill) === 1,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    updatedAt: new Date(Number(r.updated_at)).toISOString(),
    errorCode: r.error_code ?? undefined,
    statusHistory: JSON.parse(r.history) as StatusChange[],
    batchId: r.batch_id ?? undefined,
  };
}
