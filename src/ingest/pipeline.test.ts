import { describe, expect, it } from 'vitest';
import { Bus } from '../bus.ts';
import { VirtualClock } from '../clock/clock.ts';
import type { OutboundKind } from '../contracts/topics.ts';
import { createMetrics } from '../metrics.ts';
import type { DeviceRecord } from '../registry/types.ts';
import { type EventDedupe, IngestPipeline, MemoryEventDedupe } from './pipeline.ts';
import {
  captureLogger,
  getModel,
  MemoryDirectory,
  metricValue,
  nativeModel,
  PLACEMENT,
  RecordingStore,
  recordBus,
  testIngestConfig,
  vendorModel,
} from './test-helpers.ts';

function record(id: string, over: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    id,
    model: nativeModel.id,
    install: { kind: 'household', householdId: 'hh-1' },
    placement: PLACEMENT,
    drill: false,
    disabled: false,
    secretHash: 'scrypt$unused',
    ...over,
  };
}

function setup(opts: { dedupe?: EventDedupe; ingest?: Parameters<typeof testIngestConfig>[0] } = {}) {
  const clock = new VirtualClock(Date.UTC(2026, 2, 1, 8, 0, 0));
  const directory = new MemoryDirectory();
  directory.add(record('d1'));
  directory.add(record('drill1', { drill: true, placement: { householdId: 'hh-9', gridId: 'g-9' } }));
  directory.add(record('v1', { model: vendorModel.id }));
  directory.add(record('ghost', { model: 'no-such-model' }));
  const bus = new Bus();
  const events = recordBus(bus);
  const store = new RecordingStore();
  const metrics = createMetrics({ defaultMetrics: false });
  const replies: { deviceId: string; kind: OutboundKind; payload: Record<string, string> }[] = [];
  const statuses: unknown[][] = [];
  const seen: string[] = [];
  const { logger, lines } = captureLogger();
  const pipeline = new IngestPipeline({
    baseTopic: 'gw',
    config: testIngestConfig(opts.ingest),
    directory,
    getModel,
    bus,
    timeseries: store,
    metrics,
    logger,
    clock,
    replies: {
      publishToDevice: (deviceId, kind, payload) =>
        replies.push({ deviceId, kind, payload: JSON.parse(String(payload)) }),
    },
    status: {
      seen: (id) => seen.push(id),
      reportStatus: (...args) => statuses.push(args),
    },
    ...(opts.dedupe ? { dedupe: opts.dedupe } : {}),
  });
  const send = (id: string, kind: 'telemetry' | 'event' | 'status', body: unknown) =>
    pipeline.handle(id, kind, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
  return { clock, pipeline, events, store, metrics, replies, statuses, seen, lines, send };
}

describe('IngestPipeline timestamps', () => {
  it('takes epoch ms and ISO-8601 with a zone; missing ts means the receive time', () => {
    const { clock, send, events } = setup();
    const now = clock.now();
    send('d1', 'telemetry', { power_w: 1 });
    send('d1', 'telemetry', { ts: now - 60_000, power_w: 2 });
    send('d1', 'telemetry', { ts: '2026-03-01T15:59:00+08:00', power_w: 3 }); // = 07:59Z
    send('d1', 'telemetry', { ts: '2026-03-01T07:58:00.500Z', power_w: 4 });
    expect(events.readings.map((b) => b[0]?.ts)).toEqual([
      now,
      now - 60_000,
      Date.UTC(2026, 2, 1, 7, 59),
      Date.UTC(2026, 2, 1, 7, 58, 0, 500),
    ]);
    expect(events.rejected).toEqual([]);
  });

  it('accepts handle(receivedAt) from the caller', () => {
    const { pipeline, events } = setup();
    pipeline.handle('d1', 'telemetry', Buffer.from('{"motion":false}'), 1_770_000_000_000);
    expect(events.readings[0]?.[0]?.ts).toBe(1_770_000_000_000);
  });

  it('rejects ISO without a zone, and bad shapes of ts, as schema', () => {
    const { send, replies } = setup();
    send('d1', 'telemetry', { ts: '2026-03-01T07:59:00', power_w: 1 });
    send('d1', 'telemetry', { ts: -1, power_w: 1 });
    send('d1', 'telemetry', { ts: 1.5, power_w: 1 });
    expect(replies.map((r) => [r.payload.error, r.payload.message])).toEqual([
      ['schema', 'ts: must be epoch milliseconds or ISO-8601 with zone'],
      ['schema', 'ts: must be epoch milliseconds or ISO-8601 with zone'],
      ['schema', 'ts: must be epoch milliseconds or ISO-8601 with zone'],
    ]);
  });

  it('bounds ts by maxBackdateS and maxFutureS, inclusive at the edge', () => {
    const { clock, send, replies, events } = setup();
    const now = clock.now();
    const week = 7 * 86_400_000;
    send('d1', 'telemetry', { ts: now - week, power_w: 1 }); // exactly at the limit: ok
    send('d1', 'telemetry', { ts: now + 300_000, power_w: 1 }); // exactly at the limit: ok
    send('d1', 'telemetry', { ts: now - week - 1, power_w: 1 });
    send('d1', 'telemetry', { ts: now + 300_001, power_w: 1 });
    expect(events.readings).toHaveLength(2);
    expect(replies.map((r) => r.payload.error)).toEqual(['backdated', 'future']);
  });

  it('rejects a whole back-fill when one element is out of bounds, and says which one', () => {
    const { clock, send, replies, store } = setup();
    const now = clock.now();
    send('d1', 'telemetry', [
      { ts: now - 1000, power_w: 1 },
      { ts: now + 3_600_000, power_w: 2 },
    ]);
    expect(store.points).toEqual([]);
    expect(replies[0]?.payload).toMatchObject({ error: 'future', topic: 'gw/d1/telemetry' });
    expect(replies[0]?.payload.message).toMatch(/^\[1\]\.ts is 3600 s ahead/);
  });
});

describe('IngestPipeline enrichment', () => {
  it('attaches placement, model and drill from the DeviceRecord, never from the payload', () => {
    const { send, events, store } = setup();
    send('drill1', 'telemetry', { smoke: true, temperature_c: 40 });
    send('drill1', 'event', { type: 'smoke', id: 's1' });
    send('d1', 'event', { type: 'sos' });
    // a payload that tries to carry its own drill flag or placement is refused (no unknown fields)
    send('d1', 'telemetry', { power_w: 1, drill: true });

    const [batch] = events.readings;
    expect(batch?.map((r) => ({ ...r, ts: 0 }))).toEqual([
      {
        deviceId: 'drill1',
        model: 'test-native',
        field: 'smoke',
        value: true,
        ts: 0,
        placement: { householdId: 'hh-9', gridId: 'g-9' },
        drill: true,
      },
      {
        deviceId: 'drill1',
        model: 'test-native',
        field: 'temperature_c',
        value: 40,
        ts: 0,
        placement: { householdId: 'hh-9', gridId: 'g-9' },
        drill: true,
      },
    ]);
    expect(events.event.map((e) => [e.deviceId, e.event.type, e.drill])).toEqual([
      ['drill1', 'smoke', true],
      ['d1', 'sos', false],
    ]);
    expect(events.event[1]?.placement).toBe(PLACEMENT);
    expect(store.points.map((p) => [p.deviceId, p.field, p.value, p.tags])).toEqual([
      ['drill1', 'smoke', 1, { householdId: 'hh-9', gridId: 'g-9', drill: true }],
      ['drill1', 'temperature_c', 40, { householdId: 'hh-9', gridId: 'g-9', drill: true }],
      ['drill1', 'event_smoke', 1, { householdId: 'hh-9', gridId: 'g-9', drill: true }],
      ['d1', 'event_sos', 1, { householdId: 'hh-1', buildingId: 'b-1', gridId: 'g-1', drill: false }],
    ]);
    expect(events.rejected.map((r) => [r.deviceId, r.reason, r.message])).toEqual([
      ['d1', 'schema', "payload: unknown field 'drill'"],
    ]);
  });

  it('routes status payloads to the status sink and marks every other message as seen', () => {
    const { clock, pipeline, send, statuses, seen, replies } = setup();
    send('d1', 'status', 'online');
    pipeline.handle('d1', 'status', Buffer.from('offline'), clock.now(), true);
    send('d1', 'status', 'sleeping');
    send('d1', 'telemetry', 'not json');
    expect(statuses).toEqual([
      ['d1', 'online', clock.now(), 'status_topic'],
      ['d1', 'offline', clock.now(), 'last_will'],
    ]);
    expect(seen).toEqual(['d1']); // the bad telemetry still proves the device is alive
    expect(replies.map((r) => r.payload.error)).toEqual(['schema', 'bad_json']);
  });
});

describe('IngestPipeline validation', () => {
  const cases: [string, 'telemetry' | 'event', unknown, string, string][] = [
    [
      'power above range',
      'telemetry',
      { power_w: 100_001 },
      'out_of_range',
      'power_w: must be <= 100000 W (got 100001)',
    ],
    [
      'negative heart rate',
      'telemetry',
      { heart_rate_bpm: -1 },
      'out_of_range',
      'heart_rate_bpm: must be >= 0 bpm (got -1)',
    ],
    [
      'battery over 100',
      'telemetry',
      [{ battery_pct: 50 }, { battery_pct: 101 }],
      'out_of_range',
      '[1].battery_pct: must be <= 100 % (got 101)',
    ],
    [
      'event field out of range',
      'event',
      { type: 'door_held_open', seconds: 90_000 },
      'out_of_range',
      'seconds: must be <= 86400 (got 90000)',
    ],
    ['string for a number', 'telemetry', { power_w: '12' }, 'schema', 'power_w: must be number'],
    ['number for a boolean', 'telemetry', { motion: 1 }, 'schema', 'motion: must be boolean'],
    ['empty object', 'telemetry', {}, 'schema', 'payload: no readings in message'],
    ['not an object', 'telemetry', 42, 'schema', 'payload: must be object (a JSON object)'],
    [
      'enum',
      'event',
      { type: 'door_access', direction: 'sideways', method: 'card', granted: true },
      'schema',
      'direction: must be one of in, out',
    ],
    [
      'missing required',
      'event',
      { type: 'door_access', direction: 'in', granted: true },
      'schema',
      "payload: missing field 'method'",
    ],
    ['event without type', 'event', { id: 'x' }, 'schema', "event must be a JSON object with a string 'type'"],
    [
      'unknown event',
      'event',
      { type: 'earthquake' },
      'unknown_event',
      expect.stringContaining("unknown event type 'earthquake'") as unknown as string,
    ],
    [
      'too many back-fill items',
      'telemetry',
      Array.from({ length: 501 }, () => ({})),
      'schema',
      'back-fill of 501 readings; at most 500 per message',
    ],
  ];

  it.each(cases)('%s → %s', (_name, kind, body, reason, message) => {
    const { send, replies, store, events } = setup();
    send('d1', kind, body);
    expect(replies).toEqual([
      { deviceId: 'd1', kind: 'error', payload: { topic: `gw/d1/${kind}`, error: reason, message } },
    ]);
    expect(store.points).toEqual([]);
    expect(events.readings).toEqual([]);
    expect(events.event).toEqual([]);
  });

  it('reports decoder failures, unknown models and vendor unknown events', () => {
    const { send, replies } = setup();
    send('v1', 'telemetry', { nope: 1 });
    send('v1', 'event', { code: 'ZZ' });
    send('ghost', 'telemetry', { power_w: 1 });
    send('nobody', 'telemetry', { power_w: 1 });
    expect(replies.map((r) => [r.deviceId, r.payload.error, r.payload.message])).toEqual([
      ['v1', 'decode', "missing 'd'"],
      ['v1', 'unknown_event', 'unknown alarm code ZZ'],
      ['ghost', 'decode', 'no decoder for model no-such-model'],
      ['nobody', 'unknown_device', 'device nobody is not provisioned'],
    ]);
  });

  it('counts rejections by reason and never throws, even for a throwing decoder', async () => {
    const { send, metrics, pipeline, replies } = setup();
    const throwing = {
      ...nativeModel,
      decode: () => {
        throw new Error('boom');
      },
    };
    // swap the model lookup for one device through a pipeline built on the same pieces
    (pipeline as unknown as { deps: { getModel: (id: string) => unknown } }).deps.getModel = () => throwing;
    expect(() => send('d1', 'telemetry', { power_w: 1 })).not.toThrow();
    expect(replies[0]?.payload).toMatchObject({ error: 'decode', message: 'test-native decoder failed: boom' });
    expect(await metricValue(metrics, 'gridwatch_ingest_rejected_total', { reason: 'decode' })).toBe(1);
    expect(await metricValue(metrics, 'gridwatch_ingest_rejected_total', { reason: 'schema' })).toBe(0);
  });

  it('rejects raw topics that are not device topics as bad_topic', () => {
    const { pipeline, replies, events } = setup();
    pipeline.handleTopic('gw/d1/telemtry', Buffer.from('{}'));
    pipeline.handleTopic('elsewhere/x', Buffer.from('{}'));
    pipeline.handleTopic('gw/d1/cmd', Buffer.from('{}')); // our own outbound topic: ignored
    pipeline.handleTopic('gw/d1/telemetry', Buffer.from('{"motion":true}'));
    expect(replies.map((r) => [r.deviceId, r.payload.error])).toEqual([['d1', 'bad_topic']]);
    expect(events.rejected.map((r) => [r.deviceId, r.topic, r.reason])).toEqual([
      ['d1', 'gw/d1/telemtry', 'bad_topic'],
      [undefined, 'elsewhere/x', 'bad_topic'],
    ]);
    expect(events.readings).toHaveLength(1);
  });
});

describe('event dedupe', () => {
  it('drops a repeated event id from the same device within the window, not from another device', async () => {
    const { clock, send, events, metrics } = setup();
    send('d1', 'event', { type: 'fall', id: 'e1' });
    send('d1', 'event', { type: 'fall', id: 'e1' });
    send('drill1', 'event', { type: 'fall', id: 'e1' });
    send('d1', 'event', { type: 'fall' }); // no id: never deduplicated
    send('d1', 'event', { type: 'fall' });
    clock.advance(3_600_001); // window is 3600 s
    send('d1', 'event', { type: 'fall', id: 'e1' });
    expect(events.event.map((e) => [e.deviceId, e.event.id])).toEqual([
      ['d1', 'e1'],
      ['drill1', 'e1'],
      ['d1', undefined],
      ['d1', undefined],
      ['d1', 'e1'],
    ]);
    expect(await metricValue(metrics, 'gridwatch_duplicate_events_total')).toBe(1);
  });

  it('MemoryEventDedupe stays bounded', () => {
    const d = new MemoryEventDedupe(60_000, 1000);
    for (let i = 0; i < 5000; i++) d.seen('d', `e${i}`, 0);
    expect(d.size).toBeLessThanOrEqual(1000);
    expect(d.seen('d', 'e4999', 1)).toBe(true);
    expect(d.seen('d', 'e0', 1)).toBe(false); // forgotten (oldest first)
  });

  it('finishes events asynchronously when the dedupe answers with a promise (shared store)', async () => {
    const asked: string[] = [];
    const dedupe: EventDedupe = {
      seen: async (deviceId, id) => {
        asked.push(`${deviceId}/${id}`);
        return asked.filter((a) => a === `${deviceId}/${id}`).length > 1;
      },
    };
    const { send, events, store } = setup({ dedupe });
    send('d1', 'event', { type: 'tamper', id: 't1' });
    send('d1', 'event', { type: 'tamper', id: 't1' });
    send('d1', 'telemetry', { motion: true }); // stays synchronous
    expect(events.readings).toHaveLength(1);
    await new Promise((r) => setImmediate(r));
    expect(events.event).toHaveLength(1);
    expect(store.points.filter((p) => p.field === 'event_tamper')).toHaveLength(1);
  });
});

describe('per-device rate limit', () => {
  const ingest = { rateLimit: { perSecond: 1, burst: 3 } };

  it('refuses a flood as rate_limited, but never a life-safety event, and lets a late backlog through', () => {
    const { clock, events, send, metrics } = setup({ ingest });
    const now = clock.now();
    for (let i = 0; i < 10; i++) send('d1', 'telemetry', { power_w: i });
    expect(events.readings).toHaveLength(3);
    expect(events.rejected.map((r) => r.reason)).toEqual(Array(7).fill('rate_limited'));
    // the flooding device's resident presses SOS: heard
    send('d1', 'event', { type: 'sos', id: 'sos-1' });
    expect(events.event.map((e) => e.event.type)).toEqual(['sos']);
    // a door event of the same device is not life-safety: refused with the rest
    send('d1', 'event', { type: 'low_battery', id: 'lb-1' });
    expect(events.event).toHaveLength(1);
    // another device, not touched by the flooder: an hour of its readings a minute apart, which a broker kept while
    // the service was away, delivered at once, then a live one
    for (let i = 60; i > 0; i--) send('drill1', 'telemetry', { ts: now - i * 60_000, power_w: i });
    send('drill1', 'telemetry', { power_w: 0 });
    expect(events.readings.filter((b) => b[0]?.deviceId === 'drill1')).toHaveLength(61);
    return metricValue(metrics, 'gridwatch_ingest_rejected_total', { reason: 'rate_limited' }).then((n) =>
      expect(n).toBe(8),
    );
  });
});
