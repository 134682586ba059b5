/**
 * `npm run bench:detection [-- --data <dir>] [--cuts n] [--seed n] [--colour c] [--mqtt] [--verbose]`: how well the
 * lone-elderly home rules detect a resident who stops moving, measured on a real home's sensor stream with the method
 * of ../shared/datasets/README.md, printed as one JSON line.
 *
 * The home (folder in the datasets format: sensors.csv, firings.csv, away.csv; default ../shared/datasets/kasteren)
 * becomes one lone-elderly household of the given colour (default yellow: the default thresholds, no colour
 * override) with one device of a sample model per sensor: front_door and door → native-door-contact (only front_door
 * is the flat's entrance), motion → native-motion (`motion`), occupancy → native-motion sending `occupancy`,
 * appliance → its own native-electricity-meter (`power_w` APPLIANCE_W on / 0 W off), water → native-water-meter
 * (`water_total_l` grows by WATER_L_PER_FIRING at the start of a firing; the end repeats the total: flow stopped).
 * A firing's start publishes the "active" reading, its end the "inactive" one; every device first reports its
 * resting state a minute before the data starts. The home's local times are read as local times of the
 * community's zone.
 *
 * Every message goes through the real ingest pipeline (IngestPipeline: decoder, schema, timestamps, enrichment from
 * the device directory) onto the bus that the real RulesEngine with the home rules listens to, on a VirtualClock that
 * moves to each message's time first, so every deadline fires in order and on time. With `--mqtt` each device
 * publishes its messages over MQTT (QoS 1) to the real embedded broker (authentication, ACL, IngestModule), one at a
 * time; the figures are the same, it takes about 6× longer.
 *
 *  - False alarms: the unmodified stream replayed to its end; every inactivity-type alert (inactivity, not_seen,
 *    water_low) counts, per household-day.
 *  - Time to detection: `cuts` moments drawn with a fixed seed (mulberry32) after the first 7 days, while the
 *    resident is home (outside away.csv). For each, the stream is replayed from the start up to the cut (no firing
 *    starts after it; a firing in progress ends at it), then the clock runs to the end of the data; the detection
 *    time is the first inactivity-type alert at or after the cut minus the cut. Undetected cuts count as the time
 *    from the cut to the end of the data. Each cut replays the whole prefix: nothing after the cut is seen.
 *
 * `--simulated <n> [--days d]` measures n simulated lone-elderly homes instead (the seeded residents of
 * simulators/, with the devices the sample community gives such a home: water, electricity and gas meters, a PIR,
 * the flat door contact, a wristband), the same way: false alarms over the whole run, cuts where the resident stops
 * (the PIR sees nothing more, meter totals freeze, power falls to standby, the door stays shut). A sanity check on
 * product-like homes with motion sensors, not a benchmark against the anchor.
 *
 * `--set '<json>'` overrides rule settings for every home alike (e.g. `{"inactivity":{"minHours":1.5}}`), for
 * exploring defaults; `--verbose` prints each false alarm, each cut and the learned thresholds to stderr.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import mqtt, { type MqttClient } from 'mqtt';
import { getModel } from '../../devices/index.ts';
import { createSimulator, residentSeed } from '../../simulators/devices.ts';
import { mulberry32 } from '../../simulators/random.ts';
import { ACTIVITY_EFFECTS, Resident } from '../../simulators/resident.ts';
import { MemoryAlertSink } from '../../src/alerts/memory-sink.ts';
import type { AlertInput, AlertSink } from '../../src/alerts/types.ts';
import { EmbeddedBroker } from '../../src/broker/embedded.ts';
import { Bus } from '../../src/bus.ts';
import { VirtualClock } from '../../src/clock/clock.ts';
import { loadConfig } from '../../src/config/load.ts';
import { IngestModule } from '../../src/ingest/module.ts';
import { IngestPipeline } from '../../src/ingest/pipeline.ts';
import { freePort } from '../../src/lifecycle/redis-server.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import { createMetrics, type Metrics } from '../../src/metrics.ts';
import { hashSecret, verifySecret } from '../../src/registry/secrets.ts';
import type { Colour, DeviceRecord } from '../../src/registry/types.ts';
import type { RuleOverrides, RulesConfig } from '../../src/rules/config.ts';
import { RulesEngine } from '../../src/rules/engine.ts';
import { MapDirectory } from '../../src/rules/harness.ts';
import { createHomeRules, type InactivityRule } from '../../src/rules/inactivity.ts';
import { MemoryScheduler } from '../../src/rules/scheduler.ts';
import { localTime, zoneOffset } from '../../src/rules/time.ts';
import type { HouseholdInfo } from '../../src/rules/types.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DAY = 86_400_000;
const HOUR = 3_600_000;
export const INACTIVITY_TYPES: ReadonlySet<string> = new Set(['inactivity', 'not_seen', 'water_low']);
/** A toilet flush, a hand wash: litres per water firing. */
export const WATER_L_PER_FIRING = 6;
/** Power of an appliance while on (W): anything well above a home's background. */
export const APPLIANCE_W = 800;
export const ANCHOR = { falseAlarmsPerHouseholdDay: 0.09, meanHours: 5.4 } as const;
const HOUSEHOLD = 'h-bench';

