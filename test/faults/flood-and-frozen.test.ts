/**
 * Fault 5: a device floods (1,000 messages a second) and another one stops reading its socket (a frozen
 * subscriber), both at once, on a real node with the embedded broker. Meanwhile a water meter reports ten times a
 * second and an SOS button is pressed.
 *
 * - The flooder is rate-limited (ingest.rateLimit): what it sends over its limit is rejected as `rate_limited`,
 *   counted in `gridwatch_ingest_rejected_total`, shown on its device page and logged once per interval.
 * - The frozen subscriber (subscribed to its own `#`, publishing large messages that the broker must echo back to
 *   it, never reading) is disconnected by the broker after `mqtt.drainTimeoutMs` instead of stalling anyone.
 * - The others are unaffected: every reading of the meter is stored, its publishes are acknowledged promptly, and
 *   the SOS opens its alert.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

const RATE = 50;
const BURST = 100;
const DRAIN_MS = 2000;

interface Secret {
  deviceId: string;
  model: string;
  secret: string;
}

let node: TestNode;

beforeAll(async () => {
  node = await startNode({
    GRIDWATCH__ingest__rateLimit__perSecond: String(RATE),
    GRIDWATCH__ingest__rateLimit__burst: String(BURST),
    GRIDWATCH__mqtt__drainTimeoutMs: String(DRAIN_MS),
  });
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

async function counter(name: string, label?: string): Promise<number> {
  const metric = node.system.metrics.registry.getSingleMetric(name);
  const { values } = await metric!.get();
  return values.filter((v) => !label || v.labels.reason === label).reduce((n, v) => n + v.value, 0);
}

/** A raw MQTT connection that subscribes to its own `#`, then stops reading: the socket's buffers fill up. */
async function frozenSubscriber(d: Secret, port: number): Promise<{ socket: net.Socket; closed: Promise<number> }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const acks: string[] = [];
  parser.on('packet', (p) => acks.push(p.cmd));
  socket.on('data', (b: Buffer) => parser.parse(b));
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: d.deviceId,
      keepalive: 0,
      username: d.deviceId,
      password: Buffer.from(d.secret),
    }),
  );
  await waitFor('CONNACK', async () => acks.includes('connack'), 5000);
  socket.write(
    mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: `gridwatch/${d.deviceId}/#`, qos: 0 }],
    }),
  );
  await waitFor('SUBACK', async () => acks.includes('suback'), 5000);
  const started = Date.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
  socket.on('error', () => {});
  // frozen: nothing is read from here on
  socket.removeAllListeners('data');
  socket.pause();
  return { socket, closed };
}

