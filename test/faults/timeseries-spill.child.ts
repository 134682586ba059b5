/**
 * Child of timeseries-spill.test.ts: a SQLite time-series store with a 100-point memory bound and a disk spill,
 * over a file the parent locks once the store has started (prints "started"; the lock is taken before the parent
 * sends a line on stdin). It then writes argv[4] points, reports its stats on stdout once they are all in (memory
 * or spill), and idles until the parent SIGKILLs it.
 */
import { pino } from 'pino';
import { SqliteTimeSeries } from '../../src/timeseries/sqlite.ts';

const [file, spillDir, count] = process.argv.slice(2);
const n = Number(count);
const store = new SqliteTimeSeries(
  {
    file: file as string,
    retentionDays: 3650,
    batchSize: 50,
    flushIntervalMs: 50,
    maxBufferedPoints: 100,
    busyTimeoutMs: 5,
    spill: { dir: spillDir as string, maxBytes: 64 * 1024 * 1024 },
  },
  pino({ level: 'silent' }),
);
await store.start();
process.stdout.write('started\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const t0 = Date.now() - n * 1000;
for (let i = 0; i < n; i += 500) {
  const batch = [];
  for (let k = i; k < Math.min(n, i + 500); k++) {
    batch.push({ deviceId: 'kill-1', field: 'power_w', ts: t0 + k * 1000, value: k, tags: { householdId: 'kh' } });
  }
  store.write(batch);
}
process.stdout.write(`${JSON.stringify({ t0, ...store.stats() })}\n`);
setInterval(() => {}, 60_000);