export interface DetectionOptions {
  dataDir?: string;
  cuts?: number;
  seed?: number;
  colour?: Colour;
  /** rule setting overrides (the same for every home), for exploring defaults */
  overrides?: RuleOverrides;
  /** publish every message over MQTT through the embedded broker (about 6× slower) */
  mqtt?: boolean;
}

export interface DetectionResult {
  home: string;
  days: number;
  falseAlarmsPerHouseholdDay: number;
  detection: { meanHours: number; medianHours: number; maxHours: number; undetected: number; cuts: number };
  anchor: typeof ANCHOR;
}

export interface DetectionDetail {
  result: DetectionResult;
  falseAlarms: { type: string; ts: number }[];
  cuts: { cut: number; detectedAt?: number; type?: string; hours: number }[];
  /** what the inactivity rule learned by the end of the stream: hours per half-hour slot of day, and wake-up */
  thresholds: { weekday: string; restDay: string; wakeWeekday: number; wakeRestDay: number };
}

/** The learned thresholds at the end of the data, for the last weekday and the last rest day. */
function learnedThresholds(
  rule: InactivityRule,
  engine: RulesEngine,
  end: number,
  tz: string,
  householdId = HOUSEHOLD,
): DetectionDetail['thresholds'] {
  const settings = engine.ctx.settings(householdId);
  const hist = rule.historyOf(householdId);
  const today = localTime(end, tz).day;
  const last = (rest: boolean) => {
    for (let d = today; d > today - 7; d--) if (((d + 4) % 7 === 0 || (d + 4) % 7 === 6) === rest) return d;
    return today;
  };
  const row = (day: number) => {
    if (!hist) return '';
    const out: string[] = [];
    for (let slot = 0; slot < 48; slot++)
      out.push((rule.slotThreshold(hist, day, slot, settings).ms / HOUR).toFixed(1));
    return out.join(' ');
  };
  const wake = (day: number) =>
    hist ? Math.round((rule.wakeThreshold(hist, day, settings).ms / HOUR) * 100) / 100 : 0;
  return {
    weekday: row(last(false)),
    restDay: row(last(true)),
    wakeWeekday: wake(last(false)),
    wakeRestDay: wake(last(true)),
  };
}

interface Sensor {
  id: string;
  name: string;
  kind: 'front_door' | 'door' | 'motion' | 'occupancy' | 'appliance' | 'water';
}
interface Firing {
  start: number;
  end: number;
  sensor: Sensor;
}
interface Home {
  name: string;
  sensors: Sensor[];
  firings: Firing[];
  away: [number, number][];
  start: number;
  end: number;
}
interface Msg {
  ts: number;
  deviceId: string;
  json: string;
}

