/**
 * The alert service: the stored AlertSink (rules raise, clear and cancel through it) and the staff operations of
 * the alert API (acknowledge, resolve, notes), over the relational store (SQLite or PostgreSQL through Kysely).
 *
 * - One active alert per key is guaranteed by the store, not by this process: a partial unique index on `key` over
 *   the open and acknowledged rows (migration 002_alerts). Two messages in the same millisecond, or two nodes on one
 *   PostgreSQL, race into that index; the loser finds the winner's row and counts a repeat onto it.
 * - Every change to an alert (row + timeline entry) is one transaction that first locks the alert row, so the
 *   timeline's `seq` and the read-modify-write of count, severity and evidence cannot interleave.
 * - After the commit, every lifecycle change is written to the time-series store and handed to `onChange` (the
 *   live console, later notification). Neither may fail the operation: the alert is already stored.
 * - Semantics match MemoryAlertSink (src/alerts/memory-sink.ts), so rule tests on the in-memory sink hold here.
 */
import { randomUUID } from 'node:crypto';
import { type Kysely, type Selectable, sql } from 'kysely';
import type { Clock } from '../clock/clock.ts';
import type { Logger } from '../logger.ts';
import { type Page, type PageOpts, RegistryError, type Scope } from '../registry/port.ts';
import { encodeCursor, isUniqueViolation, pageArgs } from '../registry/registry.ts';
import { type AlertTable, type Database, type DB, fromBool, toBool } from '../store/db.ts';
import type { Point, TimeSeriesStore } from '../timeseries/port.ts';
import {
  ALERT_STATUSES,
  type Alert,
  type AlertInput,
  type AlertSink,
  type AlertStatus,
  alertKey,
  CATEGORIES,
  type Evidence,
  SEVERITIES,
  type Severity,
  type TimelineEntry,
} from './types.ts';

