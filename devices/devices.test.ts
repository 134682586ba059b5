import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { EventSchema, TelemetryMessageSchema } from '../src/contracts/canonical.ts';
import { ACME_EVENT_CODES, ACME_STATUS_BITS, ACME_WB200 } from './acme.ts';
import { DOCS_PATH, renderDevicesDoc } from './gen-docs.ts';
import { HIKV_AC100, HIKV_CODES } from './hikv.ts';
import { assertUniqueModelIds, getModel, MODELS, modelIds } from './index.ts';
import type { DecodeResult, DeviceModel } from './types.ts';
import { VOLT_ALARM_CODES, VOLT_CB2 } from './volt.ts';
import { ZENMETER_ALARM_CODES, ZENMETER_EM3 } from './zenmeter.ts';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;
const ajv = new Ajv({ allErrors: true });
addFormats(ajv);
const validTelemetry = ajv.compile(TelemetryMessageSchema);
const validEvent = ajv.compile(EventSchema);

/** Decodes and checks that everything produced is canonical; returns the result for further assertions. */
function decodeCanonical(model: DeviceModel, kind: 'telemetry' | 'event', payload: unknown) {
  const r = model.decode(kind, payload);
  if (!r.ok) throw new Error(`${model.id} rejected ${JSON.stringify(payload)}: ${r.reason}: ${r.message}`);
  for (const t of r.telemetry ?? []) {
    expect(
      validTelemetry(t),
      `${model.id} telemetry ${JSON.stringify(t)}: ${ajv.errorsText(validTelemetry.errors)}`,
    ).toBe(true);
    for (const f of Object.keys(t)) if (f !== 'ts') expect(model.fields, `${model.id} field ${f}`).toContain(f);
  }
  for (const e of r.events ?? []) {
    expect(validEvent(e), `${model.id} event ${JSON.stringify(e)}: ${ajv.errorsText(validEvent.errors)}`).toBe(true);
    expect(model.events, `${model.id} event type ${e.type}`).toContain(e.type);
  }
  return r as Extract<DecodeResult, { ok: true }>;
}

function failure(model: DeviceModel, kind: 'telemetry' | 'event', payload: unknown) {
  const r = model.decode(kind, payload);
  if (r.ok) throw new Error(`${model.id} accepted ${JSON.stringify(payload)}`);
  return r;
}

describe('registry', () => {
  it('rejects duplicate model ids', () => {
    expect(() => assertUniqueModelIds([ACME_WB200, VOLT_CB2, ACME_WB200])).toThrow(/duplicate.*acme-wb200/);
    expect(() => assertUniqueModelIds(MODELS)).not.toThrow();
  });

  it('holds every native kind under the ids the sample community config uses, and the vendor models', () => {
    const ids = modelIds();
    for (const id of [
      'native-water-meter',
      'native-electricity-meter',
      'native-gas-meter',
      'native-motion',
      'native-door-contact',
      'native-wristband',
      'native-emergency-button',
      'native-smoke-detector',
      'native-gas-detector',
      'native-door-access',
      'native-ebike-cutoff',
      'native-charging-area',
      'acme-wb200',
      'zenmeter-em3',
      'hikv-ac100',
      'volt-cb2',
    ]) {
      expect(ids).toContain(id);
      expect(getModel(id)?.id).toBe(id);
    }
    expect(getModel('nope')).toBeUndefined();
    expect(new Set(MODELS.filter((m) => m.vendor === 'native').map((m) => m.kind)).size).toBe(12);
  });

  it('gives each model a realistic last-seen budget and its commands', () => {
    const timeout = (id: string) => getModel(id)?.lastSeenTimeoutS;
    expect(timeout('native-wristband')).toBe(600);
    expect(timeout('acme-wb200')).toBe(600);
    expect(timeout('native-electricity-meter')).toBe(3600);
    expect(timeout('zenmeter-em3')).toBe(3600);
    expect(timeout('native-smoke-detector')).toBe(90_000);
    expect(timeout('native-door-contact')).toBe(90_000);
    for (const id of ['native-ebike-cutoff', 'volt-cb2']) {
      expect(getModel(id)?.commands).toEqual(expect.arrayContaining(['restore_power', 'cut_power']));
    }
    for (const id of ['native-door-access', 'hikv-ac100']) expect(getModel(id)?.commands).toContain('open_door');
    for (const id of ['native-wristband', 'acme-wb200']) expect(getModel(id)?.commands).toContain('locate');
    for (const m of MODELS) {
      expect(m.installOn.length, m.id).toBeGreaterThan(0);
      expect(m.lastSeenTimeoutS, m.id).toBeGreaterThanOrEqual(300);
    }
  });
});

