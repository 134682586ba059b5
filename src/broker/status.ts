/**
 * Device status: `online` / `offline` / `unknown` per device, and when it was last heard from.
 *
 * Sources, all O(1) per message:
 * - any message from the device (ingest calls seen()): alive now → online;
 * - the status topic (`online` / `offline`, retained; devices set `offline` as their Last Will);
 * - MQTT connect (alive) and an unclean disconnect without a status Last Will (gone);
 * - a periodic scan (every `statusCheckIntervalS` on the Clock port, O(devices)): online devices not heard from
 *   for their model's `lastSeenTimeoutS` go offline.
 *
 * After a start nothing is marked offline by timeout before `startupGraceS` has passed: the last-seen times loaded
 * from the store are old by the length of the downtime, and calling every device offline at once would flood every
 * phone (ARCHITECTURE.md section 5). Changes go out on the Bus as `status`; state is saved in batches (changed rows
 * only) and seeded from the store at start, so last-seen survives restarts.
 */
import type { Bus } from '../bus.ts';
import type { Cancel, Clock } from '../clock/clock.ts';
import type { Config } from '../config/schema.ts';
import type { DeviceStatus } from '../contracts/canonical.ts';
import type { Reading, StatusChange } from '../ingest/types.ts';
import type { StatusSink } from '../ingest/pipeline.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { DeviceStateRow } from '../registry/port.ts';
import type { DeviceDirectory } from '../registry/types.ts';
import type { DeviceModel } from '../../devices/types.ts';

export interface LastValue {
  value: number | boolean;
  /** epoch ms */
  ts: number;
}

/** What the API shows for a device. */
export interface DeviceStatusView {
  status: DeviceStatus;
  /** epoch ms */
  lastSeen?: number;
  /** Latest value per telemetry field (latest by reading time, so a back-fill does not overwrite newer values). */
  lastReading?: Record<string, LastValue>;
}

/** How a disconnect happened, as the broker saw it. */
export interface DisconnectInfo {
  /** The device sent DISCONNECT: it left on purpose (e.g. a meter that sleeps between reports). */
  clean: boolean;
  /** The device registered `offline` on its own status topic as Last Will: the will will say it. */
  statusWill: boolean;
}

interface State {
  status: DeviceStatus;
  lastSeen: number | undefined;
  /** the last-seen time last handed to the store (a newer one is saved once it is LAST_SEEN_SAVE_MS ahead) */
  savedSeen?: number;
  lastReading: Record<string, LastValue> | undefined;
}

/**
 * A device that reports every few seconds would otherwise have its row written every save interval, which at
 * 5,000 busy devices is 5,000 updates a second for a time nobody needs to the second: the store's last-seen is
 * kept within this much of the live one (the live value, in memory, drives the offline timeouts), and any status
 * change is saved at the next interval as before.
 */
const LAST_SEEN_SAVE_MS = 30_000;

export interface DeviceStatusTrackerDeps {
  bus: Bus;
  clock: Clock;
  directory: DeviceDirectory;
  getModel: (id: string) => DeviceModel | undefined;
  /** Seeds state at start (e.g. from the registry's device table). */
  load: () => Promise<readonly DeviceStateRow[]>;
  /** Persists changed rows (e.g. Registry.saveDeviceStates). */
  save: (rows: readonly DeviceStateRow[]) => Promise<void>;
  config: Pick<Config['mqtt'], 'startupGraceS' | 'statusCheckIntervalS'>;
  logger: Logger;
  metrics?: Metrics;
  /** How often changed rows are saved; default 5 s. */
  saveIntervalMs?: number;
  /** Timeout for a device whose model is unknown; default 1 h. */
  defaultTimeoutS?: number;
}

