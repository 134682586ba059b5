/**
 * InfluxDB 2 adapter of the time-series port (also writes to anything that speaks the InfluxDB v2 write API, such
 * as VictoriaMetrics, though queries need Flux, i.e. a real InfluxDB).
 *
 * Schema: measurement `reading`; tags `device`, `household`, `building`, `grid`, `drill` ("true"/"false"); the
 * canonical field name is the Influx field, e.g. `reading,device=d1,drill=false,household=h1 power_w=12.5 1700000000000`.
 * Flux then filters on plain tag equality, and VictoriaMetrics shows the same data as `reading_power_w{device="d1",…}`.
 *
 * Writes go through the client's WriteApi: batches of batchSize, sent every flushIntervalMs, failed batches kept in
 * its retry buffer (up to maxBufferLines) and retried with back-off. Every line is accounted for: written when the
 * server confirms it, dropped (and logged) when the client gives it up; what is neither is `buffered`.
 *
 * With a disk spill (spill.ts), the lines the client gives up while the server is away (its retry buffer full:
 * writeRetrySkipped; out of retries or retry time: writeFailed) go to the spill as line protocol instead of being
 * dropped, and so do the lines still unconfirmed at stop(). The spill writes them back itself, one POST per batch
 * through the client's transport, while the client's own buffer is nearly empty (live points first).
 */
import {
  type FluxTableColumn,
  type FluxTableMetaData,
  HttpError,
  InfluxDB,
  linesToTables,
  type QueryApi,
  setLogger,
  type Transport,
  stringToLines,
  toFluxValue,
  type WriteApi,
  escape as lp,
} from '@influxdata/influxdb-client';
import type { Logger } from '../logger.ts';
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
import { AGGREGATES } from './port.ts';
import { Spill, type SpillCodec, type SpillSettings } from './spill.ts';

export interface InfluxTimeSeriesOptions {
  url: string;
  token: string;
  org: string;
  bucket: string;
  batchSize: number;
  flushIntervalMs: number;
  maxBufferLines: number;
  maxRetries: number;
  maxRetryDelayMs: number;
  /** per HTTP request; default 10 s */
  timeoutMs?: number;
  /** Lines the client gives up during an outage go to disk here instead of being dropped. */
  spill?: SpillSettings;
}

export const MEASUREMENT = 'reading';
const DEFAULT_LIMIT = 10_000;
const LOG_EVERY_MS = 10_000;
/** The client's error for lines whose retry time ran out; they are not retried again. */
const RETRY_TIME_EXCEEDED = 'Max retry time exceeded.';
const KEPT_COLUMNS = '["_time", "_value", "_field", "device", "drill"]';

/**
 * Spilled lines are the line protocol as sent. What toLineProtocol makes has no raw newline (tags and field keys are
 * escaped) and ends in an integer timestamp; a line that does not look like that is skipped on the way back.
 */
export const LINE_CODEC: SpillCodec<string> = {
  encode: (line) => line,
  decode: (line) => (line.startsWith(`${MEASUREMENT},`) && / [^ =]+=[^ ]+ -?\d+$/.test(line) ? line : undefined),
};

/** One line of line protocol, or undefined for a point that cannot be stored (empty id/field, non-finite number). */
export function toLineProtocol(p: Point): string | undefined {
  if (!p.deviceId || !p.field || !Number.isFinite(p.value) || !Number.isFinite(p.ts)) return undefined;
  const t = p.tags;
  // tags in key order, as InfluxDB prefers them
  let line = MEASUREMENT;
  if (t?.buildingId) line += `,building=${lp.tag(t.buildingId)}`;
  line += `,device=${lp.tag(p.deviceId)},drill=${t?.drill ? 'true' : 'false'}`;
  if (t?.gridId) line += `,grid=${lp.tag(t.gridId)}`;
  if (t?.householdId) line += `,household=${lp.tag(t.householdId)}`;
  // a bare number is a float in line protocol: every value of a field keeps one type
  return `${line} ${lp.tag(p.field)}=${p.value} ${Math.floor(p.ts)}`;
}

/** A Flux datetime literal (RFC 3339, UTC, ms). */
export function fluxTime(ms: number): string {
  return new Date(ms).toISOString();
}

