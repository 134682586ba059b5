/**
 * The simulated fleet against a real broker (aedes, in process): credentials, own topics, retained status, Last
 * Will, commands and QoS, end to end over TCP.
 */
import net from 'node:net';
import { Aedes, type Client } from 'aedes';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getModel } from '../devices/index.ts';
import { freePort } from '../src/lifecycle/redis-server.ts';
import { type FleetDevice, SimulatedFleet } from './fleet.ts';
import { HOUR_MS, localDay, localMidnight } from './resident.ts';

const BASE = 'gridwatch';
const DEVICES: FleetDevice[] = [
  { deviceId: 'wm-1', model: 'native-water-meter', secret: 's-wm-1', householdId: 'h-1', buildingId: 'b-1' },
  { deviceId: 'em-1', model: 'zenmeter-em3', secret: 's-em-1', householdId: 'h-1', buildingId: 'b-1' },
  { deviceId: 'gm-1', model: 'native-gas-meter', secret: 's-gm-1', householdId: 'h-1', buildingId: 'b-1' },
  { deviceId: 'pir-1', model: 'native-motion', secret: 's-pir-1', householdId: 'h-1', buildingId: 'b-1' },
  { deviceId: 'dc-1', model: 'native-door-contact', secret: 's-dc-1', householdId: 'h-1', buildingId: 'b-1' },
  { deviceId: 'wb-1', model: 'acme-wb200', secret: 's-wb-1', householdId: 'h-1', buildingId: 'b-1' },
  { deviceId: 'wb-2', model: 'native-wristband', secret: 's-wb-2', householdId: 'h-2', buildingId: 'b-1' },
  { deviceId: 'door-1', model: 'hikv-ac100', secret: 's-door-1', buildingId: 'b-1' },
  { deviceId: 'cut-1', model: 'volt-cb2', secret: 's-cut-1', unitId: 'u-1' },
  { deviceId: 'area-1', model: 'native-charging-area', secret: 's-area-1', areaId: 'a-1' },
];
const BAD: FleetDevice = { deviceId: 'bad-1', model: 'native-smoke-detector', secret: 'wrong' };
const SECRETS = new Map([...DEVICES.map((d) => [d.deviceId, d.secret] as const), ['observer', 'observer-secret']]);

interface Seen {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

let broker: Aedes;
let server: net.Server;
let url: string;
let observer: MqttClient;
let fleet: SimulatedFleet;
const seen: Seen[] = [];
const logins: Array<{ clientId: string; username?: string; password?: string; ok: boolean }> = [];
const brokerClients = new Map<string, Client>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

beforeAll(async () => {
  broker = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      // Devices log in as themselves; the test's observers share one account under distinct client ids.
      const idOk = username === 'observer' ? client.id.startsWith('observer') : client.id === username;
      const ok = username !== undefined && idOk && SECRETS.get(username) === password?.toString();
      logins.push({ clientId: client.id, username, password: password?.toString(), ok });
      if (ok) return done(null, true);
      done(Object.assign(new Error('bad username or password'), { returnCode: 4 }) as never, false);
    },
    // The product's ACL: a device publishes only under its own subtree.
    authorizePublish: (client, packet, done) => {
      if (client && !client.id.startsWith('observer') && !packet.topic.startsWith(`${BASE}/${client.id}/`)) {
        return done(new Error(`${client.id} may not publish to ${packet.topic}`));
      }
      done(null);
    },
  });
  broker.on('client', (c) => brokerClients.set(c.id, c));
  server = net.createServer(broker.handle);
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  url = `mqtt://127.0.0.1:${port}`;

  observer = await connectAsync(url, { clientId: 'observer', username: 'observer', password: 'observer-secret' });
  observer.on('message', (topic, payload, packet) => {
    seen.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain });
  });
  await observer.subscribeAsync(`${BASE}/#`, { qos: 1 });

  fleet = new SimulatedFleet({
    url,
    baseTopic: BASE,
    devices: [...DEVICES, BAD],
    speed: 3600, // an hour a second
    intervalS: 60,
    // 07:00 in Beijing: commuters leave, the elderly resident has breakfast.
    startTime: localMidnight(localDay(Date.UTC(2026, 10, 24, 23))) + 7 * HOUR_MS,
    tickMs: 100,
    connectConcurrency: 4,
  });
  await fleet.start();
  await sleep(2_000);
});

