/**
 * Publish-to-stored latency for benchmarks: observes when a time-series store has durably committed the points
 * written to it, without touching the store's code.
 *
 * How: the store commits its buffer in write order (sqlite.ts: a full batch inside write(), the rest in flush(),
 * which its timer calls). Both are wrapped on the instance. Each write() of a watched reading is remembered as (end
 * position in the write order, its `ts`); after every write() and every settled flush(), `stats().written` says how
 * far the commits got, and every remembered reading up to there is committed "now": latency = now − ts. Every
 * watched reading is measured (no sampling). The positions stay exact as long as the store drops nothing
 * (`stats().dropped` unchanged: reported as `exact`).
 */
import type { Point, TimeSeriesStore } from '../../src/timeseries/port.ts';

export interface CommitWindow {
  /** readings committed while the window was open */
  readings: number;
  /** publish-to-stored latency of those readings, ms, ascending */
  latenciesMs: Float64Array;
  /** false when the store dropped points meanwhile (positions may then be off) */
  exact: boolean;
}

export class StoreCommits {
  private readonly origWrite: TimeSeriesStore['write'];
  private readonly origFlush: TimeSeriesStore['flush'];
  private readonly writtenBase: number;
  private readonly droppedBase: number;
  /** position (in points, in write order) after the last point written so far */
  private pos: number;
  // FIFO of watched readings: end position and ts (plain arrays consumed from `head`, compacted now and then)
  private ends: number[] = [];
  private tss: number[] = [];
  private head = 0;
  private open = false;
  private inWindow = 0;
  private lat: number[] = [];
  /** every watched reading committed since install */
  committed = 0;

  /** `watch(points)`: is this write() one reading to measure (e.g. from a driven device)? */
  constructor(
    private readonly store: TimeSeriesStore,
    private readonly watch: (points: readonly Point[]) => boolean,
  ) {
    this.origWrite = store.write;
    this.origFlush = store.flush;
    const s = store.stats();
    this.writtenBase = s.written;
    this.droppedBase = s.dropped;
    // what is buffered now is committed before anything written from here on
    this.pos = s.buffered;
    store.write = (points) => {
      this.pos += points.length;
      if (points.length > 0 && this.watch(points)) {
        this.ends.push(this.pos);
        this.tss.push(points[0]!.ts);
      }
      this.origWrite.call(store, points);
      this.settle();
    };
    store.flush = () => {
      const p = this.origFlush.call(store);
      void p.then(
        () => this.settle(),
        () => {},
      );
      return p;
    };
  }

  /** Opens the measuring window: from now on, committed readings are counted and their latency kept. */
  startWindow(): void {
    this.settle();
    this.inWindow = 0;
    this.lat = [];
    this.open = true;
  }

  endWindow(): CommitWindow {
    this.settle();
    this.open = false;
    const latenciesMs = Float64Array.from(this.lat).sort();
    this.lat = [];
    return { readings: this.inWindow, latenciesMs, exact: this.store.stats().dropped === this.droppedBase };
  }

  /** Puts the store's own methods back. */
  uninstall(): void {
    this.store.write = this.origWrite;
    this.store.flush = this.origFlush;
  }

  private settle(): void {
    const done = this.store.stats().written - this.writtenBase;
    if (this.head >= this.ends.length || this.ends[this.head]! > done) return;
    const now = Date.now();
    while (this.head < this.ends.length && this.ends[this.head]! <= done) {
      if (this.open) {
        this.inWindow++;
        this.lat.push(now - this.tss[this.head]!);
      }
      this.head++;
      this.committed++;
    }
    if (this.head > 100_000) {
      this.ends = this.ends.slice(this.head);
      this.tss = this.tss.slice(this.head);
      this.head = 0;
    }
  }
}

/** The q-quantile (0..1) of ascending values; NaN when empty. */
export function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
