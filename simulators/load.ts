/**
 * Load generator for benchmarks: many real MQTT clients, each a provisioned device, publishing canonical
 * telemetry as fast as a bounded in-flight window allows, for a fixed time. Runs in its own process so that it
 * does not share an event loop with the service it measures. Prints one JSON line with what it sent.
 *
 *   tsx simulators/load.ts --url mqtt://127.0.0.1:1883 --secrets data/demo-secrets.json \
 *     --clients 200 --seconds 10 --qos 1 --inflight 8
 */
import { readFileSync } from 'node:fs';
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
}

export interface LoadResult {
  clients: number;
  sent: number;
  acked: number;
  /** canonical fields per message summed over what was sent (what the store should hold afterwards) */
  fields: number;
  /** the device timestamps used: every message has its own ms in [tsFrom, tsTo] */
  tsFrom: number;
  tsTo: number;
  seconds: number;
  perSecond: number;
}

/** Native models only: their canonical example telemetry is the payload, with a unique increasing `ts`. */
export function loadableDevices(devices: readonly LoadDevice[]): LoadDevice[] {
  return devices.filter((d) => d.model.startsWith('native-') && getModel(d.model)?.examples.telemetry !== undefined);
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  // Unique, increasing timestamps per device, a day back: the store keeps one point per (device, field, ms), so
  // every message must land on its own millisecond for the count to prove nothing was lost.
  const t0 = Date.now() - 86_400_000;
  const clients: MqttClient[] = new Array(opts.devices.length);
  let sent = 0;
  let acked = 0;
  let fields = 0;
  let maxSeq = 0;
  const templates = opts.devices.map((d) => {
    const { ts: _ts, ...rest } = getModel(d.model)!.examples.telemetry as Record<string, unknown>;
    return rest;
  });
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
  const started = Date.now();
  const deadline = started + opts.seconds * 1000;
  await Promise.all(
    opts.devices.map(async (d, i) => {
      const c = clients[i]!;
      const topic = `${opts.baseTopic}/${d.deviceId}/telemetry`;
      const template = templates[i]!;
      const nFields = Object.keys(template).length;
      let seq = 0;
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
      const one = async () => {
        while (!closed && Date.now() < deadline && (!opts.maxPerClient || seq < opts.maxPerClient)) {
          const payload = JSON.stringify({ ...template, ts: t0 + seq++ });
          sent++;
          fields += nFields;
          await Promise.race([c.publishAsync(topic, payload, { qos: opts.qos }), whenClosed]);
          acked++;
        }
      };
      await Promise.all(Array.from({ length: opts.qos === 1 ? opts.inflight : 1 }, one));
      finish();
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.endAsync()));
  if (acked < sent) throw new Error(`${sent - acked} messages were never acknowledged (a connection closed)`);
  return {
    clients: clients.length,
    sent,
    acked,
    fields,
    tsFrom: t0,
    tsTo: t0 + maxSeq,
    seconds,
    perSecond: Math.round(sent / seconds),
  };
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
    },
  });
  const raw = JSON.parse(readFileSync(values.secrets, 'utf8')) as { deviceSecrets: LoadDevice[] } | LoadDevice[];
  const all = loadableDevices(Array.isArray(raw) ? raw : raw.deviceSecrets);
  const devices = all.slice(0, Number(values.clients));
  const result = await runLoad({
    url: values.url,
    baseTopic: values.base,
    devices,
    seconds: Number(values.seconds),
    qos: values.qos === '0' ? 0 : 1,
    inflight: Number(values.inflight),
    maxPerClient: Number(values['max-per-client']),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    process.stderr.write(`load: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
