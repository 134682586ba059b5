/**
 * Disk spill of the time-series adapters (issue 8, "nothing lost"). When an adapter's memory buffer is full because
 * the store refuses writes, the points beyond it are appended here; once the store takes writes again they are
 * written back, oldest first, at a bounded rate so that live writes keep going. Both adapters use this one module:
 * each gives a codec (how a point becomes one line) and a sink (how a batch is written to its store).
 *
 * On disk: `<dir>/<name>-<seq>.<ext>`, append-only segments of one record per line, the oldest segment drained first
 * and deleted once all of it is written. The segments together hold at most maxBytes; beyond that points are
 * dropped, counted and logged ("spill full").
 *
 * Durability: every append is one write(2) of whole lines, so what was spilled survives the process being killed
 * (SIGKILL, OOM killer) the moment append() returns: the data is in the kernel's page cache. It is fsynced every
 * fsyncIntervalMs (default 1 s), when a segment is closed and at close(): a power cut or kernel crash loses at most
 * that last second. fsync per append would cost a disk flush per batch while the store is down, when the spill is
 * the hot path.
 *
 * Delivery is at least once: a segment half-drained when the process dies is drained again from its start after
 * the restart (both stores overwrite the same series and timestamp, so a repeat changes nothing). A truncated last
 * line (killed or powered off mid-write) is cut off at open; a line that does not decode is skipped; both are
 * counted as dropped and logged, never a crash.
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import type { Logger } from '../logger.ts';

/** How one item becomes one line (no newline in it) and back; decode answers undefined for a line it cannot read. */
export interface SpillCodec<T> {
  encode(item: T): string;
  decode(line: string): T | undefined;
}

/** Where drained items go: the adapter's store. */
export interface SpillSink<T> {
  /** May the drain write now? (store started, live buffer nearly empty, not backing off) */
  ready(): boolean;
  /** Writes a batch to the store; resolves once stored. Throws (or rejects) to keep the batch for a later retry. */
  write(batch: T[]): Promise<void> | void;
}

/** The settings an operator gives (timeseries.spill). */
export interface SpillSettings {
  /** absolute directory of the segments */
  dir: string;
  maxBytes: number;
  /** default min(8 MiB, maxBytes / 4) */
  segmentBytes?: number;
  /** default 1000 */
  fsyncIntervalMs?: number;
  /** drain rate once the store is back; default 20,000 points/s */
  drainPointsPerSecond?: number;
}

export interface SpillOptions extends SpillSettings {
  /** file names are `<name>-<seq>.<ext>`: one adapter's spill never reads another's format */
  name: string;
  ext: string;
  /** points per sink.write (default 1000) */
  drainBatch?: number;
}

export interface SpillStats {
  /** points on disk, not yet written to the store */
  spilled: number;
  /** bytes of the spill files on disk */
  spillBytes: number;
  /** points the spill refused (full) or could not read back (corrupt) */
  dropped: number;
}

const MIB = 1024 * 1024;
const READ_CHUNK = MIB;
const NEWLINE = 0x0a;
const TICK_MS = 100;
const MIN_RETRY_MS = 250;
const MAX_RETRY_MS = 5_000;
const LOG_EVERY_MS = 10_000;

interface Segment {
  seq: number;
  file: string;
  /** bytes of whole lines */
  bytes: number;
  records: number;
}

interface Reader {
  seg: Segment;
  fd: number;
  offset: number;
  /** bytes after the last newline read so far */
  carry: Buffer;
  lines: string[];
  consumed: number;
}

/** The segment files: synchronous appends at the tail, reads and deletes at the head. */
export class SpillLog {
  private segments: Segment[] = [];
  private writer: { seg: Segment; fd: number } | undefined;
  private reader: Reader | undefined;
  private dirty = false;
  private nextSeq = 1;
  private readonly pattern: RegExp;
  private readonly segmentBytes: number;
  records = 0;
  bytes = 0;

  constructor(private readonly opts: SpillOptions) {
    this.pattern = new RegExp(`^${escapeRe(opts.name)}-(\\d{12})\\.${escapeRe(opts.ext)}$`);
    this.segmentBytes = Math.max(4096, opts.segmentBytes ?? Math.min(8 * MIB, Math.floor(opts.maxBytes / 4)));
  }