describe.each(MODELS.map((m) => [m.id, m] as const))('%s examples', (_id, model) => {
  it('decode to canonical telemetry and events', () => {
    expect(model.examples.telemetry ?? model.examples.event, 'has examples').toBeDefined();
    if (model.examples.telemetry !== undefined) {
      const r = decodeCanonical(model, 'telemetry', model.examples.telemetry);
      expect((r.telemetry?.length ?? 0) + (r.events?.length ?? 0)).toBeGreaterThan(0);
    }
    for (const e of model.examples.event ?? []) {
      const r = decodeCanonical(model, 'event', e);
      expect((r.telemetry?.length ?? 0) + (r.events?.length ?? 0)).toBeGreaterThan(0);
    }
  });

  it('never throws on garbage', () => {
    const garbage: unknown[] = [
      null,
      undefined,
      0,
      'x',
      true,
      [],
      {},
      [null],
      { ts: 'x' },
      { evt: '1' },
      { ch: 'x' },
      { AccessControllerEvent: null },
      { AcsWorkStatus: { magneticStatus: 'open' } },
      Object.create(null),
      { toString: 1, constructor: 'x', __proto__: { evt: 1 } },
    ];
    for (const [i, g] of garbage.entries()) {
      for (const kind of ['telemetry', 'event'] as const) {
        const r = model.decode(kind, g);
        if (!r.ok) expect(r.message.length, `${kind} garbage #${i}`).toBeGreaterThan(0);
        // A decoder bug caught by the guard would still be a bug: the guard is a last resort, not the plan.
        if (!r.ok) expect(r.message, `${kind} garbage #${i}`).not.toMatch(/^decoder failed/);
      }
    }
  });
});

describe('native models', () => {
  it('pass payloads through unchanged', () => {
    const m = getModel('native-wristband')!;
    const t = { heart_rate_bpm: 70, ts: 1 };
    expect(m.decode('telemetry', t)).toEqual({ ok: true, telemetry: [t] });
    const backfill = [{ heart_rate_bpm: 70 }, { heart_rate_bpm: 71 }];
    expect(m.decode('telemetry', backfill)).toEqual({ ok: true, telemetry: backfill });
    const e = { type: 'sos', id: 'a' };
    expect(m.decode('event', e)).toEqual({ ok: true, events: [e] });
  });
});

