/**
 * `npm run bench:alert` (tsx test/bench/alert.ts): SOS → SMS latency and escalation-step lateness of a whole node
 * under a background ingest load (issue 4, "Tests and measurements").
 *
 * - A seed of N households (simulators/generate-community.ts) gets one extra `native-emergency-button` per
 *   household (`sb-<place>`), and the node starts on it (`GRIDWATCH__registry__seedFile`, demo off).
 * - Background: the load generator (simulators/load.ts, another process, real MQTT clients, QoS 1) publishes
 *   telemetry from the other devices; the achieved rate is read from `gridwatch_ingest_messages_total` over the
 *   measurement window.
 * - SOS: a second child process (this file with `--sos`) connects one MQTT client per button, then publishes one
 *   `sos` event per household (QoS 1, unique id) spread over a few seconds, and reports each publish time.
 * - SMS: the node's transport is wrapped (`send`), so each SMS is timed when it is handed to the transport; its
 *   notification → alert → household gives the household's first SMS. sosToSms = that − the publish time.
 * - Escalation: the critical policy's later steps are shortened IN THE RUNNING NODE (config has no env override
 *   for arrays; policies are read when an alert opens, then frozen) to `escalationStepSeconds` (default 15 s, step
 *   2 at twice that), and the lateness of those steps is read from the escalator scheduler's `observeLateness` hook
 *   (fire time − firstSeen − afterMinutes). Step 0 (at once) is in sosToSms, not here.
 *
 * Options (env of main): BENCH_HOUSEHOLDS (default 1000), BENCH_BACKGROUND (default 1; 0 = no load),
 * BENCH_LOAD_CLIENTS (default 15), BENCH_LOAD_INFLIGHT (default 1), BENCH_SOS_SPREAD_SECONDS (default 5).
 * Prints one JSON line.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import mqtt, { type MqttClient } from 'mqtt';
import { generateCommunity, toYaml } from '../../simulators/generate-community.ts';
import type { LoadDevice, LoadResult } from '../../simulators/load.ts';
import type { Policy } from '../../src/notify/policy.ts';
import type { SmsMessage } from '../../src/notify/sms/port.ts';
import { ROOT, startNode, type TestNode } from '../support/system.ts';
import { runLoadProcess } from './ingest-bench.ts';

export interface AlertBenchOptions {
  households: number;
  /** how long the background load runs (it must cover the measurement); default 50 s */
  backgroundSeconds?: number;
  /** default true */
  background?: boolean;
  /** load generator clients / QoS 1 in-flight window per client (tune the background rate); default 15 / 1 */
  loadClients?: number;
  loadInflight?: number;
  loadQos?: 0 | 1;
  /** SOS publishes are spread evenly over this time; default 5 s */
  sosSpreadSeconds?: number;
  /** the shortened wait of escalation step 1 (step k waits k times this); default 15 s */
  escalationStepSeconds?: number;
}

export interface AlertBenchResult {
  backgroundReadingsPerSecond: number;
  sosToSms: { n: number; p50Ms: number; p95Ms: number; p99Ms: number };
  escalationLateness: { n: number; p50Ms: number; p99Ms: number };
  /** households whose SOS never produced an SMS within the wait (should be 0) */
  missing: number;
  load?: LoadResult;
}

interface SosDevice extends LoadDevice {
  householdId: string;
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number) => Math.round(x * 10) / 10;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return round(sorted[i]!);
}

async function counter(node: TestNode, name: string): Promise<number> {
  const metric = node.system.metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.reduce((n, v) => n + v.value, 0);
}

/** A seed of `households` households, each with one extra emergency button `sb-<place>`; returns the file. */
function writeSeed(dir: string, households: number): string {
  const seed = generateCommunity({ households, seed: 1 });
  const devices = seed.devices ?? [];
  for (const d of seed.districts)
    for (const s of d.streets)
      for (const c of s.communities)
        for (const g of c.grids)
          for (const b of g.buildings)
            for (const u of b.units)
              for (const h of u.households ?? []) {
                devices.push({ id: `sb-${h.id.slice(2)}`, model: 'native-emergency-button', household: h.id });
              }
  const file = path.join(dir, 'seed.yaml');
  writeFileSync(file, toYaml({ ...seed, devices }, `test/bench/alert.ts --households ${households}`));
  return file;
}

/** The critical policies' later steps, shortened: step k after k × stepSeconds. */
function shortenPolicies(policies: readonly Policy[], stepSeconds: number): Policy[] {
  return policies.map((p) =>
    p.match.severities?.includes('critical')
      ? { ...p, steps: p.steps.map((s, i) => (i === 0 ? s : { ...s, afterMinutes: (i * stepSeconds) / 60 })) }
      : p,
  );
}

// ---------------------------------------------------------------------------------------------- SOS child

interface SosChildInput {
  url: string;
  devices: SosDevice[];
  spreadMs: number;
}

