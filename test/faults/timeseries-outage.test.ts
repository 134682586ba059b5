/**
 * Fault 3 (issue 8): the time-series store unavailable for 30 s during a stream.
 *
 * - A whole node (real MQTT, Redis, the embedded SQLite time-series store). Another process holds an exclusive
 *   lock on the time-series file for 30 s while a water meter streams 1,500 readings over real MQTT (QoS 1). During
 *   the outage `/metrics` shows the points waiting and the failed writes. When the lock goes, every reading is
 *   written, none is dropped.
 * - The bound: the adapter with room for 100 points, locked for a 300-point stream. The 200 oldest are dropped,
 *   counted in `gridwatch_timeseries_dropped_points_total` and logged, never silently. The newest 100 are written
 *   once the lock goes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { captureLogger } from '../../src/ingest/test-helpers.ts';
import { createMetrics, watchTimeSeries } from '../../src/metrics.ts';
import { SqliteTimeSeries } from '../../src/timeseries/sqlite.ts';
import { ADMIN_PASSWORD, ROOT, startNode, type TestNode, waitFor } from '../support/system.ts';

const LOCK_MS = 30_000;
let node: TestNode | undefined;
const lockers: ChildProcess[] = [];

/** Another process takes an exclusive write lock on `file` for `ms`; resolves once it holds it. */
async function lockFile(file: string, ms: number): Promise<ChildProcess> {
  const code = `const D = require('better-sqlite3'); const d = new D(${JSON.stringify(file)});
d.exec('BEGIN EXCLUSIVE'); console.log('locked');
setTimeout(() => { d.exec('COMMIT'); d.close(); process.exit(0); }, ${ms});`;
  const child = spawn(process.execPath, ['-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  lockers.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    child.once('exit', (c) => reject(new Error(`locker exited ${c}`)));
  });
  return child;
}

const exited = (c: ChildProcess) => new Promise((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', r)));

async function metric(name: string): Promise<number> {
  const text = (await node!.api('GET', '/metrics')).body as string;
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

afterAll(async () => {
  for (const l of lockers) l.kill();
  await node?.stop();
});

describe('fault 3: the time-series store unavailable for 30 s', () => {
  it('readings sent during the outage are all written afterwards; the wait shows in /metrics', async () => {
    // the stream is 1,500 readings in ~8 s from one meter, far above the per-device ingest limit: off for this test
    node = await startNode({ GRIDWATCH__ingest__rateLimit__perSecond: '0' });
    const token = await node.login('admin', ADMIN_PASSWORD);
    const r = await node.api(
      'POST',
      '/api/v1/devices',
      { id: 'ts-fault-wm', model: 'native-water-meter', householdId: 'h-limin-01-1-0101' },
      token,
    );
    expect(r.status).toBe(201);
    const client = await mqtt.connectAsync(node.mqttUrl, {
      clientId: 'ts-fault-wm',
      username: 'ts-fault-wm',
      password: r.body.secret as string,
      reconnectPeriod: 0,
    });
    const file = path.join(node.dataDir, 'timeseries.sqlite');
    const locker = await lockFile(file, LOCK_MS);
    const lockedAt = Date.now();

    // 1,500 readings, one a second of device time over the last 25 minutes, sent within the outage
    const N = 1500;
    const t0 = Date.now() - N * 1000;
    for (let i = 0; i < N; i++) {
      await client.publishAsync(
        'gridwatch/ts-fault-wm/telemetry',
        JSON.stringify({ water_total_l: 1000 + i, ts: t0 + i * 1000 }),
        { qos: 1 },
      );
      if (i % 100 === 99) await new Promise((res) => setTimeout(res, 500));
    }
    const buffered = await metric('gridwatch_timeseries_buffered_points');
    const failed = await metric('gridwatch_timeseries_failed_flushes_total');
    expect(Date.now() - lockedAt).toBeLessThan(LOCK_MS); // all of it really went in during the outage
    expect(buffered).toBeGreaterThanOrEqual(N);
    expect(failed).toBeGreaterThan(0);

    await exited(locker);
    await waitFor('the buffer to drain', async () => (await metric('gridwatch_timeseries_buffered_points')) === 0);
    await node.system.timeseries.flush();
    const db = new Sqlite(file, { readonly: true });
    const stored = db
      .prepare(
        `select count(*) as n from points p join series s on s.id = p.series_id
         where s.device_id = 'ts-fault-wm' and s.field = 'water_total_l'`,
      )
      .get() as { n: number };
    db.close();
    const dropped = await metric('gridwatch_timeseries_dropped_points_total');
    console.log(
      `fault 3: ${N} readings sent while the store was locked for ${LOCK_MS / 1000} s; ${buffered} waited, ` +
        `${failed} writes failed and were retried; afterwards ${stored.n} stored, ${dropped} dropped`,
    );
    expect(stored.n).toBe(N);
    expect(dropped).toBe(0);
    await client.endAsync();
  }, 120_000);

  it('past its bound the buffer drops the oldest, counted in /metrics and logged, never silently', async () => {
    const dir = node!.dataDir;
    const file = path.join(dir, 'bounded.sqlite');
    const { logger, lines } = captureLogger('warn');
    const store = new SqliteTimeSeries(
      { file, retentionDays: 400, batchSize: 50, flushIntervalMs: 50, maxBufferedPoints: 100, busyTimeoutMs: 5 },
      logger,
    );
    await store.start();
    const metrics = createMetrics({ defaultMetrics: false });
    watchTimeSeries(metrics, () => store.stats());
    const locker = await lockFile(file, 2_000);
    const t0 = Date.now() - 300_000;
    for (let i = 0; i < 300; i++) store.write([{ deviceId: 'bound-1', field: 'power_w', ts: t0 + i * 1000, value: i }]);
    await new Promise((r) => setTimeout(r, 200));
    await exited(locker);
    await waitFor('the rest to be written', async () => store.stats().buffered === 0);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^gridwatch_timeseries_dropped_points_total 200$/m);
    expect(lines.some((l) => l.level >= 50 && /dropped/.test(l.msg))).toBe(true);
    const kept = await store.query({ deviceId: 'bound-1', field: 'power_w', from: t0, to: t0 + 300_000 });
    expect(kept.map((p) => p.value)).toEqual(Array.from({ length: 100 }, (_, i) => 200 + i));
    await store.stop();
  }, 60_000);
});
