/**
 * Load generator for benchmarks: many real MQTT clients, each a provisioned device, publishing canonical
 * telemetry as fast as a bounded in-flight window allows, for a fixed time. Runs in its own process so that it
 * does not share an event loop with the service it measures. Prints one JSON line with what it sent.
 *
 *   tsx simulators/load.ts --url mqtt://127.0.0.1:1883 --secrets data/demo-secrets.json \
 *     --clients 200 --seconds 10 --qos 1 --inflight 8 [--ts live]
 *   tsx simulators/load.ts --secrets file.json --clients 5000 --control      (commands on stdin: see control())
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { getModel } from '../devices/index.ts';

export interface LoadDevice {
  deviceId: string;
  model: string;
  secret: string;
}

export interface LoadOptions {
  url: string;
  baseTopic: string;
  devices: readonly LoadDevice[];
  seconds: number;
  qos: 0 | 1;
  /** QoS 1 messages a client may have unacknowledged at once */
  inflight: number;
  /** at most this many messages per client (0: unlimited) */
  maxPerClient?: number;
  /** default backdated */
  ts?: TsMode;
}

export interface LoadResult {
  clients: number;
  sent: number;
  acked: number;
  /** canonical fields per message summed over what was sent (what the store should hold afterwards) */
  fields: number;
  /** the device timestamps used: every message has its own ms per device in [tsFrom, tsTo] */
  tsFrom: number;
  tsTo: number;
  seconds: number;
  perSecond: number;
}

/** Native models only: their canonical example telemetry is the payload, with a unique increasing `ts`. */
export function loadableDevices(devices: readonly LoadDevice[]): LoadDevice[] {
  return devices.filter((d) => d.model.startsWith('native-') && getModel(d.model)?.examples.telemetry !== undefined);
}

/** How each reading's `ts` is chosen. */
export type TsMode =
  /** unique increasing ms a day back (the default): the count of stored points proves nothing was lost */
  | 'backdated'
  /**
   * the real send time (ms), bumped by 1 when a device's previous reading had the same or a later ms: unique per
   * device too, and the service can measure publish-to-stored latency from it. The rules see live data.
   */
  | 'live';

export interface PublishOptions {
  baseTopic: string;
  seconds: number;
  qos: 0 | 1;
  inflight: number;
  maxPerClient?: number;
  ts?: TsMode;
}

/** Drives connected clients for `opts.seconds`; every in-flight publish is awaited before it returns. */
async function publishFor(
  clients: readonly MqttClient[],
  devices: readonly LoadDevice[],
  opts: PublishOptions,
): Promise<LoadResult> {
  // Unique, increasing timestamps per device, a day back: the store keeps one point per (device, field, ms), so
  // every message must land on its own millisecond for the count to prove nothing was lost.
  const t0 = Date.now() - 86_400_000;
  const live = opts.ts === 'live';
  let sent = 0;
  let acked = 0;
  let fields = 0;
  let maxSeq = 0;
  let tsMin = Number.POSITIVE_INFINITY;
  let tsMax = 0;
  const templates = devices.map((d) => {
    const { ts: _ts, ...rest } = getModel(d.model)!.examples.telemetry as Record<string, unknown>;
    return rest;
  });
  const started = Date.now();
  const deadline = started + opts.seconds * 1000;
  await Promise.all(
    devices.map(async (d, i) => {
      const c = clients[i]!;
      const topic = `${opts.baseTopic}/${d.deviceId}/telemetry`;
      const template = templates[i]!;
      const nFields = Object.keys(template).length;
      let seq = 0;
      let lastTs = 0;
      const finish = () => {
        maxSeq = Math.max(maxSeq, seq);
      };
      // a refused publish closes the connection (MQTT 3.1.1 has no negative PUBACK): stop instead of waiting
      let closed = false;
      const whenClosed = new Promise<never>((_, reject) =>
        c.once('close', () => {
          closed = true;
          reject(new Error(`${d.deviceId}: connection closed by the broker`));
        }),
      );
      whenClosed.catch(() => {});
      const nextTs = () => {
        if (!live) return t0 + seq++;
        seq++;
        const now = Date.now();
        lastTs = now > lastTs ? now : lastTs + 1;
        if (lastTs < tsMin) tsMin = lastTs;
        if (lastTs > tsMax) tsMax = lastTs;
        return lastTs;
      };
      const one = async () => {
        while (!closed && Date.now() < deadline && (!opts.maxPerClient || seq < opts.maxPerClient)) {
          const payload = JSON.stringify({ ...template, ts: nextTs() });
          sent++;
          fields += nFields;
          await Promise.race([c.publishAsync(topic, payload, { qos: opts.qos }), whenClosed]);
          acked++;
        }
      };
      await Promise.all(Array.from({ length: opts.qos === 1 ? opts.inflight : 1 }, one));
      finish();
    }),
  ).catch((err: unknown) => {
    throw new Error(`${sent - acked} messages were never acknowledged (${(err as Error).message})`);
  });
  const seconds = (Date.now() - started) / 1000;
  return {
    clients: clients.length,
    sent,
    acked,
    fields,
    tsFrom: live ? (sent > 0 ? tsMin : started) : t0,
    tsTo: live ? (sent > 0 ? tsMax : started) : t0 + maxSeq,
    seconds,
    perSecond: Math.round(sent / seconds),
  };
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const clients: MqttClient[] = new Array(opts.devices.length);
  await Promise.all(
    opts.devices.map(async (d, i) => {
      const c = await mqtt.connectAsync(opts.url, {
        clientId: d.deviceId,
        username: d.deviceId,
        password: d.secret,
        reconnectPeriod: 0,
        connectTimeout: 30_000,
      });
      clients[i] = c;
    }),
  );
  try {
    return await publishFor(clients, opts.devices, opts);
  } finally {
    await Promise.all(clients.map((c) => c.endAsync()));
  }
}

