/**
 * A fleet of simulated devices on a real MQTT broker: one MQTT.js client per device, because that is what the
 * broker's authentication, per-device ACLs, Last Will and last-seen tracking are built for; a single shared
 * connection would test none of it.
 *
 * Time runs on an accelerated clock (`speed` simulated ms per real ms); residents' days unfold on it. What a device
 * writes into its payloads is, by default, wall-clock time: ingest rejects readings from the future, and an
 * accelerated clock runs ahead of the server's, so devices report when a message really happened and the day is
 * simply compressed. `timestamps: 'simulated'` writes simulated time instead (for back-filling a store with
 * `speed` 1 and a past `startTime`).
 */
import type { Command } from '../src/contracts/canonical.ts';
import { deviceTopic } from '../src/contracts/topics.ts';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { type Logger, pino } from 'pino';
import {
  commandAck,
  createSimulator,
  type DeviceSimulator,
  type DoorUser,
  residentSeed,
  type SimDeviceSpec,
  type SimMessage,
  type StampFn,
} from './devices.ts';

export interface FleetDevice extends SimDeviceSpec {
  secret: string;
}

export interface FleetOptions {
  /** mqtt://host:port */
  url: string;
  baseTopic: string;
  devices: readonly FleetDevice[];
  /** time acceleration: simulated ms per real ms (60 = an hour a minute) */
  speed: number;
  /** telemetry interval of chatty devices, simulated seconds */
  intervalS: number;
  /** simulated start time, epoch ms (default: now) */
  startTime?: number;
  log?: Logger;
  /** rare incidents, only when asked so a demo does not spam alarms */
  events?: { sos?: boolean; fall?: boolean };
  /** devices connecting at once (default 25): fast for 200 devices without a connect storm on the broker */
  connectConcurrency?: number;
  /** real ms between simulation steps (default 250) */
  tickMs?: number;
  /** what devices write as message time (default 'wall', see the file comment) */
  timestamps?: 'wall' | 'simulated';
  /** how long start() waits for one device's first connection, real ms (default 10 s) */
  connectTimeoutMs?: number;
}

export interface DeviceStats {
  connected: boolean;
  telemetry: number;
  event: number;
  status: number;
  commands: number;
  lastError?: string;
}

export interface FleetStats {
  devices: number;
  connected: number;
  /** devices whose credentials the broker refused (they stop retrying) */
  refused: number;
  published: { telemetry: number; event: number; status: number; total: number };
  commands: { received: number; answered: number; rejected: number };
  /** current simulated time, epoch ms */
  simTime: number;
  byDevice: Record<string, DeviceStats>;
}

interface Member {
  device: FleetDevice;
  sim: DeviceSimulator;
  client?: MqttClient;
  stats: DeviceStats;
  refused: boolean;
  /** a connection error was already logged at warn level since the last successful connect */
  warned?: boolean;
}

/** CONNACK codes that mean "your credentials are wrong": retrying every few seconds would only hammer the broker. */
const AUTH_REFUSED = new Set([4, 5, 134, 135]);

export class SimulatedFleet {
  readonly name = 'demo-fleet';
  private readonly members: Member[];
  private readonly log: Logger;
  private readonly speed: number;
  private readonly tickMs: number;
  private simStart = 0;
  private realStart = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly totals = {
    published: { telemetry: 0, event: 0, status: 0 },
    commands: { received: 0, answered: 0, rejected: 0 },
  };

  constructor(private readonly opts: FleetOptions) {
    if (!(opts.speed > 0)) throw new Error(`speed must be positive, got ${opts.speed}`);
    if (!(opts.intervalS > 0)) throw new Error(`intervalS must be positive, got ${opts.intervalS}`);
    this.log = opts.log ?? pino({ level: 'silent' });
    this.speed = opts.speed;
    this.tickMs = opts.tickMs ?? 250;
    const ids = new Set<string>();
    for (const d of opts.devices) {
      if (ids.has(d.deviceId)) throw new Error(`device ${d.deviceId} listed twice`);
      ids.add(d.deviceId);
    }
    const doorUsers = SimulatedFleet.doorUsers(opts.devices);
    this.members = opts.devices.map((device) => ({
      device,
      sim: createSimulator(device, {
        intervalS: opts.intervalS,
        ...(opts.events ? { events: opts.events } : {}),
        doorUsers: doorUsers(device),
      }),
      stats: { connected: false, telemetry: 0, event: 0, status: 0, commands: 0 },
      refused: false,
    }));
  }

