/**
 * `npm run bench:rules`: the rules on a 60,000-household street.
 *   1. throughput: a simulated hour of telemetry from every device through the real engine (virtual clock)
 *   2. state: bytes of saved rule state per household
 *   3. deadline lateness on the wall clock under load: 20,000 deadlines due within 5 s while readings stream in
 * Options: BENCH_HOUSEHOLDS (default 60000).
 */
import { performance } from 'node:perf_hooks';
import { getModel } from '../../devices/index.ts';
import { MemoryAlertSink } from '../../src/alerts/memory-sink.ts';
import { Bus } from '../../src/bus.ts';
import { systemClock, VirtualClock } from '../../src/clock/clock.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { TelemetryField } from '../../src/contracts/canonical.ts';
import type { Reading } from '../../src/ingest/types.ts';
import { createLogger } from '../../src/logger.ts';
import { RulesEngine } from '../../src/rules/engine.ts';
import { MapDirectory } from '../../src/rules/harness.ts';
import { createRules } from '../../src/rules/index.ts';
import { MemoryScheduler } from '../../src/rules/scheduler.ts';
import type { HouseholdInfo } from '../../src/rules/types.ts';
import { COLOURS } from '../../src/registry/types.ts';
import { ROOT } from '../support/system.ts';

const HOUSEHOLDS = Number(process.env.BENCH_HOUSEHOLDS ?? 60_000);
const config = loadConfig({ env: {}, cwd: ROOT });
const log = createLogger('silent');

/** The kit of a lone-elderly home: (model, field, value generator) */
const KIT: [string, TelemetryField, (minute: number, i: number) => number | boolean][] = [
  ['native-motion', 'motion', (m, i) => (m + i) % 7 === 0],
  ['native-door-contact', 'contact_open', (m, i) => (m + i) % 53 === 0],
  ['native-water-meter', 'water_total_l', (m, i) => 1000 + i + Math.floor(m / 9) * 3],
  ['native-electricity-meter', 'power_w', (m) => (m % 30 < 5 ? 800 : 40)],
  ['native-gas-meter', 'gas_total_m3', (m, i) => 300 + i + Math.floor(m / 40) * 0.1],
  ['native-wristband', 'heart_rate_bpm', (m) => 60 + (m % 20)],
];

function build(clock: typeof systemClock | VirtualClock) {
  const households = new Map<string, HouseholdInfo>();
  const devices = new MapDirectory();
  const readingsOf: {
    id: string;
    model: string;
    field: TelemetryField;
    gen: (m: number, i: number) => number | boolean;
    placement: Reading['placement'];
  }[] = [];
  for (let i = 0; i < HOUSEHOLDS; i++) {
    const b = Math.floor(i / 37);
    const h: HouseholdInfo = {
      id: `h-${i}`,
      colour: COLOURS[i % 5]!,
      loneElderly: i % 16 === 0, // ~6 %
      atRisk: i % 160 === 0,
      gridId: `g-${Math.floor(i / 100)}`,
      buildingId: `b-${b}`,
      unitId: `u-${b}-${i % 2}`,
      communityId: `c-${Math.floor(i / 3000)}`,
    };
    households.set(h.id, h);
    if (!h.loneElderly) continue;
    const placement = {
      householdId: h.id,
      buildingId: h.buildingId,
      unitId: h.unitId,
      gridId: h.gridId,
      communityId: h.communityId,
      colour: h.colour,
    };
    for (const [model, field, gen] of KIT) {
      const id = `${model.slice(7, 10)}-${i}`;
      devices.map.set(id, {
        id,
        model,
        install: { kind: 'household', householdId: h.id },
        placement,
        drill: false,
        disabled: false,
        secretHash: '',
      });
      readingsOf.push({ id, model, field, gen, placement });
    }
  }
  const alerts = new MemoryAlertSink();
  const scheduler = new MemoryScheduler(clock);
  const rules = createRules();
  const bus = new Bus();
  const engine = new RulesEngine({
    bus,
    clock,
    scheduler,
    alerts,
    rules,
    config: { rules: config.rules, timezone: config.timezone },
    households: { get: (id) => households.get(id) },
    devices,
    kindOf: (m) => getModel(m)?.kind,
    logger: log,
  });
  return { households, devices, readingsOf, alerts, scheduler, rules, bus, engine };
}