describe('acme-wb200', () => {
  const m = ACME_WB200;

  it('maps every event code', () => {
    for (const [code, c] of Object.entries(ACME_EVENT_CODES)) {
      const r = decodeCanonical(m, 'event', { evt: Number(code), seq: 7, t: 1_700_000_000 });
      expect(r.events).toEqual([expect.objectContaining({ type: c.type, id: 'seq-7', ts: 1_700_000_000_000 })]);
    }
    const cancel = decodeCanonical(m, 'event', { evt: 3, seq: 8, ref: 7 });
    expect(cancel.events).toEqual([{ type: 'cancel', id: 'seq-8', ref: 'seq-7' }]);
    const low = decodeCanonical(m, 'event', { evt: 4, seq: 9, bat: 0.12 });
    expect(low.events).toEqual([{ type: 'low_battery', id: 'seq-9', battery_pct: 12 }]);
  });

  it('decodes the status byte: heart rate only while worn, offline alarms as events', () => {
    const worn = decodeCanonical(m, 'telemetry', { hr: 72, bat: 0.81, st: '0x04', t: 1_700_000_000 });
    expect(worn.telemetry).toEqual([{ heart_rate_bpm: 72, battery_pct: 81, ts: 1_700_000_000_000 }]);
    expect(worn.events).toBeUndefined();
    const off = decodeCanonical(m, 'telemetry', { hr: 0, bat: 0.5, st: '0x08' });
    expect(off.telemetry).toEqual([{ battery_pct: 50 }]);
    const alarms = decodeCanonical(m, 'telemetry', {
      hr: 120,
      bat: 0.5,
      st: `0x0${(ACME_STATUS_BITS.fall | ACME_STATUS_BITS.sos | ACME_STATUS_BITS.worn).toString(16)}`,
      t: 1_700_000_000,
    });
    expect(alarms.events).toEqual([
      { type: 'fall', id: 'st-fall-1700000000', ts: 1_700_000_000_000 },
      { type: 'sos', id: 'st-sos-1700000000', ts: 1_700_000_000_000 },
    ]);
  });

  it.each([
    ['telemetry', 'x', 'decode', /JSON object/],
    ['telemetry', { hr: 72, bat: 81, st: '0x04' }, 'decode', /fraction/],
    ['telemetry', { hr: 72, bat: 0.8, st: 4 }, 'decode', /hex string/],
    ['telemetry', { hr: 72, bat: 0.8, st: '0x14' }, 'decode', /reserved/],
    ['telemetry', { hr: 'fast', bat: 0.8, st: '0x04' }, 'decode', /heart rate/],
    ['telemetry', { hr: 72, bat: 0.8, st: '0x04', t: 1_700_000_000_000 }, 'decode', /milliseconds/],
    ['telemetry', { hr: 72, bat: 0.8, st: '0x04', temp: 36 }, 'decode', /unknown keys: temp/],
    ['event', { evt: 9, seq: 1 }, 'unknown_event', /unknown WB200 event code 9/],
    ['event', { evt: 2 }, 'decode', /seq/],
    ['event', { evt: 'SOS', seq: 1 }, 'decode', /integer event code/],
    ['event', { evt: 3, seq: 1, ref: 'x' }, 'decode', /ref/],
  ] as const)('rejects %s %j as %s', (kind, payload, reason, message) => {
    const r = failure(m, kind, payload);
    expect(r.reason).toBe(reason);
    expect(r.message).toMatch(message);
  });
});

describe('zenmeter-em3', () => {
  const m = ZENMETER_EM3;

  it('converts Wh, kW and seconds', () => {
    const r = decodeCanonical(m, 'telemetry', { E: 12345, P: 1.2, ts: 1_700_000_000 });
    expect(r.telemetry).toEqual([{ energy_total_kwh: 12.345, power_w: 1200, ts: 1_700_000_000_000 }]);
    expect(decodeCanonical(m, 'telemetry', { P: 0.3 }).telemetry).toEqual([{ power_w: 300 }]);
    const backfill = decodeCanonical(m, 'telemetry', [
      { E: 1000, ts: 1_700_000_000 },
      { E: 1500, ts: 1_700_000_900 },
    ]);
    expect(backfill.telemetry).toEqual([
      { energy_total_kwh: 1, ts: 1_700_000_000_000 },
      { energy_total_kwh: 1.5, ts: 1_700_000_900_000 },
    ]);
  });

  it('maps every alarm code', () => {
    for (const [code, c] of Object.entries(ZENMETER_ALARM_CODES)) {
      const r = decodeCanonical(m, 'event', { alm: code, ts: 1_700_000_000 });
      expect(r.events).toEqual([{ type: c.type, id: `${code}-1700000000`, ts: 1_700_000_000_000 }]);
    }
  });

  it.each([
    ['telemetry', { E: -1, P: 1 }, 'decode', /non-negative/],
    ['telemetry', { e: 1 }, 'decode', /unknown keys: e/],
    ['telemetry', {}, 'decode', /neither E/],
    ['telemetry', [], 'decode', /1\.\.500/],
    ['telemetry', [{ E: 1 }, 'x'], 'decode', /record 1/],
    ['telemetry', { E: 1, ts: '2026-01-01' }, 'decode', /epoch seconds/],
    ['event', { alm: 'FIRE', ts: 1 }, 'unknown_event', /unknown EM3 alarm code "FIRE"/],
    ['event', { alm: 'toString' }, 'unknown_event', /unknown EM3 alarm/],
    ['event', { alarm: 'COVER' }, 'decode', /alm must be/],
  ] as const)('rejects %s %j as %s', (kind, payload, reason, message) => {
    const r = failure(m, kind, payload);
    expect(r.reason).toBe(reason);
    expect(r.message).toMatch(message);
  });
});