/** A zone-less local ISO time of the home, read as the same wall-clock time in the community's zone. */
function localToEpoch(iso: string, tz: string): number {
  const naive = Date.parse(`${iso}Z`);
  if (Number.isNaN(naive)) throw new Error(`bad time ${iso}`);
  const guess = naive - zoneOffset(naive, tz);
  return naive - zoneOffset(guess, tz);
}

function readCsv(file: string): Record<string, string>[] {
  return parse(readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true, trim: true }) as Record<
    string,
    string
  >[];
}

export function loadHome(dir: string, tz: string): Home {
  const kinds = new Set(['front_door', 'door', 'motion', 'occupancy', 'appliance', 'water']);
  const sensors = readCsv(path.join(dir, 'sensors.csv')).map((r) => {
    if (!kinds.has(r.kind ?? '')) throw new Error(`sensors.csv: unknown kind ${r.kind} of sensor ${r.id}`);
    return { id: String(r.id), name: String(r.name), kind: r.kind as Sensor['kind'] };
  });
  const byId = new Map(sensors.map((s) => [s.id, s]));
  const firings: Firing[] = [];
  for (const r of readCsv(path.join(dir, 'firings.csv'))) {
    const sensor = byId.get(String(r.sensor_id));
    if (!sensor) throw new Error(`firings.csv: unknown sensor ${r.sensor_id}`);
    const start = localToEpoch(String(r.start), tz);
    firings.push({ start, end: Math.max(start, localToEpoch(String(r.end), tz)), sensor });
  }
  firings.sort((a, b) => a.start - b.start);
  let away: [number, number][] = [];
  try {
    away = readCsv(path.join(dir, 'away.csv')).map((r) => [
      localToEpoch(String(r.start), tz),
      localToEpoch(String(r.end), tz),
    ]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (firings.length === 0) throw new Error(`${dir}: no firings`);
  const start = firings[0]!.start;
  const end = firings.reduce((m, f) => Math.max(m, f.end), start);
  return { name: path.basename(path.resolve(dir)), sensors, firings, away, start, end };
}

const deviceId = (s: Sensor) => `s-${s.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;

const MODEL: Record<Sensor['kind'], string> = {
  front_door: 'native-door-contact',
  door: 'native-door-contact',
  motion: 'native-motion',
  occupancy: 'native-motion',
  appliance: 'native-electricity-meter',
  water: 'native-water-meter',
};

function field(kind: Sensor['kind']): string {
  switch (kind) {
    case 'front_door':
    case 'door':
      return 'contact_open';
    case 'motion':
      return 'motion';
    case 'occupancy':
      return 'occupancy';
    case 'appliance':
      return 'power_w';
    case 'water':
      return 'water_total_l';
  }
}

/** The device messages of the stream cut at `cut` (no firing starts at or after it; those in progress end at it). */
function messages(home: Home, cut = Number.POSITIVE_INFINITY): Msg[] {
  type Edge = { ts: number; on: boolean; s: Sensor; seq: number };
  const edges: Edge[] = [];
  let seq = 0;
  for (const f of home.firings) {
    if (f.start >= cut) break;
    edges.push({ ts: f.start, on: true, s: f.sensor, seq: seq++ });
    edges.push({ ts: Math.min(f.end, cut), on: false, s: f.sensor, seq: seq++ });
  }
  // by time; at the same time a firing's end before another's start
  edges.sort((a, b) => a.ts - b.ts || Number(a.on) - Number(b.on) || a.seq - b.seq);
  const out: Msg[] = [];
  const water = new Map<string, number>();
  const t0 = home.start - 60_000;
  for (const s of home.sensors) {
    const f = field(s.kind);
    const value = s.kind === 'appliance' ? 0 : s.kind === 'water' ? 1000 : false;
    if (s.kind === 'water') water.set(s.id, 1000);
    out.push({ ts: t0, deviceId: deviceId(s), json: JSON.stringify({ ts: t0, [f]: value }) });
  }
  for (const e of edges) {
    let value: number | boolean;
    switch (e.s.kind) {
      case 'appliance':
        value = e.on ? APPLIANCE_W : 0;
        break;
      case 'water': {
        const total = (water.get(e.s.id) ?? 1000) + (e.on ? WATER_L_PER_FIRING : 0);
        water.set(e.s.id, total);
        value = total;
        break;
      }
      default:
        value = e.on;
    }
    out.push({ ts: e.ts, deviceId: deviceId(e.s), json: JSON.stringify({ ts: e.ts, [field(e.s.kind)]: value }) });
  }
  return out;
}

/** Counts raises as the rules make them (the alert time is the rule's event time, not when the sink runs). */
class RecordingSink implements AlertSink {
  readonly memory = new MemoryAlertSink();
  readonly raised: { type: string; ts: number; created: boolean; householdId?: string }[] = [];
  async raise(input: AlertInput) {
    const r = await this.memory.raise(input);
    this.raised.push({ type: input.type, ts: input.ts, created: r.created, householdId: input.subject.householdId });
    return r;
  }
  clear(key: string, reason: string, ts: number) {
    return this.memory.clear(key, reason, ts);
  }
  cancel(key: string, reason: string, ts: number, by: string) {
    return this.memory.cancel(key, reason, ts, by);
  }
}

interface Setup {
  rules: RulesConfig;
  timezone: string;
  colour: Colour;
  metrics: Metrics;
}

/** One replay's world: ingest, the rules engine and its alert sink, on a virtual clock. */
interface System {
  clock: VirtualClock;
  engine: RulesEngine;
  pipeline: IngestPipeline;
  sink: RecordingSink;
  home: ReturnType<typeof createHomeRules>;
  directory: MapDirectory;
  bus: Bus;
  logger: Logger;
  rejected(): number;
}

function householdInfo(id: string, colour: Colour): HouseholdInfo {
  return {
    id,
    colour,
    loneElderly: true,
    atRisk: false,
    gridId: 'g-bench',
    buildingId: 'b-bench',
    unitId: 'u-bench',
    communityId: 'c-bench',
  };
}

/** Builds a replay world with these devices (device id → model, household); `entrances`: the flat doors. */
async function system(
  setup: Setup,
  start: number,
  devices: { id: string; model: string; householdId: string }[],
  entrances: ReadonlySet<string>,
  secretHash = '',
): Promise<System> {
  const clock = new VirtualClock(start);
  const logger = createLogger('silent');
  const bus = new Bus();
  const directory = new MapDirectory();
  const households = new Map<string, HouseholdInfo>();
  for (const d of devices) {
    let info = households.get(d.householdId);
    if (!info) {
      info = householdInfo(d.householdId, setup.colour);
      households.set(info.id, info);
    }
    const rec: DeviceRecord = {
      id: d.id,
      model: d.model,
      install: { kind: 'household', householdId: info.id },
      placement: {
        householdId: info.id,
        unitId: info.unitId,
        buildingId: info.buildingId,
        gridId: info.gridId,
        communityId: info.communityId,
        colour: info.colour,
      },
      drill: false,
      disabled: false,
      secretHash,
    };
    directory.map.set(rec.id, rec);
  }
  const sink = new RecordingSink();
  const home = createHomeRules({ isEntrance: (_d, id) => entrances.has(id) });
  const engine = new RulesEngine({
    bus,
    clock,
    scheduler: new MemoryScheduler(clock),
    alerts: sink,
    rules: home.rules,
    config: { rules: setup.rules, timezone: setup.timezone },
    households: { get: (id) => households.get(id) },
    devices: directory,
    kindOf: (m) => getModel(m)?.kind,
    logger,
  });
  await engine.start();
  const pipeline = new IngestPipeline({
    baseTopic: 'gridwatch',
    config: {
      maxPayloadBytes: 32_768,
      maxBackdateS: 10 * 365 * 86_400,
      maxFutureS: 300,
      dedupeWindowS: 3600,
      rejectLogIntervalMs: 60_000,
      // a home's whole stream goes through in seconds: far over any per-device limit, on purpose
      rateLimit: { perSecond: 0, burst: 1 },
    },
    directory,
    getModel,
    bus,
    timeseries: { write() {} },
    metrics: setup.metrics,
    logger,
    clock,
  });
  let rejected = 0;
  bus.on('rejected', () => rejected++);
  return { clock, engine, pipeline, sink, home, directory, bus, logger, rejected: () => rejected };
}

/** Moves the clock to `ts` (firing due deadlines) and hands one device message to ingest. */
function deliver(sys: System, deviceId: string, topic: 'telemetry' | 'event', json: string, ts: number): void {
  if (ts > sys.clock.now()) sys.clock.advance(ts - sys.clock.now());
  sys.pipeline.handle(deviceId, topic, Buffer.from(json), sys.clock.now());
}

async function finish(sys: System, until: number): Promise<void> {
  if (until > sys.clock.now()) sys.clock.advance(until - sys.clock.now());
  await sys.engine.stop();
  if (sys.rejected() > 0) throw new Error(`detection bench: ingest rejected ${sys.rejected()} messages`);
}

/**
 * `--mqtt`: the same replay, but every message is published by its device over MQTT (QoS 1) to the real embedded
 * broker (device authentication, ACL) that feeds ingest, one at a time: the virtual clock moves to the message's
 * time, the device publishes, and the next message waits until ingest has handed this one to the rules.
 */
async function mqttReplay(setup: Setup, home: Home, msgs: readonly Msg[], until: number): Promise<System> {
  const devices = home.sensors.map((s) => ({ id: deviceId(s), model: MODEL[s.kind], householdId: HOUSEHOLD }));
  const entrances = new Set(home.sensors.filter((s) => s.kind === 'front_door').map(deviceId));
  const secret = 'detection-bench-secret';
  const hash = await hashSecret(secret, { N: 1024, r: 8, p: 1 });
  const sys = await system(setup, home.start - 120_000, devices, entrances, hash);
  const base = loadConfig({ cwd: ROOT, env: {} }).mqtt;
  const config = { ...base, host: '127.0.0.1', port: await freePort(), wsPort: 0, tlsPort: 0, startupGraceS: 0 };
  const broker = new EmbeddedBroker({ config, directory: sys.directory, verifySecret, logger: sys.logger });
  const ingest = new IngestModule({ transport: broker, pipeline: sys.pipeline });
  await broker.start();
  await ingest.start();
  let handled = 0;
  let wake: (() => void) | undefined;
  const seen = () => {
    handled++;
    wake?.();
  };
  sys.bus.on('readings', seen);
  sys.bus.on('rejected', seen);
  const clients = new Map<string, MqttClient>();
  try {
    for (const d of devices) {
      const c = await mqtt.connectAsync(
        `mqtt://127.0.0.1:${broker.ports.tcp}`,
        { clientId: d.id, username: d.id, password: secret, reconnectPeriod: 0 },
        false,
      );
      clients.set(d.id, c);
    }
    for (const m of msgs) {
      if (m.ts > sys.clock.now()) sys.clock.advance(m.ts - sys.clock.now());
      const target = handled + 1;
      await clients.get(m.deviceId)!.publishAsync(`${config.baseTopic}/${m.deviceId}/telemetry`, m.json, { qos: 1 });
      while (handled < target) await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
  } finally {
    for (const c of clients.values()) await c.endAsync();
    await ingest.stop();
    await broker.stop();
  }
  await finish(sys, until);
  return sys;
}

