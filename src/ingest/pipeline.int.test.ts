/**
 * Ingest end to end: real embedded broker, real MQTT.js devices, pipeline, bus, status tracker, a recording
 * time-series double. Every reject reason is exercised with its error reply, its counter, nothing written, and a
 * second device publishing at the same moment that must not notice.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RejectReason } from '../contracts/canonical.ts';
import type { DeviceRecord } from '../registry/types.ts';
import {
  makeDevice,
  metricValue,
  PLACEMENT,
  recordBus,
  startTestSystem,
  type TestSystem,
  vendorModel,
  waitFor,
} from './test-helpers.ts';

describe('ingest through the embedded broker', () => {
  let sys: TestSystem;
  let bus: ReturnType<typeof recordBus>;
  const secrets: Record<string, string> = {};
  const records: Record<string, DeviceRecord> = {};
  const clients: MqttClient[] = [];

  async function connect(id: string, extra: IClientOptions = {}): Promise<MqttClient> {
    const c = await mqtt.connectAsync(
      `mqtt://127.0.0.1:${sys.broker!.ports.tcp}`,
      { clientId: id, username: id, password: secrets[id], reconnectPeriod: 0, ...extra },
      false,
    );
    clients.push(c);
    return c;
  }

  /** Subscribes to the device's error topic and returns a function that waits for the next reply. */
  async function errorReplies(c: MqttClient, id: string): Promise<() => Promise<Record<string, string>>> {
    const queue: Record<string, string>[] = [];
    c.on('message', (topic, payload) => {
      if (topic === `gridwatch/${id}/error`) queue.push(JSON.parse(payload.toString()));
    });
    await c.subscribeAsync(`gridwatch/${id}/error`, { qos: 1 });
    return async () => {
      await waitFor(() => queue.length > 0, 5000, `error reply for ${id}`);
      return queue.shift() as Record<string, string>;
    };
  }

  beforeAll(async () => {
    const devs = await Promise.all([
      makeDevice('dev-ok'),
      makeDevice('dev-r'),
      makeDevice('dev-v', { model: vendorModel.id }),
      makeDevice('dev-drill', { drill: true }),
      makeDevice('dev-dup'),
      makeDevice('dev-s'),
      makeDevice('dev-sleepy'),
    ]);
    for (const d of devs) {
      secrets[d.record.id] = d.secret;
      records[d.record.id] = d.record;
    }
    sys = await startTestSystem(devs.map((d) => d.record));
    bus = recordBus(sys.bus);
  });

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await sys?.stop();
  });

  it('turns telemetry into enriched readings on the bus and points in the store', async () => {
    const c = await connect('dev-ok');
    await c.publishAsync('gridwatch/dev-ok/telemetry', JSON.stringify({ power_w: 120.5, motion: true }), { qos: 1 });
    await waitFor(() => bus.readings.some((b) => b[0]?.deviceId === 'dev-ok'));
    const batch = bus.readings.find((b) => b[0]?.deviceId === 'dev-ok') ?? [];
    expect(batch.map((r) => [r.field, r.value])).toEqual([
      ['power_w', 120.5],
      ['motion', true],
    ]);
    for (const r of batch) {
      expect(r.placement).toEqual(PLACEMENT);
      expect(r.drill).toBe(false);
      expect(r.model).toBe('test-native');
      expect(Math.abs(r.ts - Date.now())).toBeLessThan(5000); // no ts → server time
    }
    const points = sys.store.of('dev-ok');
    expect(points.map((p) => [p.field, p.value])).toEqual([
      ['power_w', 120.5],
      ['motion', 1],
    ]);
    expect(points[0]?.tags).toEqual({ householdId: 'hh-1', buildingId: 'b-1', gridId: 'g-1', drill: false });
    expect(await metricValue(sys.metrics, 'gridwatch_ingest_messages_total', { kind: 'telemetry' })).toBeGreaterThan(0);
    expect(sys.status.get('dev-ok').status).toBe('online');
    expect(sys.status.get('dev-ok').lastReading?.power_w?.value).toBe(120.5);
  });

  it('accepts a back-fill array with device timestamps (epoch ms and ISO)', async () => {
    const c = await connect('dev-ok');
    const t1 = Date.now() - 3_600_000;
    const t2 = new Date(Date.now() - 1_800_000).toISOString();
    sys.store.points.length = 0;
    await c.publishAsync(
      'gridwatch/dev-ok/telemetry',
      JSON.stringify([
        { ts: t1, energy_total_kwh: 10 },
        { ts: t2, energy_total_kwh: 10.5 },
      ]),
      { qos: 1 },
    );
    await waitFor(() => sys.store.of('dev-ok').length === 2);
    expect(sys.store.of('dev-ok').map((p) => [p.ts, p.value])).toEqual([
      [t1, 10],
      [Date.parse(t2), 10.5],
    ]);
  });

  it('decodes a vendor model', async () => {
    const c = await connect('dev-v');
    const t = Math.floor(Date.now() / 1000) - 60;
    await c.publishAsync('gridwatch/dev-v/telemetry', JSON.stringify({ t, d: { pw: 900, bat: 80, door: 1 } }), {
      qos: 1,
    });
    await c.publishAsync('gridwatch/dev-v/event', JSON.stringify({ code: 'A1', seq: 7 }), { qos: 1 });
    await waitFor(() => bus.event.some((e) => e.deviceId === 'dev-v'));
    const readings = bus.readings.flat().filter((r) => r.deviceId === 'dev-v');
    expect(readings.map((r) => [r.field, r.value, r.ts])).toEqual([
      ['power_w', 900, t * 1000],
      ['battery_pct', 80, t * 1000],
      ['contact_open', true, t * 1000],
    ]);
    const ev = bus.event.find((e) => e.deviceId === 'dev-v');
    expect(ev?.event).toEqual({ type: 'sos', id: '7' });
    expect(ev?.model).toBe('test-vendor');
    expect(sys.store.of('dev-v').find((p) => p.field === 'event_sos')?.value).toBe(1);
  });

  describe('rejections', () => {
    const now = () => Date.now();
    const cases: {
      reason: RejectReason;
      topic?: string;
      payload: () => string | Buffer;
      device?: string;
      viaHandleTopic?: boolean;
      before?: () => void;
      after?: () => void;
      message?: RegExp;
    }[] = [
      { reason: 'bad_json', payload: () => '{"power_w": 1', message: /not JSON/ },
      { reason: 'schema', payload: () => JSON.stringify({ power_w: 'high' }), message: /power_w: must be number/ },
      { reason: 'schema', payload: () => JSON.stringify({ colour: 'red' }), message: /unknown field 'colour'/ },
      { reason: 'unknown_event', topic: 'event', payload: () => JSON.stringify({ type: 'alien' }), message: /alien/ },
      {
        reason: 'out_of_range',
        payload: () => JSON.stringify({ power_w: 200_000 }),
        message: /^power_w: must be <= 100000 W \(got 200000\)$/,
      },
      { reason: 'too_large', payload: () => Buffer.alloc(5000, 0x20), message: /5000 bytes exceeds 4096/ },
      {
        reason: 'backdated',
        payload: () => JSON.stringify({ ts: now() - 8 * 86_400_000, power_w: 1 }),
        message: /old/,
      },
      {
        reason: 'backdated',
        payload: () => JSON.stringify({ ts: Math.floor(now() / 1000), power_w: 1 }),
        message: /not seconds/,
      },
      { reason: 'future', payload: () => JSON.stringify({ ts: now() + 3_600_000, power_w: 1 }), message: /ahead/ },
      {
        reason: 'unknown_device',
        payload: () => JSON.stringify({ power_w: 1 }),
        // deleted from the registry while connected
        before: () => sys.directory.devices.delete('dev-r'),
        after: () => sys.directory.add(records['dev-r'] as DeviceRecord),
      },
      {
        reason: 'disabled_device',
        payload: () => JSON.stringify({ power_w: 1 }),
        before: () => sys.directory.add({ ...(records['dev-r'] as DeviceRecord), disabled: true }),
        after: () => sys.directory.add(records['dev-r'] as DeviceRecord),
      },
      {
        // unreachable through the embedded broker (its ACL closes the connection first); an external broker
        // subscription hands raw topics to handleTopic()
        reason: 'bad_topic',
        topic: 'telemtry',
        viaHandleTopic: true,
        payload: () => JSON.stringify({ power_w: 1 }),
      },
      { reason: 'decode', device: 'dev-v', payload: () => JSON.stringify({ x: 1 }), message: /missing 'd'/ },
    ];

    const replies: Record<string, () => Promise<Record<string, string>>> = {};
    let ok: MqttClient;
    const pubs: Record<string, MqttClient> = {};

    beforeAll(async () => {
      for (const id of ['dev-r', 'dev-v']) {
        pubs[id] = await connect(id, { clientId: id });
        replies[id] = await errorReplies(pubs[id] as MqttClient, id);
      }
      ok = await connect('dev-ok');
    });

    it.each(cases.map((c, i) => [`${c.reason} #${i}`, c] as const))('%s', async (_name, c) => {
      const id = c.device ?? 'dev-r';
      const kind = c.topic ?? 'telemetry';
      const topic = `gridwatch/${id}/${kind}`;
      const pub = pubs[id] as MqttClient;
      const rejectedBefore = await metricValue(sys.metrics, 'gridwatch_ingest_rejected_total', { reason: c.reason });
      const pointsBefore = sys.store.of(id).length;
      const okBefore = sys.store.of('dev-ok').length;
      c.before?.();
      try {
        // the bad message and a good one from another device, at the same moment
        const marker = Math.random() * 100;
        const sends = [ok.publishAsync('gridwatch/dev-ok/telemetry', JSON.stringify({ temperature_c: marker }))];
        if (c.viaHandleTopic) sys.pipeline.handleTopic(topic, Buffer.from(c.payload()));
        else sends.push(pub.publishAsync(topic, c.payload(), { qos: 1 }).then(() => undefined));
        await Promise.all(sends);

        const reply = await (replies[id] as () => Promise<Record<string, string>>)();
        expect(reply.error).toBe(c.reason);
        expect(reply.topic).toBe(topic);
        expect(typeof reply.message).toBe('string');
        if (c.message) expect(reply.message).toMatch(c.message);

        expect(await metricValue(sys.metrics, 'gridwatch_ingest_rejected_total', { reason: c.reason })).toBe(
          rejectedBefore + 1,
        );
        expect(bus.rejected.at(-1)).toMatchObject({ deviceId: id, reason: c.reason, topic });
        expect(sys.store.of(id).length).toBe(pointsBefore);
        // the other device did not notice
        await waitFor(() => sys.store.of('dev-ok').some((p) => p.field === 'temperature_c' && p.value === marker));
        expect(sys.store.of('dev-ok').length).toBe(okBefore + 1);
        // and the rejected device is still connected (a bad payload is not a reason to drop a device)
        expect(pub.connected).toBe(true);
      } finally {
        c.after?.();
      }
    });

    it('logs a repeated rejection at warn once per device and reason, then at debug', async () => {
      const warns = sys.logs.filter((l) => l.msg === 'ingest: message rejected' && l.deviceId === 'dev-r');
      const backdated = warns.filter((l) => l.reason === 'backdated');
      expect(backdated.filter((l) => l.level === 40)).toHaveLength(1);
      expect(backdated.filter((l) => l.level === 20)).toHaveLength(1);
    });
  });

  it('processes an event published twice with the same id once', async () => {
    const c = await connect('dev-dup');
    const payload = JSON.stringify({ type: 'fall', id: 'evt-42' });
    await c.publishAsync('gridwatch/dev-dup/event', payload, { qos: 1 });
    await c.publishAsync('gridwatch/dev-dup/event', payload, { qos: 1 });
    await c.publishAsync('gridwatch/dev-dup/event', JSON.stringify({ type: 'fall', id: 'evt-43' }), { qos: 1 });
    await waitFor(() => bus.event.filter((e) => e.deviceId === 'dev-dup').length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(bus.event.filter((e) => e.deviceId === 'dev-dup').map((e) => e.event.id)).toEqual(['evt-42', 'evt-43']);
    expect(await metricValue(sys.metrics, 'gridwatch_duplicate_events_total')).toBe(1);
    expect(sys.store.of('dev-dup').filter((p) => p.field === 'event_fall')).toHaveLength(2);
  });

  it('marks everything from a drill device as drill, and nothing from a real device', async () => {
    const drill = await connect('dev-drill');
    await drill.publishAsync('gridwatch/dev-drill/telemetry', JSON.stringify({ heart_rate_bpm: 70 }), { qos: 1 });
    await drill.publishAsync('gridwatch/dev-drill/event', JSON.stringify({ type: 'sos' }), { qos: 1 });
    await waitFor(() => bus.event.some((e) => e.deviceId === 'dev-drill'));
    for (const r of bus.readings.flat()) expect(r.drill).toBe(r.deviceId === 'dev-drill');
    for (const e of bus.event) expect(e.drill).toBe(e.deviceId === 'dev-drill');
    for (const p of sys.store.points) expect(p.tags?.drill).toBe(p.deviceId === 'dev-drill');
    expect(bus.readings.flat().some((r) => r.deviceId === 'dev-drill')).toBe(true);
  });

  it('tracks status: online on connect, offline by Last Will, a clean disconnect leaves it to the timeout', async () => {
    const will = { topic: 'gridwatch/dev-s/status', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const c = await connect('dev-s', { will });
    await c.publishAsync('gridwatch/dev-s/status', 'online', { qos: 1, retain: true });
    await waitFor(() => sys.status.get('dev-s').status === 'online');
    c.stream.destroy(); // connection lost: the broker publishes the will
    await waitFor(() => sys.status.get('dev-s').status === 'offline');
    const changes = bus.status.filter((s) => s.deviceId === 'dev-s');
    expect(changes.at(-1)?.reason).toBe('last_will');

    const sleepy = await connect('dev-sleepy');
    await waitFor(() => sys.status.get('dev-sleepy').status === 'online');
    await sleepy.endAsync(); // clean DISCONNECT
    await new Promise((r) => setTimeout(r, 100));
    expect(sys.status.get('dev-sleepy').status).toBe('online');
  });
});
