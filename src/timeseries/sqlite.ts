/**
 * SQLite adapter of the time-series port: the embedded default (no server to run).
 *
 * Schema: `series` maps (device_id, field) to a small integer id and carries the device's place (household,
 * building, grid) and drill flag; `points` is a WITHOUT ROWID table keyed by (series_id, ts), so a point costs
 * three integers/reals on disk, a device+field+time range is one B-tree range scan, and the same device+field+ts
 * written twice overwrites (redelivered telemetry stays idempotent).
 *
 * Writes are buffered and committed in one transaction per batch (when the buffer reaches batchSize, or every
 * flushIntervalMs). When the database refuses a write (locked by another process, disk full, ...), the points stay
 * in a bounded buffer and are retried at the next flush. Beyond the bound, the newest points go to the disk spill
 * (spill.ts) when one is configured, to be written back once the database takes writes again; without a spill, the
 * oldest are dropped (and counted).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import Database from 'better-sqlite3';
import type { Logger } from '../logger.ts';
import { Spill, type SpillCodec, type SpillSettings } from './spill.ts';
import type {
  Aggregate,
  AggregatePoint,
  AggregateQuery,
  Point,
  RangeQuery,
  StoredPoint,
  TimeSeriesStats,
  TimeSeriesStore,
} from './port.ts';

export interface SqliteTimeSeriesOptions {
  file: string;
  retentionDays: number;
  batchSize: number;
  flushIntervalMs: number;
  /** Points held in memory while the database refuses writes; beyond it the oldest are dropped. */
  maxBufferedPoints?: number;
  /**
   * How long a write waits for another connection's lock before failing (the points are then retried at the next
   * flush). Short, because better-sqlite3 waits synchronously: a long wait would stall the event loop.
   */
  busyTimeoutMs?: number;
  /** Points beyond maxBufferedPoints go to disk here instead of being dropped. */
  spill?: SpillSettings;
}

const SCHEMA_VERSION = 1;
const DEFAULT_LIMIT = 10_000;
const DAY_MS = 86_400_000;
const RETENTION_INTERVAL_MS = 3_600_000;
/** Rows deleted per retention statement: small enough that one statement takes a few ms. */
const RETENTION_CHUNK = 5_000;
/** While only checking series (nothing to delete), the retention job hands the event loop back this often. */
const RETENTION_SLICE_MS = 10;
/** Repeated failures of the same kind are logged at most this often. */
const LOG_EVERY_MS = 10_000;
/** The longest wait between two retries while the database refuses writes. */
const MAX_RETRY_DELAY_MS = 2_000;

interface SeriesEntry {
  id: number;
  /** place and drill flag last stored for the series; undefined when only the id is known */
  sig: string | undefined;
}

interface PointRow {
  deviceId: string;
  field: string;
  ts: number;
  value: number;
  drill: number;
}

type Bindings = Record<string, string | number>;

const AGG_SQL: Record<Exclude<Aggregate, 'last'>, string> = {
  mean: 'AVG(p.value)',
  min: 'MIN(p.value)',
  max: 'MAX(p.value)',
  sum: 'SUM(p.value)',
  count: 'COUNT(*)',
};

export class SqliteTimeSeries implements TimeSeriesStore {
  readonly name = 'sqlite';

  private db: Database.Database | undefined;
  private insertPoint!: Database.Statement<[number, number, number]>;
  private upsertSeries!: Database.Statement<[string, string, string | null, string | null, string | null, number]>;
  private findSeries!: Database.Statement<[string, string]>;
  private writeBatch!: Database.Transaction<(batch: readonly Point[]) => Map<string, SeriesEntry>>;
  private readonly queries = new Map<string, Database.Statement<[Bindings]>>();
  private readonly seriesCache = new Map<string, SeriesEntry>();

  // The buffer is consumed from `head` so taking a batch off the front costs nothing.
  private buffer: Point[] = [];
  private head = 0;
  private readonly maxBuffered: number;

  private flushChain: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private retention: Promise<number> | undefined;
  private stopping = false;

  private written = 0;
  private dropped = 0;
  private failedFlushes = 0;
  private failing = false;
  /** back-off of the flush timer's retries while writes fail */
  private retryDelay = 0;
  private retryAt = 0;
  private lastFailureLog = 0;
  private lastDropLog = 0;
  private readonly spill: Spill<Point> | undefined;