  /** Finds the segments left on disk; cuts a truncated last line off each. Answers how many lines were cut. */
  open(): { truncated: number } {
    this.close();
    this.segments = [];
    mkdirSync(this.opts.dir, { recursive: true });
    const found: Segment[] = [];
    for (const f of readdirSync(this.opts.dir)) {
      const m = this.pattern.exec(f);
      if (m) found.push({ seq: Number(m[1]), file: path.join(this.opts.dir, f), bytes: 0, records: 0 });
    }
    found.sort((a, b) => a.seq - b.seq);
    let truncated = 0;
    for (const seg of found) {
      this.nextSeq = Math.max(this.nextSeq, seg.seq + 1);
      const fd = openSync(seg.file, 'r+');
      try {
        const size = fstatSync(fd).size;
        const buf = Buffer.allocUnsafe(READ_CHUNK);
        let end = 0;
        for (let off = 0; off < size; ) {
          const n = readSync(fd, buf, 0, Math.min(READ_CHUNK, size - off), off);
          if (n <= 0) break;
          for (let i = buf.indexOf(NEWLINE, 0); i !== -1 && i < n; i = buf.indexOf(NEWLINE, i + 1)) {
            seg.records++;
            end = off + i + 1;
          }
          off += n;
        }
        seg.bytes = end;
        if (end < size) {
          // killed or powered off mid-write: the partial line cannot be read back, and appending after it would
          // glue the next line onto it
          ftruncateSync(fd, end);
          fsyncSync(fd);
          truncated++;
        }
      } finally {
        closeSync(fd);
      }
      if (seg.bytes === 0) unlinkSync(seg.file);
      else this.segments.push(seg);
    }
    this.records = this.segments.reduce((s, g) => s + g.records, 0);
    this.bytes = this.segments.reduce((s, g) => s + g.bytes, 0);
    return { truncated };
  }

  /**
   * Appends lines in order until maxBytes would be exceeded. Answers how many were appended (always a prefix of
   * lines), and the error that stopped it early (disk full, I/O error), if one did.
   */
  append(lines: readonly string[]): { kept: number; error?: unknown } {
    let kept = 0;
    let chunk: string[] = [];
    let chunkBytes = 0;
    try {
      for (const line of lines) {
        const n = Buffer.byteLength(line) + 1;
        if (this.bytes + chunkBytes + n > this.opts.maxBytes) break;
        const segBytes = this.writer?.seg.bytes ?? 0;
        if (chunk.length > 0 && segBytes + chunkBytes + n > this.segmentBytes) {
          this.writeLines(chunk, chunkBytes);
          kept += chunk.length;
          this.closeWriter();
          chunk = [];
          chunkBytes = 0;
        } else if (chunk.length === 0 && segBytes > 0 && segBytes + n > this.segmentBytes) {
          this.closeWriter();
        }
        chunk.push(line);
        chunkBytes += n;
      }
      if (chunk.length > 0) this.writeLines(chunk, chunkBytes);
      kept += chunk.length;
      return { kept };
    } catch (error) {
      return { kept, error };
    }
  }

