/**
 * Test fixtures for the broker and ingest tests: two small device models (a native one and a vendor-ish one), an
 * in-memory DeviceDirectory with real scrypt hashes, a time-series recorder, a log capture, and a helper that
 * starts the real embedded broker + pipeline + status tracker on free loopback ports.
 * Not a test file itself (no `.test.ts`), and never imported by production code.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { DeviceModel } from '../../devices/types.ts';
import { EmbeddedBroker } from '../broker/embedded.ts';
import { DeviceStatusTracker } from '../broker/status.ts';
import { Bus, type BusEvents } from '../bus.ts';
import { type Clock, systemClock } from '../clock/clock.ts';
import type { Config } from '../config/schema.ts';
import type { CanonicalEvent, Telemetry } from '../contracts/canonical.ts';
import { freePort } from '../lifecycle/redis-server.ts';
import type { Logger } from '../logger.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import type { DeviceStateRow } from '../registry/port.ts';
import { hashSecret, verifySecret } from '../registry/secrets.ts';
import type { DeviceDirectory, DeviceRecord, Placement } from '../registry/types.ts';
import type { Point } from '../timeseries/port.ts';
import { IngestModule } from './module.ts';
import { IngestPipeline } from './pipeline.ts';

// --- device models -----------------------------------------------------------------------------------------------

const base = {
  vendor: 'test',
  family: 'elderly_home',
  installOn: ['household'],
  fields: [],
  events: [],
  commands: [],
  examples: {},
} as const;

/** A native model: canonical payloads pass through unchanged (validation is ingest's job). */
export const nativeModel: DeviceModel = {
  ...base,
  id: 'test-native',
  kind: 'wristband',
  description: 'native test device',
  lastSeenTimeoutS: 600,
  decode(kind, payload) {
    if (kind === 'telemetry')
      return { ok: true, telemetry: (Array.isArray(payload) ? payload : [payload]) as Telemetry[] };
    return { ok: true, events: [payload as CanonicalEvent] };
  },
};

/** A native model for a slow reporter (meters): longer last-seen budget. */
export const nativeMeterModel: DeviceModel = {
  ...nativeModel,
  id: 'test-native-meter',
  kind: 'electricity_meter',
  lastSeenTimeoutS: 7200,
};

/**
 * A vendor model: `{"t": <epoch s>, "d": {"pw": W, "bat": %, "door": 0|1}}` for telemetry and
 * `{"code": "A1"|"A2", "seq": n, "t"?: s}` for events (A1 = sos, A2 = tamper).
 */
export const vendorModel: DeviceModel = {
  ...base,
  id: 'test-vendor',
  vendor: 'acme-test',
  kind: 'electricity_meter',
  description: 'vendor test device',
  lastSeenTimeoutS: 3600,
  decode(kind, payload) {
    const p = payload as { t?: number; d?: { pw?: number; bat?: number; door?: number }; code?: string; seq?: number };
    if (typeof p !== 'object' || p === null) return { ok: false, reason: 'decode', message: 'expected an object' };
    if (kind === 'telemetry') {
      if (!p.d) return { ok: false, reason: 'decode', message: "missing 'd'" };
      const t: Telemetry = {};
      if (p.t !== undefined) t.ts = p.t * 1000;
      if (p.d.pw !== undefined) t.power_w = p.d.pw;
      if (p.d.bat !== undefined) t.battery_pct = p.d.bat;
      if (p.d.door !== undefined) t.contact_open = p.d.door === 1;
      return { ok: true, telemetry: [t] };
    }
    const type = p.code === 'A1' ? 'sos' : p.code === 'A2' ? 'tamper' : undefined;
    if (!type) return { ok: false, reason: 'unknown_event', message: `unknown alarm code ${String(p.code)}` };
    const ev: CanonicalEvent = { type };
    if (p.seq !== undefined) ev.id = String(p.seq);
    if (p.t !== undefined) ev.ts = p.t * 1000;
    return { ok: true, events: [ev] };
  },
};

const models = new Map([nativeModel, nativeMeterModel, vendorModel].map((m) => [m.id, m]));
export const getModel = (id: string): DeviceModel | undefined => models.get(id);

// --- registry ----------------------------------------------------------------------------------------------------

export class MemoryDirectory implements DeviceDirectory {
  readonly devices = new Map<string, DeviceRecord>();
  refreshes = 0;
  get(deviceId: string): DeviceRecord | undefined {
    return this.devices.get(deviceId);
  }
  async refresh(): Promise<void> {
    this.refreshes++;
  }
  all(): Iterable<DeviceRecord> {
    return this.devices.values();
  }
  add(record: DeviceRecord): void {
    this.devices.set(record.id, record);
  }
}

export const PLACEMENT: Placement = { householdId: 'hh-1', unitId: 'u-1', buildingId: 'b-1', gridId: 'g-1' };

