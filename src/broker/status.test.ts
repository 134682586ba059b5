import { describe, expect, it } from 'vitest';
import { Bus } from '../bus.ts';
import { VirtualClock } from '../clock/clock.ts';
import type { DeviceStateRow } from '../registry/port.ts';
import {
  captureLogger,
  getModel,
  MemoryDirectory,
  nativeMeterModel,
  nativeModel,
  recordBus,
} from '../ingest/test-helpers.ts';
import { createMetrics } from '../metrics.ts';
import type { DeviceRecord } from '../registry/types.ts';
import { DeviceStatusTracker } from './status.ts';

function record(id: string, model = nativeModel.id): DeviceRecord {
  return {
    id,
    model,
    install: { kind: 'household', householdId: 'hh-1' },
    placement: { householdId: 'hh-1' },
    drill: false,
    disabled: false,
    secretHash: 'scrypt$x',
  };
}

function setup(opts: { graceS?: number; rows?: DeviceStateRow[]; failSaves?: number } = {}) {
  const clock = new VirtualClock();
  const bus = new Bus();
  const events = recordBus(bus);
  const directory = new MemoryDirectory();
  directory.add(record('wrist')); // 600 s timeout
  directory.add(record('meter', nativeMeterModel.id)); // 7200 s timeout
  directory.add(record('other'));
  const saves: DeviceStateRow[][] = [];
  let failSaves = opts.failSaves ?? 0;
  const metrics = createMetrics({ defaultMetrics: false });
  const tracker = new DeviceStatusTracker({
    bus,
    clock,
    directory,
    getModel,
    load: async () => opts.rows ?? [],
    save: async (rows) => {
      if (failSaves-- > 0) throw new Error('db down');
      saves.push([...rows]);
    },
    config: { startupGraceS: opts.graceS ?? 0, statusCheckIntervalS: 10 },
    logger: captureLogger().logger,
    metrics,
    saveIntervalMs: 5000,
  });
  return { clock, bus, events, tracker, saves, metrics };
}

const flushPromises = () => new Promise((r) => setImmediate(r));

