/**
 * (a) The port contract against a real InfluxDB 2, when INFLUX_URL (+ INFLUX_TOKEN, INFLUX_ORG, INFLUX_BUCKET) is set.
 * (b) Always: the write path against a real VictoriaMetrics (it takes InfluxDB line protocol on /api/v2/write) that
 *     is stopped for 10 s in the middle of a stream and restarted; every point must arrive.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { timeSeriesContract } from '../../test/contract/timeseries.contract.ts';
import { freePort, waitForPort } from '../lifecycle/redis-server.ts';
import { InfluxTimeSeries, type InfluxTimeSeriesOptions } from './influx.ts';
import type { Point } from './port.ts';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

describe.runIf(Boolean(process.env.INFLUX_URL))('InfluxDB (INFLUX_URL)', () => {
  timeSeriesContract('influx', async () => {
    const opts: InfluxTimeSeriesOptions = {
      url: process.env.INFLUX_URL ?? '',
      token: process.env.INFLUX_TOKEN ?? '',
      org: process.env.INFLUX_ORG ?? 'gridwatch',
      bucket: process.env.INFLUX_BUCKET ?? 'gridwatch',
      batchSize: 50,
      // the suite decides when points are flushed (and checks that stop() does it)
      flushIntervalMs: 60_000,
      maxBufferLines: 100_000,
      maxRetries: 3,
      maxRetryDelayMs: 1000,
    };
    const made: InfluxTimeSeries[] = [];
    const make = () => {
      const s = new InfluxTimeSeries(opts, log);
      made.push(s);
      return s;
    };
    return {
      store: make(),
      batchSize: opts.batchSize,
      reopen: async () => make(),
      cleanup: async () => {
        for (const s of made) await s.stop();
      },
    };
  });
});

function victoriaMetricsBinary(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v victoria-metrics'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** A victoria-metrics child process that can be stopped and started again on the same port and data. */
class VictoriaMetrics {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  constructor(
    private readonly binary: string,
    private readonly dataDir: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      this.binary,
      [`-storageDataPath=${this.dataDir}`, `-httpListenAddr=127.0.0.1:${this.port}`, '-loggerLevel=ERROR'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const died = new Promise<never>((_, reject) => {
      child.once('error', (e) => reject(new Error(`cannot run ${this.binary}: ${e.message}`)));
      child.once('exit', (code) => reject(new Error(`victoria-metrics exited (${code}): ${this.output.trim()}`)));
    });
    died.catch(() => {});
    await Promise.race([this.ready(), died]);
  }

  private async ready(): Promise<void> {
    await waitForPort('127.0.0.1', this.port, 20_000);
    await vi.waitFor(
      async () => {
        const res = await fetch(`${this.url}/health`);
        expect(res.status).toBe(200);
      },
      { timeout: 20_000, interval: 100 },
    );
  }

  /** SIGTERM: VictoriaMetrics writes what it acknowledged to disk before it exits. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

interface Exported {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

describe('InfluxTimeSeries writing to VictoriaMetrics through an outage', () => {
  let vm: VictoriaMetrics;
  let dir: string;

  beforeAll(async () => {
    const binary = victoriaMetricsBinary();
    if (!binary) {
      throw new Error(
        'victoria-metrics is not installed, and this test needs it: apt-get install victoria-metrics ' +
          '(or run node scripts/setup.mjs test as root)',
      );
    }
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-vm-'));
    vm = new VictoriaMetrics(binary, dir, await freePort());
    await vm.start();
  });

  afterAll(async () => {
    await vm?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Everything VictoriaMetrics holds for measurement `reading`, keyed device|field|ts. New series become searchable
   * about a second after ingestion, and VictoriaMetrics caches a series lookup, empty answers included: each poll
   * uses a filter never used before so that a premature empty answer is not served again.
   */
  async function exportAll(
    poll: number,
  ): Promise<{ points: Map<string, number>; conflicts: string[]; labels: Exported[] }> {
    const match = `{__name__=~"reading_.*",device!="poll-${poll}"}`;
    const res = await fetch(`${vm.url}/api/v1/export?match[]=${encodeURIComponent(match)}`);
    expect(res.status).toBe(200);
    const points = new Map<string, number>();
    const conflicts: string[] = [];
    const labels: Exported[] = [];
    for (const line of (await res.text()).split('\n')) {
      if (!line.trim()) continue;
      const series = JSON.parse(line) as Exported;
      labels.push(series);
      const field = (series.metric.__name__ ?? '').replace(/^reading_/, '');
      series.timestamps.forEach((ts, j) => {
        const key = `${series.metric.device}|${field}|${ts}`;
        const value = series.values[j] as number;
        // a batch whose answer was lost in the outage is sent again: the same sample twice is fine, two values not
        const seen = points.get(key);
        if (seen !== undefined && seen !== value) conflicts.push(`${key}: ${seen} vs ${value}`);
        points.set(key, value);
      });
    }
    return { points, conflicts, labels };
  }

  it('delivers every point written before, during and after a 10 s server outage', { timeout: 90_000 }, async () => {
    const store = new InfluxTimeSeries(
      {
        url: vm.url,
        token: 'unused-by-victoria-metrics',
        org: 'gridwatch',
        bucket: 'gridwatch',
        batchSize: 100,
        flushIntervalMs: 200,
        maxBufferLines: 100_000,
        maxRetries: 50,
        maxRetryDelayMs: 2000,
      },
      log,
    );
    await store.start();

    // an hour back: inside VictoriaMetrics' default retention, and clear of its "too far in the future" check
    const base = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
    const sent: Point[] = [];
    const stream = async (ticks: number) => {
      for (let t = 0; t < ticks; t++) {
        const batch: Point[] = [];
        for (let k = 0; k < 20; k++) {
          const i = sent.length + batch.length;
          const d = i % 10;
          batch.push({
            deviceId: `vm-d${d}`,
            field: d % 2 === 0 ? 'power_w' : 'temperature_c',
            ts: base + i * 7,
            value: i * 0.25 - 100,
            tags: { householdId: `vm-h${d % 3}`, buildingId: 'vm-b1', gridId: 'vm-g1', drill: d === 9 },
          });
        }
        store.write(batch);
        sent.push(...batch);
        await sleep(100);
      }
    };

    await stream(25);
    // the server was taking points before the outage
    await vi.waitFor(() => expect(store.stats().written).toBeGreaterThan(0), { timeout: 10_000 });

    await vm.stop();
    await stream(100);
    // the outage really hit the writes: attempts failed and points are waiting, none given up
    const during = store.stats();
    expect(during.failedFlushes).toBeGreaterThan(0);
    expect(during.buffered).toBeGreaterThan(0);
    expect(during.dropped).toBe(0);

    await vm.start();
    await stream(25);
    await store.flush();
    expect(sent).toHaveLength(3000);
    const after = store.stats();
    expect(after.buffered).toBe(0);
    expect(after.dropped).toBe(0);
    expect(after.written).toBeGreaterThanOrEqual(3000);
    await store.stop();

    const expected = new Map(sent.map((p) => [`${p.deviceId}|${p.field}|${p.ts}`, p.value]));
    let poll = 0;
    let got = await exportAll(poll++);
    const deadline = Date.now() + 30_000;
    while (got.points.size < expected.size && Date.now() < deadline) {
      await sleep(500);
      got = await exportAll(poll++);
    }
    expect(got.conflicts).toEqual([]);
    const missing = [...expected.keys()].filter((k) => !got.points.has(k));
    expect(missing.slice(0, 10), `${missing.length} points missing`).toEqual([]);
    const wrong = [...expected].filter(([k, v]) => got.points.get(k) !== v).map(([k, v]) => `${k}: ${v}`);
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(got.points.size).toBe(3000);
    // the tags arrive as labels, readable in VictoriaMetrics
    expect(got.labels.find((s) => s.metric.device === 'vm-d9')?.metric).toEqual({
      __name__: 'reading_temperature_c',
      device: 'vm-d9',
      household: 'vm-h0',
      building: 'vm-b1',
      grid: 'vm-g1',
      drill: 'true',
    });
  });

  /** Polls VictoriaMetrics until it holds every expected point whose device starts with prefix (or 30 s pass). */
  async function expectStored(expected: Map<string, number>, prefix: string, poll: number): Promise<void> {
    const mine = async (n: number) => {
      const got = await exportAll(n);
      return { ...got, points: new Map([...got.points].filter(([k]) => k.startsWith(prefix))) };
    };
    let got = await mine(poll);
    const deadline = Date.now() + 30_000;
    while (got.points.size < expected.size && Date.now() < deadline) {
      await sleep(500);
      got = await mine(++poll);
    }
    expect(got.conflicts).toEqual([]);
    const missing = [...expected.keys()].filter((k) => !got.points.has(k));
    expect(missing.slice(0, 10), `${missing.length} points missing`).toEqual([]);
    const wrong = [...expected].filter(([k, v]) => got.points.get(k) !== v).map(([k, v]) => `${k}: ${v}`);
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(got.points.size).toBe(expected.size);
  }

  const spillStore = (spillDir: string) =>
    new InfluxTimeSeries(
      {
        url: vm.url,
        token: 'unused-by-victoria-metrics',
        org: 'gridwatch',
        bucket: 'gridwatch',
        batchSize: 100,
        flushIntervalMs: 200,
        // a small client buffer, so that an outage of a few seconds overflows it into the spill
        maxBufferLines: 300,
        maxRetries: 50,
        maxRetryDelayMs: 1000,
        spill: { dir: spillDir, maxBytes: 16 * 1_048_576, drainPointsPerSecond: 20_000 },
      },
      log,
    );

  function points(prefix: string, from: number, n: number, base: number): Point[] {
    return Array.from({ length: n }, (_, k) => {
      const i = from + k;
      return {
        deviceId: `${prefix}${i % 5}`,
        field: 'power_w',
        ts: base + i * 11,
        value: i,
        tags: { householdId: `${prefix}h`, drill: false },
      };
    });
  }

  it('spills what overflows the client buffer while the server is down, and delivers all of it afterwards', {
    timeout: 120_000,
  }, async () => {
    const spillDir = mkdtempSync(path.join(os.tmpdir(), 'gw-vm-spill-'));
    const store = spillStore(spillDir);
    await store.start();
    const base = Math.floor(Date.now() / 1000) * 1000 - 3_000_000;
    const sent: Point[] = [];
    const stream = async (ticks: number) => {
      for (let t = 0; t < ticks; t++) {
        const batch = points('sp-d', sent.length, 20, base);
        store.write(batch);
        sent.push(...batch);
        await sleep(50);
      }
    };
    try {
      await stream(10);
      await vi.waitFor(() => expect(store.stats().written).toBeGreaterThan(0), { timeout: 10_000 });

      await vm.stop();
      await stream(100);
      // the client gave lines up (its buffer of 300 overflowed): they are on disk, none dropped
      await vi.waitFor(() => expect(store.stats().spilled).toBeGreaterThan(1000), { timeout: 20_000 });
      const during = store.stats();
      expect(during.dropped).toBe(0);
      expect(during.buffered).toBeLessThanOrEqual(300 + 100);
      expect(during.spillBytes).toBeGreaterThan(0);

      await vm.start();
      await stream(10);
      await vi.waitFor(() => expect(store.stats()).toMatchObject({ spilled: 0, buffered: 0 }), { timeout: 30_000 });
      await store.flush();
      expect(sent).toHaveLength(2400);
      const after = store.stats();
      console.log(
        `influx spill: ${sent.length} points, ${during.spilled} spilled (${during.spillBytes} bytes) during the ` +
          `outage; afterwards written ${after.written}, dropped ${after.dropped}`,
      );
      expect(after).toMatchObject({ dropped: 0, spilled: 0, spillBytes: 0 });
      expect(after.written).toBeGreaterThanOrEqual(2400);
      expect(readdirSync(spillDir)).toEqual([]);
    } finally {
      await store.stop();
      rmSync(spillDir, { recursive: true, force: true });
    }
    await expectStored(new Map(sent.map((p) => [`${p.deviceId}|${p.field}|${p.ts}`, p.value])), 'sp-d', 1000);
  });

  it('stop() with the server down keeps the unconfirmed lines on disk; a new store delivers them', {
    timeout: 120_000,
  }, async () => {
    const spillDir = mkdtempSync(path.join(os.tmpdir(), 'gw-vm-spill-'));
    const base = Math.floor(Date.now() / 1000) * 1000 - 2_000_000;
    const sent = points('st-d', 0, 500, base);
    try {
      await vm.stop();
      const first = spillStore(spillDir);
      await first.start();
      first.write(sent);
      await first.stop();
      expect(first.stats()).toMatchObject({ dropped: 0, buffered: 0, spilled: 500 });

      await vm.start();
      const again = spillStore(spillDir);
      await again.start();
      expect(again.stats().spilled).toBe(500);
      await vi.waitFor(() => expect(again.stats().spilled).toBe(0), { timeout: 20_000 });
      expect(again.stats()).toMatchObject({ dropped: 0, written: 500 });
      await again.stop();
    } finally {
      rmSync(spillDir, { recursive: true, force: true });
    }
    await expectStored(new Map(sent.map((p) => [`${p.deviceId}|${p.field}|${p.ts}`, p.value])), 'st-d', 2000);
  });
});
