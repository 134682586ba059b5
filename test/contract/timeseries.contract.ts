/**
 * The contract every TimeSeriesStore adapter passes (SQLite always; InfluxDB when a server is configured).
 * Expected values are worked out by hand from the fixture below, so a store that computes them differently fails.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AggregatePoint, Point, PointTags, StoredPoint, TimeSeriesStore } from '../../src/timeseries/port.ts';

export interface ContractSubject {
  /** Not started yet: the suite starts it. */
  store: TimeSeriesStore;
  /** Stops every store made for this subject and removes what it wrote to disk. */
  cleanup: () => Promise<void>;
  /** A new (not started) store over the same storage, to show that what stop() flushed is durable. */
  reopen?: () => Promise<TimeSeriesStore>;
  /** The batchSize the store was configured with (the suite writes a batch larger than it). Default 100. */
  batchSize?: number;
}

const S = 1000;
const MIN = 60 * S;

export function timeSeriesContract(name: string, make: () => Promise<ContractSubject>): void {
  describe(`TimeSeriesStore contract: ${name}`, () => {
    let subject: ContractSubject;
    let store: TimeSeriesStore;
    // Unique ids per test: a shared server (InfluxDB) keeps what earlier runs wrote.
    let run: string;
    let d1: string;
    let d2: string;
    let dd: string;
    let h1: string;
    let h2: string;
    // Two days back, on a whole hour: windows of 1 and 2 minutes then start exactly at T0.
    const T0 = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 48 * 3_600_000;

    beforeEach(async () => {
      run = randomUUID().slice(0, 8);
      d1 = `d1-${run}`;
      d2 = `d2-${run}`;
      dd = `dd-${run}`;
      h1 = `h1-${run}`;
      h2 = `h2-${run}`;
      subject = await make();
      store = subject.store;
      await store.start();
    });

    afterEach(async () => {
      await subject.cleanup();
    });

    /** d1 and d2 live in h1, d3 in h2; dd is a drill device bound to h1. */
    function fixture(): Point[] {
      const place: PointTags = { householdId: h1, buildingId: `b1-${run}`, gridId: `g1-${run}` };
      const p = (deviceId: string, field: string, dt: number, value: number, tags = place): Point => ({
        deviceId,
        field,
        ts: T0 + dt,
        value,
        tags,
      });
      return [
        p(d1, 'power_w', 0, 1),
        p(d1, 'power_w', 20 * S, 3),
        p(d1, 'power_w', 40 * S, 8),
        // 115 s before 65 s: `last` must pick the latest time, not the latest write
        p(d1, 'power_w', 115 * S, 5),
        p(d1, 'power_w', 65 * S, 20),
        p(d1, 'power_w', 200 * S, -4),
        p(d1, 'temperature_c', 20 * S, 21.5),
        p(d1, 'temperature_c', 70 * S, 22.5),
        p(d2, 'power_w', 5 * S, 100),
        p(d2, 'power_w', 40 * S, 60),
        p(d2, 'power_w', 62 * S, 50),
        // same time as d1's 20 s points, on a field that sorts first: ties go by device before field
        p(d2, 'battery_pct', 20 * S, 90),
        p(`d3-${run}`, 'power_w', 5 * S, 7, { householdId: h2, buildingId: `b2-${run}`, gridId: `g1-${run}` }),
        p(dd, 'smoke', 30 * S, 1, { ...place, drill: true }),
      ];
    }

    async function seed(): Promise<void> {
      store.write(fixture());
      await store.flush();
    }

    const pt = (deviceId: string, field: string, dt: number, value: number): StoredPoint => ({
      deviceId,
      field,
      ts: T0 + dt,
      value,
    });
    const agg = (deviceId: string, field: string, dt: number, value: number, a: AggregatePoint['agg']) => ({
      ...pt(deviceId, field, dt, value),
      agg: a,
    });
    /** Drill flags are checked by their own test; elsewhere compare the four public fields. */
    const plain = (ps: StoredPoint[]) => ps.map(({ drill: _drill, ...rest }) => rest);

    it('answers ping once started', async () => {
      expect(await store.ping()).toBe(true);
    });

    it('returns a device’s raw points oldest first, ties by field', async () => {
      await seed();
      const got = await store.query({ deviceId: d1, from: T0, to: T0 + 4 * MIN });
      expect(got).toEqual([
        pt(d1, 'power_w', 0, 1),
        pt(d1, 'power_w', 20 * S, 3),
        pt(d1, 'temperature_c', 20 * S, 21.5),
        pt(d1, 'power_w', 40 * S, 8),
        pt(d1, 'power_w', 65 * S, 20),
        pt(d1, 'temperature_c', 70 * S, 22.5),
        pt(d1, 'power_w', 115 * S, 5),
        pt(d1, 'power_w', 200 * S, -4),
      ]);
    });

    it('filters by device and field', async () => {
      await seed();
      const got = await store.query({ deviceId: d1, field: 'temperature_c', from: T0, to: T0 + 4 * MIN });
      expect(got).toEqual([pt(d1, 'temperature_c', 20 * S, 21.5), pt(d1, 'temperature_c', 70 * S, 22.5)]);
    });

    it('filters by household (every device bound to it, drill devices included), ties by device', async () => {
      await seed();
      const got = await store.query({ householdId: h1, field: 'power_w', from: T0, to: T0 + 4 * MIN });
      expect(got).toEqual([
        pt(d1, 'power_w', 0, 1),
        pt(d2, 'power_w', 5 * S, 100),
        pt(d1, 'power_w', 20 * S, 3),
        pt(d1, 'power_w', 40 * S, 8),
        pt(d2, 'power_w', 40 * S, 60),
        pt(d2, 'power_w', 62 * S, 50),
        pt(d1, 'power_w', 65 * S, 20),
        pt(d1, 'power_w', 115 * S, 5),
        pt(d1, 'power_w', 200 * S, -4),
      ]);
      const all = await store.query({ householdId: h1, from: T0, to: T0 + 4 * MIN });
      expect(all).toHaveLength(13);
      expect(new Set(all.map((p) => p.deviceId))).toEqual(new Set([d1, d2, dd]));
      expect(plain(all.filter((p) => p.ts === T0 + 20 * S))).toEqual([
        pt(d1, 'power_w', 20 * S, 3),
        pt(d1, 'temperature_c', 20 * S, 21.5),
        pt(d2, 'battery_pct', 20 * S, 90),
      ]);
      const other = await store.query({ householdId: h2, from: T0, to: T0 + 4 * MIN });
      expect(other).toEqual([pt(`d3-${run}`, 'power_w', 5 * S, 7)]);
    });

    it('treats from as inclusive and to as exclusive', async () => {
      await seed();
      const got = await store.query({ deviceId: d1, field: 'power_w', from: T0 + 20 * S, to: T0 + 65 * S });
      expect(got).toEqual([pt(d1, 'power_w', 20 * S, 3), pt(d1, 'power_w', 40 * S, 8)]);
      const one = await store.query({ deviceId: d1, field: 'power_w', from: T0 + 65 * S, to: T0 + 65 * S + 1 });
      expect(one).toEqual([pt(d1, 'power_w', 65 * S, 20)]);
    });

    it('applies limit to the oldest points', async () => {
      await seed();
      const got = await store.query({ deviceId: d1, from: T0, to: T0 + 4 * MIN, limit: 3 });
      expect(got).toEqual([
        pt(d1, 'power_w', 0, 1),
        pt(d1, 'power_w', 20 * S, 3),
        pt(d1, 'temperature_c', 20 * S, 21.5),
      ]);
    });

    describe('aggregates over epoch-aligned windows', () => {
      const q = () => ({ deviceId: d1, field: 'power_w', from: T0, to: T0 + 4 * MIN, every: MIN });
      // window [0,60s): 1,3,8   [60s,120s): 20@65s,5@115s   [120s,180s): nothing   [180s,240s): -4
      const cases: [AggregatePoint['agg'], number, number, number][] = [
        ['mean', 4, 12.5, -4],
        ['min', 1, 5, -4],
        ['max', 8, 20, -4],
        ['sum', 12, 25, -4],
        ['count', 3, 2, 1],
        ['last', 8, 5, -4],
      ];
      for (const [a, w0, w1, w3] of cases) {
        it(`${a}: one point per window with data, at the window start`, async () => {
          await seed();
          const got = await store.aggregate({ ...q(), agg: a });
          expect(plain(got)).toEqual([
            agg(d1, 'power_w', 0, w0, a),
            agg(d1, 'power_w', MIN, w1, a),
            agg(d1, 'power_w', 3 * MIN, w3, a),
          ]);
        });
      }

      it('keeps windows aligned to the epoch when from falls inside one', async () => {
        await seed();
        const got = await store.aggregate({ ...q(), from: T0 + 30 * S, agg: 'count' });
        expect(plain(got)).toEqual([
          agg(d1, 'power_w', 0, 1, 'count'),
          agg(d1, 'power_w', MIN, 2, 'count'),
          agg(d1, 'power_w', 3 * MIN, 1, 'count'),
        ]);
        const mean = await store.aggregate({ ...q(), from: T0 + 30 * S, to: T0 + 100 * S, agg: 'mean' });
        expect(plain(mean)).toEqual([agg(d1, 'power_w', 0, 8, 'mean'), agg(d1, 'power_w', MIN, 20, 'mean')]);
      });

      it('uses the requested window length', async () => {
        await seed();
        const got = await store.aggregate({ ...q(), every: 2 * MIN, agg: 'sum' });
        expect(plain(got)).toEqual([agg(d1, 'power_w', 0, 37, 'sum'), agg(d1, 'power_w', 2 * MIN, -4, 'sum')]);
      });

      it('aggregates a household per device and field, ordered by device, field, time', async () => {
        await seed();
        const got = await store.aggregate({ householdId: h1, from: T0, to: T0 + 4 * MIN, every: MIN, agg: 'count' });
        expect(plain(got)).toEqual([
          agg(d1, 'power_w', 0, 3, 'count'),
          agg(d1, 'power_w', MIN, 2, 'count'),
          agg(d1, 'power_w', 3 * MIN, 1, 'count'),
          agg(d1, 'temperature_c', 0, 1, 'count'),
          agg(d1, 'temperature_c', MIN, 1, 'count'),
          agg(d2, 'battery_pct', 0, 1, 'count'),
          agg(d2, 'power_w', 0, 2, 'count'),
          agg(d2, 'power_w', MIN, 1, 'count'),
          agg(dd, 'smoke', 0, 1, 'count'),
        ]);
        const limited = await store.aggregate({
          householdId: h1,
          from: T0,
          to: T0 + 4 * MIN,
          every: MIN,
          agg: 'max',
          limit: 2,
        });
        expect(plain(limited)).toEqual([agg(d1, 'power_w', 0, 8, 'max'), agg(d1, 'power_w', MIN, 20, 'max')]);
      });
    });

    it('overwrites a point written again for the same device, field and time', async () => {
      const at = (value: number): Point => ({ deviceId: d1, field: 'power_w', ts: T0 + 7 * S, value, tags: {} });
      store.write([at(1)]);
      await store.flush();
      store.write([at(2)]);
      await store.flush();
      expect(await store.query({ deviceId: d1, from: T0, to: T0 + MIN })).toEqual([pt(d1, 'power_w', 7 * S, 2)]);
      // twice in one batch: the later write wins
      store.write([at(3), at(4)]);
      await store.flush();
      expect(await store.query({ deviceId: d1, from: T0, to: T0 + MIN })).toEqual([pt(d1, 'power_w', 7 * S, 4)]);
      const count = await store.aggregate({ deviceId: d1, from: T0, to: T0 + MIN, every: MIN, agg: 'count' });
      expect(plain(count)).toEqual([agg(d1, 'power_w', 0, 1, 'count')]);
    });

    it('keeps the drill flag of drill-device points, in raw points and aggregates', async () => {
      await seed();
      const drill = await store.query({ deviceId: dd, from: T0, to: T0 + 4 * MIN });
      expect(drill).toEqual([{ ...pt(dd, 'smoke', 30 * S, 1), drill: true }]);
      const drillAgg = await store.aggregate({ deviceId: dd, from: T0, to: T0 + 4 * MIN, every: MIN, agg: 'max' });
      expect(drillAgg).toEqual([{ ...agg(dd, 'smoke', 0, 1, 'max'), drill: true }]);
      const real = await store.query({ deviceId: d1, from: T0, to: T0 + 4 * MIN });
      expect(real.every((p) => p.drill !== true)).toBe(true);
    });

    it('answers empty lists where there is nothing', async () => {
      await seed();
      const range = { from: T0, to: T0 + 4 * MIN };
      expect(await store.query({ deviceId: `nobody-${run}`, ...range })).toEqual([]);
      expect(await store.query({ householdId: `nowhere-${run}`, ...range })).toEqual([]);
      expect(await store.query({ deviceId: d1, field: 'gas_total_m3', ...range })).toEqual([]);
      expect(await store.query({ deviceId: d1, from: T0 - 3_600_000, to: T0 })).toEqual([]);
      expect(await store.query({ deviceId: d1, from: T0, to: T0 })).toEqual([]);
      expect(await store.aggregate({ deviceId: `nobody-${run}`, ...range, every: MIN, agg: 'mean' })).toEqual([]);
      expect(
        await store.aggregate({ deviceId: d1, from: T0 + 2 * MIN, to: T0 + 3 * MIN, every: MIN, agg: 'sum' }),
      ).toEqual([]);
    });

    it('rejects a query that names neither a device nor a household', async () => {
      await expect(store.query({ from: T0, to: T0 + MIN })).rejects.toThrow(/deviceId|householdId/);
      await expect(store.aggregate({ from: T0, to: T0 + MIN, every: MIN, agg: 'mean' })).rejects.toThrow(
        /deviceId|householdId/,
      );
    });

    it('writes a batch larger than batchSize completely', async () => {
      const n = (subject.batchSize ?? 100) * 2 + 37;
      const big = `big-${run}`;
      const points: Point[] = Array.from({ length: n }, (_, i) => ({
        deviceId: big,
        field: 'water_total_l',
        ts: T0 + i * S,
        value: i * 0.5,
        tags: { householdId: h1 },
      }));
      store.write(points);
      await store.flush();
      const got = await store.query({ deviceId: big, from: T0, to: T0 + n * S });
      expect(got).toHaveLength(n);
      expect(got.map((p) => p.value)).toEqual(points.map((p) => p.value));
      expect(got.map((p) => p.ts)).toEqual(points.map((p) => p.ts));
      const s = store.stats();
      expect(s.buffered).toBe(0);
      expect(s.dropped).toBe(0);
      expect(s.written).toBeGreaterThanOrEqual(n);
    });

    it('flushes pending points on stop(), and a new instance on the same storage sees them', async () => {
      store.write(fixture());
      // proves the points were still pending, so it is stop() that writes them
      expect(store.stats().buffered).toBe(fixture().length);
      await store.stop();
      expect(store.stats()).toMatchObject({ buffered: 0, dropped: 0, written: fixture().length });
      if (!subject.reopen) return;
      const again = await subject.reopen();
      await again.start();
      try {
        const got = await again.query({ deviceId: d1, field: 'power_w', from: T0, to: T0 + 4 * MIN });
        expect(got.map((p) => p.value)).toEqual([1, 3, 8, 20, 5, -4]);
        const drill = await again.query({ deviceId: dd, from: T0, to: T0 + 4 * MIN });
        expect(drill[0]?.drill).toBe(true);
      } finally {
        await again.stop();
      }
    });
  });
}