/** A device with a real scrypt hash (cheap parameters: the tests connect many times). */
export async function makeDevice(
  id: string,
  opts: { model?: string; drill?: boolean; disabled?: boolean; secret?: string; placement?: Placement } = {},
): Promise<{ record: DeviceRecord; secret: string }> {
  const secret = opts.secret ?? `secret-of-${id}`;
  return {
    secret,
    record: {
      id,
      model: opts.model ?? nativeModel.id,
      install: { kind: 'household', householdId: 'hh-1' },
      placement: opts.placement ?? PLACEMENT,
      drill: opts.drill ?? false,
      disabled: opts.disabled ?? false,
      secretHash: await hashSecret(secret, { N: 1024, r: 8, p: 1 }),
    },
  };
}

// --- time series, logs, bus ----------------------------------------------------------------------------------------

export class RecordingStore {
  readonly points: Point[] = [];
  write(points: readonly Point[]): void {
    this.points.push(...points);
  }
  of(deviceId: string): Point[] {
    return this.points.filter((p) => p.deviceId === deviceId);
  }
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A real pino logger that keeps its lines (level numbers: 20 debug, 30 info, 40 warn, 50 error). */
export function captureLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

/** Records everything emitted on the bus. */
export function recordBus(bus: Bus): { [K in keyof BusEvents]: BusEvents[K][] } {
  const rec = { readings: [], event: [], status: [], rejected: [] } as { [K in keyof BusEvents]: BusEvents[K][] };
  bus.on('readings', (x) => rec.readings.push(x));
  bus.on('event', (x) => rec.event.push(x));
  bus.on('status', (x) => rec.status.push(x));
  bus.on('rejected', (x) => rec.rejected.push(x));
  return rec;
}

export function testIngestConfig(over: Partial<Config['ingest']> = {}): Config['ingest'] {
  return {
    maxPayloadBytes: 4096,
    maxBackdateS: 7 * 86_400,
    maxFutureS: 300,
    dedupeWindowS: 3600,
    rejectLogIntervalMs: 60_000,
    // off: unit tests push many messages through one device; the limit has tests of its own
    rateLimit: { perSecond: 0, burst: 1 },
    ...over,
  };
}

export async function testMqttConfig(over: Partial<Config['mqtt']> = {}): Promise<Config['mqtt']> {
  return {
    baseTopic: 'gridwatch',
    host: '127.0.0.1',
    port: await freePort(),
    wsPort: await freePort(),
    tlsPort: 0,
    sharedGroup: 'gridwatch',
    authFailuresPerMinute: 30,
    maxPacketSize: 8192,
    concurrency: 100,
    drainTimeoutMs: 5000,
    startupGraceS: 0,
    statusCheckIntervalS: 1,
    ...over,
  };
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// --- the whole ingest path on real MQTT ------------------------------------------------------------------------------

export interface TestSystem {
  mqtt: Config['mqtt'];
  directory: MemoryDirectory;
  broker: EmbeddedBroker;
  pipeline: IngestPipeline;
  status: DeviceStatusTracker;
  bus: Bus;
  store: RecordingStore;
  metrics: Metrics;
  logs: LogLine[];
  saved: DeviceStateRow[][];
  stop(): Promise<void>;
}

export async function startTestSystem(
  devices: DeviceRecord[],
  opts: { mqtt?: Partial<Config['mqtt']>; ingest?: Partial<Config['ingest']>; clock?: Clock } = {},
): Promise<TestSystem> {
  const mqtt = await testMqttConfig(opts.mqtt);
  const clock = opts.clock ?? systemClock;
  const directory = new MemoryDirectory();
  for (const d of devices) directory.add(d);
  const { logger, lines } = captureLogger();
  const metrics = createMetrics({ defaultMetrics: false });
  const bus = new Bus();
  const store = new RecordingStore();
  const saved: DeviceStateRow[][] = [];
  const broker = new EmbeddedBroker({ config: mqtt, directory, verifySecret, logger, metrics, stopTimeoutMs: 2000 });
  const status = new DeviceStatusTracker({
    bus,
    clock,
    directory,
    getModel,
    load: async () => [],
    save: async (rows) => {
      saved.push([...rows]);
    },
    config: mqtt,
    logger,
    metrics,
  });
  const pipeline = new IngestPipeline({
    baseTopic: mqtt.baseTopic,
    config: testIngestConfig(opts.ingest),
    directory,
    getModel,
    bus,
    timeseries: store,
    metrics,
    logger,
    clock,
    replies: broker,
    status,
  });
  const ingest = new IngestModule({ transport: broker, pipeline, status });
  const modules = [broker, status, ingest];
  for (const m of modules) await m.start();
  return {
    mqtt,
    directory,
    broker,
    pipeline,
    status,
    bus,
    store,
    metrics,
    logs: lines,
    saved,
    async stop() {
      for (const m of [...modules].reverse()) await m.stop();
    },
  };
}

/** Current value of a counter / gauge child, for assertions. */
export async function metricValue(
  metrics: Metrics,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = metrics.registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const data = await m.get();
  const v = data.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}