/** How staff close an alert: a fixed list, so that outcomes can be counted (false-alarm rate per rule, …). */
export const OUTCOMES = [
  'resident_fine',
  'sent_to_hospital',
  'false_alarm_away',
  'false_alarm_device',
  'false_alarm_other',
  'handled_on_site',
  'other',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Evidence kept per alert: the first items (what started it) and the latest (what it looks like now). */
export const EVIDENCE_HEAD = 5;
export const EVIDENCE_TAIL = 15;
export const MAX_NOTE = 2000;

/**
 * How often raise goes round the look-then-insert loop. A round is lost only when another writer opened the key
 * (or resolved it) between our look and our insert; after that the row is there, so two rounds are the norm and
 * ten are far beyond any real race.
 */
const MAX_RAISE_ATTEMPTS = 10;

/** What the API shows beyond the shared Alert shape. */
export interface StoredAlert extends Alert {
  acknowledgedAt?: string;
  acknowledgedBy?: string;
  /** ISO-8601, the last change of any kind */
  updatedAt: string;
}

export type AlertChange = TimelineEntry['action'];

export interface AlertFilter {
  status?: AlertStatus;
  type?: string;
  householdId?: string;
  gridId?: string;
  /** epoch ms: alerts first seen at or after this time */
  since?: number;
}

export interface AlertServiceOptions {
  clock: Clock;
  logger: Logger;
  timeseries?: Pick<TimeSeriesStore, 'write'>;
  onChange?: (alert: StoredAlert, change: AlertChange) => void;
}

type Row = Selectable<AlertTable>;
type Q = Kysely<DB>;

const ACTIVE: readonly AlertStatus[] = ['open', 'acknowledged'];
const SEVERITY_RANK: Record<Severity, number> = { critical: 0, major: 1, minor: 2, info: 3 };

/**
 * SQLite allows one writer per file. better-sqlite3 waits for a lock synchronously (busy_timeout), which blocks
 * the whole event loop: two connections to one file in ONE process (two services in a test, the import CLI's
 * code path next to a service) would then deadlock, the waiter blocking the holder until the timeout. So write
 * transactions on SQLite are queued in-process here first; across processes SQLite's own lock (BEGIN IMMEDIATE
 * with busy_timeout) does the queueing. Serialising loses nothing: SQLite never runs two writers at once anyway.
 */
let sqliteWriteQueue: Promise<unknown> = Promise.resolve();
function queueSqliteWrite<T>(fn: () => Promise<T>): Promise<T> {
  const run = sqliteWriteQueue.then(fn, fn);
  sqliteWriteQueue = run.catch(() => {});
  return run;
}

/** The device events (with their own ids) an input was raised from. */
function eventSources(evidence: readonly Evidence[]): { deviceId: string; eventId: string }[] {
  const out: { deviceId: string; eventId: string }[] = [];
  for (const e of evidence) {
    if (e.kind === 'event' && e.deviceId && e.eventId) out.push({ deviceId: e.deviceId, eventId: e.eventId });
  }
  return out;
}

export class AlertService implements AlertSink {
  readonly name = 'alerts';
  /** Raises that lost a race for a key in the unique index and went round again (a gauge of contention). */
  raceRetries = 0;
  private readonly grids = new Map<string, string | undefined>();
  private readonly clock: Clock;
  private readonly log: Logger;

  constructor(
    readonly database: Database,
    private readonly opts: AlertServiceOptions,
  ) {
    this.clock = opts.clock;
    this.log = opts.logger;
  }

  private get db(): Q {
    return this.database.db;
  }

  // ---------------------------------------------------------------- the AlertSink (rules)

  /**
   * Opens an alert for the input's key, or counts a repeat onto the active one (count + 1, last-seen, severity
   * only escalates, evidence appended within its bound, a `repeated` timeline entry).
   *
   * Look first, insert second: repeats are the common case, and a failed INSERT would abort the whole PostgreSQL
   * transaction and log an error on the server for every repeat. The unique index still decides every race: when
   * another writer opens the key between our look and our insert, the insert fails with a unique violation and
   * we go round again, this time finding (and locking) its row. Going round also covers an active row that was
   * resolved between two looks: then the key is free and a new alert opens.
   */
  async raise(input: AlertInput): Promise<{ alert: StoredAlert; created: boolean; replayed?: boolean }> {
    const key = checkInput(input);
    const sources = eventSources(input.evidence);
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await this.write(async (q) => {
          // Raised from device events already counted (a replay after a crash, a redelivery that slipped past the
          // ingest dedupe): nothing changes. The event ids go in with the effect, in the same transaction.
          let counted: string | undefined;
          let fresh = sources;
          if (sources.length > 0) {
            fresh = [];
            for (const src of sources) {
              const hit = await q
                .selectFrom('alert_event')
                .select('alert_id')
                .where('device_id', '=', src.deviceId)
                .where('event_id', '=', src.eventId)
                .where('alert_key', '=', key)
                .executeTakeFirst();
              if (hit) counted = hit.alert_id;
              else fresh.push(src);
            }
            if (fresh.length === 0 && counted) {
              return { alert: await this.load(q, counted), created: false, replayed: true };
            }
          }
          const row = await this.lockActive(q, key);
          const result = row
            ? { alert: await this.repeat(q, row, input), created: false }
            : { alert: await this.open(q, key, input), created: true };
          if (fresh.length > 0) {
            await q
              .insertInto('alert_event')
              .values(
                fresh.map((f) => ({
                  device_id: f.deviceId,
                  event_id: f.eventId,
                  alert_key: key,
                  alert_id: result.alert.id,
                  ts: input.ts,
                })),
              )
              .execute();
          }
          return result;
        });
        if ('replayed' in out) {
          this.log.debug({ alertId: out.alert.id, key }, 'alert: event already counted');
          return out;
        }
        if (out.created) {
          this.log.info(
            { alertId: out.alert.id, key, severity: out.alert.severity, drill: input.drill },
            'alert opened',
          );
        }
        this.changed(out.alert, out.created ? 'opened' : 'repeated', input.ts);
        return out;
      } catch (e) {
        if (isUniqueViolation(e) && attempt < MAX_RAISE_ATTEMPTS) {
          this.raceRetries++;
          continue;
        }
        throw e;
      }
    }
  }

  /** Forgets which device events were counted before `before` (epoch ms): long past any replay or redelivery. */
  async pruneEventKeys(before: number): Promise<number> {
    const r = await this.write((q) => q.deleteFrom('alert_event').where('ts', '<', before).executeTakeFirst());
    return Number(r.numDeletedRows);
  }

  /** Resolves the active alert of `key` by itself (the condition cleared); the reason goes on the timeline. */
  async clear(key: string, reason: string, ts: number): Promise<StoredAlert | undefined> {
    checkTs(ts);
    const alert = await this.write(async (q) => {
      const row = await this.lockActive(q, key);
      if (!row) return undefined;
      await q
        .updateTable('alert')
        .set({ status: 'resolved', resolved_at: ts, outcome: reason, updated_at: this.clock.now() })
        .where('id', '=', row.id)
        .execute();
      await this.append(q, row.id, { ts, action: 'resolved', by: 'system', via: 'rule', note: reason });
      return this.load(q, row.id);
    });
    if (alert) this.changed(alert, 'resolved', ts, 'alert_cleared');
    return alert;
  }

  /** Cancels the active alert of `key` (the wearer cancelled a fall within its window, …). */
  async cancel(key: string, reason: string, ts: number, by: string): Promise<StoredAlert | undefined> {
    checkTs(ts);
    const alert = await this.write(async (q) => {
      const row = await this.lockActive(q, key);
      if (!row) return undefined;
      await q
        .updateTable('alert')
        .set({ status: 'cancelled', resolved_at: ts, outcome: reason, updated_at: this.clock.now() })
        .where('id', '=', row.id)
        .execute();
      const via = by.startsWith('device:') ? 'device' : 'api';
      await this.append(q, row.id, { ts, action: 'cancelled', by, via, note: reason });
      return this.load(q, row.id);
    });
    if (alert) this.changed(alert, 'cancelled', ts);
    return alert;
  }

  // ---------------------------------------------------------------- staff operations (the API)

  /**
   * open → acknowledged ("I am on it"). Idempotent: acknowledging an acknowledged alert changes nothing (a double
   * click, an SMS reply after the console click). A resolved or cancelled alert cannot be acknowledged: conflict.
   */
  async acknowledge(id: string, staffId: string, via: string, note?: string): Promise<StoredAlert> {
    checkVia(via);
    if (note !== undefined) checkNote(note);
    const now = this.clock.now();
    const { alert, changed } = await this.write(async (q) => {
      const row = await this.lockById(q, id);
      if (row.status === 'acknowledged') return { alert: await this.load(q, id), changed: false };
      if (row.status !== 'open') throw new RegistryError('conflict', `alert ${id} is already ${row.status}`);
      await q
        .updateTable('alert')
        .set({ status: 'acknowledged', acknowledged_at: now, acknowledged_by: staffId, updated_at: now })
        .where('id', '=', id)
        .execute();
      await this.append(q, id, { ts: now, action: 'acknowledged', by: staffId, via, note });
      return { alert: await this.load(q, id), changed: true };
    });
    if (changed) this.changed(alert, 'acknowledged', now);
    return alert;
  }

  /** open or acknowledged → resolved, with an outcome from OUTCOMES. Resolving a closed alert is a conflict. */
  async resolve(id: string, staffId: string, outcome: Outcome, via: string, note?: string): Promise<StoredAlert> {
    if (!(OUTCOMES as readonly string[]).includes(outcome)) {
      throw new RegistryError('invalid', `outcome: must be one of ${OUTCOMES.join(', ')}`, [
        { field: 'outcome', message: `must be one of ${OUTCOMES.join(', ')}` },
      ]);
    }
    checkVia(via);
    if (note !== undefined) checkNote(note);
    const now = this.clock.now();
    const alert = await this.write(async (q) => {
      const row = await this.lockById(q, id);
      if (!ACTIVE.includes(row.status as AlertStatus)) {
        throw new RegistryError('conflict', `alert ${id} is already ${row.status}`);
      }
      await q
        .updateTable('alert')
        .set({ status: 'resolved', resolved_at: now, outcome, updated_at: now })
        .where('id', '=', id)
        .execute();
      // the outcome leads the note, so the timeline alone tells the story
      const text = note ? `${outcome}: ${note}` : outcome;
      await this.append(q, id, { ts: now, action: 'resolved', by: staffId, via, note: text });
      return this.load(q, id);
    });
    this.changed(alert, 'resolved', now);
    return alert;
  }

  /** A note on the timeline, in any status (follow-ups after a resolution belong to the same story). */
  async addNote(id: string, staffId: string, note: string, via: string): Promise<StoredAlert> {
    checkNote(note);
    if (note.trim() === '') throw invalidField('note', 'must not be empty');
    checkVia(via);
    const now = this.clock.now();
    const alert = await this.write(async (q) => {
      await this.lockById(q, id);
      await q.updateTable('alert').set({ updated_at: now }).where('id', '=', id).execute();
      await this.append(q, id, { ts: now, action: 'note', by: staffId, via, note });
      return this.load(q, id);
    });
    this.changed(alert, 'note', now);
    return alert;
  }

  // ---------------------------------------------------------------- reads

  async get(id: string): Promise<StoredAlert | undefined> {
    const row = await this.db.selectFrom('alert').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    return toAlert(row, await this.timelines(this.db, [id]).then((m) => m.get(id) ?? []));
  }

  /** The grid an alert belongs to: fixed when it opens, so kept once looked up (bounded). */
  async gridOf(id: string): Promise<string | undefined> {
    if (this.grids.has(id)) return this.grids.get(id);
    const row = await this.db.selectFrom('alert').select('grid_id').where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    if (this.grids.size >= 10_000) this.grids.delete(this.grids.keys().next().value!);
    this.grids.set(id, row.grid_id ?? undefined);
    return row.grid_id ?? undefined;
  }

  /** The active (open or acknowledged) alert of a key. */
  async active(key: string): Promise<StoredAlert | undefined> {
    const row = await this.db
      .selectFrom('alert')
      .selectAll()
      .where('key', '=', key)
      .where('status', 'in', [...ACTIVE])
      .executeTakeFirst();
    if (!row) return undefined;
    return toAlert(row, (await this.timelines(this.db, [row.id])).get(row.id) ?? []);
  }

  /**
   * Alerts visible in the scope, newest first (first seen, then id), filters combined with AND. Keyset pages on
   * (first_seen, id), which never changes once an alert exists, so pages neither repeat nor skip alerts while new
   * ones open (those land before the first page, not in the middle).
   */
  async list(filter: AlertFilter, scope: Scope, page: PageOpts): Promise<Page<StoredAlert>> {
    const { limit, after } = pageArgs(page);
    const problems: { field: string; message: string }[] = [];
    if (filter.status !== undefined && !ALERT_STATUSES.includes(filter.status)) {
      problems.push({ field: 'status', message: `must be one of ${ALERT_STATUSES.join(', ')}` });
    }
    if (filter.since !== undefined && !Number.isFinite(filter.since)) {
      problems.push({ field: 'since', message: 'must be a time (epoch ms)' });
    }
    const position = after === undefined ? undefined : parsePosition(after);
    if (after !== undefined && !position) problems.push({ field: 'cursor', message: 'is not a valid cursor' });
    if (problems.length > 0) {
      throw new RegistryError('invalid', problems.map((p) => `${p.field}: ${p.message}`).join('; '), problems);
    }
    if (!scope.all && scope.gridIds.length === 0) return { items: [] };

    let q = this.db
      .selectFrom('alert')
      .selectAll()
      .orderBy('first_seen', 'desc')
      .orderBy('id', 'desc')
      .limit(limit + 1);
    if (!scope.all) q = q.where('grid_id', 'in', [...scope.gridIds]);
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    if (filter.type !== undefined) q = q.where('type', '=', filter.type);
    if (filter.householdId !== undefined) q = q.where('household_id', '=', filter.householdId);
    if (filter.gridId !== undefined) q = q.where('grid_id', '=', filter.gridId);
    if (filter.since !== undefined) q = q.where('first_seen', '>=', Math.trunc(filter.since));
    if (position) {
      const { ts, id } = position;
      q = q.where((eb) => eb.or([eb('first_seen', '<', ts), eb.and([eb('first_seen', '=', ts), eb('id', '<', id)])]));
    }
    const rows = await q.execute();
    const kept = rows.slice(0, limit);
    const timelines = await this.timelines(
      this.db,
      kept.map((r) => r.id),
    );
    const items = kept.map((r) => toAlert(r, timelines.get(r.id) ?? []));
    if (rows.length <= limit) return { items };
    const last = kept[kept.length - 1]!;
    return { items, nextCursor: encodeCursor(`${Number(last.first_seen)}:${last.id}`) };
  }

  // ---------------------------------------------------------------- internals

  /**
   * Runs `fn` in one write transaction. PostgreSQL: a plain transaction; rows are locked with SELECT … FOR UPDATE.
   * SQLite: BEGIN IMMEDIATE takes the file's write lock up front (a deferred BEGIN that reads, then writes, can
   * fail to upgrade when another process wrote in between), behind the in-process queue above. `fn` must use the
   * `q` it is given, never `this.db`: on SQLite the one connection is held by the transaction.
   */
  private write<T>(fn: (q: Q) => Promise<T>): Promise<T> {
    if (this.database.dialect === 'postgres') return this.db.transaction().execute(fn);
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

  /** The active row of a key, locked until the transaction ends (PostgreSQL; SQLite holds the file lock). */
  private async lockActive(q: Q, key: string): Promise<Row | undefined> {
    return q
      .selectFrom('alert')
      .selectAll()
      .where('key', '=', key)
      .where('status', 'in', [...ACTIVE])
      .$if(this.database.dialect === 'postgres', (b) => b.forUpdate())
      .executeTakeFirst();
  }

  private async lockById(q: Q, id: string): Promise<Row> {
    const row = await q
      .selectFrom('alert')
      .selectAll()
      .where('id', '=', id)
      .$if(this.database.dialect === 'postgres', (b) => b.forUpdate())
      .executeTakeFirst();
    if (!row) throw new RegistryError('not_found', `no alert ${id}`);
    return row;
  }

  private async open(q: Q, key: string, input: AlertInput): Promise<StoredAlert> {
    const id = randomUUID();
    const s = input.subject;
    await q
      .insertInto('alert')
      .values({
        id,
        type: input.type,
        category: input.category,
        severity: input.severity,
        status: 'open',
        key,
        household_id: s.householdId ?? null,
        unit_id: s.unitId ?? null,
        building_id: s.buildingId ?? null,
        area_id: s.areaId ?? null,
        grid_id: s.gridId ?? null,
        community_id: s.communityId ?? null,
        device_id: s.deviceId ?? null,
        colour: s.colour ?? null,
        summary: input.summary,
        count: 1,
        first_seen: input.ts,
        last_seen: input.ts,
        not_before: input.notBefore ?? null,
        drill: fromBool(input.drill),
        evidence: JSON.stringify(boundEvidence(input.evidence)),
        resolved_at: null,
        outcome: null,
        acknowledged_at: null,
        acknowledged_by: null,
        updated_at: this.clock.now(),
      })
      .execute();
    await this.append(q, id, {
      ts: input.ts,
      action: 'opened',
      by: `rule:${input.type}`,
      via: 'rule',
      note: input.summary,
    });
    return this.load(q, id);
  }

  private async repeat(q: Q, row: Row, input: AlertInput): Promise<StoredAlert> {
    const current = row.severity as Severity;
    // a repeat can make it worse, never milder (a water alert going from 12 h to 24 h without water)
    const severity = SEVERITY_RANK[input.severity] < SEVERITY_RANK[current] ? input.severity : current;
    const evidence = boundEvidence([...parseEvidence(row.evidence), ...input.evidence]);
    await q
      .updateTable('alert')
      .set({
        count: Number(row.count) + 1,
        // back-filled messages may arrive late: last-seen never moves backwards
        last_seen: Math.max(Number(row.last_seen), input.ts),
        severity,
        evidence: JSON.stringify(evidence),
        updated_at: this.clock.now(),
      })
      .where('id', '=', row.id)
      .execute();
    const note = severity !== current ? `severity ${current} → ${severity}` : undefined;
    // The count and last-seen are on the alert itself; the timeline keeps the first repeats, every 100th and every
    // change of severity, so a condition repeating all day (a door held open, a flapping sensor) cannot grow it
    // without bound.
    const count = Number(row.count) + 1;
    if (note || count <= 10 || count % 100 === 0) {
      await this.append(q, row.id, {
        ts: input.ts,
        action: 'repeated',
        by: `rule:${input.type}`,
        via: 'rule',
        note: note ?? `count ${count}`,
      });
    }
    return this.load(q, row.id);
  }

  /** Appends a timeline entry; the caller holds the alert's row lock, so max(seq) + 1 is ours alone. */
  private async append(q: Q, alertId: string, e: TimelineEntry): Promise<void> {
    const last = await q
      .selectFrom('alert_timeline')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('alert_id', '=', alertId)
      .executeTakeFirst();
    await q
      .insertInto('alert_timeline')
      .values({
        alert_id: alertId,
        seq: Number(last?.seq ?? 0) + 1,
        ts: e.ts,
        action: e.action,
        by: e.by,
        via: e.via,
        note: e.note ?? null,
      })
      .execute();
  }

  private async load(q: Q, id: string): Promise<StoredAlert> {
    const row = await q.selectFrom('alert').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return toAlert(row, (await this.timelines(q, [id])).get(id) ?? []);
  }

  /** Timelines of several alerts in one query per 500 ids. */
  private async timelines(q: Q, ids: readonly string[]): Promise<Map<string, TimelineEntry[]>> {
    const out = new Map<string, TimelineEntry[]>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await q
        .selectFrom('alert_timeline')
        .selectAll()
        .where('alert_id', 'in', ids.slice(i, i + 500))
        .orderBy('alert_id')
        .orderBy('seq')
        .execute();
      for (const r of rows) {
        const e: TimelineEntry = {
          ts: Number(r.ts),
          action: r.action as TimelineEntry['action'],
          by: r.by,
          via: r.via,
        };
        if (r.note !== null) e.note = r.note;
        const list = out.get(r.alert_id) ?? [];
        list.push(e);
        out.set(r.alert_id, list);
      }
    }
    return out;
  }

  /**
   * After a commit: one time-series point and the onChange callback. Neither may undo or fail the change.
   *
   * Time-series convention (so response times can be charted from the store alone):
   * - device id `alert:<key>` (`alert:drill:<key>` for drills): one series per alert key and field, NOT per alert,
   *   so the number of series stays bounded by places × types however many alerts open; real device ids cannot
   *   contain `:`, so these never mix with a device's readings;
   * - field `alert_<change>`: alert_opened, alert_repeated, alert_acknowledged, alert_note, alert_resolved (by
   *   staff), alert_cleared (resolved by itself), alert_cancelled;
   * - value: seconds since first seen for acknowledged / resolved / cleared / cancelled (time to acknowledge, to
   *   resolve), the new count for repeated, 1 otherwise;
   * - tags: building, grid and drill of the alert (not the household: its readings are its devices').
   */
  private changed(alert: StoredAlert, change: AlertChange, ts: number, field = `alert_${change}`): void {
    if (this.opts.timeseries) {
      const since = Math.max(0, (ts - Date.parse(alert.firstSeen)) / 1000);
      const value =
        change === 'acknowledged' || change === 'resolved' || change === 'cancelled'
          ? since
          : change === 'repeated'
            ? alert.count
            : 1;
      const point: Point = {
        deviceId: `alert:${alert.drill ? 'drill:' : ''}${alert.key}`,
        field,
        ts,
        value,
        // no household tag: a household's readings are its devices' (GET /readings?householdId), and response times
        // are charted per building and grid
        tags: {
          buildingId: alert.buildingId,
          gridId: alert.gridId,
          drill: alert.drill,
        },
      };
      try {
        this.opts.timeseries.write([point]);
      } catch (err) {
        this.log.warn({ err, alertId: alert.id }, 'alert change not written to the time-series store');
      }
    }
    if (this.opts.onChange) {
      try {
        this.opts.onChange(alert, change);
      } catch (err) {
        this.log.error({ err, alertId: alert.id, change }, 'alert change listener failed');
      }
    }
  }
}

