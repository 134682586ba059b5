import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { getModel, MODELS } from '../devices/index.ts';
import type { DeviceModel } from '../devices/types.ts';
import {
  type CanonicalEvent,
  EVENT_TYPES,
  EventSchema,
  type Telemetry,
  TelemetryMessageSchema,
} from '../src/contracts/canonical.ts';
import {
  canSimulate,
  commandAck,
  createSimulator,
  residentSeed,
  type SimDeviceSpec,
  type SimMessage,
} from './devices.ts';
import { HOUR_MS, localDay, localHour, localMidnight, MINUTE_MS, Resident } from './resident.ts';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;
const ajv = new Ajv({ allErrors: true });
addFormats(ajv);
const validTelemetry = ajv.compile(TelemetryMessageSchema);
const validEvent = ajv.compile(EventSchema);

const DAY0 = localDay(Date.UTC(2026, 10, 25, 4));
const T0 = localMidnight(DAY0);
const HOUSEHOLD = 'h-0101';

function specFor(model: DeviceModel, deviceId = `sim-${model.id}`): SimDeviceSpec {
  const place = model.installOn[0];
  if (place === 'household') return { deviceId, model: model.id, householdId: HOUSEHOLD, buildingId: 'b-01' };
  if (place === 'building') return { deviceId, model: model.id, buildingId: 'b-01' };
  if (place === 'unit') return { deviceId, model: model.id, unitId: 'u-01-1' };
  return { deviceId, model: model.id, areaId: 'a-01' };
}

interface Decoded {
  at: number;
  telemetry: Telemetry[];
  events: CanonicalEvent[];
  raw: SimMessage;
}

/** Decodes through the model's own decoder and checks the canonical output against the schemas. */
function decode(model: DeviceModel, msg: SimMessage, at = 0): Decoded {
  const r = model.decode(msg.topic, msg.payload);
  if (!r.ok) throw new Error(`${model.id} ${msg.topic} ${JSON.stringify(msg.payload)}: ${r.reason}: ${r.message}`);
  for (const t of r.telemetry ?? []) {
    if (!validTelemetry(t))
      throw new Error(`${model.id} telemetry ${JSON.stringify(t)}: ${ajv.errorsText(validTelemetry.errors)}`);
  }
  for (const e of r.events ?? []) {
    if (!validEvent(e)) throw new Error(`${model.id} event ${JSON.stringify(e)}: ${ajv.errorsText(validEvent.errors)}`);
  }
  return { at, telemetry: r.telemetry ?? [], events: r.events ?? [], raw: msg };
}

/** Runs a simulator for `days` in steps of `stepMs` and decodes everything it publishes. */
function run(
  model: DeviceModel,
  days: number,
  opts: { events?: { sos?: boolean; fall?: boolean }; spec?: SimDeviceSpec; stepMs?: number } = {},
) {
  const spec = opts.spec ?? specFor(model);
  const sim = createSimulator(spec, {
    intervalS: 60,
    ...(opts.events ? { events: opts.events } : {}),
    doorUsers: [{ personId: `res-${HOUSEHOLD}`, seed: residentSeed(HOUSEHOLD) }],
  });
  const out: Decoded[] = [];
  const step = opts.stepMs ?? MINUTE_MS;
  for (let t = T0; t <= T0 + days * 86_400_000; t += step) {
    for (const m of sim.advance(t)) out.push(decode(model, m, t));
  }
  return { sim, out };
}

const tsOf = (d: Decoded) => {
  const ts = d.telemetry[0]?.ts ?? d.events[0]?.ts;
  return typeof ts === 'number' ? ts : d.at;
};

describe('every model has a simulator', () => {
  it.each(MODELS.map((m) => [m.id, m] as const))('%s', (_id, model) => {
    expect(canSimulate(model)).toBe(true);
  });
});