function fluxFilter(q: RangeQuery): string {
  const parts = [`r._measurement == ${toFluxValue(MEASUREMENT)}`];
  if (q.deviceId !== undefined) parts.push(`r.device == ${toFluxValue(q.deviceId)}`);
  if (q.householdId !== undefined) parts.push(`r.household == ${toFluxValue(q.householdId)}`);
  if (q.field !== undefined) parts.push(`r._field == ${toFluxValue(q.field)}`);
  return `filter(fn: (r) => ${parts.join(' and ')})`;
}

function fluxSource(q: RangeQuery, bucket: string): string[] {
  return [
    `from(bucket: ${toFluxValue(bucket)})`,
    `  |> range(start: ${fluxTime(q.from)}, stop: ${fluxTime(q.to)})`,
    `  |> ${fluxFilter(q)}`,
  ];
}

/** Raw points, oldest first (ties by device, then field), at most q.limit of them. */
export function buildRangeFlux(q: RangeQuery, bucket: string): string {
  checkRange(q);
  return [
    ...fluxSource(q, bucket),
    `  |> keep(columns: ${KEPT_COLUMNS})`,
    '  |> group()',
    '  |> sort(columns: ["_time", "device", "_field"])',
    `  |> limit(n: ${q.limit ?? DEFAULT_LIMIT})`,
  ].join('\n');
}

/**
 * One row per (device, field, window with data), ordered by device, field, time. Windows are epoch-aligned
 * (aggregateWindow's default); the row's _time is the window start, clipped to the range start when the range
 * begins inside a window (the parser maps it back to the window start).
 */
export function buildAggregateFlux(q: AggregateQuery, bucket: string): string {
  checkRange(q);
  // both end up in the query text as they are, so nothing but the expected shapes may pass
  if (!Number.isInteger(q.every) || q.every <= 0) throw new Error(`every must be a positive number of ms: ${q.every}`);
  if (!AGGREGATES.includes(q.agg)) throw new Error(`unknown aggregate: ${q.agg}`);
  return [
    ...fluxSource(q, bucket),
    // one table per device and field even when its household (a tag) changed over time
    '  |> group(columns: ["device", "_field", "drill"])',
    // merged tables are not in time order, and `last` takes the last row
    ...(q.agg === 'last' ? ['  |> sort(columns: ["_time"])'] : []),
    `  |> aggregateWindow(every: ${q.every}ms, fn: ${q.agg}, createEmpty: false, timeSrc: "_start")`,
    `  |> keep(columns: ${KEPT_COLUMNS})`,
    '  |> group()',
    '  |> sort(columns: ["device", "_field", "_time"])',
    `  |> limit(n: ${q.limit ?? DEFAULT_LIMIT})`,
  ].join('\n');
}

type Columns =
  | { error: FluxTableColumn }
  | {
      error?: undefined;
      time: FluxTableColumn;
      value: FluxTableColumn;
      field: FluxTableColumn;
      device: FluxTableColumn;
      drill: FluxTableColumn | undefined;
    };

const columnsOf = new WeakMap<FluxTableMetaData, Columns>();

function columns(meta: FluxTableMetaData): Columns {
  let c = columnsOf.get(meta);
  if (!c) {
    const find = (label: string) => meta.columns.find((col) => col.label === label);
    const error = find('error');
    if (error) {
      c = { error };
    } else {
      const time = find('_time');
      const value = find('_value');
      const field = find('_field');
      const device = find('device');
      if (!time || !value || !field || !device) {
        throw new Error(`unexpected Flux result columns: ${meta.columns.map((col) => col.label).join(', ')}`);
      }
      c = { time, value, field, device, drill: find('drill') };
    }
    columnsOf.set(meta, c);
  }
  return c;
}

/**
 * Maps one annotated-CSV row (raw query) onto a StoredPoint. A query that fails after the answer started streams
 * an `error` table instead of an HTTP error: that becomes a thrown Error, never an empty result.
 */