// ---------------------------------------------------------------- helpers

function invalidField(field: string, message: string): RegistryError {
  return new RegistryError('invalid', `${field}: ${message}`, [{ field, message }]);
}

function checkTs(ts: number): void {
  if (!Number.isFinite(ts)) throw invalidField('ts', 'must be a time (epoch ms)');
}

function checkVia(via: string): void {
  if (typeof via !== 'string' || !/^[a-z_]{1,32}$/.test(via)) throw invalidField('via', 'must be a short word');
}

function checkNote(note: string): void {
  if (typeof note !== 'string' || note.length > MAX_NOTE) {
    throw invalidField('note', `must be text of at most ${MAX_NOTE} characters`);
  }
}

/** Validates what a rule raises (a bug in a rule must not store an alert the API cannot show); returns the key. */
function checkInput(input: AlertInput): string {
  const problems: { field: string; message: string }[] = [];
  if (typeof input.type !== 'string' || !/^[a-z][a-z0-9_]{0,63}$/.test(input.type)) {
    problems.push({ field: 'type', message: 'must be a snake_case id' });
  }
  if (!CATEGORIES.includes(input.category)) problems.push({ field: 'category', message: 'unknown category' });
  if (!SEVERITIES.includes(input.severity)) problems.push({ field: 'severity', message: 'unknown severity' });
  if (!Number.isFinite(input.ts)) problems.push({ field: 'ts', message: 'must be a time (epoch ms)' });
  if (input.notBefore !== undefined && !Number.isFinite(input.notBefore)) {
    problems.push({ field: 'notBefore', message: 'must be a time (epoch ms)' });
  }
  let key = '';
  try {
    key = alertKey(input);
  } catch (e) {
    problems.push({ field: 'keyOn', message: (e as Error).message });
  }
  if (problems.length > 0) {
    throw new RegistryError('invalid', problems.map((p) => `${p.field}: ${p.message}`).join('; '), problems);
  }
  return key;
}

