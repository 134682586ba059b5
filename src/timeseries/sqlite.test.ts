import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { timeSeriesContract } from '../../test/contract/timeseries.contract.ts';
import type { Config } from '../config/schema.ts';
import { createTimeSeries } from './index.ts';
import type { Point } from './port.ts';
import { SqliteTimeSeries, type SqliteTimeSeriesOptions } from './sqlite.ts';

const log = pino({ level: 'silent' });
const DAY = 86_400_000;

function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'gw-ts-sqlite-'));
}

timeSeriesContract('sqlite', async () => {
  const dir = tempDir();
  // a long flush interval: the suite decides when points are flushed (and checks that stop() does it)
  const opts: SqliteTimeSeriesOptions = {
    file: path.join(dir, 'ts.sqlite'),
    retentionDays: 3650,
    batchSize: 50,
    flushIntervalMs: 60_000,
  };
  const made: SqliteTimeSeries[] = [];
  const make = () => {
    const s = new SqliteTimeSeries(opts, log);
    made.push(s);
    return s;
  };
  return {
    store: make(),
    batchSize: opts.batchSize,
    reopen: async () => make(),
    cleanup: async () => {
      for (const s of made) await s.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteTimeSeries', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function open(opts: Partial<SqliteTimeSeriesOptions> = {}, now?: () => number) {
    const dir = tempDir();
    const file = path.join(dir, 'ts.sqlite');
    const store = new SqliteTimeSeries(
      { file, retentionDays: 30, batchSize: 100, flushIntervalMs: 60_000, ...opts },
      log,
      now,
    );
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => store.stop());
    return { store, file, dir };
  }

  const series = (deviceId: string, from: number, n: number, step = 1000): Point[] =>
    Array.from({ length: n }, (_, i) => ({
      deviceId,
      field: 'power_w',
      ts: from + i * step,
      value: i,
      tags: { householdId: 'h1' },
    }));

  describe('retention', () => {
    it('deletes points older than retentionDays and keeps the rest, the cutoff itself included', async () => {
      const now = Date.UTC(2025, 5, 1);
      const cutoff = now - 30 * DAY;
      const { store } = open({ retentionDays: 30, batchSize: 5000 }, () => now);
      await store.start();
      await store.runRetention();
      // 12,000 expired points in one series: more than one delete chunk
      store.write(series('a', cutoff - 12_000_000, 12_000));
      store.write(series('b', cutoff - 1, 1));
      store.write(series('b', cutoff, 3));
      store.write(series('a', now - DAY, 5));
      await store.flush();

      expect(await store.runRetention()).toBe(12_001);

      const a = await store.query({ deviceId: 'a', from: 0, to: now });
      expect(a.map((p) => p.ts)).toEqual(series('a', now - DAY, 5).map((p) => p.ts));
      const b = await store.query({ deviceId: 'b', from: 0, to: now });
      expect(b.map((p) => p.ts)).toEqual([cutoff, cutoff + 1000, cutoff + 2000]);
      expect(await store.runRetention()).toBe(0);
    });

    it('runs by itself at start', async () => {
      let now = Date.UTC(2025, 5, 1);
      const first = open({ retentionDays: 30 }, () => now);
      await first.store.start();
      first.store.write(series('a', now - 10 * DAY, 4));
      await first.store.stop();

      // 25 days later the same file holds points 35 days old
      now += 25 * DAY;
      const again = new SqliteTimeSeries(
        { file: first.file, retentionDays: 30, batchSize: 100, flushIntervalMs: 60_000 },
        log,
        () => now,
      );
      cleanups.push(() => again.stop());
      await again.start();
      await vi.waitFor(async () => expect(await again.query({ deviceId: 'a', from: 0, to: now })).toEqual([]));
    });

    it('hands the event loop back between delete chunks', async () => {
      const now = Date.UTC(2025, 5, 1);
      const { store } = open({ retentionDays: 1, batchSize: 5000 }, () => now);
      await store.start();
      await store.runRetention();
      store.write(series('a', now - 10 * DAY, 20_000));
      await store.flush();

      // counts event-loop turns that happen while the retention run is in progress
      let turns = 0;
      let done = false;
      const spin = () => {
        if (done) return;
        turns++;
        setImmediate(spin);
      };
      setImmediate(spin);
      const deleted = await store.runRetention();
      done = true;
      expect(deleted).toBe(20_000);
      // 20,000 rows = 4 chunks: a single blocking statement would leave no turn in between
      expect(turns).toBeGreaterThanOrEqual(3);
    });
  });

  describe('when the database refuses writes', () => {
    it('keeps the points buffered, retries them at the next flush, and drops only beyond the bound (oldest first)', async () => {
      const { store, file } = open({ batchSize: 100, busyTimeoutMs: 20, maxBufferedPoints: 500 });
      await store.start();
      store.write(series('a', 0, 10));
      await store.flush();

      // Another connection holds the write lock, as a backup tool or a second process would: a real SQLITE_BUSY.
      const locker = new Database(file);
      cleanups.push(() => {
        if (locker.open) locker.close();
      });
      locker.exec('BEGIN IMMEDIATE');

      // write() tries the first full batch at once and fails, flush() fails again: nothing is lost
      store.write(series('a', 100_000, 300));
      expect(store.stats()).toEqual({
        written: 10,
        buffered: 300,
        dropped: 0,
        failedFlushes: 1,
        spilled: 0,
        spillBytes: 0,
      });
      await expect(store.flush()).rejects.toThrow(/locked|busy/i);
      expect(store.stats()).toEqual({
        written: 10,
        buffered: 300,
        dropped: 0,
        failedFlushes: 2,
        spilled: 0,
        spillBytes: 0,
      });

      // still refused: the buffer fills up to its bound and the oldest points give way
      store.write(series('a', 1_000_000, 300));
      await expect(store.flush()).rejects.toThrow(/locked|busy/i);
      expect(store.stats()).toMatchObject({ written: 10, buffered: 500, dropped: 100 });

      locker.exec('COMMIT');
      locker.close();
      await store.flush();
      expect(store.stats()).toMatchObject({ written: 510, buffered: 0, dropped: 100 });

      const got = await store.query({ deviceId: 'a', from: 0, to: 2_000_000 });
      const expected = [...series('a', 0, 10), ...series('a', 100_000, 300).slice(100), ...series('a', 1_000_000, 300)];
      expect(got.map((p) => [p.ts, p.value])).toEqual(expected.map((p) => [p.ts, p.value]));
    });

    it('stop() gives up what it cannot write, counts it, and still closes', async () => {
      const { store, file } = open({ busyTimeoutMs: 20 });
      await store.start();
      const locker = new Database(file);
      cleanups.push(() => {
        if (locker.open) locker.close();
      });
      locker.exec('BEGIN IMMEDIATE');
      store.write(series('a', 0, 7));
      await store.stop();
      expect(store.stats()).toMatchObject({ written: 0, buffered: 0, dropped: 7 });
      expect(await store.ping()).toBe(false);
      locker.exec('ROLLBACK');
    });
  });

  describe('with a disk spill', () => {
    const lock = (file: string) => {
      const locker = new Database(file);
      cleanups.push(() => {
        if (locker.open) locker.close();
      });
      locker.exec('BEGIN IMMEDIATE');
      return locker;
    };
    const countIn = (file: string) => {
      const db = new Database(file, { readonly: true });
      const n = (db.prepare('SELECT count(*) AS n FROM points').get() as { n: number }).n;
      db.close();
      return n;
    };

    it('spills what passes the memory bound while the file is locked, and writes all of it once unlocked', async () => {
      const { file, dir } = open();
      const spillDir = path.join(dir, 'spill');
      const spilling = new SqliteTimeSeries(
        {
          file,
          retentionDays: 30,
          batchSize: 100,
          flushIntervalMs: 20,
          busyTimeoutMs: 10,
          maxBufferedPoints: 200,
          spill: { dir: spillDir, maxBytes: 16 * 1_048_576, drainPointsPerSecond: 50_000 },
        },
        log,
      );
      cleanups.push(() => spilling.stop());
      await spilling.start();
      const locker = lock(file);
      const N = 5000;
      for (let i = 0; i < 50; i++) spilling.write(series('a', i * 100_000, 100, 1000 / 100));
      // memory holds its bound; the rest is on disk, none dropped
      expect(spilling.stats()).toMatchObject({ buffered: 200, spilled: N - 200, dropped: 0, written: 0 });
      expect(spilling.stats().spillBytes).toBeGreaterThan(0);
      expect(readdirSync(spillDir).length).toBeGreaterThan(0);
      // still locked a while later: the drain does not lose them either
      await new Promise((r) => setTimeout(r, 300));
      expect(spilling.stats()).toMatchObject({ spilled: N - 200, dropped: 0 });

      locker.exec('COMMIT');
      locker.close();
      await vi.waitFor(() => expect(spilling.stats()).toMatchObject({ buffered: 0, spilled: 0 }), { timeout: 10_000 });
      expect(countIn(file)).toBe(N);
      expect(spilling.stats()).toMatchObject({ written: N, dropped: 0, spillBytes: 0 });
      expect(readdirSync(spillDir)).toEqual([]);
      const got = await spilling.query({ deviceId: 'a', from: 0, to: 10_000_000 });
      expect(got.map((p) => p.ts)).toEqual(
        Array.from({ length: N }, (_, i) => Math.floor(i / 100) * 100_000 + (i % 100) * 10),
      );
    });

    it('stop() while the file is locked keeps the buffer in the spill; the next start writes it', async () => {
      const { file, dir } = open();
      const opts: SqliteTimeSeriesOptions = {
        file,
        retentionDays: 30,
        batchSize: 100,
        flushIntervalMs: 20,
        busyTimeoutMs: 10,
        spill: { dir: path.join(dir, 'spill'), maxBytes: 1_048_576 },
      };
      const first = new SqliteTimeSeries(opts, log);
      await first.start();
      const locker = lock(file);
      first.write(series('a', 0, 70));
      await first.stop();
      expect(first.stats()).toMatchObject({ written: 0, dropped: 0, spilled: 70 });
      locker.exec('ROLLBACK');
      locker.close();

      const again = new SqliteTimeSeries(opts, log);
      cleanups.push(() => again.stop());
      await again.start();
      expect(again.stats().spilled).toBe(70);
      await vi.waitFor(() => expect(again.stats().spilled).toBe(0));
      expect((await again.query({ deviceId: 'a', from: 0, to: 1e9 })).map((p) => p.value)).toEqual(
        series('a', 0, 70).map((p) => p.value),
      );
      // the household tag came through the spill too
      expect(await again.query({ householdId: 'h1', from: 0, to: 1e9 })).toHaveLength(70);
    });
  });

  it('commits a batch as soon as the buffer reaches batchSize', async () => {
    const { store } = open({ batchSize: 50, flushIntervalMs: 60_000 });
    await store.start();
    store.write(series('a', 0, 49));
    expect(store.stats()).toMatchObject({ written: 0, buffered: 49 });
    store.write(series('a', 100_000, 1));
    expect(store.stats()).toMatchObject({ written: 50, buffered: 0 });
  });

  it('keeps its buffer bounded without dropping when a caller writes in a tight loop', async () => {
    const { store } = open({ batchSize: 100, flushIntervalMs: 60_000, maxBufferedPoints: 200 });
    await store.start();
    // no event-loop turn in between: nothing but write() itself can make room
    for (let i = 0; i < 50; i++) store.write(series('a', i * 1_000_000, 70));
    expect(store.stats()).toMatchObject({ dropped: 0, written: 3500 - store.stats().buffered });
    expect(store.stats().buffered).toBeLessThan(100);
  });

  it('flushes on its own every flushIntervalMs', async () => {
    const { store } = open({ batchSize: 1000, flushIntervalMs: 20 });
    await store.start();
    store.write(series('a', 0, 3));
    await vi.waitFor(() => expect(store.stats().written).toBe(3));
  });

  it('counts invalid points as dropped instead of failing the batch', async () => {
    const { store } = open();
    await store.start();
    store.write([
      { deviceId: 'a', field: 'power_w', ts: 1000, value: Number.NaN },
      { deviceId: '', field: 'power_w', ts: 1000, value: 1 },
      { deviceId: 'a', field: 'power_w', ts: 2000, value: 2 },
    ]);
    await store.flush();
    expect(store.stats()).toMatchObject({ written: 1, dropped: 2, buffered: 0 });
  });

  it('follows a device that moves to another household', async () => {
    const { store } = open();
    await store.start();
    store.write([{ deviceId: 'a', field: 'power_w', ts: 1000, value: 1, tags: { householdId: 'h1' } }]);
    await store.flush();
    store.write([{ deviceId: 'a', field: 'power_w', ts: 2000, value: 2, tags: { householdId: 'h2' } }]);
    await store.flush();
    expect(await store.query({ householdId: 'h1', from: 0, to: 10_000 })).toEqual([]);
    expect((await store.query({ householdId: 'h2', from: 0, to: 10_000 })).map((p) => p.value)).toEqual([1, 2]);
  });
});