/** One replay of a dataset home's messages through ingest and the rules, then the clock runs to `until`. */
async function replay(setup: Setup, home: Home, msgs: readonly Msg[], until: number): Promise<System> {
  const devices = home.sensors.map((s) => ({ id: deviceId(s), model: MODEL[s.kind], householdId: HOUSEHOLD }));
  const entrances = new Set(home.sensors.filter((s) => s.kind === 'front_door').map(deviceId));
  const sys = await system(setup, home.start - 120_000, devices, entrances);
  for (const m of msgs) deliver(sys, m.deviceId, 'telemetry', m.json, m.ts);
  await finish(sys, until);
  return sys;
}

function mergeOverrides(rules: RulesConfig, o: RuleOverrides | undefined): RulesConfig {
  if (!o) return rules;
  const out = { ...rules } as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) out[k] = { ...(rules as Record<string, object>)[k], ...v };
  return out as RulesConfig;
}

export async function runDetectionDetail(opts: DetectionOptions = {}): Promise<DetectionDetail> {
  const cfg = loadConfig({ cwd: ROOT, env: {} });
  const timezone = cfg.timezone;
  const dataDir = path.resolve(opts.dataDir ?? path.resolve(ROOT, '../shared/datasets/kasteren'));
  const home = loadHome(dataDir, timezone);
  const setup: Setup = {
    rules: mergeOverrides(cfg.rules, opts.overrides),
    timezone,
    colour: opts.colour ?? 'yellow',
    metrics: createMetrics({ defaultMetrics: false }),
  };
  const days = (home.end - home.start) / DAY;

  // false alarms: the whole unmodified stream
  const run = opts.mqtt ? mqttReplay : replay;
  const replayed = await run(setup, home, messages(home), home.end);
  const full = replayed.sink;
  const falseAlarms = full.raised.filter((r) => r.created && INACTIVITY_TYPES.has(r.type));

  // cut moments: after the first 7 days, while home
  const rng = mulberry32(opts.seed ?? 20_240_601);
  const nCuts = opts.cuts ?? 100;
  const from = home.start + 7 * DAY;
  if (from >= home.end) throw new Error(`${home.name}: shorter than 7 days`);
  const cuts: number[] = [];
  for (let tries = 0; cuts.length < nCuts; tries++) {
    if (tries > nCuts * 1000) throw new Error(`${home.name}: the resident is hardly ever home after day 7`);
    const c = Math.floor(from + rng() * (home.end - from));
    if (!home.away.some(([a, b]) => c >= a && c <= b)) cuts.push(c);
  }
  const results: DetectionDetail['cuts'] = [];
  for (const cut of cuts) {
    const { sink } = await run(setup, home, messages(home, cut), home.end);
    results.push(detected(sink, cut, home.end));
  }
  return {
    result: summary(home.name, days, falseAlarms.length / days, results),
    falseAlarms: falseAlarms.map(({ type, ts }) => ({ type, ts })),
    cuts: results,
    thresholds: learnedThresholds(replayed.home.inactivity, replayed.engine, home.end, timezone),
  };
}