  constructor(
    private readonly opts: SqliteTimeSeriesOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.maxBuffered = opts.maxBufferedPoints ?? Math.max(20 * opts.batchSize, 100_000);
    if (opts.spill) {
      this.spill = new Spill(
        { ...opts.spill, name: 'timeseries-sqlite', ext: 'ndjson', drainBatch: opts.batchSize },
        POINT_CODEC,
        log,
      );
    }
  }

  async start(): Promise<void> {
    if (this.db) return;
    this.stopping = false;
    mkdirSync(path.dirname(path.resolve(this.opts.file)), { recursive: true });
    const db = new Database(this.opts.file);
    try {
      this.open(db);
    } catch (err) {
      db.close();
      throw err;
    }
    this.db = db;
    if (this.spill) {
      try {
        this.spill.start({
          // live points first: the spill drains only while the buffer is nearly empty and no retry is pending
          ready: () =>
            this.db !== undefined && this.bufferedCount() < this.opts.batchSize && Date.now() >= this.retryAt,
          write: (batch) => this.commit(batch),
        });
      } catch (err) {
        db.close();
        this.db = undefined;
        throw err;
      }
    }
    this.flushTimer = setInterval(() => {
      // while the database refuses writes, retries back off: each one may block the event loop for busyTimeoutMs
      if (this.bufferedCount() > 0 && Date.now() >= this.retryAt) this.flush().catch(() => {});
    }, this.opts.flushIntervalMs);
    this.flushTimer.unref();
    this.retentionTimer = setInterval(() => void this.runRetention().catch(() => {}), RETENTION_INTERVAL_MS);
    this.retentionTimer.unref();
    // At start too: a service that was down for a while should not wait an hour to shed what expired meanwhile.
    void this.runRetention().catch(() => {});
    this.log.info({ file: this.opts.file, retentionDays: this.opts.retentionDays }, 'timeseries: sqlite store open');
  }