/** The first EVIDENCE_HEAD and the last EVIDENCE_TAIL items: bounded however long an alert keeps repeating. */
export function boundEvidence(items: readonly Evidence[]): Evidence[] {
  if (items.length <= EVIDENCE_HEAD + EVIDENCE_TAIL) return [...items];
  return [...items.slice(0, EVIDENCE_HEAD), ...items.slice(items.length - EVIDENCE_TAIL)];
}

function parseEvidence(text: string): Evidence[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? (v as Evidence[]) : [];
  } catch {
    return [];
  }
}

/** A cursor's position: `<first_seen>:<id>`. */
function parsePosition(text: string): { ts: number; id: string } | undefined {
  const m = /^(\d{1,16}):(.{1,200})$/.exec(text);
  return m ? { ts: Number(m[1]), id: m[2]! } : undefined;
}

function iso(ms: number | null): string | undefined {
  return ms === null ? undefined : new Date(Number(ms)).toISOString();
}

function toAlert(r: Row, timeline: TimelineEntry[]): StoredAlert {
  const a: StoredAlert = {
    id: r.id,
    type: r.type,
    category: r.category as Alert['category'],
    severity: r.severity as Severity,
    status: r.status as AlertStatus,
    key: r.key,
    summary: r.summary,
    count: Number(r.count),
    firstSeen: iso(r.first_seen)!,
    lastSeen: iso(r.last_seen)!,
    drill: toBool(r.drill),
    evidence: parseEvidence(r.evidence),
    timeline,
    updatedAt: iso(r.updated_at)!,
  };
  // only the columns that are set: the API answers without nulls, like the other resources
  if (r.household_id !== null) a.householdId = r.household_id;
  if (r.unit_id !== null) a.unitId = r.unit_id;
  if (r.building_id !== null) a.buildingId = r.building_id;
  if (r.area_id !== null) a.areaId = r.area_id;
  if (r.grid_id !== null) a.gridId = r.grid_id;
  if (r.community_id !== null) a.communityId = r.community_id;
  if (r.device_id !== null) a.deviceId = r.device_id;
  if (r.colour !== null) a.colour = r.colour;
  if (r.not_before !== null) a.notBefore = iso(r.not_before);
  if (r.resolved_at !== null) a.resolvedAt = iso(r.resolved_at);
  if (r.outcome !== null) a.outcome = r.outcome;
  if (r.acknowledged_at !== null) a.acknowledgedAt = iso(r.acknowledged_at);
  if (r.acknowledged_by !== null) a.acknowledgedBy = r.acknowledged_by;
  return a;
}
