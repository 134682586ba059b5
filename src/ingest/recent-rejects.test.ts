/**
 * The device page's latest rejected messages: a ring of 20 per device, newest first, a bounded number of devices,
 * kept by the pipeline for provisioned devices only; and a command answer (`cmd_ack`) accepted from any model.
 */
import { describe, expect, it } from 'vitest';
import { Bus } from '../bus.ts';
import { VirtualClock } from '../clock/clock.ts';
import { createMetrics } from '../metrics.ts';
import type { DeviceRecord } from '../registry/types.ts';
import { IngestPipeline, type RecentReject, RecentRejects } from './pipeline.ts';
import {
  captureLogger,
  getModel,
  MemoryDirectory,
  nativeModel,
  PLACEMENT,
  RecordingStore,
  recordBus,
  testIngestConfig,
  vendorModel,
} from './test-helpers.ts';

const reject = (i: number): RecentReject => ({
  ts: i,
  kind: 'telemetry',
  topic: 'gridwatch/d/telemetry',
  reason: 'schema',
  message: `m${i}`,
});

describe('RecentRejects', () => {
  it('keeps the latest 20 per device, newest first', () => {
    const r = new RecentRejects();
    expect(r.recent('d')).toEqual([]);
    for (let i = 1; i <= 3; i++) r.add('d', reject(i));
    expect(r.recent('d').map((x) => x.ts)).toEqual([3, 2, 1]);
    for (let i = 4; i <= 47; i++) r.add('d', reject(i));
    const kept = r.recent('d').map((x) => x.ts);
    expect(kept).toHaveLength(20);
    expect(kept[0]).toBe(47);
    expect(kept[19]).toBe(28);
  });

  it('forgets the device that has been quiet the longest when full', () => {
    const r = new RecentRejects(2, 3);
    r.add('a', reject(1));
    r.add('b', reject(2));
    r.add('c', reject(3));
    r.add('a', reject(4)); // a is fresh again: b is now the stalest
    r.add('d', reject(5));
    expect(r.devices).toBe(3);
    expect(r.recent('b')).toEqual([]);
    expect(r.recent('a').map((x) => x.ts)).toEqual([4, 1]);
    expect(r.recent('d').map((x) => x.ts)).toEqual([5]);
  });
});

function record(id: string, model = nativeModel.id): DeviceRecord {
  return {
    id,
    model,
    install: { kind: 'household', householdId: 'hh-1' },
    placement: PLACEMENT,
    drill: false,
    disabled: false,
    secretHash: 'scrypt$unused',
  };
}

function setup() {
  const clock = new VirtualClock(Date.UTC(2026, 2, 1, 8, 0, 0));
  const directory = new MemoryDirectory();
  directory.add(record('d1'));
  directory.add(record('v1', vendorModel.id));
  const bus = new Bus();
  const events = recordBus(bus);
  const store = new RecordingStore();
  const pipeline = new IngestPipeline({
    baseTopic: 'gw',
    config: testIngestConfig(),
    directory,
    getModel,
    bus,
    timeseries: store,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: captureLogger().logger,
    clock,
  });
  const send = (id: string, kind: 'telemetry' | 'event' | 'status', body: unknown) =>
    pipeline.handle(id, kind, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
  return { clock, pipeline, events, store, send };
}

describe('IngestPipeline rejects and command answers', () => {
  it('keeps the rejections of provisioned devices for the device page, not of unknown ids', () => {
    const { pipeline, send, clock } = setup();
    send('d1', 'telemetry', '{oops');
    clock.advance(1000);
    send('d1', 'status', 'maybe');
    send('nobody', 'telemetry', { power_w: 1 });
    const kept = pipeline.rejects.recent('d1');
    expect(kept.map((r) => [r.kind, r.reason, r.topic])).toEqual([
      ['status', 'schema', 'gw/d1/status'],
      ['telemetry', 'bad_json', 'gw/d1/telemetry'],
    ]);
    expect(kept[0]!.ts - kept[1]!.ts).toBe(1000);
    expect(pipeline.rejects.recent('nobody')).toEqual([]);
    // a topic that is no device topic: kept without a kind
    pipeline.handleTopic('gw/d1/telemtry', Buffer.from('{}'));
    expect(pipeline.rejects.recent('d1')[0]).toMatchObject({ reason: 'bad_topic', topic: 'gw/d1/telemtry' });
    expect(pipeline.rejects.recent('d1')[0]!.kind).toBeUndefined();
  });

  it('takes a canonical cmd_ack from any model (also a vendor one) onto the bus, never into the store', () => {
    const { send, events, store, pipeline } = setup();
    send('v1', 'event', { type: 'cmd_ack', id: 'a-1', ref: 'c-1', ok: true });
    send('d1', 'event', { type: 'cmd_ack', ref: 'c-2', ok: false, message: 'busy' });
    expect(events.event.map((e) => [e.deviceId, e.event])).toEqual([
      ['v1', { type: 'cmd_ack', id: 'a-1', ref: 'c-1', ok: true }],
      ['d1', { type: 'cmd_ack', ref: 'c-2', ok: false, message: 'busy' }],
    ]);
    expect(store.points).toEqual([]);
    // validated like any event
    send('v1', 'event', { type: 'cmd_ack', ok: true });
    send('v1', 'event', { type: 'cmd_ack', ref: 'c-3', ok: 'yes' });
    expect(events.event).toHaveLength(2);
    expect(pipeline.rejects.recent('v1').map((r) => r.reason)).toEqual(['schema', 'schema']);
    // a vendor model's own events still go through its decoder
    send('v1', 'event', { code: 'A2', seq: 1 });
    expect(events.event[2]?.event).toMatchObject({ type: 'tamper' });
  });
});