  private open(db: Database.Database): void {
    db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a power cut may lose the last transactions but never corrupts the file; FULL would fsync
    // on every batch, which the ingest rate cannot afford.
    db.pragma('synchronous = NORMAL');
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(this.opts.busyTimeoutMs ?? 50))}`);
    db.pragma('temp_store = MEMORY');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `${this.opts.file} has time-series schema version ${version}; this build knows ${SCHEMA_VERSION}`,
      );
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS series (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        field TEXT NOT NULL,
        household_id TEXT,
        building_id TEXT,
        grid_id TEXT,
        drill INTEGER NOT NULL DEFAULT 0,
        UNIQUE (device_id, field)
      );
      CREATE INDEX IF NOT EXISTS series_household ON series (household_id, field);
      CREATE TABLE IF NOT EXISTS points (
        series_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (series_id, ts)
      ) WITHOUT ROWID;
      PRAGMA user_version = ${SCHEMA_VERSION};
    `);
    this.insertPoint = db.prepare('INSERT OR REPLACE INTO points (series_id, ts, value) VALUES (?, ?, ?)');
    this.upsertSeries = db.prepare(
      `INSERT INTO series (device_id, field, household_id, building_id, grid_id, drill) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (device_id, field) DO UPDATE SET household_id = excluded.household_id,
         building_id = excluded.building_id, grid_id = excluded.grid_id, drill = excluded.drill
       RETURNING id`,
    );
    this.upsertSeries.pluck();
    this.findSeries = db.prepare('SELECT id FROM series WHERE device_id = ? AND field = ?');
    this.findSeries.pluck();
    this.writeBatch = db.transaction((batch: readonly Point[]) => this.insertAll(batch));
  }

  /** Runs inside the write transaction; returns the series it created or changed, cached only once committed. */
  private insertAll(batch: readonly Point[]): Map<string, SeriesEntry> {
    const touched = new Map<string, SeriesEntry>();
    for (const p of batch) {
      const key = `${p.deviceId}\u0000${p.field}`;
      const sig = p.tags ? tagSig(p) : undefined;
      let entry = touched.get(key) ?? this.seriesCache.get(key);
      if (!entry || (sig !== undefined && entry.sig !== sig)) {
        let id: number | undefined;
        if (sig === undefined) id = this.findSeries.get(p.deviceId, p.field) as number | undefined;
        if (id === undefined) {
          const t = p.tags;
          id = this.upsertSeries.get(
            p.deviceId,
            p.field,
            t?.householdId ?? null,
            t?.buildingId ?? null,
            t?.gridId ?? null,
            t?.drill ? 1 : 0,
          ) as number;
        }
        entry = { id, sig };
        touched.set(key, entry);
      }
      this.insertPoint.run(entry.id, Math.floor(p.ts), p.value);
    }
    return touched;
  }

  async stop(): Promise<void> {
    if (!this.db || this.stopping) return;
    this.stopping = true;
    clearInterval(this.flushTimer);
    clearInterval(this.retentionTimer);
    await this.spill?.stopDrain();
    try {
      await this.flush();
    } catch (err) {
      const left = this.buffer.slice(this.head);
      this.buffer = [];
      this.head = 0;
      // with a spill, what the database refuses now is written after the next start
      const kept = this.spill?.add(left) ?? 0;
      // the spill counts (and logs) what it could not take itself
      if (!this.spill) this.dropped += left.length;
      this.log.error(
        { err, lost: left.length - kept, spilled: kept },
        kept > 0
          ? 'timeseries: sqlite store closed with unwritten points; kept in the spill'
          : 'timeseries: sqlite store closed with unwritten points',
      );
    }
    await this.spill?.close();
    await this.retention?.catch(() => {});
    this.db.close();
    this.db = undefined;
    this.queries.clear();
    this.seriesCache.clear();
  }

  write(points: readonly Point[]): void {
    if (this.stopping) {
      this.drop(points.length, 'store stopped');
      return;
    }
    let invalid = 0;
    for (const p of points) {
      if (isValidPoint(p)) this.buffer.push(p);
      else invalid++;
    }
    if (invalid > 0) this.drop(invalid, 'invalid point (empty id/field or non-finite ts/value)');
    // Full batches are committed right here, so the buffer stays bounded however fast points arrive. Not while
    // the database refuses writes: each attempt could wait busyTimeoutMs; the flush timer retries instead.
    while (this.db && !this.failing && this.bufferedCount() >= this.opts.batchSize) {
      try {
        this.writeOneBatch();
      } catch {
        break;
      }
    }
    const overflow = this.bufferedCount() - this.maxBuffered;
    if (overflow > 0) {
      if (this.spill) {
        // The memory buffer keeps the oldest (written first when the database is back); the newest go to disk,
        // and the spill counts and logs what it cannot take.
        this.spill.add(this.buffer.splice(this.buffer.length - overflow));
      } else {
        // The newest readings matter most to a live console, so the oldest make room.
        this.head += overflow;
        this.drop(overflow, 'buffer full (the database refuses writes, or is not open)');
      }
    }
  }

  flush(): Promise<void> {
    // One drain at a time: a caller arriving mid-drain waits for it, then for anything left.
    const run = this.flushChain.then(() => this.drain());
    this.flushChain = run.catch(() => {});
    return run;
  }

  private async drain(): Promise<void> {
    while (this.bufferedCount() > 0) {
      this.writeOneBatch();
      // A backlog (after an outage) is written batch by batch without holding the event loop for all of it.
      if (this.bufferedCount() > 0) await yieldToLoop();
    }
  }

  /** Commits the oldest batchSize points in one transaction; on failure they stay at the head of the buffer. */
  private writeOneBatch(): void {
    const batch = this.buffer.slice(this.head, this.head + this.opts.batchSize);
    this.commit(batch, () => {
      this.head += batch.length;
      this.compact();
    });
  }

  /** One transaction for batch; on failure counts it, backs off and throws. `taken` runs before the log line. */
  private commit(batch: readonly Point[], taken?: () => void): void {
    if (!this.db) throw new Error('sqlite time-series store is not started');
    let touched: Map<string, SeriesEntry>;
    try {
      touched = this.writeBatch.immediate(batch);
    } catch (err) {
      this.failedFlushes++;
      this.onFailure(err);
      throw err;
    }
    for (const [key, entry] of touched) this.seriesCache.set(key, entry);
    this.written += batch.length;
    taken?.();
    if (this.failing) {
      this.failing = false;
      this.retryDelay = 0;
      this.retryAt = 0;
      this.log.info(
        { buffered: this.bufferedCount(), spilled: this.spill?.stats().spilled ?? 0 },
        'timeseries: sqlite writes succeed again',
      );
    }
  }

  private compact(): void {
    if (this.head === this.buffer.length) {
      this.buffer = [];
      this.head = 0;
    } else if (this.head > 65_536 && this.head * 2 > this.buffer.length) {
      this.buffer = this.buffer.slice(this.head);
      this.head = 0;
    }
  }

  private bufferedCount(): number {
    return this.buffer.length - this.head;
  }

  private onFailure(err: unknown): void {
    const t = Date.now();
    if (!this.failing || t - this.lastFailureLog >= LOG_EVERY_MS) {
      this.log.warn({ err, buffered: this.bufferedCount() }, 'timeseries: sqlite write failed; points kept for retry');
      this.lastFailureLog = t;
    }
    this.failing = true;
    this.retryDelay = Math.min(MAX_RETRY_DELAY_MS, Math.max(this.opts.flushIntervalMs, this.retryDelay * 2));
    this.retryAt = Date.now() + this.retryDelay;
  }

  private drop(n: number, reason: string): void {
    this.dropped += n;
    const t = Date.now();
    if (t - this.lastDropLog >= LOG_EVERY_MS) {
      this.log.error({ dropped: n, droppedTotal: this.dropped, reason }, 'timeseries: points dropped');
      this.lastDropLog = t;
    }
  }

  async query(q: RangeQuery): Promise<StoredPoint[]> {
    checkRange(q);
    if (q.to <= q.from) return [];
    const { where, params, key } = this.scope(q);
    const sqlKey = `raw|${key}`;
    let stmt = this.queries.get(sqlKey);
    if (!stmt) {
      stmt = this.database().prepare<[Bindings]>(
        `SELECT s.device_id AS deviceId, s.field AS field, p.ts AS ts, p.value AS value, s.drill AS drill
         FROM series s JOIN points p ON p.series_id = s.id
         WHERE ${where} AND p.ts >= @from AND p.ts < @to
         ORDER BY p.ts, s.device_id, s.field
         LIMIT @limit`,
      );
      this.queries.set(sqlKey, stmt);
    }
    const rows = stmt.all({ ...params, from: q.from, to: q.to, limit: q.limit ?? DEFAULT_LIMIT }) as PointRow[];
    return rows.map(toStored);
  }

  async aggregate(q: AggregateQuery): Promise<AggregatePoint[]> {
    checkRange(q);
    if (!Number.isInteger(q.every) || q.every <= 0)
      throw new Error(`every must be a positive number of ms: ${q.every}`);
    const expr = q.agg === 'last' ? 'p.value' : AGG_SQL[q.agg];
    if (!expr) throw new Error(`unknown aggregate: ${q.agg}`);
    if (q.to <= q.from) return [];
    const { where, params, key } = this.scope(q);
    const sqlKey = `agg|${q.agg}|${key}`;
    let stmt = this.queries.get(sqlKey);
    if (!stmt) {
      // Windows are aligned to the epoch: floor(ts / every) * every, written so it also floors before 1970.
      // For `last`, SQLite takes the bare column p.value from the row holding MAX(p.ts) in the group.
      stmt = this.database().prepare<[Bindings]>(
        `SELECT s.device_id AS deviceId, s.field AS field, s.drill AS drill,
           p.ts - (((p.ts % @every) + @every) % @every) AS ts, ${expr} AS value
           ${q.agg === 'last' ? ', MAX(p.ts) AS lastTs' : ''}
         FROM series s JOIN points p ON p.series_id = s.id
         WHERE ${where} AND p.ts >= @from AND p.ts < @to
         GROUP BY p.series_id, 4
         ORDER BY s.device_id, s.field, 4
         LIMIT @limit`,
      );
      this.queries.set(sqlKey, stmt);
    }
    const rows = stmt.all({
      ...params,
      from: q.from,
      to: q.to,
      every: q.every,
      limit: q.limit ?? DEFAULT_LIMIT,
    }) as PointRow[];
    return rows.map((r) => ({ ...toStored(r), agg: q.agg }));
  }

  private scope(q: RangeQuery): { where: string; params: Bindings; key: string } {
    const clauses: string[] = [];
    const params: Bindings = {};
    if (q.deviceId !== undefined) {
      clauses.push('s.device_id = @deviceId');
      params.deviceId = q.deviceId;
    }
    if (q.householdId !== undefined) {
      clauses.push('s.household_id = @householdId');
      params.householdId = q.householdId;
    }
    if (q.field !== undefined) {
      clauses.push('s.field = @field');
      params.field = q.field;
    }
    return { where: clauses.join(' AND '), params, key: Object.keys(params).join(',') };
  }

  /**
   * Deletes points older than retentionDays, a few thousand rows per statement with the event loop handed back in
   * between, so ingest and queries never wait long behind it. Resolves with the number of points deleted.
   */
  runRetention(): Promise<number> {
    if (this.retention) return this.retention;
    const run = this.retain().finally(() => {
      this.retention = undefined;
    });
    this.retention = run;
    return run;
  }

  private async retain(): Promise<number> {
    const db = this.database();
    const cutoff = this.now() - this.opts.retentionDays * DAY_MS;
    const ids = db.prepare('SELECT id FROM series ORDER BY id').pluck().all() as number[];
    const del = db.prepare<[Bindings]>(
      `DELETE FROM points WHERE series_id = @sid AND ts IN
         (SELECT ts FROM points WHERE series_id = @sid AND ts < @cutoff ORDER BY ts LIMIT @chunk)`,
    );
    let deleted = 0;
    let sliceStart = Date.now();
    try {
      for (const sid of ids) {
        for (;;) {
          if (this.stopping) return deleted;
          const n = del.run({ sid, cutoff, chunk: RETENTION_CHUNK }).changes;
          deleted += n;
          // after every chunk that deleted something, and now and then while merely checking series
          if (n > 0 || Date.now() - sliceStart >= RETENTION_SLICE_MS) {
            await yieldToLoop();
            sliceStart = Date.now();
          }
          if (n < RETENTION_CHUNK) break;
        }
      }
    } catch (err) {
      this.log.warn({ err, deleted }, 'timeseries: sqlite retention run failed; next run retries');
      throw err;
    }
    if (deleted > 0) {
      this.log.info({ deleted, before: new Date(cutoff).toISOString() }, 'timeseries: sqlite retention');
    }
    return deleted;
  }

  async ping(): Promise<boolean> {
    try {
      return this.db?.prepare('SELECT 1').pluck().get() === 1;
    } catch {
      return false;
    }
  }

  stats(): TimeSeriesStats {
    const spill = this.spill?.stats();
    return {
      written: this.written,
      buffered: this.bufferedCount(),
      dropped: this.dropped + (spill?.dropped ?? 0),
      failedFlushes: this.failedFlushes,
      spilled: spill?.spilled ?? 0,
      spillBytes: spill?.spillBytes ?? 0,
    };
  }

  private database(): Database.Database {
    if (!this.db) throw new Error('sqlite time-series store is not started');
    return this.db;
  }
}