describe('DeviceStatusTracker', () => {
  it('announces devices that were already offline before the start, so the rules know them', async () => {
    const { events, tracker } = setup({
      rows: [
        { deviceId: 'wrist', status: 'offline', lastSeen: 1 },
        { deviceId: 'meter', status: 'online', lastSeen: 1 },
      ],
    });
    await tracker.start();
    expect(events.status.map((s) => [s.deviceId, s.status])).toEqual([['wrist', 'offline']]);
    await tracker.stop();
  });

  it('goes online from the status topic and offline from the Last Will', async () => {
    const { clock, events, tracker, metrics } = setup();
    await tracker.start();
    tracker.reportStatus('wrist', 'online', clock.now(), 'status_topic');
    expect(tracker.get('wrist')).toEqual({ status: 'online', lastSeen: clock.now() });
    expect((await metrics.devicesOnline.get()).values[0]?.value).toBe(1);

    clock.advance(1000);
    tracker.reportStatus('wrist', 'offline', clock.now(), 'last_will');
    expect(tracker.get('wrist').status).toBe('offline');
    expect(events.status.map((s) => [s.deviceId, s.status, s.reason])).toEqual([
      ['wrist', 'online', 'status_topic'],
      ['wrist', 'offline', 'last_will'],
    ]);
    expect((await metrics.devicesOnline.get()).values[0]?.value).toBe(0);

    // repeating the same status is not a change
    tracker.reportStatus('wrist', 'offline', clock.now(), 'status_topic');
    expect(events.status).toHaveLength(2);
    expect(tracker.get('nobody')).toEqual({ status: 'unknown' });
    await tracker.stop();
  });

  it('treats connect and unclean disconnect as status, a clean disconnect or a pending will not', async () => {
    const { events, tracker } = setup();
    await tracker.start();
    tracker.connected('wrist');
    tracker.connected('meter');
    tracker.connected('other');
    tracker.disconnected('wrist', { clean: true, statusWill: false });
    tracker.disconnected('meter', { clean: false, statusWill: true });
    tracker.disconnected('other', { clean: false, statusWill: false });
    expect(tracker.get('wrist').status).toBe('online');
    expect(tracker.get('meter').status).toBe('online');
    expect(tracker.get('other').status).toBe('offline');
    expect(events.status.at(-1)).toMatchObject({ deviceId: 'other', status: 'offline', reason: 'disconnect' });
    await tracker.stop();
  });

  it('times out each device after its own model budget', async () => {
    const { clock, events, tracker } = setup();
    await tracker.start();
    tracker.seen('wrist', clock.now());
    tracker.seen('meter', clock.now());
    clock.advance(590_000);
    expect(tracker.get('wrist').status).toBe('online');
    clock.advance(20_000); // 610 s > 600 s wristband budget
    expect(tracker.get('wrist').status).toBe('offline');
    expect(tracker.get('meter').status).toBe('online');
    expect(events.status.at(-1)).toMatchObject({ deviceId: 'wrist', status: 'offline', reason: 'timeout' });
    clock.advance(6_600_000); // past 7200 s
    expect(tracker.get('meter').status).toBe('offline');
    // a message brings it back
    tracker.seen('meter', clock.now());
    expect(events.status.at(-1)).toMatchObject({ deviceId: 'meter', status: 'online', reason: 'message' });
    await tracker.stop();
  });

  it('honours the start-up grace period: nobody goes offline by timeout before it ends', async () => {
    const clock0 = new VirtualClock().now();
    const old = clock0 - 86_400_000; // last heard of a day before the restart
    const { clock, events, tracker } = setup({
      graceS: 600,
      rows: [
        { deviceId: 'wrist', status: 'online', lastSeen: old },
        { deviceId: 'meter', status: 'online', lastSeen: old },
        { deviceId: 'other', status: 'online', lastSeen: old },
      ],
    });
    await tracker.start();
    expect(tracker.get('meter')).toEqual({ status: 'online', lastSeen: old });
    clock.advance(300_000);
    tracker.seen('other', clock.now()); // reconnected during the grace period
    clock.advance(295_000); // 595 s: still inside the grace period
    expect(events.status.filter((s) => s.status === 'offline')).toHaveLength(0);
    clock.advance(10_000); // 605 s: first scan after the grace period
    expect(events.status.filter((s) => s.status === 'offline').map((s) => s.deviceId)).toEqual(['wrist', 'meter']);
    expect(tracker.get('other').status).toBe('online');
    await tracker.stop();
  });

  it('saves in batches, only the rows that changed (last-seen 30 s ahead), and retries a failed save', async () => {
    const { clock, tracker, saves } = setup({ failSaves: 1 });
    await tracker.start();
    tracker.seen('wrist', clock.now());
    tracker.seen('meter', clock.now());
    clock.advance(5000); // first save fails
    await flushPromises();
    expect(saves).toHaveLength(0);
    clock.advance(5000); // retried together with nothing new
    await flushPromises();
    expect(saves).toHaveLength(1);
    expect(saves[0]?.map((r) => r.deviceId).sort()).toEqual(['meter', 'wrist']);
    expect(saves[0]?.[0]).toEqual({ deviceId: expect.any(String), status: 'online', lastSeen: clock.now() - 10_000 });

    clock.advance(5000); // nothing changed: no save at all
    await flushPromises();
    expect(saves).toHaveLength(1);

    // a last-seen only 15 s newer than the saved one is not worth a write (the live one is in memory)
    tracker.seen('wrist', clock.now());
    clock.advance(5000);
    await flushPromises();
    expect(saves).toHaveLength(1);
    expect(tracker.get('wrist').lastSeen).toBe(clock.now() - 5000);
    // 35 s newer: saved at the next interval
    clock.advance(15_000);
    tracker.seen('wrist', clock.now());
    clock.advance(5000);
    await flushPromises();
    expect(saves[1]).toEqual([{ deviceId: 'wrist', status: 'online', lastSeen: clock.now() - 5000 }]);

    tracker.seen('meter', clock.now());
    await tracker.stop(); // stop flushes what is pending
    expect(saves[2]).toEqual([{ deviceId: 'meter', status: 'online', lastSeen: clock.now() }]);
  });

  it('keeps the latest value per field from the readings on the bus', async () => {
    const { bus, clock, tracker } = setup();
    await tracker.start();
    const base = { deviceId: 'wrist', model: nativeModel.id, placement: {}, drill: false };
    const t = clock.now();
    bus.emit('readings', [
      { ...base, field: 'heart_rate_bpm', value: 70, ts: t },
      { ...base, field: 'battery_pct', value: 90, ts: t },
    ]);
    bus.emit('readings', [{ ...base, field: 'heart_rate_bpm', value: 60, ts: t - 60_000 }]); // back-fill: older
    bus.emit('readings', [{ ...base, field: 'battery_pct', value: 89, ts: t + 1000 }]);
    expect(tracker.get('wrist').lastReading).toEqual({
      heart_rate_bpm: { value: 70, ts: t },
      battery_pct: { value: 89, ts: t + 1000 },
    });
    await tracker.stop();
  });
});
