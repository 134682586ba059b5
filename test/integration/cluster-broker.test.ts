/**
 * The clustered embedded broker (mqtt.cluster, issue 8): two real nodes on loopback ports sharing one real Redis
 * (mqemitter-redis, aedes-persistence-redis) and one PostgreSQL, with real MQTT.js clients connecting to each
 * node's own port (as a TCP balancer would spread them).
 *
 * - A device's message published on node A reaches node B's aedes through the shared emitter, and is still
 *   ingested once: one reading stored, one SOS alert, nothing counted by node B's ingest.
 * - A command sent through node B's API reaches the device connected to node A, and its answer is recorded.
 * - A retained status published on A is replayed to a subscriber on B.
 * - A device that moves from A to B: A reports no disconnect and ingests no stale Last Will; the tracker keeps it
 *   online; the retained status stays `online` (the stale will went out unretained).
 * - disconnectDevice (a disabled device, a rotated secret) on B ends the session the device holds on A.
 * - A persistent session (clean: false) subscribed on A: A is stopped, a QoS 1 command is sent through B while the
 *   device is offline, and the device gets it when it reconnects to B.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Aedes } from 'aedes';
import { Redis } from 'ioredis';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MQTT_KEY_PREFIX } from '../../src/broker/cluster.ts';
import { metricValue } from '../../src/ingest/test-helpers.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres.ts';
import { startTestRedis } from '../support/redis.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let pg: TestPostgres;
let a: TestNode;
let b: TestNode;
let aStopped = false;
let admin: string;
let devices: { deviceId: string; model: string; secret: string; householdId?: string }[];
const clients: MqttClient[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  pg = await startTestPostgres();
  const env = { REDIS_URL: redis.url, DATABASE_URL: pg.url, MQTT_CLUSTER: 'true' };
  // one after the other: the first seeds the shared database, the second finds it seeded
  a = await startNode(env);
  b = await startNode(env);
  admin = await b.login('admin', ADMIN_PASSWORD);
  devices = JSON.parse(readFileSync(path.join(a.dataDir, 'demo-secrets.json'), 'utf8')).deviceSecrets;
});

afterAll(async () => {
  for (const c of clients) c.end(true);
  await b?.stop();
  if (!aStopped) await a?.stop();
  await pg?.stop();
  await redis?.stop();
});

function secretOf(deviceId: string): string {
  const d = devices.find((x) => x.deviceId === deviceId);
  if (!d) throw new Error(`no demo device ${deviceId}`);
  return d.secret;
}

function pick(model: string, n = 0): string {
  const found = devices.filter((d) => d.model === model);
  if (!found[n]) throw new Error(`no demo device of ${model}`);
  return found[n].deviceId;
}

/** A device on one node: connected (CONNACK seen) with messages collected from the first packet on. */
async function connect(
  node: TestNode,
  deviceId: string,
  extra: IClientOptions = {},
): Promise<{ client: MqttClient; received: { topic: string; payload: string; qos: number; retain: boolean }[] }> {
  const client = mqtt.connect(node.mqttUrl, {
    clientId: deviceId,
    username: deviceId,
    password: secretOf(deviceId),
    reconnectPeriod: 0,
    ...extra,
  });
  clients.push(client);
  const received: { topic: string; payload: string; qos: number; retain: boolean }[] = [];
  client.on('message', (topic, payload, packet) =>
    received.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain }),
  );
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return { client, received };
}

/** The node's aedes itself (private to EmbeddedBroker; read here to watch what reaches it through the emitter). */
function aedesOf(node: TestNode): Aedes {
  return (node.system.broker as unknown as { broker: Aedes }).broker;
}