describe.each(MODELS.map((m) => [m.id, m] as const))('%s simulator', (_id, model) => {
  it('publishes a day of payloads in its own format that decode to canonical readings', () => {
    const { out } = run(model, 2, { events: { sos: true, fall: true } });
    const telemetry = out.filter((d) => d.raw.topic === 'telemetry');
    expect(telemetry.length).toBeGreaterThanOrEqual(2);
    for (const d of out) {
      for (const t of d.telemetry) expect(t.ts, 'device time').toEqual(expect.any(Number));
      for (const e of d.events) expect(e.id, 'event id for dedupe').toEqual(expect.any(String));
      // Vendor models must speak their own format, never canonical JSON.
      if (model.vendor !== 'native') {
        const canonicalShape = d.raw.topic === 'telemetry' ? validTelemetry(d.raw.payload) : validEvent(d.raw.payload);
        expect(canonicalShape, JSON.stringify(d.raw.payload)).toBe(false);
      } else {
        expect(d.raw.payload).toEqual(d.raw.topic === 'telemetry' ? d.telemetry[0] : d.events[0]);
      }
    }
    // Fields the model documents show up (battery-only fields may lag a day).
    const fields = new Set(out.flatMap((d) => d.telemetry.flatMap((t) => Object.keys(t))));
    for (const f of model.fields) expect(fields, f).toContain(f);
  });

  it('raises every documented event type on demand', () => {
    const sim = createSimulator(specFor(model), { intervalS: 60 });
    sim.advance(T0);
    for (const type of model.events) {
      const msgs = sim.trigger(type, T0 + HOUR_MS);
      const types = msgs.flatMap((m) => decode(model, m).events.map((e) => e.type));
      expect(types, type).toContain(type);
    }
    const foreign = EVENT_TYPES.find((t) => !model.events.includes(t));
    if (foreign) expect(() => sim.trigger(foreign, T0 + HOUR_MS)).toThrow(/does not raise/);
  });

  it('answers its commands and refuses others', () => {
    const sim = createSimulator(specFor(model), { intervalS: 60 });
    sim.advance(T0);
    for (const name of model.commands) {
      const outcome = sim.command({ id: 'c1', name, args: {} }, T0 + HOUR_MS);
      expect(outcome.accepted, name).toBe(true);
      expect(outcome.messages.length, name).toBeGreaterThan(0);
      for (const m of outcome.messages) decode(model, m);
    }
    const refused = sim.command({ id: 'c2', name: 'self_destruct' }, T0 + HOUR_MS);
    expect(refused.accepted).toBe(false);
    // the answer is the canonical cmd_ack, valid whatever the model (ingest takes it before the decoder)
    const yes = commandAck({ id: 'c1' }, { accepted: true });
    const no = commandAck({ id: 'c2' }, refused);
    expect(yes).toEqual({ topic: 'event', payload: { type: 'cmd_ack', id: 'ack-c1', ref: 'c1', ok: true } });
    expect(no.payload).toMatchObject({ type: 'cmd_ack', ref: 'c2', ok: false, message: expect.any(String) });
    for (const m of [yes, no]) expect(validEvent(m.payload), ajv.errorsText(validEvent.errors)).toBe(true);
  });

  it('reports its full state on demand (after a reconnect), but not before it has started', () => {
    const sim = createSimulator(specFor(model), { intervalS: 60 });
    expect(sim.report(T0)).toEqual([]);
    sim.advance(T0);
    const [msg] = sim.report(T0 + HOUR_MS);
    expect(msg?.topic).toBe('telemetry');
    expect(decode(model, msg as SimMessage).telemetry.length).toBe(1);
  });

  it('uses fresh event ids after a restart, so ingest dedupe does not swallow them', () => {
    if (model.events.length === 0) return;
    const type = model.events[0] as string;
    const id = (start: number) => {
      const sim = createSimulator(specFor(model), { intervalS: 60 });
      sim.advance(start);
      const ev = sim.trigger(type, start + 1000).find((m) => m.topic === 'event') as SimMessage;
      return decode(model, ev).events[0]?.id;
    };
    expect(id(T0)).toEqual(expect.any(String));
    expect(id(T0)).toBe(id(T0));
    expect(id(T0)).not.toBe(id(T0 + 60_000));
  });

  it('is deterministic', () => {
    const a = run(model, 1, { stepMs: 5 * MINUTE_MS }).out.map((d) => d.raw);
    const b = run(model, 1, { stepMs: 5 * MINUTE_MS }).out.map((d) => d.raw);
    expect(a).toEqual(b);
  });
});