export function rowToPoint(values: string[], meta: FluxTableMetaData): StoredPoint {
  const c = columns(meta);
  if (c.error) throw new Error(`Flux query failed: ${values[c.error.index] ?? 'unknown error'}`);
  const raw = values[c.time.index] ?? '';
  const ts = Date.parse(raw);
  if (Number.isNaN(ts)) throw new Error(`unexpected _time in a Flux result: "${raw}"`);
  const point: StoredPoint = {
    deviceId: values[c.device.index] ?? '',
    field: values[c.field.index] ?? '',
    ts,
    value: Number(c.value.get(values)),
  };
  if (c.drill && values[c.drill.index] === 'true') point.drill = true;
  return point;
}

/** Maps one annotated-CSV row (aggregate query) onto an AggregatePoint whose ts is the epoch-aligned window start. */
export function rowToAggregate(
  values: string[],
  meta: FluxTableMetaData,
  every: number,
  agg: Aggregate,
): AggregatePoint {
  const p = rowToPoint(values, meta);
  const { drill, ...rest } = p;
  return { ...rest, ts: Math.floor(p.ts / every) * every, agg, ...(drill ? { drill } : {}) };
}

/** Parses a whole annotated-CSV answer with the client's own parser (the one collectRows uses). */
export function parseAnnotatedCsv<T>(csv: string, map: (values: string[], meta: FluxTableMetaData) => T): T[] {
  const out: T[] = [];
  let failure: Error | undefined;
  stringToLines(
    csv,
    linesToTables({
      next: (values, meta) => {
        out.push(map(values, meta));
      },
      error: (e) => {
        failure = e;
      },
      complete: () => {},
    }),
  );
  if (failure) throw failure;
  return out;
}

export class InfluxTimeSeries implements TimeSeriesStore {
  readonly name = 'influx';
  private readonly writeApi: WriteApi;
  private readonly queryApi: QueryApi;
  private readonly baseUrl: string;
  private readonly transport: Transport;
  private readonly writePath: string;
  private readonly spill: Spill<string> | undefined;