describe('createTimeSeries', () => {
  const cfg: Config['timeseries'] = {
    driver: 'sqlite',
    sqlite: { file: 'ts/points.sqlite', retentionDays: 30, batchSize: 100, flushIntervalMs: 250 },
    influx: {
      org: 'o',
      bucket: 'b',
      batchSize: 100,
      flushIntervalMs: 1000,
      maxBufferLines: 1000,
      maxRetries: 3,
      maxRetryDelayMs: 1000,
    },
    spill: { enabled: false, dir: 'spill', maxBytes: 1_048_576, fsyncIntervalMs: 1000, drainPointsPerSecond: 20_000 },
  };

  it('opens the SQLite file relative to the data directory', async () => {
    const dir = tempDir();
    try {
      const store = createTimeSeries(cfg, dir, log);
      expect(store.name).toBe('sqlite');
      await store.start();
      await store.stop();
      expect(existsSync(path.join(dir, 'ts', 'points.sqlite'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses the influx driver without a URL and a token', () => {
    expect(() => createTimeSeries({ ...cfg, driver: 'influx' }, '/tmp', log)).toThrow(/INFLUX_URL/);
    expect(() =>
      createTimeSeries({ ...cfg, driver: 'influx', influx: { ...cfg.influx, url: 'http://127.0.0.1:1' } }, '/tmp', log),
    ).toThrow(/INFLUX_TOKEN/);
    const store = createTimeSeries(
      { ...cfg, driver: 'influx', influx: { ...cfg.influx, url: 'http://127.0.0.1:1', token: 't' } },
      '/tmp',
      log,
    );
    expect(store.name).toBe('influx');
  });
});