/** The first inactivity-type alert at or after the cut (of one household, when given). */
function detected(
  sink: RecordingSink,
  cut: number,
  end: number,
  householdId?: string,
): DetectionDetail['cuts'][number] {
  const first = sink.raised
    .filter((r) => r.ts >= cut && INACTIVITY_TYPES.has(r.type) && (!householdId || r.householdId === householdId))
    .reduce<{ type: string; ts: number } | undefined>((m, r) => (!m || r.ts < m.ts ? r : m), undefined);
  return first
    ? { cut, detectedAt: first.ts, type: first.type, hours: (first.ts - cut) / HOUR }
    : { cut, hours: (end - cut) / HOUR };
}

function summary(
  home: string,
  days: number,
  perHouseholdDay: number,
  results: DetectionDetail['cuts'],
): DetectionResult {
  const hours = results.map((r) => r.hours).sort((a, b) => a - b);
  const mid = hours.length / 2;
  const median = hours.length % 2 ? hours[Math.floor(mid)]! : (hours[mid - 1]! + hours[mid]!) / 2;
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    home,
    days: r2(days),
    falseAlarmsPerHouseholdDay: Math.round(perHouseholdDay * 1000) / 1000,
    detection: {
      meanHours: r2(hours.reduce((a, b) => a + b, 0) / hours.length),
      medianHours: r2(median),
      maxHours: r2(hours[hours.length - 1]!),
      undetected: results.filter((r) => r.detectedAt === undefined).length,
      cuts: results.length,
    },
    anchor: ANCHOR,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Simulated homes (`--simulated <n>`): the seeded residents of simulators/ with the product's devices
// ---------------------------------------------------------------------------------------------------------------

/** A lone-elderly flat as the sample community equips it. */
const SIM_MODELS = [
  'native-water-meter',
  'native-electricity-meter',
  'native-gas-meter',
  'native-motion',
  'native-door-contact',
  'native-wristband',
] as const;
/** Monday 2 March 2026, 00:00 Shanghai */
const SIM_START = Date.UTC(2026, 2, 1, 16, 0);

export interface SimulatedOptions {
  households?: number;
  days?: number;
  cuts?: number;
  seed?: number;
  colour?: Colour;
  overrides?: RuleOverrides;
}

/**
 * Replays simulated households minute by minute (meters every 5 min, the PIR's motion periods and heartbeat, the
 * flat door on every outing, the wristband's heart rate). With a cut, the cut household's resident stops at that
 * moment: the PIR sees no more motion, the meters' totals freeze, the power falls to standby, the door stays shut.
 */
async function simReplay(setup: Setup, households: string[], end: number, cut?: { householdId: string; at: number }) {
  const specs = households.flatMap((h) =>
    SIM_MODELS.map((model) => ({ deviceId: `${h}-${model.slice('native-'.length)}`, model, householdId: h })),
  );
  const entrances = new Set(specs.filter((d) => d.model === 'native-door-contact').map((d) => d.deviceId));
  const sys = await system(
    setup,
    SIM_START - 60_000,
    specs.map((d) => ({ id: d.deviceId, model: d.model, householdId: d.householdId })),
    entrances,
  );
  const sims = specs.map((spec) => ({ spec, sim: createSimulator(spec, { intervalS: 300 }) }));
  const frozen = new Map<string, Record<string, number>>();
  const batch: { ts: number; deviceId: string; topic: 'telemetry' | 'event'; payload: Record<string, unknown> }[] = [];
  for (let t = SIM_START; t <= end; t += 60_000) {
    batch.length = 0;
    for (const { spec, sim } of sims) {
      for (const m of sim.advance(t)) {
        const payload = m.payload as Record<string, unknown>;
        batch.push({
          ts: typeof payload.ts === 'number' ? payload.ts : t,
          deviceId: spec.deviceId,
          topic: m.topic,
          payload,
        });
      }
    }
    batch.sort((a, b) => a.ts - b.ts);
    for (const m of batch) {
      let payload: Record<string, unknown> | undefined = m.payload;
      if (cut && m.deviceId.startsWith(`${cut.householdId}-`)) {
        if (m.ts <= cut.at) {
          for (const f of ['water_total_l', 'gas_total_m3'] as const) {
            if (typeof payload[f] === 'number') frozen.set(m.deviceId, { [f]: payload[f] as number });
          }
        } else payload = collapsed(m.deviceId, m.topic, payload, frozen);
      }
      if (payload) deliver(sys, m.deviceId, m.topic, JSON.stringify(payload), m.ts);
    }
  }
  await finish(sys, end);
  return sys;
}

/** What a device reports after its resident collapsed; undefined: nothing. */
function collapsed(
  deviceId: string,
  topic: 'telemetry' | 'event',
  payload: Record<string, unknown>,
  frozen: ReadonlyMap<string, Record<string, number>>,
): Record<string, unknown> | undefined {
  if (topic === 'event') return undefined;
  if (payload.contact_open === true) return undefined;
  const out = { ...payload };
  if ('motion' in out) out.motion = false;
  if ('power_w' in out) out.power_w = 6;
  Object.assign(out, frozen.get(deviceId));
  return out;
}

export async function runSimulatedDetection(opts: SimulatedOptions = {}): Promise<DetectionDetail> {
  const cfg = loadConfig({ cwd: ROOT, env: {} });
  const setup: Setup = {
    rules: mergeOverrides(cfg.rules, opts.overrides),
    timezone: cfg.timezone,
    colour: opts.colour ?? 'yellow',
    metrics: createMetrics({ defaultMetrics: false }),
  };
  const n = opts.households ?? 10;
  const days = opts.days ?? 28;
  const end = SIM_START + days * DAY;
  const households = Array.from({ length: n }, (_, i) => `h-sim-${String(i + 1).padStart(2, '0')}`);

  const full = await simReplay(setup, households, end);
  const falseAlarms = full.sink.raised.filter((r) => r.created && INACTIVITY_TYPES.has(r.type));

  const rng = mulberry32(opts.seed ?? 20_240_601);
  const nCuts = opts.cuts ?? 100;
  const from = SIM_START + 7 * DAY;
  const results: DetectionDetail['cuts'] = [];
  while (results.length < nCuts) {
    const householdId = households[Math.floor(rng() * n)]!;
    const at = Math.floor(from + rng() * (end - from));
    if (!ACTIVITY_EFFECTS[new Resident(residentSeed(householdId)).activityAt(at)].atHome) continue;
    const sys = await simReplay(setup, [householdId], end, { householdId, at });
    results.push(detected(sys.sink, at, end, householdId));
  }
  return {
    result: summary(`simulated-${n}`, days, falseAlarms.length / (n * days), results),
    falseAlarms: falseAlarms.map(({ type, ts }) => ({ type, ts })),
    cuts: results,
    thresholds: learnedThresholds(full.home.inactivity, full.engine, end, cfg.timezone, households[0]!),
  };
}

export async function runDetection(opts: DetectionOptions = {}): Promise<DetectionResult> {
  return (await runDetectionDetail(opts)).result;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const opts: DetectionOptions = {};
  const data = arg('data');
  if (data) opts.dataDir = path.resolve(process.cwd(), data);
  if (arg('cuts')) opts.cuts = Number(arg('cuts'));
  if (arg('seed')) opts.seed = Number(arg('seed'));
  if (arg('colour')) opts.colour = arg('colour') as Colour;
  if (arg('set')) opts.overrides = JSON.parse(arg('set')!) as RuleOverrides;
  if (process.argv.includes('--mqtt')) opts.mqtt = true;
  const started = Date.now();
  const simulated = arg('simulated');
  const detail = simulated
    ? await runSimulatedDetection({
        households: Number(simulated),
        ...(arg('days') ? { days: Number(arg('days')) } : {}),
        ...(opts.cuts !== undefined ? { cuts: opts.cuts } : {}),
        ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
        ...(opts.colour ? { colour: opts.colour } : {}),
        ...(opts.overrides ? { overrides: opts.overrides } : {}),
      })
    : await runDetectionDetail(opts);
  if (process.argv.includes('--verbose')) {
    const tz = loadConfig({ cwd: ROOT, env: {} }).timezone;
    const fmt = (ts: number) => new Date(ts + zoneOffset(ts, tz)).toISOString().slice(0, 16).replace('T', ' ');
    for (const f of detail.falseAlarms) process.stderr.write(`false alarm ${f.type} at ${fmt(f.ts)}\n`);
    for (const c of [...detail.cuts].sort((a, b) => a.cut - b.cut)) {
      process.stderr.write(
        `cut ${fmt(c.cut)} → ${c.detectedAt ? `${c.type} at ${fmt(c.detectedAt)}` : 'undetected'}: ${c.hours.toFixed(2)} h\n`,
      );
    }
    const t = detail.thresholds;
    process.stderr.write(`learned thresholds (h) per half hour from 00:00, weekday:  ${t.weekday}\n`);
    process.stderr.write(`learned thresholds (h) per half hour from 00:00, rest day: ${t.restDay}\n`);
    process.stderr.write(`wake-up threshold after dayStart (h): weekday ${t.wakeWeekday}, rest day ${t.wakeRestDay}\n`);
    process.stderr.write(`${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
  process.stdout.write(`${JSON.stringify(detail.result)}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