/** Child mode: connect every button, say `ready`, wait for `go`, publish the SOS events, print the times. */
async function sosChild(): Promise<void> {
  const rl = createInterface({ input: process.stdin });
  const lines = rl[Symbol.asyncIterator]();
  const input = JSON.parse((await lines.next()).value as string) as SosChildInput;
  const clients: MqttClient[] = [];
  // connect in batches: a thousand simultaneous CONNECTs with secret checks would only measure the broker's start
  for (let i = 0; i < input.devices.length; i += 100) {
    clients.push(
      ...(await Promise.all(
        input.devices.slice(i, i + 100).map((d) =>
          mqtt.connectAsync(input.url, {
            clientId: d.deviceId,
            username: d.deviceId,
            password: d.secret,
            reconnectPeriod: 0,
            connectTimeout: 30_000,
          }),
        ),
      )),
    );
  }
  process.stdout.write('ready\n');
  await lines.next();
  const published: Record<string, number> = {};
  const n = input.devices.length;
  const start = now();
  const run = `${Date.now().toString(36)}`;
  await Promise.all(
    input.devices.map(async (d, i) => {
      const due = start + (n > 1 ? (i * input.spreadMs) / (n - 1) : 0);
      const wait = due - now();
      if (wait > 0) await sleep(wait);
      const t = now();
      published[d.deviceId] = t;
      await clients[i]!.publishAsync(
        `gridwatch/${d.deviceId}/event`,
        JSON.stringify({ type: 'sos', id: `bench-${run}-${i}`, ts: Math.floor(t) }),
        { qos: 1 },
      );
    }),
  );
  process.stdout.write(`${JSON.stringify(published)}\n`);
  await Promise.all(clients.map((c) => c.endAsync()));
}

class SosProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private err = '';

  constructor(input: SosChildInput) {
    this.child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/bench/alert.ts'), '--sos'], {
      cwd: ROOT,
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.err += d.toString();
    });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
    this.child.stdin.write(`${JSON.stringify(input)}\n`);
  }

  private async line(): Promise<string> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`SOS process ended early: ${this.err.slice(-1000)}`);
    return r.value;
  }

  async ready(): Promise<void> {
    const l = await this.line();
    if (l !== 'ready') throw new Error(`SOS process: expected ready, got ${l}`);
  }

  /** Publishes; resolves with the publish time (epoch ms, fractional) per device. */
  async go(): Promise<Record<string, number>> {
    this.child.stdin.write('go\n');
    const published = JSON.parse(await this.line()) as Record<string, number>;
    this.child.stdin.end();
    return published;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill();
  }
}

// ---------------------------------------------------------------------------------------------- the bench