describe('hikv-ac100', () => {
  const m = HIKV_AC100;
  const ev = (major: number, sub: number, extra: Record<string, unknown> = {}) => ({
    AccessControllerEvent: { majorEventType: major, subEventType: sub, time: '2026-11-25T08:00:00+08:00', ...extra },
  });
  const ts = Date.UTC(2026, 10, 25, 0, 0, 0);

  it('maps every code', () => {
    for (const [key, c] of Object.entries(HIKV_CODES)) {
      const [major, sub] = key.split('/').map(Number) as [number, number];
      const r = decodeCanonical(m, 'event', ev(major, sub, { serialNo: 5, openDuration: 90, cardNo: '123' }));
      if (c.kind === 'passage') {
        expect(r.events).toEqual([
          {
            type: 'door_access',
            id: 'sn-5',
            ts,
            personId: '123',
            direction: 'in',
            method: c.method,
            granted: c.granted,
          },
        ]);
      } else if (c.kind === 'door') {
        expect(r.telemetry).toEqual([{ contact_open: c.open, ts }]);
      } else {
        expect(r.events).toEqual([
          expect.objectContaining({
            type: c.type,
            id: 'sn-5',
            ts,
            ...(c.type === 'door_held_open' ? { seconds: 90 } : {}),
          }),
        ]);
      }
    }
  });

  it('takes direction from the reader and method from verifyMode', () => {
    const r = decodeCanonical(
      m,
      'event',
      ev(5, 1, { cardReaderNo: 2, verifyMode: 'qrCode', employeeNoString: 'res-1', cardNo: '99' }),
    );
    expect(r.events).toEqual([
      expect.objectContaining({ direction: 'out', method: 'qr', personId: 'res-1', granted: true }),
    ]);
    // The brief's own example: face-pass code with a card verify mode.
    const brief = decodeCanonical(m, 'event', ev(5, 75, { cardNo: '1234', verifyMode: 'card', doorNo: 1 }));
    expect(brief.events).toEqual([expect.objectContaining({ method: 'card', granted: true, direction: 'in' })]);
  });

  it('decodes the magnet status', () => {
    const status = (n: number) => ({ AcsWorkStatus: { magneticStatus: [n], time: '2026-11-25T08:00:00+08:00' } });
    expect(decodeCanonical(m, 'telemetry', status(0)).telemetry).toEqual([{ contact_open: false, ts }]);
    expect(decodeCanonical(m, 'telemetry', status(1)).telemetry).toEqual([{ contact_open: true, ts }]);
    expect(decodeCanonical(m, 'telemetry', status(3)).events).toEqual([{ type: 'tamper', id: `mag-${ts}`, ts }]);
  });

  it.each([
    ['event', { AccessControllerEvent: { majorEventType: 3, subEventType: 112 } }, 'unknown_event', /major 3 sub 112/],
    ['event', ev(5, 999), 'unknown_event', /0x3e7/],
    ['event', { majorEventType: 5, subEventType: 1 }, 'decode', /AccessControllerEvent/],
    ['event', ev(5, '1' as unknown as number), 'decode', /integers/],
    ['event', ev(5, 1, { time: '2026-11-25 08:00:00' }), 'decode', /ISO-8601 with a zone/],
    ['event', ev(5, 1, { time: '2026-11-25T08:00:00' }), 'decode', /zone/],
    ['event', ev(5, 1, { verifyMode: 'fingerprint' }), 'decode', /verifyMode/],
    ['event', ev(5, 1, { cardReaderNo: 3 }), 'decode', /cardReaderNo/],
    ['event', ev(5, 28), 'decode', /openDuration/],
    ['event', ev(5, 1, { serialNo: -1 }), 'decode', /serialNo/],
    ['telemetry', { AcsWorkStatus: { magneticStatus: [0, 1] } }, 'decode', /one door/],
    ['telemetry', { AcsWorkStatus: { magneticStatus: [7] } }, 'decode', /magneticStatus 7/],
    ['telemetry', { doorStatus: 'open' }, 'decode', /AcsWorkStatus/],
  ] as const)('rejects %s %j as %s', (kind, payload, reason, message) => {
    const r = failure(m, kind, payload);
    expect(r.reason).toBe(reason);
    expect(r.message).toMatch(message);
  });
});