afterAll(async () => {
  await fleet?.stop();
  await observer?.endAsync();
  await new Promise<void>((resolve) => broker?.close(() => resolve()));
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

const messagesOf = (id: string, kind: string) => seen.filter((s) => s.topic === `${BASE}/${id}/${kind}`);

describe('SimulatedFleet on a real broker', () => {
  it('connects each device with its own credentials (client id = username = device id)', () => {
    for (const d of DEVICES) {
      expect(logins).toContainEqual({ clientId: d.deviceId, username: d.deviceId, password: d.secret, ok: true });
    }
    expect(logins.filter((l) => l.clientId === BAD.deviceId).every((l) => !l.ok)).toBe(true);
    const stats = fleet.stats();
    expect(stats.connected).toBe(DEVICES.length);
    expect(stats.refused).toBe(1);
    // Refused credentials stop the retries instead of hammering the broker.
    expect(logins.filter((l) => l.clientId === BAD.deviceId).length).toBe(1);
    expect(seen.filter((s) => s.topic.startsWith(`${BASE}/${BAD.deviceId}/`))).toEqual([]);
  });

  it('publishes telemetry on each device own topic, in its model format, at QoS 0', () => {
    for (const d of DEVICES) {
      const telemetry = messagesOf(d.deviceId, 'telemetry');
      expect(telemetry.length, d.deviceId).toBeGreaterThan(0);
      const model = getModel(d.model)!;
      for (const t of telemetry) {
        expect(t.qos).toBe(0);
        const r = model.decode('telemetry', JSON.parse(t.payload));
        expect(r.ok, `${d.deviceId}: ${t.payload}`).toBe(true);
      }
    }
    const stats = fleet.stats();
    expect(stats.published.telemetry).toBeGreaterThanOrEqual(DEVICES.length);
    for (const d of DEVICES) expect(stats.byDevice[d.deviceId]?.telemetry, d.deviceId).toBeGreaterThan(0);
  });

  it('publishes events at QoS 1 as the day unfolds (people leaving through the building door)', () => {
    const events = messagesOf('door-1', 'event');
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect(e.qos).toBe(1);
      expect(getModel('hikv-ac100')!.decode('event', JSON.parse(e.payload)).ok).toBe(true);
    }
  });

  it('keeps status online retained', async () => {
    const late = await connectAsync(url, {
      clientId: 'observer-late-1',
      username: 'observer',
      password: 'observer-secret',
    });
    const retained = new Map<string, string>();
    late.on('message', (topic, payload, packet) => {
      if (packet.retain) retained.set(topic, payload.toString());
    });
    await late.subscribeAsync(`${BASE}/+/status`, { qos: 1 });
    await until('retained status of every device', () => retained.size >= DEVICES.length);
    for (const d of DEVICES) expect(retained.get(`${BASE}/${d.deviceId}/status`), d.deviceId).toBe('online');
    await late.endAsync();
  });

  it('answers commands on its cmd topic', async () => {
    const before = fleet.stats().commands.answered;
    const mark = seen.length;
    await observer.publishAsync(`${BASE}/cut-1/cmd`, JSON.stringify({ id: 'c-1', name: 'cut_power', args: {} }), {
      qos: 1,
    });
    await observer.publishAsync(`${BASE}/door-1/cmd`, JSON.stringify({ id: 'c-2', name: 'open_door' }), { qos: 1 });
    await observer.publishAsync(`${BASE}/wb-1/cmd`, JSON.stringify({ id: 'c-3', name: 'fly' }), { qos: 1 });
    await until('cut-1 reports its relays open', () =>
      seen
        .slice(mark)
        .some(
          (s) =>
            s.topic === `${BASE}/cut-1/telemetry` &&
            (JSON.parse(s.payload) as { ch: Array<{ st: number }> }).ch.every((c) => c.st & 0x02),
        ),
    );
    await until('door-1 reports the door open', () =>
      seen
        .slice(mark)
        .some((s) => s.topic === `${BASE}/door-1/telemetry` && s.payload.includes('"magneticStatus":[1]')),
    );
    await until('commands counted', () => fleet.stats().commands.answered >= before + 2);
    expect(fleet.stats().commands.rejected).toBeGreaterThanOrEqual(1); // `fly` is not a wristband command
    // every command is answered on the device's event topic with a canonical cmd_ack, vendor models included
    const ack = (deviceId: string, ref: string) =>
      seen
        .slice(mark)
        .filter((s) => s.topic === `${BASE}/${deviceId}/event`)
        .map((s) => JSON.parse(s.payload) as Record<string, unknown>)
        .find((p) => p.type === 'cmd_ack' && p.ref === ref);
    await until('the three answers', () => !!ack('cut-1', 'c-1') && !!ack('door-1', 'c-2') && !!ack('wb-1', 'c-3'));
    expect(ack('cut-1', 'c-1')).toEqual({ type: 'cmd_ack', id: 'ack-c-1', ref: 'c-1', ok: true });
    expect(ack('door-1', 'c-2')).toMatchObject({ ref: 'c-2', ok: true });
    expect(ack('wb-1', 'c-3')).toMatchObject({ ref: 'c-3', ok: false, message: expect.stringMatching(/fly/) });
    expect(seen.slice(mark).find((s) => s.topic === `${BASE}/cut-1/event` && s.payload.includes('cmd_ack'))?.qos).toBe(
      1,
    );
    // And back: restore_power closes the relays again.
    const mark2 = seen.length;
    await observer.publishAsync(`${BASE}/cut-1/cmd`, JSON.stringify({ id: 'c-4', name: 'restore_power' }), { qos: 1 });
    await until('cut-1 reports power restored', () =>
      seen
        .slice(mark2)
        .some(
          (s) =>
            s.topic === `${BASE}/cut-1/telemetry` &&
            (JSON.parse(s.payload) as { ch: Array<{ st: number }> }).ch.every((c) => (c.st & 0x02) === 0),
        ),
    );
  });

  it('leaves a Last Will of offline and comes back online by itself', async () => {
    const mark = seen.length;
    brokerClients.get('pir-1')?.conn.destroy();
    await until('Last Will offline', () =>
      seen.slice(mark).some((s) => s.topic === `${BASE}/pir-1/status` && s.payload === 'offline'),
    );
    await until(
      'reconnect and online again',
      () => seen.slice(mark).some((s) => s.topic === `${BASE}/pir-1/status` && s.payload === 'online'),
      15_000,
    );
    // …and reports its state at once rather than at its next hourly heartbeat.
    await until('a report after the reconnect', () =>
      seen.slice(mark).some((s) => s.topic === `${BASE}/pir-1/telemetry` && s.payload.includes('battery_pct')),
    );
  });

  it('says offline, retained, when stopped', async () => {
    await fleet.stop();
    const late = await connectAsync(url, {
      clientId: 'observer-late-2',
      username: 'observer',
      password: 'observer-secret',
    });
    const retained = new Map<string, string>();
    late.on('message', (topic, payload) => retained.set(topic, payload.toString()));
    await late.subscribeAsync(`${BASE}/+/status`, { qos: 1 });
    await until('retained status', () => retained.size >= DEVICES.length);
    for (const d of DEVICES) expect(retained.get(`${BASE}/${d.deviceId}/status`), d.deviceId).toBe('offline');
    await late.endAsync();
  });
});