  private writeLines(lines: string[], bytes: number): void {
    const w = this.ensureWriter();
    const buf = Buffer.from(`${lines.join('\n')}\n`);
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(w.fd, buf, off, buf.length - off);
    } catch (err) {
      // disk full or I/O error: take back a partial write so the segment still ends on a whole line
      try {
        ftruncateSync(w.fd, w.seg.bytes);
      } catch {}
      this.closeWriter();
      throw err;
    }
    w.seg.bytes += bytes;
    w.seg.records += lines.length;
    this.bytes += bytes;
    this.records += lines.length;
    this.dirty = true;
  }

  private ensureWriter(): { seg: Segment; fd: number } {
    if (this.writer) return this.writer;
    const seq = this.nextSeq++;
    const file = path.join(this.opts.dir, `${this.opts.name}-${String(seq).padStart(12, '0')}.${this.opts.ext}`);
    const fd = openSync(file, 'ax');
    const seg: Segment = { seq, file, bytes: 0, records: 0 };
    this.segments.push(seg);
    this.writer = { seg, fd };
    syncDir(this.opts.dir);
    return this.writer;
  }

  private closeWriter(): void {
    if (!this.writer) return;
    try {
      if (this.dirty) fsyncSync(this.writer.fd);
    } finally {
      closeSync(this.writer.fd);
      this.dirty = false;
      const seg = this.writer.seg;
      this.writer = undefined;
      if (seg.bytes === 0) this.remove(seg);
    }
  }

  /** fsync of what was appended since the last one. */
  sync(): void {
    if (this.writer && this.dirty) {
      fsyncSync(this.writer.fd);
      this.dirty = false;
    }
  }

  /** Up to max of the oldest lines, without consuming them. */
  peek(max: number): string[] {
    const r = this.ensureReader();
    if (!r) return [];
    while (r.lines.length < max && r.offset < r.seg.bytes) {
      const len = Math.min(READ_CHUNK, r.seg.bytes - r.offset);
      const buf = Buffer.allocUnsafe(len);
      const n = readSync(r.fd, buf, 0, len, r.offset);
      if (n <= 0) break;
      r.offset += n;
      let data = buf.subarray(0, n);
      if (r.carry.length > 0) data = Buffer.concat([r.carry, data]);
      let start = 0;
      for (let i = data.indexOf(NEWLINE); i !== -1; i = data.indexOf(NEWLINE, start)) {
        r.lines.push(data.toString('utf8', start, i));
        start = i + 1;
      }
      r.carry = Buffer.from(data.subarray(start));
    }
    if (r.offset >= r.seg.bytes && r.carry.length > 0) {
      // cannot happen with whole-line appends; if it does, the decoder rejects the fragment and it is counted
      r.lines.push(r.carry.toString('utf8'));
      r.carry = Buffer.alloc(0);
    }
    if (r.lines.length === 0 && r.offset >= r.seg.bytes) {
      this.finishReader(r);
      return this.peek(max);
    }
    return r.lines.slice(0, max);
  }

  /** Marks the n oldest lines (from peek) as written; deletes the head segment once all of it is. */
  consume(n: number): void {
    const r = this.reader;
    if (!r || n <= 0) return;
    const k = Math.min(n, r.lines.length);
    r.lines.splice(0, k);
    r.consumed += k;
    this.records = Math.max(0, this.records - k);
    if (r.lines.length === 0 && r.offset >= r.seg.bytes) this.finishReader(r);
  }

  private finishReader(r: Reader): void {
    closeSync(r.fd);
    this.reader = undefined;
    // the segment's count from open() and what was read back agree unless the file was changed under us
    this.records = Math.max(0, this.records - Math.max(0, r.seg.records - r.consumed));
    this.remove(r.seg);
  }

  private ensureReader(): Reader | undefined {
    if (this.reader) return this.reader;
    const seg = this.segments[0];
    if (!seg) return undefined;
    // the segment being appended to is closed first, so that a reader only ever sees a segment that no longer grows
    if (this.writer?.seg === seg) this.closeWriter();
    if (this.segments[0] !== seg) return this.ensureReader();
    this.reader = { seg, fd: openSync(seg.file, 'r'), offset: 0, carry: Buffer.alloc(0), lines: [], consumed: 0 };
    return this.reader;
  }

  private remove(seg: Segment): void {
    const i = this.segments.indexOf(seg);
    if (i !== -1) this.segments.splice(i, 1);
    this.bytes = Math.max(0, this.bytes - seg.bytes);
    try {
      unlinkSync(seg.file);
    } catch {}
  }

  segmentCount(): number {
    return this.segments.length;
  }

  close(): void {
    this.closeWriter();
    if (this.reader) {
      closeSync(this.reader.fd);
      this.reader = undefined;
    }
  }
}

/** Directories spilled into by this process: two stores on one spill would drain each other's points twice. */
const claimed = new Set<string>();

/** The spill an adapter uses: the segment files plus the timers that fsync and drain them. */
export class Spill<T> {
  private readonly file: SpillLog;
  private readonly key: string;
  private sink: SpillSink<T> | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private opened = false;
  private closing = false;
  private retryDelay = 0;
  private retryAt = 0;
  private dropped = 0;
  private lastDropLog = 0;
  private lastErrorLog = 0;
  private lastSpillLog = 0;
  private readonly perTick: number;
  private readonly batch: number;

  constructor(
    private readonly opts: SpillOptions,
    private readonly codec: SpillCodec<T>,
    private readonly log: Logger,
  ) {
    this.file = new SpillLog(opts);
    this.key = path.join(path.resolve(opts.dir), opts.name);
    this.perTick = Math.max(1, Math.ceil(((opts.drainPointsPerSecond ?? 20_000) * TICK_MS) / 1000));
    this.batch = Math.max(1, Math.min(this.perTick, opts.drainBatch ?? 1000));
  }

  /** Opens the segments left on disk (a restart drains them once start() is called). */
  open(): void {
    if (this.opened) return;
    if (claimed.has(this.key)) throw new Error(`the time-series spill ${this.key} is already in use in this process`);
    const { truncated } = this.file.open();
    claimed.add(this.key);
    this.opened = true;
    this.closing = false;
    if (truncated > 0) this.drop(truncated, 'spill: truncated last line (killed mid-write) skipped');
    if (this.file.records > 0) {
      this.log.info(
        { spilled: this.file.records, bytes: this.file.bytes, dir: this.opts.dir },
        'timeseries: points spilled before the restart will be written',
      );
    }
  }