/**
 * A point as one JSON array: [deviceId, field, ts, value] when it came without tags, plus
 * [householdId, buildingId, gridId, drill 0/1] when it had them (tags present or absent decide whether the series'
 * place is updated, so the difference is kept).
 */
export const POINT_CODEC: SpillCodec<Point> = {
  encode(p) {
    const row: (string | number | null)[] = [p.deviceId, p.field, p.ts, p.value];
    const t = p.tags;
    if (t) row.push(t.householdId ?? null, t.buildingId ?? null, t.gridId ?? null, t.drill ? 1 : 0);
    return JSON.stringify(row);
  },
  decode(line) {
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      return undefined;
    }
    if (!Array.isArray(row) || (row.length !== 4 && row.length !== 8)) return undefined;
    const [deviceId, field, ts, value, householdId, buildingId, gridId, drill] = row as unknown[];
    const p = { deviceId, field, ts, value } as Point;
    if (!isValidPoint(p)) return undefined;
    if (row.length === 8) {
      const opt = (v: unknown) => (typeof v === 'string' ? v : undefined);
      p.tags = {};
      if (opt(householdId)) p.tags.householdId = opt(householdId);
      if (opt(buildingId)) p.tags.buildingId = opt(buildingId);
      if (opt(gridId)) p.tags.gridId = opt(gridId);
      if (drill === 1) p.tags.drill = true;
    }
    return p;
  },
};

function tagSig(p: Point): string {
  const t = p.tags ?? {};
  return `${t.householdId ?? ''}\u0000${t.buildingId ?? ''}\u0000${t.gridId ?? ''}\u0000${t.drill ? 1 : 0}`;
}

function isValidPoint(p: Point): boolean {
  return (
    typeof p.deviceId === 'string' &&
    p.deviceId !== '' &&
    typeof p.field === 'string' &&
    p.field !== '' &&
    Number.isFinite(p.ts) &&
    Number.isFinite(p.value)
  );
}

function checkRange(q: RangeQuery): void {
  if (q.deviceId === undefined && q.householdId === undefined) {
    throw new Error('a time-series query needs a deviceId or a householdId');
  }
  if (!Number.isFinite(q.from) || !Number.isFinite(q.to)) throw new Error('from and to must be epoch ms');
  if (q.limit !== undefined && (!Number.isInteger(q.limit) || q.limit < 1)) {
    throw new Error(`limit must be a positive integer: ${q.limit}`);
  }
}

function toStored(r: PointRow): StoredPoint {
  const p: StoredPoint = { deviceId: r.deviceId, field: r.field, ts: r.ts, value: r.value };
  if (r.drill) p.drill = true;
  return p;
}