/**
 * The same clients kept connected across several runs, for benchmarks that drive two brokers (or measure idle
 * connections) with one generator process: connect (staggered), run, run again, disconnect.
 */
export class LoadFleet {
  private clients: MqttClient[] = [];

  constructor(readonly devices: readonly LoadDevice[]) {}

  /** Connects every device, `batch` at a time, so that the connect storm does not dominate the broker. */
  async connect(url: string, batch = 500): Promise<{ connected: number; ms: number }> {
    if (this.clients.length > 0) throw new Error('already connected');
    const t = Date.now();
    const clients: MqttClient[] = [];
    try {
      for (let i = 0; i < this.devices.length; i += batch) {
        const part = this.devices.slice(i, i + batch);
        clients.push(
          ...(await Promise.all(
            part.map((d) =>
              mqtt.connectAsync(url, {
                clientId: d.deviceId,
                username: d.deviceId,
                password: d.secret,
                reconnectPeriod: 0,
                connectTimeout: 60_000,
              }),
            ),
          )),
        );
      }
    } catch (err) {
      await Promise.all(clients.map((c) => c.endAsync(true)));
      throw err;
    }
    this.clients = clients;
    return { connected: clients.length, ms: Date.now() - t };
  }

  run(opts: PublishOptions): Promise<LoadResult> {
    if (this.clients.length !== this.devices.length) throw new Error('not connected');
    return publishFor(this.clients, this.devices, opts);
  }

  async disconnect(): Promise<void> {
    const clients = this.clients;
    this.clients = [];
    await Promise.all(clients.map((c) => c.endAsync()));
  }
}

/** One command of `--control` mode, a JSON line on stdin; each gets one JSON line on stdout. */
export type ControlCommand =
  | { cmd: 'connect'; url: string; batch?: number }
  | ({ cmd: 'run' } & Omit<PublishOptions, 'baseTopic'> & { baseTopic?: string })
  | { cmd: 'disconnect' }
  | { cmd: 'exit' };

/**
 * `--control`: connects and publishes only when told on stdin (one JSON command a line), answering each command with
 * one JSON line: `{"ok":true,...}` or `{"ok":false,"error":...}`. A run first answers `{"started":<epoch ms>}`. The
 * answer to `run` carries `cpuPercent`: this process's CPU over the run, as % of one core (is the generator the
 * bottleneck?).
 */
async function control(devices: readonly LoadDevice[], baseTopic: string): Promise<void> {
  const fleet = new LoadFleet(devices);
  const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
  out({ ok: true, ready: true, devices: devices.length });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let c: ControlCommand;
    try {
      c = JSON.parse(line) as ControlCommand;
    } catch {
      out({ ok: false, error: 'not a JSON command' });
      continue;
    }
    try {
      if (c.cmd === 'connect') out({ ok: true, ...(await fleet.connect(c.url, c.batch)) });
      else if (c.cmd === 'run') {
        const cpu0 = process.cpuUsage();
        const t = Date.now();
        out({ started: t });
        const r = await fleet.run({ ...c, baseTopic: c.baseTopic ?? baseTopic });
        const cpu = process.cpuUsage(cpu0);
        const cpuPercent = Math.round(((cpu.user + cpu.system) / 1000 / (Date.now() - t)) * 100);
        out({ ok: true, ...r, cpuPercent });
      } else if (c.cmd === 'disconnect') {
        await fleet.disconnect();
        out({ ok: true });
      } else if (c.cmd === 'exit') {
        await fleet.disconnect();
        out({ ok: true });
        break;
      } else out({ ok: false, error: `unknown command ${(c as { cmd?: unknown }).cmd}` });
    } catch (err) {
      out({ ok: false, error: (err as Error).message });
    }
  }
  lines.close();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
      base: { type: 'string', default: 'gridwatch' },
      secrets: { type: 'string', default: 'data/demo-secrets.json' },
      clients: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '10' },
      qos: { type: 'string', default: '1' },
      inflight: { type: 'string', default: '8' },
      'max-per-client': { type: 'string', default: '0' },
      /** backdated (default) | live: see TsMode */
      ts: { type: 'string', default: 'backdated' },
      /** wait for commands on stdin (see control()) instead of one run */
      control: { type: 'boolean', default: false },
    },
  });
  if (values.ts !== 'backdated' && values.ts !== 'live') throw new Error('--ts must be backdated or live');
  const raw = JSON.parse(readFileSync(values.secrets, 'utf8')) as { deviceSecrets: LoadDevice[] } | LoadDevice[];
  const all = loadableDevices(Array.isArray(raw) ? raw : raw.deviceSecrets);
  const devices = all.slice(0, Number(values.clients));
  if (values.control) return control(devices, values.base);
  const result = await runLoad({
    url: values.url,
    baseTopic: values.base,
    devices,
    seconds: Number(values.seconds),
    qos: values.qos === '0' ? 0 : 1,
    inflight: Number(values.inflight),
    maxPerClient: Number(values['max-per-client']),
    ts: values.ts,
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    process.stderr.write(`load: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