function ingested(node: TestNode, kind: 'telemetry' | 'event' | 'status'): Promise<number> {
  return metricValue(node.system.metrics, 'gridwatch_ingest_messages_total', { kind });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('clustered embedded broker', () => {
  it('a message published on A reaches B through the shared emitter and is still processed once', async () => {
    const button = pick('native-emergency-button');
    const householdId = devices.find((d) => d.deviceId === button)!.householdId!;
    // Something on B subscribed to the button's topics, so the emitter does deliver A's publishes to B's aedes:
    // only aedes' `publish` event feeds ingest, and aedes emits it on the node where a message came in.
    const onB: string[] = [];
    const watch = (packet: { topic: string }, cb: () => void) => {
      onB.push(packet.topic);
      cb();
    };
    await new Promise<void>((resolve) => aedesOf(b).subscribe(`gridwatch/${button}/+`, watch, resolve));
    const before = {
      aTelemetry: await ingested(a, 'telemetry'),
      aEvent: await ingested(a, 'event'),
      bTelemetry: await ingested(b, 'telemetry'),
      bEvent: await ingested(b, 'event'),
    };

    const { client } = await connect(a, button);
    await client.publishAsync(`gridwatch/${button}/telemetry`, JSON.stringify({ battery_pct: 87 }), { qos: 1 });
    await client.publishAsync(`gridwatch/${button}/event`, JSON.stringify({ type: 'sos', id: 'cluster-sos-1' }), {
      qos: 1,
    });
    await waitFor('both messages at B through Redis', async () => onB.length >= 2);
    expect(onB).toEqual([`gridwatch/${button}/telemetry`, `gridwatch/${button}/event`]);

    const [alert] = await waitFor('the SOS alert', async () => {
      const r = await b.api('GET', `/api/v1/alerts?type=sos&householdId=${householdId}`, undefined, admin);
      return r.body.items.length > 0 ? r.body.items : undefined;
    });
    await a.system.timeseries.flush();
    await b.system.timeseries.flush();
    // each node has its own time-series file here: the one reading is in A's and nowhere else
    const readingsA = await a.api('GET', `/api/v1/readings?deviceId=${button}&field=battery_pct`, undefined, admin);
    const readingsB = await b.api('GET', `/api/v1/readings?deviceId=${button}&field=battery_pct`, undefined, admin);
    expect(readingsA.body.items).toEqual([expect.objectContaining({ field: 'battery_pct', value: 87 })]);
    expect(readingsB.body.items).toEqual([]);
    // settle, then nothing more may turn up: not a second alert, not a second count
    await sleep(1000);
    const alerts = await b.api('GET', `/api/v1/alerts?type=sos&householdId=${householdId}`, undefined, admin);
    expect(alerts.body.items).toHaveLength(1);
    expect(alert).toMatchObject({ severity: 'critical', count: 1 });
    expect(await ingested(a, 'telemetry')).toBe(before.aTelemetry + 1);
    expect(await ingested(a, 'event')).toBe(before.aEvent + 1);
    expect(await ingested(b, 'telemetry')).toBe(before.bTelemetry);
    expect(await ingested(b, 'event')).toBe(before.bEvent);

    await new Promise<void>((resolve) => aedesOf(b).unsubscribe(`gridwatch/${button}/+`, watch, resolve));
    await client.endAsync();
  });

  it("a command sent through B's API reaches the device on A, and A records its answer", async () => {
    const cutoff = pick('native-ebike-cutoff');
    const dev = await connect(a, cutoff);
    dev.client.on('message', (_t, payload) => {
      const cmd = JSON.parse(payload.toString()) as { id: string };
      void dev.client.publishAsync(
        `gridwatch/${cutoff}/event`,
        JSON.stringify({ type: 'cmd_ack', id: `ack-${cmd.id}`, ref: cmd.id, ok: true, message: 'power restored' }),
        { qos: 1 },
      );
    });
    await dev.client.subscribeAsync(`gridwatch/${cutoff}/cmd`, { qos: 1 });
    // the subscription is on A; B's publish goes through Redis to it
    const r = await b.api('POST', `/api/v1/devices/${cutoff}/commands`, { name: 'restore_power' }, admin);
    expect(r.status).toBe(202);
    const [got] = await waitFor('the command at the device', async () =>
      dev.received.length > 0 ? dev.received : undefined,
    );
    expect(got).toMatchObject({ topic: `gridwatch/${cutoff}/cmd`, qos: 1 });
    expect(JSON.parse(got!.payload)).toEqual({ id: r.body.id, name: 'restore_power', args: {} });
    await waitFor('the answer recorded', async () => {
      const list = await b.api('GET', `/api/v1/devices/${cutoff}/commands`, undefined, admin);
      return list.body.items[0]?.status === 'acknowledged';
    });
    expect(dev.received).toHaveLength(1);
    await dev.client.endAsync();
  });

  it('a retained status published on A is replayed to a subscriber on B', async () => {
    const band = pick('native-wristband');
    const onA = await connect(a, band);
    await onA.client.publishAsync(`gridwatch/${band}/status`, 'online', { qos: 1, retain: true });
    await onA.client.endAsync();
    // only the device itself may subscribe to its topics (ACL); it now comes in through B
    const onB = await connect(b, band);
    await onB.client.subscribeAsync(`gridwatch/${band}/+`, { qos: 1 });
    const [retained] = await waitFor('the retained status at B', async () =>
      onB.received.length > 0 ? onB.received : undefined,
    );
    expect(retained).toMatchObject({ topic: `gridwatch/${band}/status`, payload: 'online', retain: true });
    await onB.client.endAsync();
    // the MQTT state sits under its own prefix in the shared Redis, apart from GridWatch's other keys
    const r = new Redis(redis.url);
    try {
      expect(await r.hexists(`${MQTT_KEY_PREFIX}retained`, `gridwatch/${band}/status`)).toBe(1);
      expect(await r.exists('retained')).toBe(0);
    } finally {
      r.disconnect();
    }
  });

  it('a device that moves from A to B stays online: no disconnect on A, no stale Last Will ingested', async () => {
    const band = pick('native-wristband', 1);
    const events: string[] = [];
    const detachA = a.system.broker!.onConnection((id, up) => id === band && events.push(`A ${up ? 'up' : 'down'}`));
    const detachB = b.system.broker!.onConnection((id, up) => id === band && events.push(`B ${up ? 'up' : 'down'}`));
    const will = { topic: `gridwatch/${band}/status`, payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const first = await connect(a, band, { will });
    const statusBefore = await ingested(a, 'status');
    await first.client.publishAsync(`gridwatch/${band}/status`, 'online', { qos: 1, retain: true });
    const tracker = await waitFor('the tracker', async () =>
      [a, b].map((n) => n.system.status).find((s) => s?.get(band).status === 'online'),
    );
    // the tracker may say online from the connection alone: wait until A has ingested the status message itself
    const statusOnA = await waitFor('the status ingested on A', async () => {
      const n = await ingested(a, 'status');
      return n > statusBefore ? n : undefined;
    });
    const firstClosed = new Promise<void>((resolve) => first.client.once('close', () => resolve()));

    // the balancer sends the reconnect to B; A learns through Redis that the session moved and closes its own
    const second = await connect(b, band, { will });
    await firstClosed;
    await sleep(1500);
    expect(events).toEqual(['A up', 'B up']);
    // the will of A's session went out (aedes deletes a will only once published) but was not ingested
    expect(await ingested(a, 'status')).toBe(statusOnA);
    expect(tracker.get(band).status).toBe('online');
    // and it did not replace the retained status the device set
    await second.client.subscribeAsync(`gridwatch/${band}/+`, { qos: 1 });
    const [retained] = await waitFor('the retained status', async () =>
      second.received.length > 0 ? second.received : undefined,
    );
    expect(retained).toMatchObject({ topic: `gridwatch/${band}/status`, payload: 'online', retain: true });
    detachA();
    detachB();
    await second.client.endAsync();
  });

  it("disconnectDevice on B ends the device's session on A", async () => {
    const button = pick('native-emergency-button', 1);
    const onA = await connect(a, button);
    const closed = new Promise<void>((resolve) => onA.client.once('close', () => resolve()));
    b.system.broker!.disconnectDevice(button);
    await closed;
    expect([...a.system.broker!.connectedDevices()]).not.toContain(button);
  });

  it('a QoS 1 command queued while the device was offline reaches it on B after node A is gone', async () => {
    const cutoff = pick('native-ebike-cutoff', 1);
    const session = { clean: false };
    const onA = await connect(a, cutoff, session);
    await onA.client.subscribeAsync(`gridwatch/${cutoff}/cmd`, { qos: 1 });
    const gone = new Promise<void>((resolve) => onA.client.once('close', () => resolve()));
    await a.stop();
    aStopped = true;
    await gone;

    // nobody is connected for the device now: the command waits in Redis for its session
    const r = await b.api('POST', `/api/v1/devices/${cutoff}/commands`, { name: 'cut_power' }, admin);
    expect(r.status).toBe(202);
    await sleep(500);
    const onB = await connect(b, cutoff, session);
    expect(onB.client.connected).toBe(true);
    const [got] = await waitFor('the queued command', async () => (onB.received.length > 0 ? onB.received : undefined));
    expect(got).toMatchObject({ topic: `gridwatch/${cutoff}/cmd`, qos: 1 });
    expect(JSON.parse(got!.payload)).toEqual({ id: r.body.id, name: 'cut_power', args: {} });
    await onB.client.endAsync();
  });
});
