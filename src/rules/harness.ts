/**
 * A test and replay harness for rules: the real RulesEngine and MemoryScheduler on a VirtualClock, an in-memory
 * device directory and household list, and the in-memory alert sink. Readings and events are built the way ingest
 * builds them (placement and drill flag from the device record).
 */
import { getModel } from '../../devices/index.ts';
import { MemoryAlertSink } from '../alerts/memory-sink.ts';
import type { AlertSink } from '../alerts/types.ts';
import { Bus } from '../bus.ts';
import { VirtualClock } from '../clock/clock.ts';
import type { CanonicalEvent, TelemetryField } from '../contracts/canonical.ts';
import type { DeviceEventRecord, Reading, StatusChange } from '../ingest/types.ts';
import { createLogger, type Logger } from '../logger.ts';
import type { DeviceDirectory, DeviceRecord, InstallTarget, Placement } from '../registry/types.ts';
import type { RulesConfig } from './config.ts';
import { RulesEngine } from './engine.ts';
import { MemoryScheduler } from './scheduler.ts';
import type { HouseholdInfo, Rule } from './types.ts';

export class MapDirectory implements DeviceDirectory {
  readonly map = new Map<string, DeviceRecord>();
  get(id: string) {
    return this.map.get(id);
  }
  async refresh() {}
  all() {
    return this.map.values();
  }
}

export interface HarnessOptions {
  rules: readonly Rule[];
  config: RulesConfig;
  timezone?: string;
  /** virtual start time, epoch ms (default 2026-03-02 00:00 Shanghai, a Monday) */
  start?: number;
  households?: HouseholdInfo[];
  alerts?: AlertSink;
  logger?: Logger;
}

export class RuleHarness {
  readonly clock: VirtualClock;
  readonly bus = new Bus((event, err) => {
    throw new Error(`bus listener failed on ${event}: ${String(err)}`);
  });
  readonly scheduler: MemoryScheduler;
  readonly alerts: AlertSink;
  readonly memory: MemoryAlertSink | undefined;
  readonly devices = new MapDirectory();
  readonly households = new Map<string, HouseholdInfo>();
  readonly engine: RulesEngine;

  constructor(opts: HarnessOptions) {
    this.clock = new VirtualClock(opts.start ?? Date.UTC(2026, 2, 1, 16, 0));
    this.scheduler = new MemoryScheduler(this.clock);
    this.memory = opts.alerts ? undefined : new MemoryAlertSink();
    this.alerts = opts.alerts ?? this.memory!;
    for (const h of opts.households ?? []) this.households.set(h.id, h);
    this.engine = new RulesEngine({
      bus: this.bus,
      clock: this.clock,
      scheduler: this.scheduler,
      alerts: this.alerts,
      rules: opts.rules,
      config: { rules: opts.config, timezone: opts.timezone ?? 'Asia/Shanghai' },
      households: { get: (id) => this.households.get(id) },
      devices: this.devices,
      kindOf: (m) => getModel(m)?.kind,
      logger: opts.logger ?? createLogger('silent'),
    });
  }

  async start(): Promise<this> {
    await this.engine.start();
    return this;
  }

  /** Adds a device; placement is filled from the household when installed in one. */
  addDevice(id: string, model: string, install: InstallTarget, opts: { drill?: boolean } = {}): DeviceRecord {
    let placement: Placement = {};
    if (install.kind === 'household') {
      const h = this.households.get(install.householdId);
      placement = h
        ? {
            householdId: h.id,
            unitId: h.unitId,
            buildingId: h.buildingId,
            gridId: h.gridId,
            communityId: h.communityId,
            colour: h.colour,
          }
        : { householdId: install.householdId };
    } else if (install.kind === 'building') placement = { buildingId: install.buildingId };
    else if (install.kind === 'unit') placement = { unitId: install.unitId };
    else placement = { areaId: install.areaId };
    const rec: DeviceRecord = {
      id,
      model,
      install,
      placement,
      drill: opts.drill ?? false,
      disabled: false,
      secretHash: '',
    };
    this.devices.map.set(id, rec);
    return rec;
  }

  /** Moves the virtual clock to `ts` (firing due deadlines in order), then publishes one reading. */
  async reading(
    deviceId: string,
    field: TelemetryField,
    value: number | boolean,
    ts = this.clock.now(),
  ): Promise<void> {
    await this.advanceTo(ts);
    const d = this.device(deviceId);
    const r: Reading = { deviceId, model: d.model, field, ts, value, placement: d.placement, drill: d.drill };
    this.bus.emit('readings', [r]);
    await this.engine.idle();
  }

  async event(deviceId: string, event: CanonicalEvent, ts = this.clock.now()): Promise<void> {
    await this.advanceTo(ts);
    const d = this.device(deviceId);
    const e: DeviceEventRecord = {
      deviceId,
      model: d.model,
      ts,
      receivedAt: ts,
      event,
      placement: d.placement,
      drill: d.drill,
    };
    this.bus.emit('event', e);
    await this.engine.idle();
  }

  async status(
    deviceId: string,
    status: StatusChange['status'],
    reason: StatusChange['reason'] = 'status_topic',
    ts = this.clock.now(),
  ) {
    await this.advanceTo(ts);
    this.bus.emit('status', { deviceId, status, ts, reason });
    await this.engine.idle();
  }

  /** Lets time pass with no messages: deadlines fire on time. */
  async advance(ms: number): Promise<void> {
    this.clock.advance(ms);
    await this.engine.idle();
  }

  async advanceTo(ts: number): Promise<void> {
    if (ts > this.clock.now()) await this.advance(ts - this.clock.now());
  }

  private device(id: string): DeviceRecord {
    const d = this.devices.map.get(id);
    if (!d) throw new Error(`harness: no device ${id}; addDevice first`);
    return d;
  }
}

/** A household for tests. */
export function household(id: string, extra: Partial<HouseholdInfo> = {}): HouseholdInfo {
  return {
    id,
    colour: 'yellow',
    loneElderly: true,
    atRisk: false,
    gridId: 'g-1',
    buildingId: 'b-1',
    unitId: 'u-1-1',
    communityId: 'c-1',
    ...extra,
  };
}