  /** Starts fsync and drain timers; the drain writes into sink. */
  start(sink: SpillSink<T>): void {
    this.open();
    this.sink = sink;
    this.drainTimer ??= setInterval(() => this.tick(), TICK_MS);
    this.drainTimer.unref();
    this.syncTimer ??= setInterval(() => this.syncSafely(), this.opts.fsyncIntervalMs ?? 1000);
    this.syncTimer.unref();
  }

  /** Appends items (in order); answers how many were kept. The rest are dropped, counted and logged. */
  add(items: readonly T[]): number {
    if (items.length === 0) return 0;
    if (!this.opened || this.closing) {
      this.drop(items.length, 'spill closed');
      return 0;
    }
    const { kept, error } = this.file.append(items.map((i) => this.codec.encode(i)));
    // a full disk fails every append: said once per interval (the drops are counted each time)
    if (error && Date.now() - this.lastErrorLog >= LOG_EVERY_MS) {
      this.log.error({ err: error, dir: this.opts.dir }, 'timeseries: spill write failed');
      this.lastErrorLog = Date.now();
    }
    if (kept < items.length) this.drop(items.length - kept, error ? 'spill write failed' : 'spill full');
    const t = Date.now();
    if (kept > 0 && t - this.lastSpillLog >= LOG_EVERY_MS) {
      this.log.warn(
        { spilledNow: kept, spilled: this.file.records, bytes: this.file.bytes },
        'timeseries: memory buffer full; points spilled to disk',
      );
      this.lastSpillLog = t;
    }
    return kept;
  }

  private tick(): void {
    if (this.draining || this.closing || this.file.records === 0 || Date.now() < this.retryAt) return;
    this.draining = this.drain(this.perTick)
      .then(() => {
        this.retryDelay = 0;
        this.retryAt = 0;
      })
      .catch(() => {
        // the sink counted and logged the failure; wait before the next try
        this.retryDelay = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, this.retryDelay * 2));
        this.retryAt = Date.now() + this.retryDelay;
      })
      .finally(() => {
        this.draining = undefined;
      });
  }

  /** Writes up to budget of the oldest spilled points to the sink while it is ready; answers how many it wrote. */
  async drain(budget: number = Number.POSITIVE_INFINITY): Promise<number> {
    let done = 0;
    while (done < budget && this.file.records > 0 && this.sink?.ready() && !this.closing) {
      const lines = this.file.peek(Math.min(budget - done, this.batch));
      if (lines.length === 0) break;
      const items: T[] = [];
      for (const l of lines) {
        const item = this.codec.decode(l);
        if (item !== undefined) items.push(item);
      }
      if (items.length > 0) await this.sink.write(items);
      this.file.consume(lines.length);
      if (items.length < lines.length) this.drop(lines.length - items.length, 'spill: unreadable line skipped');
      done += lines.length;
      if (this.file.records === 0) {
        this.log.info({ dir: this.opts.dir }, 'timeseries: spill drained; all spilled points written');
      }
    }
    return done;
  }

  private syncSafely(): void {
    try {
      this.file.sync();
    } catch (err) {
      this.log.error({ err, dir: this.opts.dir }, 'timeseries: spill fsync failed');
    }
  }

  /** Stops the drain (waiting for a batch in flight); the files stay for the next start. */
  async stopDrain(): Promise<void> {
    clearInterval(this.drainTimer);
    this.drainTimer = undefined;
    await this.draining;
  }

  /** Stops the timers, fsyncs and closes the files; what is on disk is drained after the next open(). */
  async close(): Promise<void> {
    if (!this.opened) return;
    await this.stopDrain();
    this.closing = true;
    clearInterval(this.syncTimer);
    this.syncTimer = undefined;
    try {
      this.file.close();
    } finally {
      claimed.delete(this.key);
      this.opened = false;
    }
  }

  stats(): SpillStats {
    return { spilled: this.file.records, spillBytes: this.file.bytes, dropped: this.dropped };
  }

  private drop(n: number, reason: string): void {
    this.dropped += n;
    const t = Date.now();
    if (t - this.lastDropLog >= LOG_EVERY_MS) {
      this.log.error({ dropped: n, droppedTotal: this.dropped, reason }, 'timeseries: points dropped');
      this.lastDropLog = t;
    }
  }
}

function syncDir(dir: string): void {
  // a new file's directory entry is durable only once the directory is fsynced (not possible everywhere)
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