describe('fault 5: a flooding device and a frozen subscriber', () => {
  it('limits the flooder, disconnects the frozen one, and the others go on', async () => {
    const secrets = (
      JSON.parse(readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8')) as {
        deviceSecrets: Secret[];
      }
    ).deviceSecrets;
    const byModel = (model: string, skip = 0) => secrets.filter((s) => s.model === model)[skip]!;
    const flooder = byModel('native-electricity-meter');
    const frozen = byModel('native-motion');
    const meter = byModel('native-water-meter');
    const button = byModel('native-emergency-button');
    const port = node.system.broker!.ports.tcp;
    const connect = (d: Secret) =>
      mqtt.connectAsync(node.mqttUrl, {
        clientId: d.deviceId,
        username: d.deviceId,
        password: d.secret,
        reconnectPeriod: 0,
      });
    const limitedBefore = await counter('gridwatch_ingest_rejected_total', 'rate_limited');

    // the frozen subscriber: large publishes the broker echoes back to a socket nobody reads
    const z = await frozenSubscriber(frozen, port);
    const big = 'x'.repeat(30_000);
    const freezer = setInterval(() => {
      if (z.socket.destroyed) return;
      for (let i = 0; i < 20; i++) {
        z.socket.write(
          mqttPacket.generate({
            cmd: 'publish',
            topic: `gridwatch/${frozen.deviceId}/telemetry`,
            payload: Buffer.from(JSON.stringify({ motion: true, pad: big })),
            qos: 0,
            retain: false,
            dup: false,
          }),
        );
      }
    }, 20);

    // the flooder: 1,000 messages a second for 5 s
    const f = await connect(flooder);
    let flooded = 0;
    const t0 = Date.now() - 60_000;
    const floodStart = Date.now();
    const flood = setInterval(() => {
      for (let i = 0; i < 10; i++) {
        f.publish(`gridwatch/${flooder.deviceId}/telemetry`, JSON.stringify({ power_w: 100, ts: t0 + flooded++ }));
      }
    }, 10);

    // the others: a meter at 10 readings a second, each acknowledged (QoS 1) and timed; an SOS in the middle
    const m = await connect(meter);
    const b = await connect(button);
    const ackMs: number[] = [];
    const m0 = Date.now() - 30_000;
    const readings = 50;
    let sosAt = 0;
    let sosSeen: Promise<number> | undefined;
    const token = await node.login('admin', ADMIN_PASSWORD);
    for (let i = 0; i < readings; i++) {
      const s = performance.now();
      await m.publishAsync(`gridwatch/${meter.deviceId}/telemetry`, JSON.stringify({ water_total_l: i, ts: m0 + i }), {
        qos: 1,
      });
      ackMs.push(performance.now() - s);
      if (i === 25) {
        sosAt = Date.now();
        await b.publishAsync(
          `gridwatch/${button.deviceId}/event`,
          JSON.stringify({ type: 'sos', id: 'flood-sos-1', ts: sosAt }),
          { qos: 1 },
        );
        sosSeen = waitFor('the SOS alert', async () => {
          const r = await node.api('GET', '/api/v1/alerts?type=sos', undefined, token);
          return r.body.items.length > 0 ? Date.now() : undefined;
        });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    clearInterval(flood);
    const floodSeconds = (Date.now() - floodStart) / 1000;
    const frozenClosedAfter = await Promise.race([
      z.closed,
      new Promise<number>((r) => setTimeout(() => r(-1), 15_000)),
    ]);
    clearInterval(freezer);

    const sosMs = (await sosSeen!) - sosAt;
    await node.system.timeseries.flush();
    const stored = await node.system.timeseries.query({
      deviceId: meter.deviceId,
      field: 'water_total_l',
      from: m0,
      to: m0 + readings,
    });
    const limited = (await counter('gridwatch_ingest_rejected_total', 'rate_limited')) - limitedBefore;
    const accepted = flooded - limited;
    const rejects = await node.api('GET', `/api/v1/devices/${flooder.deviceId}/rejects`, undefined, token);
    ackMs.sort((x, y) => x - y);
    const p99 = ackMs[Math.floor(ackMs.length * 0.99)]!;
    process.stdout.write(
      `[fault 5] flooder sent ${flooded} in ~${floodSeconds.toFixed(1)} s: ${limited} rate-limited, ${accepted} accepted ` +
        `(limit ${RATE}/s, burst ${BURST}); frozen subscriber disconnected after ${frozenClosedAfter} ms ` +
        `(drainTimeout ${DRAIN_MS} ms); meter: ${stored.length}/${readings} stored, ack p99 ${p99.toFixed(1)} ms, ` +
        `lost ${readings - stored.length}; SOS alert seen in the API ${sosMs} ms after the press\n`,
    );
    await Promise.all([f.endAsync(), m.endAsync(), b.endAsync()]);

    expect(flooded).toBeGreaterThan(3000);
    // within the bucket: the burst plus the sustained rate over the flood (with slack for timer jitter)
    expect(accepted).toBeLessThanOrEqual(BURST + RATE * (floodSeconds + 2));
    expect(accepted).toBeGreaterThan(BURST);
    expect(rejects.body.items.some((r: { reason: string }) => r.reason === 'rate_limited')).toBe(true);
    expect(frozenClosedAfter).toBeGreaterThan(0);
    expect(stored).toHaveLength(readings);
    expect(p99).toBeLessThan(1000);
    expect(sosMs).toBeLessThan(2000);
  }, 90_000);
});
