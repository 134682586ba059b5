/**
 * `npm run bench`: prints the figures of the ingest spine on this machine.
 *   1. start-up of a node on the embedded defaults (seeding the sample community on a fresh data dir)
 *   2. the demo's message rate with the default settings
 *   3. ingest throughput from 180 real MQTT clients in another process, QoS 1 and QoS 0, every point counted
 *   4. `npm run bench:ingest` (test/bench/ingest5k.ts) in its own process, so that its memory figures are not mixed
 *      with this process's nodes: 5,000 devices against GridWatch and the bare broker, and the node's memory with a
 *      60,000-household street; its table and JSON line are printed after the rows above.
 *   5. `npm run bench:scaling` (test/bench/scaling.ts) in its own process: one and two ingest processes on an
 *      external broker (Debian's mosquitto; skipped with a note where it is not installed).
 * Options: BENCH_SECONDS (default 10 here, 20 for steps 4 and 5), BENCH_CLIENTS (default 200), and those of
 * ingest5k.ts and scaling.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ADMIN_PASSWORD, ROOT, startNode, waitFor } from '../support/system.ts';
import { runIngestBench } from './ingest-bench.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);

/** Runs a benchmark script as its own process (its progress on our stderr); resolves with what it printed. */
function benchProcess(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, script)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${script} exited ${code}`))));
  });
}
const clients = Number(process.env.BENCH_CLIENTS ?? 200);

async function main(): Promise<void> {
  const rows: [string, string][] = [];

  let t = Date.now();
  const node = await startNode({ GRIDWATCH_DEMO: 'true', GRIDWATCH_DEMO_SPEED: '60' });
  rows.push(['start-up, fresh data dir (seed 150 households, 201 devices, demo connected)', `${Date.now() - t} ms`]);
  const token = await node.login('admin', ADMIN_PASSWORD);
  t = Date.now();
  await waitFor('all demo devices online', async () => {
    const r = await node.api('GET', '/api/v1/devices?status=online&limit=1000', undefined, token);
    return r.body.items.length >= 201;
  });
  rows.push(['demo devices online after start', `${Date.now() - t} ms`]);
  const count = async () => {
    const m = node.system.metrics.registry.getSingleMetric('gridwatch_ingest_messages_total');
    return (await m!.get()).values.reduce((n, v) => n + v.value, 0);
  };
  const c0 = await count();
  await new Promise((r) => setTimeout(r, 15_000));
  rows.push([
    'demo ingest rate (default speed 60×, 5-min interval)',
    `${(((await count()) - c0) / 15).toFixed(1)} msg/s`,
  ]);
  await node.stop();

  t = Date.now();
  // per-device limit off: the load generator drives hundreds of messages a second per client
  const restart = await startNode({ GRIDWATCH__ingest__rateLimit__perSecond: '0' });
  rows.push(['start-up, fresh data dir, no demo', `${Date.now() - t} ms`]);
  for (const qos of [1, 0] as const) {
    const r = await runIngestBench({ clients, seconds, qos }, restart);
    rows.push([
      `ingest, QoS ${qos}: ${r.load.clients} MQTT clients, ${r.load.seconds.toFixed(1)} s`,
      `${r.ingestedPerSecond} msg/s`,
    ]);
    rows.push([
      `  points stored / expected (lost: ${r.pointsExpected - r.pointsStored}), rejected ${r.rejected}`,
      `${r.pointsStored} / ${r.pointsExpected}`,
    ]);
    rows.push(['  service RSS peak, event-loop delay p99', `${r.rssPeakMb} MB, ${r.eventLoopP99Ms} ms`]);
  }
  await restart.stop();

  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\nGridWatch ingest benchmark (${new Date().toISOString()}, Node ${process.version})\n`);
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
  // the seconds above are this script's; the two below keep their own default (20) unless BENCH_SECONDS is set
  process.stdout.write(await benchProcess('test/bench/ingest5k.ts'));
  if (existsSync('/usr/sbin/mosquitto')) process.stdout.write(await benchProcess('test/bench/scaling.ts'));
  else process.stdout.write('\nscaling benchmark skipped: no mosquitto (apt-get install mosquitto)\n');
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
    process.exit(1);
  },
);
