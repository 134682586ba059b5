/**
 * `npm run bench:ingest`: ingest of 5,000 devices over real MQTT sockets, against the bare aedes broker on the same
 * machine in the same run, and the node's memory with a 60,000-household street registered (issue 8).
 *
 * 1. Seed: a child process generates the street (simulators/generate-community.ts) and starts a node on it once,
 *    which seeds the registry and writes every device secret to demo-secrets.json in the data dir. A child, so that
 *    the seed's YAML parse (~1.5 GB at 60,000 households) does not stay in the measured node's RSS: a node that
 *    restarts on a seeded database never parses it either.
 * 2. The node (whole GridWatch: embedded broker with auth + ACL, pipeline, SQLite time-series, rules, its private
 *    Redis) starts in this process on that data dir. BENCH_DEVICES drivable devices, spread evenly over the
 *    street's native models, go to bench-secrets.json (0600) for the generator.
 * 3. One generator process (simulators/load.ts --control) connects them (BENCH_CONNECT_BATCH at a time). Memory:
 *    RSS idle before and with every device connected, with and without a GC.
 * 4. GridWatch: every device publishes QoS 1 telemetry, one reading per publish, BENCH_INFLIGHT unacknowledged per
 *    device, for BENCH_SECONDS, `ts` = the real send time. Over the steady window (warm-up and tail cut off):
 *    readings committed to the store per second, publish-to-stored latency of every reading (test/support/
 *    store-commits.ts), CPU of this process as % of ONE core. Then every acknowledged reading is looked up in the
 *    store: lost = acknowledged − stored with all its fields.
 * 5. Bare aedes: `Aedes.createBroker()` defaults + a net server in this same process (the node's layout: broker in
 *    the measured process, generator in its own), one in-process subscriber on `gridwatch/+/telemetry` counting, no
 *    auth. The same generator process and clients, QoS, payloads and window. The node is stopped by then, so its
 *    memory figures are not mixed with the bare broker's.
 *
 * Options (environment): BENCH_DEVICES (5000), BENCH_SECONDS (20), BENCH_HOUSEHOLDS (60000), BENCH_INFLIGHT (1),
 * BENCH_CONNECT_BATCH (500), BENCH_PROFILE (a file: CPU profile of the node over the steady window, top self
 * times printed). Prints a table, then one JSON line.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Aedes } from 'aedes';
import { getModel } from '../../devices/index.ts';
import { generateCommunity, toYaml } from '../../simulators/generate-community.ts';
import { type LoadDevice, loadableDevices } from '../../simulators/load.ts';
import { type DeviceSecret, writeSecretsFile } from '../../src/registry/seed.ts';
import { type GeneratorRun, LoadGenerator } from '../support/load-generator.ts';
import { type CommitWindow, quantile, StoreCommits } from '../support/store-commits.ts';
import { ROOT, startNode, type TestNode } from '../support/system.ts';
import { runTsxForReport } from '../support/tsx-child.ts';

const env = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
};

// The node as the benchmark runs it: the generator drives each device far faster than a real one (a meter sends
// every few minutes), so the per-device limit (20/s) is off, as in the other ingest benchmarks.
const NODE_ENV = { GRIDWATCH__ingest__rateLimit__perSecond: '0' };
const BASE_TOPIC = 'gridwatch';

const mb = (bytes: number) => Math.round(bytes / 1048576);
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A GC on demand, for RSS "after a GC": --expose-gc at run time (tsx starts this process, not us). */
function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

// --- seeding (child process) ---------------------------------------------------------------------------------

interface SeedReport {
  households: number;
  devices: number;
  staff: number;
  yamlMb: number;
  generateMs: number;
  /** first start of a node on the file: parse, validate, hash every secret, insert, then the rest of start-up */
  seedStartMs: number;
  seedPeakRssMb: number;
}