async function throughput() {
  const clock = new VirtualClock(Date.UTC(2026, 2, 2, 0, 0)); // 08:00 Shanghai
  const s = build(clock);
  await s.engine.start();
  let readings = 0;
  const started = performance.now();
  for (let minute = 0; minute < 60; minute++) {
    clock.advance(60_000);
    const ts = clock.now();
    for (let k = 0; k < s.readingsOf.length; k++) {
      const d = s.readingsOf[k]!;
      s.bus.emit('readings', [
        {
          deviceId: d.id,
          model: d.model,
          field: d.field,
          ts,
          value: d.gen(minute, k),
          placement: d.placement,
          drill: false,
        },
      ]);
      readings++;
    }
  }
  await s.engine.idle();
  const seconds = (performance.now() - started) / 1000;
  const stateBytes = s.rules.reduce((n, r) => n + (r.snapshot ? JSON.stringify(r.snapshot()).length : 0), 0);
  const loneElderly = [...s.households.values()].filter((h) => h.loneElderly).length;
  await s.engine.stop();
  return {
    readings,
    seconds,
    rules: s.rules.length,
    stateBytes,
    loneElderly,
    alerts: s.alerts.alerts.length,
    devices: s.readingsOf.length,
  };
}

async function lateness() {
  const s = build(systemClock);
  await s.engine.start();
  const late: number[] = [];
  const now = Date.now();
  const N = 20_000;
  // a rule's deadlines, observed through the scheduler's fire hook
  s.scheduler.observeLateness = (t, lateMs) => {
    if (t.key.startsWith('bench|')) late.push(lateMs);
  };
  for (let i = 0; i < N; i++)
    s.scheduler.set({ key: `bench|${i}`, at: now + 500 + Math.floor((i / N) * 4500), rule: 'sos' });
  // keep the engine busy with readings while the deadlines come due
  const until = now + 5500;
  let minute = 0;
  while (Date.now() < until) {
    const ts = Date.now();
    for (let k = 0; k < 2000; k++) {
      const d = s.readingsOf[(minute * 2000 + k) % s.readingsOf.length]!;
      s.bus.emit('readings', [
        {
          deviceId: d.id,
          model: d.model,
          field: d.field,
          ts,
          value: d.gen(minute, k),
          placement: d.placement,
          drill: false,
        },
      ]);
    }
    minute++;
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 300));
  await s.engine.stop();
  late.sort((a, b) => a - b);
  const pct = (p: number) => late[Math.min(late.length - 1, Math.floor(p * late.length))] ?? Number.NaN;
  return { fired: late.length, of: N, p50: pct(0.5), p99: pct(0.99), max: late[late.length - 1] ?? Number.NaN };
}

async function main() {
  const t = await throughput();
  const l = await lateness();
  const rows: [string, string][] = [
    [
      `street: ${HOUSEHOLDS} households, ${t.loneElderly} lone-elderly homes, ${t.devices} sensors, ${t.rules} rules`,
      '',
    ],
    ['readings through the rules (virtual clock, 1 simulated hour)', `${t.readings} in ${t.seconds.toFixed(2)} s`],
    ['readings per second', `${Math.round(t.readings / t.seconds)}`],
    ['rule evaluations per second (readings × rules)', `${Math.round((t.readings * t.rules) / t.seconds)}`],
    [
      'saved rule state per household / per lone-elderly home',
      `${Math.round(t.stateBytes / HOUSEHOLDS)} B / ${Math.round(t.stateBytes / Math.max(1, t.loneElderly))} B`,
    ],
    ['alerts raised in the simulated hour', `${t.alerts}`],
    [`deadline lateness under load (${l.fired}/${l.of} fired)`, `p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\nGridWatch rules benchmark (${new Date().toISOString()}, Node ${process.version})\n`);
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
    process.exit(1);
  },
);
