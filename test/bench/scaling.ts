/**
 * `npm run bench:scaling`: ingest through an external broker (Debian's mosquitto) with one, then two GridWatch
 * ingest processes on one shared subscription, driven by the same load generator (simulators/load.ts, its own
 * process) with the same devices, QoS 1 and payloads; and the broker with one bare MQTT.js subscriber in the same
 * shared group as the ceiling of this broker and generator on this machine. Prints a table and one JSON line.
 *
 * The nodes share Redis and PostgreSQL (as deployed); each has its own SQLite time-series store, and every point is
 * counted afterwards from their `gridwatch_timeseries_written_points_total`.
 *
 * Options (environment): BENCH_DEVICES (default 5000), BENCH_SECONDS (20), BENCH_INFLIGHT (4),
 * BENCH_HOUSEHOLDS (12000: the generated community the devices come from).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { generateCommunity, toYaml } from '../../simulators/generate-community.ts';
import type { LoadDevice, LoadResult } from '../../simulators/load.ts';
import { loadableDevices } from '../../simulators/load.ts';
import { startTestMosquitto, type TestMosquitto } from '../support/mosquitto.ts';
import { startTestPostgres } from '../support/postgres.ts';
import { startTestRedis } from '../support/redis.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/system.ts';
import { runTsxForReport } from '../support/tsx-child.ts';

const devicesWanted = Number(process.env.BENCH_DEVICES ?? 5000);
const seconds = Number(process.env.BENCH_SECONDS ?? 20);
const inflight = Number(process.env.BENCH_INFLIGHT ?? 4);
const households = Number(process.env.BENCH_HOUSEHOLDS ?? 12_000);

function runLoad(url: string, secrets: string, clients: number): Promise<LoadResult> {
  return runTsxForReport<LoadResult>('load generator', 'simulators/load.ts', [
    ...['--url', url, '--secrets', secrets, '--clients', String(clients), '--seconds', String(seconds)],
    ...['--qos', '1', '--inflight', String(inflight)],
  ]);
}

async function metric(node: ServiceProcess, name: string): Promise<number> {
  const r = await node.api('GET', '/metrics');
  let n = 0;
  for (const line of String(r.body).split('\n')) {
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) {
      n += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return n;
}

/** CPU seconds (user + system) of a process so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

/**
 * Readings of the run in the nodes' time-series files, each (device, field, ts) once however many nodes or times it
 * was written: every reading of the load has its own ts per device in [tsFrom, tsTo] (simulators/load.ts).
 */
function storedPoints(dataDirs: string[], tsFrom: number, tsTo: number): number {
  const db = new Database(':memory:');
  try {
    const parts = dataDirs.map((dir, i) => {
      db.prepare(`ATTACH DATABASE ? AS n${i}`).run(path.join(dir, 'timeseries.sqlite'));
      return `SELECT s.device_id, s.field, p.ts FROM n${i}.points p JOIN n${i}.series s ON s.id = p.series_id
              WHERE p.ts BETWEEN ${Math.floor(tsFrom)} AND ${Math.ceil(tsTo)}`;
    });
    return db
      .prepare(`SELECT COUNT(*) FROM (${parts.join(' UNION ')})`)
      .pluck()
      .get() as number;
  } finally {
    db.close();
  }
}

interface Run {
  nodes: number;
  readingsPerSecond: number;
  acked: number;
  stored: number;
  expected: number;
  /** acknowledged by the broker, not in any node's store (readings; from the exact count of points) */
  lost: number;
  /** points written more than once (a redelivery after a node's reconnect): stored once, counted here */
  duplicateWrites: number;
  /** of the broker process, % of one core */
  brokerCpuPercent: number;
  cpuPercent: number[];
  peakRssMb: number[];
  drainMs: number;
}

