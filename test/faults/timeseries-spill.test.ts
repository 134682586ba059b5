/**
 * Fault (issue 8, "nothing lost"): the time-series spill survives the process being killed.
 *
 * A child process runs a SQLite time-series store (memory bound 100 points, disk spill) over a file this process
 * keeps locked, writes 50,000 readings (all but 100 go to the spill) and is SIGKILLed: no stop(), no flush, no
 * fsync beyond what the spill did by itself. A torn write is simulated on top (a partial line at the end of the
 * newest segment). A new store on the same file and spill, once the lock is gone, reports the spilled points in
 * `gridwatch_timeseries_spilled_points`, skips and counts the torn line, and writes every spilled reading; the spill
 * directory ends empty. The 100 readings that were only in the killed process's memory are the only ones missing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { captureLogger } from '../../src/ingest/test-helpers.ts';
import { createMetrics, watchTimeSeries } from '../../src/metrics.ts';
import { SqliteTimeSeries } from '../../src/timeseries/sqlite.ts';
import { ROOT } from '../support/system.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-spill-kill-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('fault: killed while points wait in the time-series spill', () => {
  it('a new store on the same data drains every spilled point; a torn last line is skipped and counted', async () => {
    const N = 50_000;
    const file = path.join(dir, 'timeseries.sqlite');
    const spillDir = path.join(dir, 'spill');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/faults/timeseries-spill.child.ts', file, spillDir, String(N)],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    children.push(child);
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)));
    const out: string[] = [];
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      out.push(...parts);
    });
    const line = (i: number) =>
      vi.waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`child exited (${child.exitCode}) early`);
          expect(out.length).toBeGreaterThan(i);
          return out[i] as string;
        },
        { timeout: 30_000, interval: 20 },
      );
    expect(await line(0)).toBe('started');
    // the child's store is open: now hold the write lock, as a backup tool or a stuck process would
    const locker = new Sqlite(file);
    locker.exec('BEGIN EXCLUSIVE');
    child.stdin!.write('go\n');
    const report = JSON.parse(await line(1)) as { spilled: number; buffered: number; dropped: number };
    expect(report).toMatchObject({ buffered: 100, spilled: N - 100, dropped: 0 });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    // a torn write on top: the kill landed in the middle of a line
    const segments = readdirSync(spillDir).sort();
    expect(segments.length).toBeGreaterThan(0);
    appendFileSync(path.join(spillDir, segments.at(-1) as string), '["kill-1","power_w",17');
    locker.exec('COMMIT');
    locker.close();

    const { logger, lines } = captureLogger('info');
    const store = new SqliteTimeSeries(
      {
        file,
        retentionDays: 3650,
        batchSize: 5000,
        flushIntervalMs: 250,
        spill: { dir: spillDir, maxBytes: 64 * 1024 * 1024 },
      },
      logger,
    );
    const metrics = createMetrics({ defaultMetrics: false });
    watchTimeSeries(metrics, () => store.stats());
    const t = Date.now();
    await store.start();
    try {
      const text = await metrics.registry.metrics();
      const spilledMetric = Number(/^gridwatch_timeseries_spilled_points (\S+)$/m.exec(text)?.[1]);
      expect(spilledMetric).toBeGreaterThan(0);
      expect(spilledMetric).toBeLessThanOrEqual(N - 100);
      expect(Number(/^gridwatch_timeseries_spill_bytes (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
      await vi.waitFor(() => expect(store.stats().spilled).toBe(0), { timeout: 30_000, interval: 50 });
      const drainMs = Date.now() - t;

      const db = new Sqlite(file, { readonly: true });
      const values = db
        .prepare(
          `SELECT p.value AS v FROM points p JOIN series s ON s.id = p.series_id
           WHERE s.device_id = 'kill-1' ORDER BY p.ts`,
        )
        .pluck()
        .all() as number[];
      db.close();
      const after = store.stats();
      console.log(
        `spill kill: ${N} readings, ${report.spilled} spilled then SIGKILL; after restart ${values.length} stored ` +
          `in ${drainMs} ms (${Math.round((values.length / drainMs) * 1000)} points/s), ${after.dropped} dropped ` +
          '(the torn line)',
      );
      expect(values).toEqual(Array.from({ length: N - 100 }, (_, i) => i + 100));
      expect(after).toMatchObject({ spilled: 0, spillBytes: 0, dropped: 1, written: N - 100 });
      expect(readdirSync(spillDir)).toEqual([]);
      expect(
        lines.some((l) => l.level >= 50 && l.reason === 'spill: truncated last line (killed mid-write) skipped'),
      ).toBe(true);
    } finally {
      await store.stop();
    }
  }, 120_000);
});
