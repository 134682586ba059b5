/**
 * ZenMeter EM3 single-phase electricity meter. It speaks its own units: energy register in Wh, power in kW, time
 * in epoch seconds; the decoder converts to the canonical kWh / W / ms. Tamper alarms come as short codes.
 *
 * telemetry: {"E":12345,"P":1.2,"ts":1700000000}, or an array of such records when it back-fills its load profile
 * event:     {"alm":"COVER","ts":1700000000}
 */
import type { CanonicalEvent, Telemetry } from '../src/contracts/canonical.ts';
import { decodeError, guarded, isRecord, MAINS_TIMEOUT_S, round, secondsToMs, unknownEvent } from './native.ts';
import type { DecodeResult, DeviceModel } from './types.ts';

/** `alm` codes → canonical events. All three are ways people steal electricity, hence `tamper`. */
export const ZENMETER_ALARM_CODES = {
  COVER: { meaning: 'terminal cover opened', type: 'tamper' },
  MAG: { meaning: 'strong magnetic field (interference with the measuring element)', type: 'tamper' },
  REVERSE: { meaning: 'reverse current (meter bypassed or wired backwards)', type: 'tamper' },
} as const satisfies Record<string, { meaning: string; type: CanonicalEvent['type'] }>;
export type ZenmeterAlarmCode = keyof typeof ZENMETER_ALARM_CODES;

/** The meter's own back-fill limit matches the canonical one, so a full load-profile page is accepted as is. */
const MAX_RECORDS = 500;

function decodeRecord(r: unknown, where: string): Telemetry | string {
  if (!isRecord(r)) return `${where} must be a JSON object like {"E":12345,"P":1.2,"ts":1700000000}`;
  const unknown = Object.keys(r).filter((k) => !['E', 'P', 'ts'].includes(k));
  if (unknown.length > 0) return `${where} has unknown keys: ${unknown.join(', ')}`;
  if (r.E === undefined && r.P === undefined) return `${where} has neither E (Wh) nor P (kW)`;
  const out: Telemetry = {};
  if (r.E !== undefined) {
    if (typeof r.E !== 'number' || !Number.isFinite(r.E) || r.E < 0) {
      return `${where}: E must be the energy register in Wh (a non-negative number), got ${JSON.stringify(r.E)}`;
    }
    out.energy_total_kwh = round(r.E / 1000, 6);
  }
  if (r.P !== undefined) {
    if (typeof r.P !== 'number' || !Number.isFinite(r.P) || r.P < 0) {
      return `${where}: P must be the active power in kW (a non-negative number), got ${JSON.stringify(r.P)}`;
    }
    out.power_w = round(r.P * 1000, 3);
  }
  if (r.ts !== undefined) {
    const ts = secondsToMs(r.ts, `${where}: ts`);
    if (typeof ts === 'string') return ts;
    out.ts = ts;
  }
  return out;
}

function decodeTelemetry(p: unknown): DecodeResult {
  if (Array.isArray(p)) {
    if (p.length === 0 || p.length > MAX_RECORDS) {
      return decodeError(`EM3 back-fill must hold 1..${MAX_RECORDS} records, got ${p.length}`);
    }
    const telemetry: Telemetry[] = [];
    for (const [i, r] of p.entries()) {
      const t = decodeRecord(r, `EM3 record ${i}`);
      if (typeof t === 'string') return decodeError(t);
      telemetry.push(t);
    }
    return { ok: true, telemetry };
  }
  const t = decodeRecord(p, 'EM3 telemetry');
  return typeof t === 'string' ? decodeError(t) : { ok: true, telemetry: [t] };
}

function decodeEvent(p: unknown): DecodeResult {
  if (!isRecord(p)) return decodeError('EM3 event must be a JSON object like {"alm":"COVER","ts":1700000000}');
  if (typeof p.alm !== 'string') return decodeError(`alm must be an alarm code string, got ${JSON.stringify(p.alm)}`);
  const unknown = Object.keys(p).filter((k) => !['alm', 'ts'].includes(k));
  if (unknown.length > 0) return decodeError(`EM3 event has unknown keys: ${unknown.join(', ')}`);
  const code = ZENMETER_ALARM_CODES[p.alm as ZenmeterAlarmCode];
  if (!code || !Object.hasOwn(ZENMETER_ALARM_CODES, p.alm)) {
    return unknownEvent(
      `unknown EM3 alarm code ${JSON.stringify(p.alm)} (known: ${Object.keys(ZENMETER_ALARM_CODES).join(', ')})`,
    );
  }
  if (p.ts === undefined) return { ok: true, events: [{ type: code.type }] };
  const ts = secondsToMs(p.ts, 'ts');
  if (typeof ts === 'string') return decodeError(ts);
  // The meter sends no sequence number; code + second is unique per meter and stable across QoS 1 redelivery.
  return { ok: true, events: [{ type: code.type, id: `${p.alm}-${p.ts}`, ts }] };
}

const T = 1_795_564_800; // 2026-11-25T08:00:00+08:00 in epoch seconds

export const ZENMETER_EM3: DeviceModel = {
  id: 'zenmeter-em3',
  vendor: 'zenmeter',
  family: 'elderly_home',
  kind: 'electricity_meter',
  description:
    'ZenMeter EM3 single-phase smart meter: energy register in Wh and active power in kW, epoch-second timestamps, ' +
    'load-profile back-fill as an array.',
  lastSeenTimeoutS: MAINS_TIMEOUT_S,
  installOn: ['household'],
  fields: ['energy_total_kwh', 'power_w'],
  events: ['tamper'],
  commands: [],
  decode: guarded((kind, payload) => (kind === 'telemetry' ? decodeTelemetry(payload) : decodeEvent(payload))),
  examples: {
    telemetry: { E: 3_120_420, P: 0.86, ts: T },
    event: [
      { alm: 'COVER', ts: T },
      { alm: 'MAG', ts: T + 60 },
      { alm: 'REVERSE', ts: T + 120 },
    ],
  },
};

export function zenmeterNotes(): string {
  const codes = Object.entries(ZENMETER_ALARM_CODES)
    .map(([code, c]) => `| \`${code}\` | ${c.meaning} | \`${c.type}\` |`)
    .join('\n');
  return [
    'Telemetry `{"E", "P", "ts"?}` or an array of up to 500 such records (load-profile back-fill): `E` energy ' +
      'register in Wh (→ `energy_total_kwh` ÷1000), `P` active power in kW (→ `power_w` ×1000), `ts` epoch seconds ' +
      '(→ ms). Unknown keys and negative values are rejected.',
    '',
    'Events `{"alm", "ts"?}`; the id is `<alm>-<ts>` when `ts` is given.',
    '',
    '| alm | meaning | canonical |',
    '|---|---|---|',
    codes,
  ].join('\n');
}