/** One load run against `nodes`: readings fully processed (stored) per second, from start to the last one stored. */
async function measure(nodes: ServiceProcess[], broker: TestMosquitto, secrets: string, clients: number): Promise<Run> {
  const url = broker.url;
  const written0 = await Promise.all(nodes.map((n) => metric(n, 'gridwatch_timeseries_written_points_total')));
  const cpu0 = nodes.map((n) => cpuSeconds(n.pid!));
  const brokerCpu0 = cpuSeconds(broker.pid!);
  const peak = nodes.map((n) => rssMb(n.pid!));
  const sampler = setInterval(() => {
    nodes.forEach((n, i) => {
      peak[i] = Math.max(peak[i]!, rssMb(n.pid!));
    });
  }, 250);
  const started = Date.now();
  const load = await runLoad(url, secrets, clients);
  // the broker acknowledged the publishes; what it queued for the nodes is still being processed: wait for it
  const total = async () =>
    (await Promise.all(nodes.map((n) => metric(n, 'gridwatch_timeseries_written_points_total')))).reduce(
      (a, b, i) => a + b - written0[i]!,
      0,
    );
  const loadEnded = Date.now();
  let stored = 0;
  let last = -1;
  let lastChange = Date.now();
  while (Date.now() - lastChange < 5000) {
    stored = await total();
    if (stored >= load.fields) break;
    if (stored !== last) {
      last = stored;
      lastChange = Date.now();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const done = Date.now();
  clearInterval(sampler);
  const wall = (done - started) / 1000;
  const brokerCpuPercent = Math.round(((cpuSeconds(broker.pid!) - brokerCpu0) / wall) * 100);
  const cpuPercent = nodes.map((n, i) => Math.round(((cpuSeconds(n.pid!) - cpu0[i]!) / wall) * 100));
  const fieldsPerReading = load.fields / load.sent;
  const unique = storedPoints(
    nodes.map((n) => n.dataDir),
    load.tsFrom,
    load.tsTo,
  );
  return {
    nodes: nodes.length,
    // the load's own connect phase is not in load.seconds; the processing window is from the first publish on
    readingsPerSecond: Math.round(unique / fieldsPerReading / (load.seconds + (done - loadEnded) / 1000)),
    acked: load.acked,
    stored: Math.round(unique / fieldsPerReading),
    expected: load.sent,
    lost: Math.ceil((load.fields - unique) / fieldsPerReading),
    duplicateWrites: stored - unique,
    brokerCpuPercent,
    cpuPercent,
    peakRssMb: peak,
    drainMs: done - loadEnded,
  };
}

/** The broker alone: one MQTT.js client in the shared group counts what it receives. */
async function bareBroker(url: string, secrets: string, clients: number): Promise<number> {
  const sub = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: 'bench-bare', clean: true });
  let received = 0;
  let lastAt = Date.now();
  sub.on('message', () => {
    received++;
    lastAt = Date.now();
  });
  await sub.subscribeAsync('$share/bare/gridwatch/+/+', { qos: 1 });
  const load = await runLoad(url, secrets, clients);
  await waitFor(
    'the bare subscriber to get everything',
    async () => received >= load.sent || Date.now() - lastAt > 3000,
  );
  await sub.endAsync();
  return Math.round(received / (load.seconds + Math.max(0, lastAt - Date.now()) / 1000));
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'gw-bench-scaling-'));
  const [broker, pg, redis] = await Promise.all([
    startTestMosquitto([
      'allow_anonymous true',
      // mosquitto's defaults (20 in flight, 1,000 queued per subscriber, then DROPPED) would throttle and then lose
      // QoS 1 messages for a subscriber that falls behind: docs/brokers.md
      'max_inflight_messages 1000',
      'max_queued_messages 1000000',
    ]),
    startTestPostgres(),
    startTestRedis(),
  ]);
  const nodes: ServiceProcess[] = [];
  try {
    const seed = path.join(tmp, 'community.yaml');
    writeFileSync(seed, toYaml(generateCommunity({ households }), `bench:scaling ${households} households`));
    const env = {
      MQTT_URL: broker.url,
      REDIS_URL: redis.url,
      DATABASE_URL: pg.url,
      GRIDWATCH__registry__seedFile: seed,
      // the generator drives each device far faster than a real one
      GRIDWATCH__ingest__rateLimit__perSecond: '0',
    };
    const dirA = path.join(tmp, 'a');
    let t = Date.now();
    nodes.push(await startServiceProcess({ dataDir: dirA, env, readyTimeoutMs: 600_000 }));
    const seedMs = Date.now() - t;
    const secrets = path.join(dirA, 'demo-secrets.json');
    const all = loadableDevices(
      (JSON.parse(readFileSync(secrets, 'utf8')) as { deviceSecrets: LoadDevice[] }).deviceSecrets,
    );
    const clients = Math.min(devicesWanted, all.length);

    // the broker alone first, with no GridWatch node in the way (a stopped node leaves the shared group)
    await nodes[0]!.stop();
    const bare = await bareBroker(broker.url, secrets, clients);
    await nodes[0]!.restart();
    const one = await measure(nodes, broker, secrets, clients);
    t = Date.now();
    nodes.push(await startServiceProcess({ dataDir: path.join(tmp, 'b'), env }));
    const secondStartMs = Date.now() - t;
    const two = await measure(nodes, broker, secrets, clients);

    const rows: [string, string][] = [
      [`first node start, seeding ${households} households into PostgreSQL`, `${seedMs} ms`],
      ['second node start (registry already there)', `${secondStartMs} ms`],
      [`mosquitto + one bare subscriber, ${clients} devices, QoS 1`, `${bare} msg/s`],
    ];
    for (const r of [one, two]) {
      rows.push([
        `GridWatch, ${r.nodes} ingest process${r.nodes > 1 ? 'es' : ''} on mosquitto`,
        `${r.readingsPerSecond} readings/s`,
      ]);
      rows.push([
        '  stored / acknowledged by the broker (lost; points written twice), drain after the load',
        `${r.stored} / ${r.expected} (${r.lost}; ${r.duplicateWrites}), ${r.drainMs} ms`,
      ]);
      rows.push([
        '  CPU per node, of mosquitto (% of one core); peak RSS per node',
        `${r.cpuPercent.join(' + ')} %, ${r.brokerCpuPercent} %; ${r.peakRssMb.join(' + ')} MB`,
      ]);
    }
    const speedup = Math.round((two.readingsPerSecond / one.readingsPerSecond) * 100) / 100;
    rows.push(['speed-up, two processes over one', `${speedup}×`]);
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`\nGridWatch scaling benchmark (${new Date().toISOString()}, ${os.cpus().length} cores)\n`);
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    process.stdout.write(
      `${JSON.stringify({
        devices: clients,
        broker: 'mosquitto',
        bareBroker: { messagesPerSecond: bare },
        oneNode: one,
        twoNodes: two,
        speedup,
      })}\n`,
    );
  } finally {
    for (const n of nodes.reverse()) await n.stop();
    await Promise.all([broker.stop(), pg.stop(), redis.stop()]);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
    process.exit(1);
  },
);