describe('volt-cb2', () => {
  const m = VOLT_CB2;

  it('sums channel power and converts seconds', () => {
    const r = decodeCanonical(m, 'telemetry', {
      ch: [
        { p: 10.5, st: 0 },
        { p: 2, st: 2 },
      ],
      tmp: 19,
      ts: 1_700_000_000,
    });
    expect(r.telemetry).toEqual([{ power_w: 12.5, temperature_c: 19, ts: 1_700_000_000_000 }]);
  });

  it('maps every alarm code', () => {
    const events = Object.keys(VOLT_ALARM_CODES).map((alarm) => {
      const r = decodeCanonical(m, 'event', {
        ch: [
          { p: 230.5, st: 3 },
          { p: 8, st: 0 },
        ],
        tmp: 71,
        alarm,
        seq: 4,
        ts: 1_700_000_000,
      });
      return r.events?.[0];
    });
    expect(events).toEqual([
      { type: 'ebike_charging_cutoff', id: 'seq-4', ts: 1_700_000_000_000, power_w: 230.5 },
      { type: 'overtemp', id: 'seq-4', ts: 1_700_000_000_000, temperature_c: 71 },
      { type: 'tamper', id: 'seq-4', ts: 1_700_000_000_000 },
    ]);
    // The brief's example shape decodes too.
    expect(decodeCanonical(m, 'event', { ch: [{ p: 230.5, st: 1 }], alarm: 'CHG_CUT' }).events).toEqual([
      { type: 'ebike_charging_cutoff', power_w: 230.5 },
    ]);
  });

  it.each([
    ['event', { ch: [{ p: 1, st: 1 }], alarm: 'SMOKE' }, 'unknown_event', /unknown CB2 alarm code "SMOKE"/],
    ['event', { ch: [{ p: 1, st: 1 }] }, 'decode', /alarm code/],
    ['event', { alarm: 'CHG_CUT' }, 'decode', /CHG_CUT needs ch/],
    ['event', { alarm: 'OVER_TEMP', ch: [{ p: 0, st: 4 }] }, 'decode', /OVER_TEMP needs tmp/],
    ['telemetry', { ch: [{ p: 1, st: 1 }], alarm: 'CHG_CUT' }, 'decode', /event topic/],
    ['telemetry', { ch: [] }, 'decode', /1\.\.4 channels/],
    ['telemetry', { ch: [{ p: -3, st: 0 }] }, 'decode', /ch\[0\]\.p/],
    ['telemetry', { ch: [{ p: 3, st: 0x10 }] }, 'decode', /reserved/],
    ['telemetry', { ch: [{ p: 3, st: '0x01' }] }, 'decode', /status byte/],
    ['telemetry', { ch: [{ p: 3, st: 0 }], tmp: 'hot' }, 'decode', /tmp/],
    ['telemetry', { ch: [{ p: 3, st: 0 }], volts: 230 }, 'decode', /unknown keys: volts/],
  ] as const)('rejects %s %j as %s', (kind, payload, reason, message) => {
    const r = failure(m, kind, payload);
    expect(r.reason).toBe(reason);
    expect(r.message).toMatch(message);
  });
});

describe('docs/devices.md', () => {
  it('equals the text generated from MODELS (run: npx tsx devices/gen-docs.ts)', () => {
    const committed = readFileSync(DOCS_PATH, 'utf8');
    expect(committed).toBe(renderDevicesDoc());
  });

  it('documents every model with a payload per topic', () => {
    const doc = renderDevicesDoc();
    for (const m of MODELS) expect(doc).toContain(`## \`${m.id}\``);
    expect(doc).not.toContain('rejected:');
    for (const topic of ['telemetry', 'event', 'status', 'cmd']) expect(doc).toContain(`gridwatch/<deviceId>/${topic}`);
  });

  it('documents the command answer as a canonical cmd_ack event', () => {
    const doc = renderDevicesDoc();
    const acks = [...doc.matchAll(/^(\{"type":"cmd_ack".*\})$/gm)].map((m) => JSON.parse(m[1]!) as unknown);
    expect(acks.length).toBeGreaterThan(0);
    for (const a of acks) expect(validEvent(a), ajv.errorsText(validEvent.errors)).toBe(true);
  });
});