async function seedChild(dir: string, households: number): Promise<void> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 100);
  let t = Date.now();
  const seed = generateCommunity({ street: households });
  const file = path.join(dir, 'street.yaml');
  writeFileSync(file, toYaml(seed, `bench:ingest --street ${households}`));
  const generateMs = Date.now() - t;
  t = Date.now();
  const node = await startNode({ ...NODE_ENV, GRIDWATCH__registry__seedFile: file }, dir);
  const seedStartMs = Date.now() - t;
  await node.stop({ keepData: true });
  clearInterval(sampler);
  const report: SeedReport = {
    households,
    devices: seed.devices?.length ?? 0,
    staff: seed.staff?.length ?? 0,
    yamlMb: round(statSync(file).size / 1048576),
    generateMs,
    seedStartMs,
    seedPeakRssMb: mb(peak),
  };
  rmSync(file);
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

function runSeedChild(dir: string, households: number): Promise<SeedReport> {
  return runTsxForReport<SeedReport>('seeding', 'test/bench/ingest5k.ts', ['--seed', dir, String(households)]);
}

// --- measuring -----------------------------------------------------------------------------------------------

/** CPU seconds (user + system) of another process, from /proc. */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime + stime, in clock ticks (100 a second on Linux)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The node's private redis-server: a child of this process. */
function redisPid(): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && comm.startsWith('redis-server')) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** Evenly spread over the list, so every native model of the street is driven in its share. */
function spread<T>(items: readonly T[], n: number): T[] {
  if (n >= items.length) return [...items];
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]!);
}

interface Window {
  /** ms since the epoch */
  from: number;
  to: number;
  cpuPercent: number;
  redisCpuPercent?: number;
}

/**
 * Runs the generator once and opens a steady window over it: from `warm` after its first publish to `tail` before
 * its end. `onOpen` / `onClose` run at the window's edges (and `onClose` at the latest when the run ends).
 */
async function runWindowed(
  gen: LoadGenerator,
  opts: { seconds: number; inflight: number },
  hooks: { onOpen: () => void; onClose: () => void },
): Promise<{ run: GeneratorRun; window: Window }> {
  const warm = Math.min(3000, opts.seconds * 200);
  const tail = Math.min(1000, opts.seconds * 100);
  let cpu0 = process.cpuUsage();
  const redis = redisPid();
  let redis0 = 0;
  const w: Window = { from: 0, to: 0, cpuPercent: 0 };
  let timers: NodeJS.Timeout[] = [];
  let opened = false;
  let closed = false;
  const open = () => {
    opened = true;
    w.from = Date.now();
    cpu0 = process.cpuUsage();
    if (redis) redis0 = cpuSecondsOf(redis);
    hooks.onOpen();
  };
  const close = () => {
    if (!opened || closed) return;
    closed = true;
    w.to = Date.now();
    const cpu = process.cpuUsage(cpu0);
    const wall = w.to - w.from;
    w.cpuPercent = Math.round(((cpu.user + cpu.system) / 1000 / wall) * 100);
    if (redis) w.redisCpuPercent = Math.round(((cpuSecondsOf(redis) - redis0) * 1000 * 100) / wall);
    hooks.onClose();
  };
  const run = await gen.run({ seconds: opts.seconds, qos: 1, inflight: opts.inflight, ts: 'live' }, (at) => {
    const end = at + opts.seconds * 1000 - tail;
    timers = [setTimeout(open, Math.max(0, at + warm - Date.now())), setTimeout(close, end - Date.now())];
  });
  for (const t of timers) clearTimeout(t);
  if (!opened) throw new Error('the run ended before its steady window opened');
  close();
  return { run, window: w };
}

/** The in-process CPU profile of the steady window (BENCH_PROFILE): its top self-time functions. */
class Profiler {
  private readonly session = new Session();
  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.setSamplingInterval', { interval: 200 });
    await this.session.post('Profiler.start');
  }
  async stop(file: string): Promise<Array<[string, number]>> {
    const { profile } = await this.session.post('Profiler.stop');
    this.session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
    const self = new Map<number, number>();
    const deltas = profile.timeDeltas ?? [];
    (profile.samples ?? []).forEach((id, i) => {
      self.set(id, (self.get(id) ?? 0) + (deltas[i] ?? 0));
    });
    const total = [...self.values()].reduce((a, b) => a + b, 0) || 1;
    const byFn = new Map<string, number>();
    for (const n of profile.nodes) {
      const f = n.callFrame;
      const where = f.url ? `${f.url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '')}:${f.lineNumber + 1}` : '';
      const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
      byFn.set(key, (byFn.get(key) ?? 0) + (self.get(n.id) ?? 0));
    }
    return [...byFn.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20)
      .map(([k, v]) => [k, round((v / total) * 100)]);
  }
}

