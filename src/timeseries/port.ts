/**
 * The time-series port. Two adapters implement it (sqlite.ts, influx.ts) and pass one contract suite
 * (test/contract/timeseries.contract.ts). Values are numbers: booleans are stored as 1 / 0.
 */

export interface PointTags {
  householdId?: string;
  buildingId?: string;
  gridId?: string;
  drill?: boolean;
}

export interface Point {
  deviceId: string;
  field: string;
  /** epoch ms */
  ts: number;
  value: number;
  tags?: PointTags;
}

export interface RangeQuery {
  /** One of deviceId or householdId is required. */
  deviceId?: string;
  householdId?: string;
  field?: string;
  /** epoch ms, inclusive */
  from: number;
  /** epoch ms, exclusive */
  to: number;
  /** at most this many points, oldest first (default 10,000) */
  limit?: number;
}

export const AGGREGATES = ['mean', 'min', 'max', 'sum', 'count', 'last'] as const;
export type Aggregate = (typeof AGGREGATES)[number];

export interface AggregateQuery extends RangeQuery {
  /** window length in ms; windows are aligned to the epoch */
  every: number;
  agg: Aggregate;
}

export interface StoredPoint {
  deviceId: string;
  field: string;
  ts: number;
  value: number;
  /** Present (true) only for points of drill devices, so a reader can tell drill data apart. */
  drill?: boolean;
}

export interface AggregatePoint extends StoredPoint {
  agg: Aggregate;
}

export interface TimeSeriesStats {
  written: number;
  buffered: number;
  dropped: number;
  failedFlushes: number;
  /** points in the disk spill (spill.ts), waiting for the store to take writes again; 0 without a spill */
  spilled: number;
  /** bytes of the spill files on disk */
  spillBytes: number;
}

export interface TimeSeriesStore {
  readonly name: string;
  start(): Promise<void>;
  /** Flushes what is buffered, then closes. */
  stop(): Promise<void>;
  /** Buffers points; never throws for a store outage (points wait in a bounded buffer). */
  write(points: readonly Point[]): void;
  /** Writes out everything buffered so far. */
  flush(): Promise<void>;
  query(q: RangeQuery): Promise<StoredPoint[]>;
  /** One point per (device, field, window) that has data, ordered by device, field, time. */
  aggregate(q: AggregateQuery): Promise<AggregatePoint[]>;
  /** Store reachable? (readiness) */
  ping(): Promise<boolean>;
  stats(): TimeSeriesStats;
}