  /**
   * The elderly residents behind each door: households whose devices name the door's building or unit. The door
   * then sees the same market trips as the flat's door contact, which is what links the two in the product.
   */
  private static doorUsers(devices: readonly FleetDevice[]): (d: FleetDevice) => DoorUser[] {
    const byPlace = new Map<string, Set<string>>();
    for (const d of devices) {
      if (!d.householdId) continue;
      for (const key of [d.buildingId && `b:${d.buildingId}`, d.unitId && `u:${d.unitId}`]) {
        if (!key) continue;
        const set = byPlace.get(key) ?? new Set<string>();
        set.add(d.householdId);
        byPlace.set(key, set);
      }
    }
    return (d) => {
      if (d.householdId) return [];
      const households = new Set<string>([
        ...(d.unitId ? (byPlace.get(`u:${d.unitId}`) ?? []) : []),
        ...(d.buildingId ? (byPlace.get(`b:${d.buildingId}`) ?? []) : []),
      ]);
      return [...households].map((h) => ({ personId: `res-${h}`.slice(0, 64), seed: residentSeed(h) }));
    };
  }

  /** Current simulated time. */
  now(): number {
    return this.running || this.realStart > 0
      ? this.simStart + (Date.now() - this.realStart) * this.speed
      : (this.opts.startTime ?? Date.now());
  }

  private readonly stamp: StampFn = (simT) =>
    this.opts.timestamps === 'simulated'
      ? simT
      : Math.min(Date.now(), this.realStart + (simT - this.simStart) / this.speed);

  /** Connects every device (in small concurrent batches), then starts the simulated clock. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.realStart = Date.now();
    this.simStart = this.opts.startTime ?? this.realStart;
    const batch = Math.max(1, this.opts.connectConcurrency ?? 25);
    for (let i = 0; i < this.members.length && this.running; i += batch) {
      await Promise.all(this.members.slice(i, i + batch).map((m) => this.connect(m)));
    }
    if (!this.running) return;
    const connected = this.members.filter((m) => m.stats.connected).length;
    this.log.info(
      { devices: this.members.length, connected, speed: this.speed, simStart: new Date(this.simStart).toISOString() },
      'simulated fleet started',
    );
    this.tick();
    this.timer = setInterval(() => this.tick(), this.tickMs);
  }

  private connect(m: Member): Promise<void> {
    const { deviceId, secret } = m.device;
    const statusTopic = deviceTopic(this.opts.baseTopic, deviceId, 'status');
    const cmdTopic = deviceTopic(this.opts.baseTopic, deviceId, 'cmd');
    const options: IClientOptions = {
      clientId: deviceId,
      username: deviceId,
      password: secret,
      clean: true,
      keepalive: 60,
      connectTimeout: this.opts.connectTimeoutMs ?? 10_000,
      // Jittered so a broker restart is not met by 200 devices reconnecting in the same millisecond.
      reconnectPeriod: 2_000 + Math.floor(Math.random() * 2_000),
      // Telemetry is superseded by the next reading; only events (QoS 1) are worth queuing while offline.
      queueQoSZero: false,
      // We subscribe on every connect ourselves (clean sessions), so MQTT.js must not do it a second time.
      resubscribe: false,
      will: { topic: statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
    };
    const client = connect(this.opts.url, options);
    m.client = client;
    client.on('connect', () => {
      m.stats.connected = true;
      m.warned = false;
      this.log.debug({ deviceId }, 'device connected');
      this.publish(m, 'status', 'online', { qos: 1, retain: true });
      // After a reconnect, report at once: a daily reporter would otherwise stay silent until tomorrow.
      if (this.running) for (const msg of m.sim.report(this.now(), this.stamp)) this.send(m, msg);
      client.subscribe(cmdTopic, { qos: 1 }, (err) => {
        if (err) this.log.warn({ deviceId, err: err.message }, 'cmd subscription failed');
      });
    });
    client.on('close', () => {
      m.stats.connected = false;
    });
    client.on('error', (err) => {
      m.stats.lastError = err.message;
      const code = (err as Error & { code?: unknown }).code;
      if (typeof code === 'number' && AUTH_REFUSED.has(code)) {
        m.refused = true;
        this.log.error({ deviceId, code }, 'broker refused the device credentials; not retrying');
        client.end(true);
      } else {
        // With the broker down, 200 devices retry every few seconds: warn once per outage, the rest at debug.
        this.log[m.warned ? 'debug' : 'warn']({ deviceId, err: err.message }, 'device connection error');
        m.warned = true;
      }
    });
    client.on('message', (topic, payload) => {
      if (topic === cmdTopic) this.onCommand(m, payload);
    });
    return new Promise((resolve) => {
      // start() waits for the first outcome only; later reconnects are MQTT.js's business.
      const done = () => {
        clearTimeout(timer);
        client.off('connect', done);
        client.off('error', done);
        resolve();
      };
      const timer = setTimeout(done, (this.opts.connectTimeoutMs ?? 10_000) + 1_000);
      client.once('connect', done);
      client.once('error', done);
    });
  }

  private onCommand(m: Member, payload: Buffer): void {
    this.totals.commands.received++;
    m.stats.commands++;
    let cmd: Command | undefined;
    try {
      const v = JSON.parse(payload.toString('utf8')) as unknown;
      if (
        typeof v === 'object' &&
        v !== null &&
        typeof (v as Command).id === 'string' &&
        typeof (v as Command).name === 'string' &&
        ((v as Command).args === undefined || (typeof (v as Command).args === 'object' && (v as Command).args !== null))
      ) {
        cmd = v as Command;
      }
    } catch {
      // handled below: a device ignores a command it cannot read
    }
    if (!cmd) {
      this.totals.commands.rejected++;
      this.log.warn({ deviceId: m.device.deviceId }, 'unreadable command ignored');
      return;
    }
    const outcome = m.sim.command(cmd, this.now(), this.stamp);
    if (!outcome.accepted) {
      this.totals.commands.rejected++;
      this.log.warn({ deviceId: m.device.deviceId, cmd: cmd.name, reason: outcome.reason }, 'command rejected');
      // the service is told, so the console shows "failed" with the reason instead of waiting for a timeout
      if (cmd.id.length <= 64) this.send(m, commandAck(cmd, outcome));
      return;
    }
    this.totals.commands.answered++;
    this.log.info({ deviceId: m.device.deviceId, cmd: cmd.name, cmdId: cmd.id }, 'command executed');
    for (const msg of outcome.messages) this.send(m, msg);
    // the new state first, then the answer: whoever sees the ack can already read the state it led to
    if (cmd.id.length <= 64) this.send(m, commandAck(cmd, outcome));
  }

  /** Raises one of a device's event types now (demo controls, tests). */
  trigger(deviceId: string, type: string): void {
    const m = this.members.find((x) => x.device.deviceId === deviceId);
    if (!m) throw new Error(`no simulated device ${deviceId}`);
    for (const msg of m.sim.trigger(type, this.now(), this.stamp)) this.send(m, msg);
  }

