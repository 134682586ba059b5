/**
 * The embedded broker on real sockets with real MQTT.js clients: authentication, ACL, WebSocket, TLS, size limit.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type ErrorWithSubackPacket, type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../lifecycle/redis-server.ts';
import { makeDevice, metricValue, startTestSystem, type TestSystem, waitFor } from '../ingest/test-helpers.ts';

interface ConnectResult {
  client?: MqttClient;
  error?: Error & { code?: number };
}

/** Connects once (no reconnects) and reports either the client or the refusal. */
function connect(url: string, opts: IClientOptions): Promise<ConnectResult> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    client.once('connect', () => resolve({ client }));
    client.once('error', (error) => {
      client.end(true);
      resolve({ error });
    });
    // a close without CONNACK (e.g. socket refused): report it after a tick so an 'error' wins if there is one
    client.once('close', () => setImmediate(() => resolve({ error: new Error('closed before CONNACK') })));
  });
}

function device(id: string, secret: string, extra: IClientOptions = {}): IClientOptions {
  return { clientId: id, username: id, password: secret, ...extra };
}

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!client.connected) return resolve();
    client.once('close', () => resolve());
  });
}

describe('embedded broker', () => {
  let sys: TestSystem;
  let url: string;
  const secrets: Record<string, string> = {};
  const clients: MqttClient[] = [];

  async function connected(id: string, extra: IClientOptions = {}): Promise<MqttClient> {
    const r = await connect(url, device(id, secrets[id] as string, extra));
    if (!r.client) throw r.error;
    clients.push(r.client);
    return r.client;
  }

  beforeAll(async () => {
    const devs = await Promise.all([
      makeDevice('dev-a'),
      makeDevice('dev-b'),
      makeDevice('dev-c'),
      makeDevice('dev-off', { disabled: true }),
    ]);
    for (const d of devs) secrets[d.record.id] = d.secret;
    sys = await startTestSystem(devs.map((d) => d.record));
    url = `mqtt://127.0.0.1:${sys.broker.ports.tcp}`;
  });

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await sys?.stop();
  });

  it('accepts a device with good credentials', async () => {
    const c = await connected('dev-a');
    expect(c.connected).toBe(true);
    await waitFor(() => [...sys.broker.connectedDevices()].includes('dev-a'));
    expect(await metricValue(sys.metrics, 'gridwatch_mqtt_clients')).toBeGreaterThanOrEqual(1);
    c.end(true);
  });

  it('a reconnect that takes the session over does not flap the device offline (stale will and disconnect ignored)', async () => {
    const will = { topic: 'gridwatch/dev-c/status', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const changes: string[] = [];
    const off = sys.bus.on('status', (s) => {
      if (s.deviceId === 'dev-c') changes.push(`${s.status}:${s.reason}`);
    });
    const first = await connected('dev-c', { will });
    await waitFor(() => sys.status.get('dev-c')?.status === 'online');
    changes.length = 0;
    // the same device connects again (e.g. after a network change) while the old session is still open
    const second = await connected('dev-c', { will });
    await waitFor(() => first.connected === false);
    await new Promise((r) => setTimeout(r, 300));
    expect(changes.filter((c) => c.startsWith('offline'))).toEqual([]);
    expect(sys.status.get('dev-c')?.status).toBe('online');
    // and when the current session really goes away, its will still counts
    second.stream.destroy();
    await waitFor(() => sys.status.get('dev-c')?.status === 'offline');
    off();
  });

  it('refuses unknown devices, wrong secrets and disabled devices with the right CONNACK code', async () => {
    const unknown = await connect(url, device('dev-nobody', 'whatever'));
    expect(unknown.error?.code).toBe(4); // bad user name or password
    expect(sys.directory.refreshes).toBeGreaterThanOrEqual(1); // looked it up again before refusing

    const wrong = await connect(url, device('dev-a', 'not-the-secret'));
    expect(wrong.error?.code).toBe(4);

    const disabled = await connect(url, device('dev-off', secrets['dev-off'] as string));
    expect(disabled.error?.code).toBe(5); // not authorized

    const none = await connect(url, { clientId: 'dev-a' });
    expect(none.error?.code).toBe(4);

    expect(await metricValue(sys.metrics, 'gridwatch_mqtt_auth_failures_total', { reason: 'bad_secret' })).toBe(1);
    expect(await metricValue(sys.metrics, 'gridwatch_mqtt_auth_failures_total', { reason: 'disabled_device' })).toBe(1);
  });

  it('refuses a client id that is not the device id (identifier rejected)', async () => {
    const r = await connect(url, { clientId: 'someone-else', username: 'dev-a', password: secrets['dev-a'] });
    expect(r.error?.code).toBe(2);
  });

  it('drops a publish into another device topic and disconnects the publisher; nothing is ingested', async () => {
    const victim = await connected('dev-b');
    const seenByVictim: string[] = [];
    victim.on('message', (t) => seenByVictim.push(t));
    await victim.subscribeAsync('gridwatch/dev-b/#');

    const intruder = await connected('dev-a');
    const gone = closed(intruder);
    intruder.publish('gridwatch/dev-b/telemetry', JSON.stringify({ power_w: 5 }), { qos: 1 });
    await gone; // aedes closes the connection: MQTT 3.1.1 has no negative PUBACK
    await new Promise((r) => setTimeout(r, 100));

    expect(sys.store.points).toHaveLength(0);
    expect(seenByVictim).toEqual([]);
    expect(await metricValue(sys.metrics, 'gridwatch_mqtt_denied_total', { action: 'publish' })).toBe(1);
    expect(victim.connected).toBe(true);
  });

  it('ignores a Last Will on another device’s topic at CONNECT (never refused later, never delivered)', async () => {
    const victim = await connected('dev-b');
    const seenByVictim: string[] = [];
    victim.on('message', (t) => seenByVictim.push(t));
    await victim.subscribeAsync('gridwatch/dev-b/#');
    const deniedBefore = await metricValue(sys.metrics, 'gridwatch_mqtt_denied_total', { action: 'publish' });
    const will = { topic: 'gridwatch/dev-b/status', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const sly = await connected('dev-a', { will });
    expect(sly.connected).toBe(true);
    sly.stream.destroy(); // gone without DISCONNECT: a will would be due now
    await waitFor(() => ![...sys.broker.connectedDevices()].includes('dev-a'));
    await new Promise((r) => setTimeout(r, 200));
    expect(seenByVictim).toEqual([]);
    // the will was dropped at CONNECT, not refused when due (a refused will stays stored in a cluster)
    expect(await metricValue(sys.metrics, 'gridwatch_mqtt_denied_total', { action: 'publish' })).toBe(deniedBefore);
  });

  it('refuses subscriptions outside the own subtree with granted 128 and keeps the session', async () => {
    const c = await connected('dev-a');
    const topics = [
      'gridwatch/dev-a/cmd',
      'gridwatch/dev-a/error',
      'gridwatch/dev-b/cmd',
      'gridwatch/+/telemetry',
      '#',
      '$SYS/#',
    ];
    // MQTT.js rejects the whole call when any filter is refused; the SUBACK rides on the error.
    const granted = await c.subscribeAsync(topics).then(
      (g) => g.map((x) => x.qos as number),
      (err: ErrorWithSubackPacket) => err.packet.granted as number[],
    );
    const byTopic = Object.fromEntries(topics.map((t, i) => [t, granted[i]]));
    expect(byTopic['gridwatch/dev-a/cmd']).toBe(0);
    expect(byTopic['gridwatch/dev-a/error']).toBe(0);
    expect(byTopic['gridwatch/dev-b/cmd']).toBe(128);
    expect(byTopic['gridwatch/+/telemetry']).toBe(128);
    expect(byTopic['#']).toBe(128);
    expect(byTopic['$SYS/#']).toBe(128);
    expect(c.connected).toBe(true);

    // and the service can reach it on its own cmd topic
    const got = new Promise<string>((resolve) => c.once('message', (_t, p) => resolve(p.toString())));
    sys.broker.publishToDevice('dev-a', 'cmd', JSON.stringify({ id: 'c1', name: 'restore_power' }), 1);
    expect(JSON.parse(await got)).toEqual({ id: 'c1', name: 'restore_power' });
    c.end(true);
  });

  it('speaks MQTT over WebSocket on /mqtt', async () => {
    const r = await connect(`ws://127.0.0.1:${sys.broker.ports.ws}/mqtt`, device('dev-a', secrets['dev-a'] as string));
    expect(r.error).toBeUndefined();
    const c = r.client as MqttClient;
    clients.push(c);
    await c.publishAsync('gridwatch/dev-a/telemetry', JSON.stringify({ battery_pct: 77 }), { qos: 1 });
    await waitFor(() => sys.store.of('dev-a').some((p) => p.field === 'battery_pct' && p.value === 77));
    c.end(true);
  });

  it('refuses an over-size packet by closing the connection before buffering it', async () => {
    const c = await connected('dev-a');
    const before = sys.store.points.length;
    const gone = closed(c);
    // maxPacketSize is 8192 in the test config
    c.publish('gridwatch/dev-a/telemetry', Buffer.alloc(20_000, 0x20), { qos: 0 });
    await gone;
    expect(sys.store.points.length).toBe(before);
    expect(sys.logs.some((l) => String(l.err ?? '').includes('exceeds maxPacketSize'))).toBe(true);
  });
});

describe('embedded broker over TLS', () => {
  let sys: TestSystem | undefined;
  let dir: string;
  let cert: Buffer;
  let secret: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-tls-'));
    const certFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-days',
        '1',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: 'ignore' },
    );
    cert = readFileSync(certFile);
    const d = await makeDevice('dev-tls');
    secret = d.secret;
    sys = await startTestSystem([d.record], {
      mqtt: { tlsPort: await freePort(), tlsCertFile: certFile, tlsKeyFile: keyFile, wsPort: 0 },
    });
  });

  afterAll(async () => {
    await sys?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a device over mqtts with the server certificate verified', async () => {
    const s = sys as TestSystem;
    expect(s.broker.ports.ws).toBeUndefined();
    const r = await connect(`mqtts://localhost:${s.broker.ports.tls}`, device('dev-tls', secret, { ca: cert }));
    expect(r.error).toBeUndefined();
    const c = r.client as MqttClient;
    await c.publishAsync('gridwatch/dev-tls/telemetry', JSON.stringify({ temperature_c: 21.5 }), { qos: 1 });
    await waitFor(() => s.store.of('dev-tls').some((p) => p.field === 'temperature_c' && p.value === 21.5));
    c.end(true);
  });
});