// --- phases --------------------------------------------------------------------------------------------------

interface IngestPhase {
  connectMs: number;
  run: GeneratorRun;
  window: Window;
  readingsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  latencyExact: boolean;
  stored: number;
  lost: number;
  rejected: number;
  peakRssMb: number;
  profile?: Array<[string, number]>;
}

interface Memory {
  /** node started on the street, no device connected */
  idleRssMb: number;
  idleRssAfterGcMb: number;
  /** every device connected, idle */
  connectedRssMb: number;
  connectedRssAfterGcMb: number;
  connectedHeapUsedMb: number;
  /** RSS growth per connected device, after a GC both times */
  perDeviceKb: number;
}

async function counter(node: TestNode, name: string): Promise<number> {
  const metric = node.system.metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  return (await metric.get()).values.reduce((n, v) => n + v.value, 0);
}

/** Readings of `devices` in the store in [from, to] with every field of their model's telemetry. */
async function storedReadings(node: TestNode, devices: readonly LoadDevice[], from: number, to: number) {
  let stored = 0;
  for (const d of devices) {
    const fields = new Set(Object.keys(getModel(d.model)!.examples.telemetry as object).filter((k) => k !== 'ts'));
    const points = await node.system.timeseries.query({ deviceId: d.deviceId, from, to: to + 1, limit: 10_000_000 });
    const perTs = new Map<number, number>();
    for (const p of points) if (fields.has(p.field)) perTs.set(p.ts, (perTs.get(p.ts) ?? 0) + 1);
    for (const n of perTs.values()) if (n === fields.size) stored++;
  }
  return stored;
}

async function gridwatchPhase(
  node: TestNode,
  gen: LoadGenerator,
  devices: readonly LoadDevice[],
  opts: { seconds: number; inflight: number; batch: number; profile?: string },
  gc: () => void,
): Promise<{ phase: IngestPhase; memory: Memory }> {
  const rss = () => process.memoryUsage().rss;
  await sleep(1000);
  const idleRss = rss();
  gc();
  const idleGc = rss();
  const { ms: connectMs } = await gen.connect(node.mqttUrl, opts.batch);
  await sleep(2000);
  const connectedRss = rss();
  gc();
  const connectedGc = rss();
  const memory: Memory = {
    idleRssMb: mb(idleRss),
    idleRssAfterGcMb: mb(idleGc),
    connectedRssMb: mb(connectedRss),
    connectedRssAfterGcMb: mb(connectedGc),
    connectedHeapUsedMb: mb(process.memoryUsage().heapUsed),
    perDeviceKb: round((connectedGc - idleGc) / 1024 / devices.length),
  };

  const ids = new Set(devices.map((d) => d.deviceId));
  const store = node.system.timeseries;
  const commits = new StoreCommits(store, (points) => ids.has(points[0]!.deviceId));
  const rejected0 = await counter(node, 'gridwatch_ingest_rejected_total');
  let peak = rss();
  const sampler = setInterval(() => {
    peak = Math.max(peak, rss());
  }, 100);
  const profiler = opts.profile ? new Profiler() : undefined;
  let profiling: Promise<void> | undefined;
  let profiled: Promise<Array<[string, number]>> | undefined;
  let committed: CommitWindow = { readings: 0, latenciesMs: new Float64Array(), exact: true };
  let window: Window;
  let run: GeneratorRun;
  try {
    ({ run, window } = await runWindowed(gen, opts, {
      onOpen: () => {
        commits.startWindow();
        profiling = profiler?.start();
      },
      onClose: () => {
        committed = commits.endWindow();
        if (profiler && profiling && opts.profile) {
          const file = opts.profile;
          profiled = profiling.then(() => profiler.stop(file));
        }
      },
    }));
    await store.flush();
  } finally {
    clearInterval(sampler);
    commits.uninstall();
  }
  const profile = await profiled;
  const stored = await storedReadings(node, devices, run.tsFrom, run.tsTo);
  const lat = committed.latenciesMs;
  return {
    memory,
    phase: {
      connectMs,
      run,
      window,
      readingsPerSecond: Math.round(committed.readings / ((window.to - window.from) / 1000)),
      p50Ms: Math.round(quantile(lat, 0.5)),
      p99Ms: Math.round(quantile(lat, 0.99)),
      maxMs: Math.round(lat.length ? lat[lat.length - 1]! : Number.NaN),
      latencyExact: committed.exact,
      stored,
      lost: run.acked - stored,
      rejected: (await counter(node, 'gridwatch_ingest_rejected_total')) - rejected0,
      peakRssMb: mb(peak),
      profile,
    },
  };
}