describe('daily patterns', () => {
  const resident = new Resident(residentSeed(HOUSEHOLD));

  it('water: bursts by day, next to nothing at night', () => {
    const { out } = run(getModel('native-water-meter')!, 1);
    const total = (h: number) => {
      const at = T0 + h * HOUR_MS;
      const before = out.filter((d) => d.at <= at).at(-1);
      return before?.telemetry[0]?.water_total_l ?? 0;
    };
    expect(total(5) - total(0.5)).toBeLessThan(15); // a night toilet at most
    expect(total(21) - total(6)).toBeGreaterThan(60);
  });

  it('electricity: cooking and television show, the night is the fridge', () => {
    const { out } = run(getModel('zenmeter-em3')!, 1);
    const powerAt = (pred: (t: number) => boolean) => {
      const ps = out.filter((d) => pred(d.at)).map((d) => d.telemetry[0]?.power_w ?? 0);
      return ps.reduce((s, p) => s + p, 0) / Math.max(1, ps.length);
    };
    const night = powerAt((t) => localHour(t) >= 1 && localHour(t) < 4);
    const cooking = powerAt((t) => resident.activityAt(t) === 'cook');
    const tv = powerAt((t) => resident.activityAt(t) === 'tv');
    expect(night).toBeLessThan(80);
    expect(cooking).toBeGreaterThan(500);
    expect(tv).toBeGreaterThan(night + 80);
  });

  it('the flat door and the building door see the same market trip', () => {
    const contact = run(getModel('native-door-contact')!, 3).out;
    const door = run(getModel('hikv-ac100')!, 3).out;
    const outings = resident.startsBetween(T0, T0 + 3 * 86_400_000, 'out');
    expect(outings.length).toBeGreaterThan(0);
    for (const o of outings) {
      const opened = contact.find(
        (d) => d.telemetry[0]?.contact_open === true && Math.abs(tsOf(d) - o.start) < MINUTE_MS,
      );
      expect(opened, `door contact at ${new Date(o.start).toISOString()}`).toBeDefined();
      const passages = door
        .flatMap((d) => d.events)
        .filter((e) => 'personId' in e && e.personId === `res-${HOUSEHOLD}`);
      const leave = passages.find(
        (e) => typeof e.ts === 'number' && e.ts >= o.start && e.ts <= o.start + 3 * MINUTE_MS,
      );
      expect(leave, 'door access out').toMatchObject({ direction: 'out', granted: true });
      const back = passages.find((e) => typeof e.ts === 'number' && e.ts <= o.end && e.ts >= o.end - 3 * MINUTE_MS);
      expect(back, 'door access in').toMatchObject({ direction: 'in' });
    }
  });

  it('motion is busy by day and quiet at night', () => {
    const { out } = run(getModel('native-motion')!, 1);
    const changes = out.filter((d) => d.telemetry[0]?.motion === true);
    const night = changes.filter((d) => localHour(d.at) < 5).length;
    const day = changes.filter((d) => localHour(d.at) >= 7 && localHour(d.at) < 20).length;
    expect(night).toBeLessThanOrEqual(3);
    expect(day).toBeGreaterThan(15);
  });

  it('wristband: heart rate rises on the walk to the market and falls in sleep', () => {
    const { out } = run(getModel('acme-wb200')!, 2);
    const hr = (act: string) => {
      const xs = out
        .filter((d) => d.raw.topic === 'telemetry' && resident.activityAt(d.at) === act)
        .map((d) => d.telemetry[0]?.heart_rate_bpm)
        .filter((x): x is number => typeof x === 'number');
      return xs.reduce((s, x) => s + x, 0) / xs.length;
    };
    expect(hr('out')).toBeGreaterThan(hr('sleep') + 20);
    const batteries = out.map((d) => d.telemetry[0]?.battery_pct).filter((x): x is number => typeof x === 'number');
    expect(Math.abs((batteries.at(-1) ?? 0) - (batteries[0] ?? 0))).toBeLessThan(60);
  });

  it('SOS and falls only when asked', () => {
    for (const id of ['native-wristband', 'acme-wb200', 'native-emergency-button']) {
      const quiet = run(getModel(id)!, 14, { stepMs: 5 * MINUTE_MS }).out.flatMap((d) => d.events);
      expect(
        quiet.filter((e) => e.type === 'sos' || e.type === 'fall'),
        id,
      ).toEqual([]);
    }
    const noisy = run(getModel('native-wristband')!, 14, { stepMs: 5 * MINUTE_MS, events: { sos: true, fall: true } });
    const types = noisy.out.flatMap((d) => d.events.map((e) => e.type));
    expect(types).toContain('sos');
    expect(types).toContain('fall');
    expect(types.filter((t) => t === 'sos').length).toBeLessThan(10); // rare, even when asked
  });

  it('stairwell cut-off: evening charging attempts are cut, restore_power brings the power back', () => {
    const model = getModel('volt-cb2')!;
    const { sim, out } = run(model, 14, { stepMs: 5 * MINUTE_MS });
    const cuts = out.flatMap((d) => d.events).filter((e) => e.type === 'ebike_charging_cutoff');
    expect(cuts.length).toBeGreaterThan(0);
    for (const c of cuts) {
      const h = localHour(c.ts as number);
      expect(h).toBeGreaterThanOrEqual(19);
      expect(h).toBeLessThan(22.6);
      expect((c as unknown as { power_w: number }).power_w).toBeGreaterThan(100);
    }
    const now = T0 + 14 * 86_400_000 + HOUR_MS;
    const cut = sim.command({ id: 'c', name: 'cut_power' }, now);
    const cutPayload = cut.messages[0]?.payload as { ch: Array<{ st: number }> };
    expect(cutPayload.ch.every((c) => c.st & 0x02)).toBe(true);
    const restored = sim.command({ id: 'r', name: 'restore_power' }, now + 1000);
    const payload = restored.messages[0]?.payload as { ch: Array<{ st: number }> };
    expect(payload.ch.every((c) => (c.st & 0x02) === 0)).toBe(true);
  });

  it('charging area: ports busy in the evening, cabinet warms with the load', () => {
    const { out } = run(getModel('native-charging-area')!, 2);
    const mean = (pred: (h: number) => boolean, f: 'power_w' | 'temperature_c') => {
      const xs = out.filter((d) => pred(localHour(d.at))).map((d) => d.telemetry[0]?.[f] ?? 0);
      return xs.reduce((s, x) => s + x, 0) / xs.length;
    };
    expect(mean((h) => h >= 20 && h < 23, 'power_w')).toBeGreaterThan(1000);
    expect(mean((h) => h >= 9 && h < 10, 'power_w')).toBeLessThan(mean((h) => h >= 20 && h < 23, 'power_w') / 3);
    expect(out.every((d) => d.telemetry[0]?.smoke === false)).toBe(true);
  });

  it('battery sensors report once a day', () => {
    const { out } = run(getModel('native-smoke-detector')!, 3, { stepMs: 5 * MINUTE_MS });
    expect(out.length).toBeGreaterThanOrEqual(3); // power-on report plus one a day
    expect(out.length).toBeLessThanOrEqual(5);
  });
});