export class DeviceStatusTracker implements Module, StatusSink {
  readonly name = 'device-status';
  private readonly states = new Map<string, State>();
  private readonly dirty = new Set<string>();
  private online = 0;
  private startedAt = 0;
  private running = false;
  private saving: Promise<void> | undefined;
  private timers: Cancel[] = [];
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: DeviceStatusTrackerDeps) {}

  async start(): Promise<void> {
    const rows = await this.deps.load();
    for (const row of rows) {
      // A loaded `online` stays online until the grace period is over and its timeout says otherwise.
      this.states.set(row.deviceId, {
        status: row.status,
        lastSeen: row.lastSeen,
        savedSeen: row.lastSeen,
        lastReading: undefined,
      });
      if (row.status === 'online') this.online++;
    }
    this.deps.metrics?.devicesOnline.set(this.online);
    this.startedAt = this.deps.clock.now();
    this.running = true;
    const { clock, config } = this.deps;
    this.timers.push(clock.setInterval(() => this.checkTimeouts(), config.statusCheckIntervalS * 1000));
    this.timers.push(clock.setInterval(() => void this.flush(), this.deps.saveIntervalMs ?? 5000));
    this.unsubscribe = this.deps.bus.on('readings', (readings) => this.recordReadings(readings));
    // Tell the rules which devices were already offline before this start (their device-health and "monitoring
    // lost" state would otherwise only learn of it at the next change); the rules' own grace period absorbs them.
    const now = this.deps.clock.now();
    for (const row of rows) {
      if (row.status === 'offline')
        this.deps.bus.emit('status', { deviceId: row.deviceId, status: 'offline', ts: now, reason: 'timeout' });
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const cancel of this.timers) cancel();
    this.timers = [];
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    // the exact last-seen times go to the store on a stop, not only those LAST_SEEN_SAVE_MS ahead
    for (const [deviceId, s] of this.states) if (s.lastSeen !== s.savedSeen) this.dirty.add(deviceId);
    await this.flush();
  }

  /** Status for the API; `unknown` for a device never heard from. */
  get(deviceId: string): DeviceStatusView {
    const s = this.states.get(deviceId);
    if (!s) return { status: 'unknown' };
    const view: DeviceStatusView = { status: s.status };
    if (s.lastSeen !== undefined) view.lastSeen = s.lastSeen;
    if (s.lastReading) view.lastReading = s.lastReading;
    return view;
  }

  get onlineCount(): number {
    return this.online;
  }

  // --- inputs ----------------------------------------------------------------------------------------------------

  seen(deviceId: string, ts: number = this.deps.clock.now()): void {
    if (!this.running) return;
    const s = this.touch(deviceId, ts);
    if (s.status !== 'online') this.change(deviceId, s, 'online', ts, 'message');
  }

  reportStatus(
    deviceId: string,
    status: 'online' | 'offline',
    ts: number = this.deps.clock.now(),
    reason: 'status_topic' | 'last_will' = 'status_topic',
  ): void {
    if (!this.running) return;
    // The message itself is contact, even when it says `offline` (or is the broker's Last Will on its behalf).
    const s = this.touch(deviceId, ts);
    if (s.status !== status) this.change(deviceId, s, status, ts, reason);
  }

  /** The device completed an MQTT connect: alive (StatusChange has no `connect` reason; it counts as a message). */
  connected(deviceId: string, ts: number = this.deps.clock.now()): void {
    this.seen(deviceId, ts);
  }

  /**
   * The device's MQTT session ended. A clean disconnect changes nothing (sleepy devices connect, report, leave;
   * their last-seen timeout decides); a status Last Will is about to arrive and will say `offline` itself; an
   * unclean disconnect without one (socket lost, keepalive expired) makes the device offline now.
   */
  disconnected(deviceId: string, info: DisconnectInfo, ts: number = this.deps.clock.now()): void {
    if (!this.running || info.clean || info.statusWill) return;
    const s = this.states.get(deviceId);
    if (s && s.status === 'online') this.change(deviceId, s, 'offline', ts, 'disconnect');
  }

  private recordReadings(readings: readonly Reading[]): void {
    for (const r of readings) {
      let s = this.states.get(r.deviceId);
      if (!s) {
        s = { status: 'unknown', lastSeen: undefined, lastReading: undefined };
        this.states.set(r.deviceId, s);
      }
      if (!s.lastReading) s.lastReading = {};
      const last = s.lastReading;
      const prev = last[r.field];
      if (!prev) last[r.field] = { value: r.value, ts: r.ts };
      else if (r.ts >= prev.ts) {
        // mutate in place: no allocation per reading once a field has been seen
        prev.value = r.value;
        prev.ts = r.ts;
      }
    }
  }

  // --- timeouts --------------------------------------------------------------------------------------------------

  /** One scan over all devices (also called by the interval timer). */
  checkTimeouts(now: number = this.deps.clock.now()): void {
    if (!this.running) return;
    if (now < this.startedAt + this.deps.config.startupGraceS * 1000) return;
    const defaultMs = (this.deps.defaultTimeoutS ?? 3600) * 1000;
    let wentOffline = 0;
    for (const [deviceId, s] of this.states) {
      if (s.status !== 'online') continue;
      const record = this.deps.directory.get(deviceId);
      const model = record && this.deps.getModel(record.model);
      const timeoutMs = model ? model.lastSeenTimeoutS * 1000 : defaultMs;
      if (s.lastSeen === undefined || now - s.lastSeen > timeoutMs) {
        this.change(deviceId, s, 'offline', now, 'timeout');
        wentOffline++;
      }
    }
    if (wentOffline > 0) this.deps.logger.info({ count: wentOffline }, 'devices offline after last-seen timeout');
  }

  // --- persistence -----------------------------------------------------------------------------------------------

  /** Saves the rows changed since the last save; one save at a time; failed rows are retried next time. */
  async flush(): Promise<void> {
    while (this.saving) await this.saving;
    if (this.dirty.size === 0) return;
    const rows: DeviceStateRow[] = [];
    for (const deviceId of this.dirty) {
      const s = this.states.get(deviceId);
      if (!s) continue;
      const row: DeviceStateRow = { deviceId, status: s.status };
      if (s.lastSeen !== undefined) row.lastSeen = s.lastSeen;
      s.savedSeen = s.lastSeen;
      rows.push(row);
    }
    this.dirty.clear();
    this.saving = this.deps.save(rows).then(
      () => {},
      (err: unknown) => {
        for (const r of rows) this.dirty.add(r.deviceId);
        this.deps.logger.warn({ err, rows: rows.length }, 'device status save failed; will retry');
      },
    );
    try {
      await this.saving;
    } finally {
      this.saving = undefined;
    }
  }

  // --- internals -------------------------------------------------------------------------------------------------

  private touch(deviceId: string, ts: number): State {
    let s = this.states.get(deviceId);
    if (!s) {
      s = { status: 'unknown', lastSeen: ts, lastReading: undefined };
      this.states.set(deviceId, s);
      this.dirty.add(deviceId);
    } else if (s.lastSeen === undefined || ts > s.lastSeen) {
      s.lastSeen = ts;
      if (s.savedSeen === undefined || ts - s.savedSeen >= LAST_SEEN_SAVE_MS) this.dirty.add(deviceId);
    }
    return s;
  }

  private change(deviceId: string, s: State, status: DeviceStatus, ts: number, reason: StatusChange['reason']) {
    if (s.status === 'online') this.online--;
    if (status === 'online') this.online++;
    s.status = status;
    this.dirty.add(deviceId);
    this.deps.metrics?.devicesOnline.set(this.online);
    this.deps.bus.emit('status', { deviceId, status, ts, reason });
  }
}