interface BarePhase {
  connectMs: number;
  run: GeneratorRun;
  window: Window;
  messagesPerSecond: number;
  received: number;
  lost: number;
  peakRssMb: number;
}

async function barePhase(gen: LoadGenerator, opts: { seconds: number; inflight: number; batch: number }) {
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  let received = 0;
  let inWindow = 0;
  let open = false;
  await new Promise<void>((resolve) =>
    broker.subscribe(
      `${BASE_TOPIC}/+/telemetry`,
      (_packet, done) => {
        received++;
        if (open) inWindow++;
        done();
      },
      resolve,
    ),
  );
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 100);
  try {
    const { ms: connectMs } = await gen.connect(`mqtt://127.0.0.1:${port}`, opts.batch);
    const { run, window } = await runWindowed(gen, opts, {
      onOpen: () => {
        open = true;
      },
      onClose: () => {
        open = false;
      },
    });
    await gen.disconnect();
    const phase: BarePhase = {
      connectMs,
      run,
      window,
      messagesPerSecond: Math.round(inWindow / ((window.to - window.from) / 1000)),
      received,
      lost: run.acked - received,
      peakRssMb: mb(peak),
    };
    return phase;
  } finally {
    clearInterval(sampler);
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// --- main ----------------------------------------------------------------------------------------------------

export interface Ingest5kReport {
  devices: number;
  ingest: { readingsPerSecond: number; p50Ms: number; p99Ms: number; lost: number };
  bareBroker: { messagesPerSecond: number };
  ratio: number;
  peakRssMb: number;
  cpuPercent: number;
  // extra fields (allowed after the issue's)
  [extra: string]: unknown;
}

async function main(): Promise<void> {
  const wanted = env('BENCH_DEVICES', 5000);
  const seconds = env('BENCH_SECONDS', 20);
  const households = env('BENCH_HOUSEHOLDS', 60_000);
  const inflight = env('BENCH_INFLIGHT', 1);
  const batch = env('BENCH_CONNECT_BATCH', 500);
  const profile = process.env.BENCH_PROFILE ? path.resolve(process.env.BENCH_PROFILE) : undefined;
  const gc = exposeGc();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-bench-ingest5k-'));
  let node: TestNode | undefined;
  let gen: LoadGenerator | undefined;
  try {
    const seed = await runSeedChild(dir, households);
    const all = loadableDevices(
      (JSON.parse(readFileSync(path.join(dir, 'demo-secrets.json'), 'utf8')) as { deviceSecrets: DeviceSecret[] })
        .deviceSecrets,
    );
    if (all.length < wanted) {
      throw new Error(`BENCH_DEVICES=${wanted} but the street of ${households} households has ${all.length} drivable`);
    }
    const devices = spread(all, wanted);
    const secrets = path.join(dir, 'bench-secrets.json');
    await writeSecretsFile(secrets, { deviceSecrets: devices });

    let t = Date.now();
    node = await startNode(NODE_ENV, dir);
    const restartMs = Date.now() - t;
    gen = await LoadGenerator.start(secrets, devices.length);
    const { phase: gw, memory } = await gridwatchPhase(node, gen, devices, { seconds, inflight, batch, profile }, gc);
    await gen.disconnect();
    t = Date.now();
    await node.stop({ keepData: true });
    node = undefined;
    const stopMs = Date.now() - t;
    gc();
    const bare = await barePhase(gen, { seconds, inflight, batch });

    const ratio = round(gw.readingsPerSecond / bare.messagesPerSecond, 2);
    const win = (w: Window) => `${round((w.to - w.from) / 1000)} s`;
    const rows: [string, string][] = [
      [
        `street: ${seed.households} households, ${seed.devices} devices, ${seed.staff} staff (${seed.yamlMb} MB YAML)`,
        `generated in ${seed.generateMs} ms`,
      ],
      ['  first start, seeding it (parse, validate, hash every secret, insert)', `${seed.seedStartMs} ms`],
      ['  peak RSS of the seeding process', `${seed.seedPeakRssMb} MB`],
      ['node start on the seeded street (no seed), stop after the run', `${restartMs} ms, ${stopMs} ms`],
      [
        `memory: node RSS, street registered, no device connected (after GC)`,
        `${memory.idleRssMb} MB (${memory.idleRssAfterGcMb} MB)`,
      ],
      [
        `memory: node RSS, ${devices.length} devices connected, idle (after GC; heap used)`,
        `${memory.connectedRssMb} MB (${memory.connectedRssAfterGcMb} MB; ${memory.connectedHeapUsedMb} MB)`,
      ],
      ['memory: RSS per connected device (after GC)', `${memory.perDeviceKb} KB`],
      [
        `connect ${devices.length} devices, ${batch} at a time: GridWatch (auth) / bare aedes`,
        `${gw.connectMs} ms / ${bare.connectMs} ms`,
      ],
      [
        `GridWatch, QoS 1, ${inflight} in flight per device, steady ${win(gw.window)} of ${seconds} s`,
        `${gw.readingsPerSecond} readings/s`,
      ],
      ['  publish-to-stored latency p50 / p99 / max', `${gw.p50Ms} / ${gw.p99Ms} / ${gw.maxMs} ms`],
      [
        '  acknowledged / stored with every field (lost), rejected',
        `${gw.run.acked} / ${gw.stored} (${gw.lost}), ${gw.rejected}`,
      ],
      [
        '  CPU of the node process (% of one core), its Redis; generator',
        `${gw.window.cpuPercent} %, ${gw.window.redisCpuPercent ?? '?'} %; ${gw.run.cpuPercent} %`,
      ],
      ['  peak RSS of the node process during the run', `${gw.peakRssMb} MB`],
      [
        `bare aedes (defaults, in this process, 1 in-process subscriber), same clients, steady ${win(bare.window)}`,
        `${bare.messagesPerSecond} msg/s`,
      ],
      [
        '  acknowledged / received (lost); CPU (% of one core); generator',
        `${bare.run.acked} / ${bare.received} (${bare.lost}); ${bare.window.cpuPercent} %; ${bare.run.cpuPercent} %`,
      ],
      ['GridWatch / bare aedes', `${ratio}`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(
      `\nGridWatch 5k-device ingest benchmark (${new Date().toISOString()}, Node ${process.version}, ${os.cpus().length} cores)\n`,
    );
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    if (gw.profile) {
      process.stdout.write(`\nCPU profile of the node over the steady window (${profile}), top self time:\n`);
      for (const [fn, pct] of gw.profile) process.stdout.write(`  ${String(pct).padStart(5)} %  ${fn}\n`);
    }
    const report: Ingest5kReport = {
      devices: devices.length,
      ingest: { readingsPerSecond: gw.readingsPerSecond, p50Ms: gw.p50Ms, p99Ms: gw.p99Ms, lost: gw.lost },
      bareBroker: { messagesPerSecond: bare.messagesPerSecond },
      ratio,
      peakRssMb: gw.peakRssMb,
      cpuPercent: gw.window.cpuPercent,
      seconds,
      inflightPerDevice: inflight,
      acked: gw.run.acked,
      stored: gw.stored,
      rejected: gw.rejected,
      latencyExact: gw.latencyExact,
      redisCpuPercent: gw.window.redisCpuPercent ?? null,
      generatorCpuPercent: { gridwatch: gw.run.cpuPercent, bare: bare.run.cpuPercent },
      connectMs: { gridwatch: gw.connectMs, bare: bare.connectMs },
      bareLost: bare.lost,
      memory,
      seed,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await gen?.stop().catch(() => {});
    await node?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seedAt = process.argv.indexOf('--seed');
  const job = seedAt >= 0 ? seedChild(process.argv[seedAt + 1]!, Number(process.argv[seedAt + 2])) : main();
  job.then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`bench:ingest failed: ${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