  private accepted = 0;
  /** lines the client's WriteApi got confirmed */
  private written = 0;
  /** lines the spill got confirmed */
  private spillWritten = 0;
  /** every line given up by this adapter (the spill counts its own) */
  private dropped = 0;
  /** the part of `dropped` that had been accepted into the client's buffer */
  private givenUp = 0;
  /** accepted lines the client gave up and the spill took over */
  private handedOff = 0;
  /** from stop() on, lines that fail go to the spill instead of the retry buffer */
  private stopping = false;
  private failedFlushes = 0;
  private closed = false;
  private failing = false;
  private lastFailureLog = 0;
  private lastDropLog = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly opts: InfluxTimeSeriesOptions,
    private readonly log: Logger,
  ) {
    this.baseUrl = opts.url.replace(/\/+$/, '');
    // The client logs every failed attempt to the console; this adapter logs them itself (rate-limited), so the
    // client's own lines go to debug. The client's logger is process-wide; this is its only user.
    setLogger({
      error: (message, err) => log.debug({ err }, `influx client: ${message}`),
      warn: (message, err) => log.debug({ err }, `influx client: ${message}`),
    });
    const client = new InfluxDB({ url: this.baseUrl, token: opts.token, timeout: opts.timeoutMs ?? 10_000 });
    const maxRetryDelay = opts.maxRetryDelayMs;
    this.writeApi = client.getWriteApi(opts.org, opts.bucket, 'ms', {
      batchSize: opts.batchSize,
      flushInterval: opts.flushIntervalMs,
      maxBufferLines: opts.maxBufferLines,
      maxRetries: opts.maxRetries,
      maxRetryDelay,
      minRetryDelay: Math.min(1000, maxRetryDelay),
      exponentialBase: 2,
      // The client's default (3 min) would give up on lines during a longer outage although retries and buffer
      // room remain: let maxRetries and maxBufferLines be the limits.
      maxRetryTime: Math.max(180_000, (opts.maxRetries + 1) * maxRetryDelay),
      writeFailed: (error, lines, attempt) => this.onWriteFailed(error, lines, attempt),
      writeSuccess: (lines) => this.onWriteSuccess(lines.length),
      writeRetrySkipped: (entry) => this.giveUp(entry.lines, 'retry buffer full (maxBufferLines)'),
    });
    this.queryApi = client.getQueryApi(opts.org);
    this.transport = client.transport;
    // the path WriteApi itself posts to
    this.writePath =
      `/api/v2/write?org=${encodeURIComponent(opts.org)}&bucket=${encodeURIComponent(opts.bucket)}` + '&precision=ms';
    if (opts.spill) {
      this.spill = new Spill(
        { ...opts.spill, name: 'timeseries-influx', ext: 'lp', drainBatch: opts.batchSize },
        LINE_CODEC,
        log,
      );
    }
  }

  async start(): Promise<void> {
    this.spill?.start({
      // live points first: the spill drains while the client's own buffer is nearly empty
      ready: () => !this.closed && this.pending() < this.opts.batchSize,
      write: (lines) => this.sendSpilled(lines),
    });
    const up = await this.ping();
    // Not fatal: writes wait in the buffer until the server answers.
    if (up) this.log.info({ url: this.baseUrl, bucket: this.opts.bucket }, 'timeseries: influx store ready');
    else this.log.warn({ url: this.baseUrl }, 'timeseries: influx not reachable yet; writes are buffered');
  }

  async stop(): Promise<void> {
    if (this.closed) return;
    await this.spill?.stopDrain();
    this.stopping = true;
    try {
      await this.flush();
    } catch (err) {
      this.log.error({ err, pending: this.pending() }, 'timeseries: influx flush on stop failed');
    }
    this.closed = true;
    const lost = this.pending();
    if (lost > 0) {
      this.dropped += lost;
      this.givenUp += lost;
      this.log.error({ lost }, 'timeseries: influx store closed with unwritten points');
    }
    this.writeApi.dispose();
    await this.spill?.close();
    this.notify();
  }

  write(points: readonly Point[]): void {
    if (this.closed) {
      this.drop(points.length, 'store stopped');
      return;
    }
    const lines: string[] = [];
    for (const p of points) {
      const line = toLineProtocol(p);
      if (line) lines.push(line);
    }
    if (lines.length < points.length) {
      this.drop(points.length - lines.length, 'invalid point (empty id/field or non-finite ts/value)');
    }
    this.accepted += lines.length;
    this.writeApi.writeRecords(lines);
  }

  async flush(): Promise<void> {
    // Besides the batches flush() sends, retries started by the client's own timers may be in flight; wait for
    // them to settle so that "flushed" means confirmed. The request timeout bounds each wait.
    const deadline = Date.now() + 3 * (this.opts.timeoutMs ?? 10_000);
    for (;;) {
      await this.writeApi.flush(true);
      if (this.pending() === 0) return;
      if (Date.now() >= deadline) throw new Error(`influx flush: ${this.pending()} points still unconfirmed`);
      await this.settled(250);
    }
  }

  async query(q: RangeQuery): Promise<StoredPoint[]> {
    const flux = buildRangeFlux(q, this.opts.bucket);
    if (q.to <= q.from) return [];
    return this.queryApi.collectRows(flux, rowToPoint);
  }

  async aggregate(q: AggregateQuery): Promise<AggregatePoint[]> {
    const flux = buildAggregateFlux(q, this.opts.bucket);
    if (q.to <= q.from) return [];
    return this.queryApi.collectRows(flux, (values, meta) => rowToAggregate(values, meta, q.every, q.agg));
  }

  async ping(): Promise<boolean> {
    for (const path of ['/health', '/ping']) {
      try {
        const res = await fetch(this.baseUrl + path, { signal: AbortSignal.timeout(3000) });
        await res.arrayBuffer();
        if (res.ok) return true;
        if (res.status !== 404) return false;
      } catch {
        return false;
      }
    }
    return false;
  }

  stats(): TimeSeriesStats {
    const spill = this.spill?.stats();
    return {
      written: this.written + this.spillWritten,
      buffered: this.pending(),
      dropped: this.dropped + (spill?.dropped ?? 0),
      failedFlushes: this.failedFlushes,
      spilled: spill?.spilled ?? 0,
      spillBytes: spill?.spillBytes ?? 0,
    };
  }

  /** Lines in the client's buffers, not confirmed, given up nor handed to the spill. */
  private pending(): number {
    return Math.max(0, this.accepted - this.written - this.givenUp - this.handedOff);
  }

  private onWriteFailed(error: Error, lines: string[], attempt: number): Promise<void> | undefined {
    this.failedFlushes++;
    // After stop(), everything unconfirmed has been counted as dropped already.
    if (this.closed) return undefined;
    // Mirrors the client's own decision (WriteApiImpl.sendBatch): retry unless out of attempts or time, or a
    // client error (4xx other than 429) that a retry cannot fix.
    const retriable = !(error instanceof HttpError) || error.statusCode >= 429;
    if (!retriable) {
      this.giveUp(lines, `write rejected (attempt ${attempt}): ${error.message}`, false);
    } else if (error.message === RETRY_TIME_EXCEEDED || attempt > this.opts.maxRetries) {
      this.giveUp(lines, `write failed, out of retries (attempt ${attempt}): ${error.message}`);
    } else if (this.stopping && this.spill) {
      // stopping: no more retries in this process; the spill keeps the lines for the next start. A promise tells
      // the client the lines are taken care of (no retry-buffer entry).
      this.giveUp(lines, 'store stopping');
      this.notify();
      return Promise.resolve();
    } else {
      const t = Date.now();
      if (!this.failing || t - this.lastFailureLog >= LOG_EVERY_MS) {
        this.log.warn({ err: error, attempt, pending: this.pending() }, 'timeseries: influx write failed; will retry');
        this.lastFailureLog = t;
      }
      this.failing = true;
    }
    this.notify();
    return undefined;
  }

  /** The client gave up accepted lines: the spill takes them when there is one (and it may), else they are dropped. */
  private giveUp(lines: readonly string[], reason: string, spillable = true): void {
    if (this.spill && spillable && !this.closed) {
      this.handedOff += lines.length;
      this.spill.add(lines);
      this.notify();
      return;
    }
    this.givenUp += lines.length;
    this.drop(lines.length, reason);
  }

  /** Writes spilled lines straight to the server (not through WriteApi's buffers); throws to retry them later. */
  private async sendSpilled(lines: string[]): Promise<void> {
    try {
      await this.transport.request(this.writePath, lines.join('\n'), {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
      });
    } catch (err) {
      if (err instanceof HttpError && (err.statusCode === 400 || err.statusCode === 422)) {
        // refused for good (malformed, or outside the bucket's retention): a retry cannot fix it. Not 401/403/404/
        // 413: a token rotated or a bucket recreated during the outage is fixed by the operator, and the spill
        // must still be there then
        this.drop(lines.length, `spilled lines rejected: ${err.message}`);
        return;
      }
      this.failedFlushes++;
      const t = Date.now();
      if (!this.failing || t - this.lastFailureLog >= LOG_EVERY_MS) {
        this.log.warn(
          { err, spilled: this.spill?.stats().spilled },
          'timeseries: influx write of spilled points failed; will retry',
        );
        this.lastFailureLog = t;
      }
      this.failing = true;
      throw err;
    }
    this.spillWritten += lines.length;
    if (this.failing) {
      this.failing = false;
      this.log.info({ pending: this.pending() }, 'timeseries: influx writes succeed again');
    }
  }

  private onWriteSuccess(lines: number): void {
    this.written += lines;
    // Confirmed after stop() gave the lines up: they were not lost after all.
    if (this.closed) {
      this.dropped = Math.max(0, this.dropped - lines);
      this.givenUp = Math.max(0, this.givenUp - lines);
    }
    if (this.failing) {
      this.failing = false;
      this.log.info({ pending: this.pending() }, 'timeseries: influx writes succeed again');
    }
    this.notify();
  }

  private drop(n: number, reason: string): void {
    this.dropped += n;
    const t = Date.now();
    if (t - this.lastDropLog >= LOG_EVERY_MS) {
      this.log.error({ dropped: n, droppedTotal: this.dropped, reason }, 'timeseries: points dropped');
      this.lastDropLog = t;
    }
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves at the next write outcome, or after ms. */
  private settled(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
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