  private tick(): void {
    const now = this.now();
    for (const m of this.members) {
      if (m.refused) continue;
      let messages: SimMessage[];
      try {
        messages = m.sim.advance(now, this.stamp);
      } catch (err) {
        // One broken simulator must not stop the other 199 devices.
        this.log.error({ deviceId: m.device.deviceId, err: (err as Error).message }, 'simulator failed');
        continue;
      }
      for (const msg of messages) this.send(m, msg);
    }
  }

  private send(m: Member, msg: SimMessage): void {
    // Events are incidents: QoS 1 so they survive a dropped connection. Telemetry is superseded by the next one.
    this.publish(m, msg.topic, JSON.stringify(msg.payload), { qos: msg.topic === 'event' ? 1 : 0, retain: false });
  }

  private publish(
    m: Member,
    kind: 'telemetry' | 'event' | 'status',
    payload: string,
    opts: { qos: 0 | 1; retain: boolean },
  ): void {
    const client = m.client;
    if (!client || m.refused) return;
    // Offline QoS 0 would be dropped by MQTT.js anyway; skipping it keeps the counts honest.
    if (!client.connected && opts.qos === 0) return;
    client.publish(deviceTopic(this.opts.baseTopic, m.device.deviceId, kind), payload, opts, (err) => {
      if (err) {
        m.stats.lastError = err.message;
        return;
      }
      m.stats[kind]++;
      this.totals.published[kind]++;
    });
  }

  /** Stops the clock, says `offline` (a clean disconnect does not fire the Last Will) and disconnects. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all(
      this.members.map(async (m) => {
        const client = m.client;
        if (!client) return;
        if (client.connected) {
          await Promise.race([
            client
              .publishAsync(deviceTopic(this.opts.baseTopic, m.device.deviceId, 'status'), 'offline', {
                qos: 1,
                retain: true,
              })
              .then(() => {
                m.stats.status++;
                this.totals.published.status++;
              })
              .catch(() => undefined),
            new Promise((r) => setTimeout(r, 2_000)),
          ]);
          await client.endAsync().catch(() => undefined);
        } else {
          await client.endAsync(true).catch(() => undefined);
        }
        m.stats.connected = false;
      }),
    );
    this.log.info(this.summary(), 'simulated fleet stopped');
  }

  private summary() {
    const p = this.totals.published;
    return {
      devices: this.members.length,
      connected: this.members.filter((m) => m.stats.connected).length,
      refused: this.members.filter((m) => m.refused).length,
      published: { ...p, total: p.telemetry + p.event + p.status },
      commands: { ...this.totals.commands },
      simTime: this.now(),
    };
  }

  stats(): FleetStats {
    return {
      ...this.summary(),
      byDevice: Object.fromEntries(this.members.map((m) => [m.device.deviceId, { ...m.stats }])),
    };
  }
}