export async function runAlertBench(opts: AlertBenchOptions): Promise<AlertBenchResult> {
  const background = opts.background ?? true;
  const backgroundSeconds = opts.backgroundSeconds ?? 50;
  const spreadMs = (opts.sosSpreadSeconds ?? 5) * 1000;
  const stepSeconds = opts.escalationStepSeconds ?? 15;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'gw-bench-alert-'));
  const node = await startNode({
    GRIDWATCH__registry__seedFile: writeSeed(tmp, opts.households),
    // the background load drives hundreds of readings a second per client: far over the per-device limit
    GRIDWATCH__ingest__rateLimit__perSecond: '0',
  });
  let sos: SosProcess | undefined;
  let load: Promise<LoadResult> | undefined;
  try {
    const system = node.system;
    const escalator = system.escalator;
    if (!escalator) throw new Error('the node runs no escalator');
    // policies are read when an alert opens (then frozen into it): shorten the later steps before any SOS
    (system.config.escalation as { policies: Policy[] }).policies = shortenPolicies(
      system.config.escalation.policies,
      stepSeconds,
    );
    const maxSteps = Math.max(
      ...system.config.escalation.policies
        .filter((p) => p.match.severities?.includes('critical'))
        .map((p) => p.steps.length),
    );

    // every SMS handed to the transport, timed at the hand-over
    const sent: { notificationId: string; at: number }[] = [];
    const transport = system.sms;
    const send = transport.send.bind(transport);
    transport.send = (msg: SmsMessage) => {
      sent.push({ notificationId: msg.notificationId, at: now() });
      return send(msg);
    };
    const lateness: number[] = [];
    escalator.scheduler.observeLateness = (timer, lateMs) => {
      const step = Number(timer.key.split('|')[2]);
      if (step > 0) lateness.push(lateMs);
    };

    const secrets = (
      JSON.parse(readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8')) as {
        deviceSecrets: (LoadDevice & { householdId?: string })[];
      }
    ).deviceSecrets;
    const buttons = secrets.filter((s): s is SosDevice => s.deviceId.startsWith('sb-') && !!s.householdId);
    if (buttons.length < opts.households) throw new Error(`only ${buttons.length} bench buttons were seeded`);
    sos = new SosProcess({ url: node.mqttUrl, devices: buttons, spreadMs });
    await sos.ready();

    // the background load: every other device, never a bench button (a second connection would take its place)
    let loadStarted = 0;
    if (background) {
      const loadSecrets = path.join(tmp, 'load-secrets.json');
      writeFileSync(
        loadSecrets,
        JSON.stringify({ deviceSecrets: secrets.filter((s) => !s.deviceId.startsWith('sb-')) }),
      );
      const c0 = await counter(node, 'gridwatch_ingest_messages_total');
      load = runLoadProcess([
        '--url',
        node.mqttUrl,
        '--secrets',
        loadSecrets,
        '--clients',
        String(opts.loadClients ?? 15),
        '--seconds',
        String(backgroundSeconds),
        '--qos',
        String(opts.loadQos ?? 1),
        '--inflight',
        String(opts.loadInflight ?? 1),
      ]);
      load.catch(() => {});
      // measure only once the load runs at full rate
      const deadline = Date.now() + 30_000;
      while ((await counter(node, 'gridwatch_ingest_messages_total')) - c0 < 1000 && Date.now() < deadline) {
        await sleep(100);
      }
      loadStarted = now();
      await sleep(2000);
    }

    const m0 = await counter(node, 'gridwatch_ingest_messages_total');
    const t0 = now();
    const published = await sos.go();
    const byHousehold = new Map(buttons.map((b) => [b.householdId, published[b.deviceId]!]));

    // first SMS per household: notification → alert → household
    const firstSms = new Map<string, number>();
    const alertHousehold = new Map<string, string | undefined>();
    let resolved = 0;
    const resolve = async () => {
      for (; resolved < sent.length; resolved++) {
        const s = sent[resolved]!;
        const n = await system.notifications.get(s.notificationId);
        if (!n) continue;
        if (!alertHousehold.has(n.alertId))
          alertHousehold.set(n.alertId, (await system.alerts.get(n.alertId))?.householdId);
        const h = alertHousehold.get(n.alertId);
        if (h && byHousehold.has(h)) firstSms.set(h, Math.min(firstSms.get(h) ?? Number.POSITIVE_INFINITY, s.at));
      }
    };
    const smsDeadline = Date.now() + 30_000;
    while (firstSms.size < byHousehold.size && Date.now() < smsDeadline) {
      await sleep(250);
      await resolve();
    }

    // the shortened later steps: the last one is due stepSeconds × (steps − 1) after the last SOS
    const lastPublish = Math.max(...byHousehold.values());
    const expected = byHousehold.size * (maxSteps - 1);
    const stepDeadline = lastPublish + (maxSteps - 1) * stepSeconds * 1000 + 15_000;
    while (lateness.length < expected && now() < stepDeadline) await sleep(250);
    const m1 = await counter(node, 'gridwatch_ingest_messages_total');
    const t1 = now();
    await resolve();

    let loadResult: LoadResult | undefined;
    if (load) {
      loadResult = await load;
      const loadEnded = loadStarted + loadResult.seconds * 1000;
      if (loadEnded < t1)
        process.stderr.write(
          `bench:alert: the background load ended ${Math.round((t1 - loadEnded) / 1000)} s before the measurement; raise backgroundSeconds\n`,
        );
    }

    const latencies = [...byHousehold]
      .filter(([h]) => firstSms.has(h))
      .map(([h, t]) => firstSms.get(h)! - t)
      .sort((a, b) => a - b);
    const late = [...lateness].sort((a, b) => a - b);
    return {
      backgroundReadingsPerSecond: background ? Math.round((m1 - m0) / ((t1 - t0) / 1000)) : 0,
      sosToSms: {
        n: latencies.length,
        p50Ms: percentile(latencies, 50),
        p95Ms: percentile(latencies, 95),
        p99Ms: percentile(latencies, 99),
      },
      escalationLateness: { n: late.length, p50Ms: percentile(late, 50), p99Ms: percentile(late, 99) },
      missing: byHousehold.size - latencies.length,
      ...(loadResult ? { load: loadResult } : {}),
    };
  } finally {
    sos?.kill();
    if (load) await load.catch(() => undefined);
    await node.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const env = process.env;
  const r = await runAlertBench({
    households: Number(env.BENCH_HOUSEHOLDS ?? 1000),
    background: env.BENCH_BACKGROUND !== '0',
    ...(env.BENCH_BACKGROUND_SECONDS ? { backgroundSeconds: Number(env.BENCH_BACKGROUND_SECONDS) } : {}),
    ...(env.BENCH_LOAD_CLIENTS ? { loadClients: Number(env.BENCH_LOAD_CLIENTS) } : {}),
    ...(env.BENCH_LOAD_INFLIGHT ? { loadInflight: Number(env.BENCH_LOAD_INFLIGHT) } : {}),
    ...(env.BENCH_SOS_SPREAD_SECONDS ? { sosSpreadSeconds: Number(env.BENCH_SOS_SPREAD_SECONDS) } : {}),
  });
  if (r.missing > 0) process.stderr.write(`bench:alert: ${r.missing} households got no SMS\n`);
  process.stdout.write(
    `${JSON.stringify({
      backgroundReadingsPerSecond: r.backgroundReadingsPerSecond,
      sosToSms: r.sosToSms,
      escalationLateness: r.escalationLateness,
    })}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  (process.argv.includes('--sos') ? sosChild() : main()).then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`bench:alert failed: ${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
