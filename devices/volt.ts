/**
 * VOLT CB2 stairwell socket cut-off box (楼道智能断电装置) with one to four sockets ("channels"). It reports one
 * frame shape on both topics: per-channel power and a status byte, the box temperature, and on the event topic an
 * alarm code. The box recognises an e-bike charger by its load signature and opens the relay.
 *
 * telemetry: {"ch":[{"p":0,"st":2},{"p":12.5,"st":0}],"tmp":18.5,"ts":1700000000}
 * event:     {"ch":[{"p":230.5,"st":3}],"alarm":"CHG_CUT","seq":17,"ts":1700000000}
 */
import type { CanonicalEvent } from '../src/contracts/canonical.ts';
import {
  canonicalEvent,
  decodeError,
  guarded,
  isRecord,
  MAINS_TIMEOUT_S,
  round,
  secondsToMs,
  unknownEvent,
} from './native.ts';
import type { DecodeResult, DeviceModel } from './types.ts';

/** Bits of a channel's `st`. Bits 4–7 are reserved and must be zero. */
export const VOLT_STATUS_BITS = {
  /** the load looks like an e-bike charger */
  charger_load: 0x01,
  /** relay open: the socket has no power (cut by the box or by command) */
  relay_open: 0x02,
  /** the socket's thermal sensor is over its limit */
  over_temp: 0x04,
  /** the socket cover is open */
  cover_open: 0x08,
} as const;
const RESERVED_BITS = 0xf0;

/** `alarm` codes → canonical events. */
export const VOLT_ALARM_CODES = {
  CHG_CUT: { meaning: 'e-bike charger detected, power cut', type: 'ebike_charging_cutoff' },
  OVER_TEMP: { meaning: 'box over temperature', type: 'overtemp' },
  COVER_OPEN: { meaning: 'box or socket cover opened', type: 'tamper' },
} as const satisfies Record<string, { meaning: string; type: CanonicalEvent['type'] }>;
export type VoltAlarmCode = keyof typeof VOLT_ALARM_CODES;

export const VOLT_MAX_CHANNELS = 4;

interface Channel {
  p: number;
  st: number;
}

function parseChannels(ch: unknown): Channel[] | string {
  if (!Array.isArray(ch) || ch.length < 1 || ch.length > VOLT_MAX_CHANNELS) {
    return `ch must be an array of 1..${VOLT_MAX_CHANNELS} channels like {"p":230.5,"st":1}, got ${JSON.stringify(ch)}`;
  }
  const out: Channel[] = [];
  for (const [i, c] of ch.entries()) {
    if (!isRecord(c)) return `ch[${i}] must be an object like {"p":230.5,"st":1}`;
    if (typeof c.p !== 'number' || !Number.isFinite(c.p) || c.p < 0) {
      return `ch[${i}].p must be the socket power in W (a non-negative number), got ${JSON.stringify(c.p)}`;
    }
    if (typeof c.st !== 'number' || !Number.isInteger(c.st) || c.st < 0 || c.st > 0xff) {
      return `ch[${i}].st must be a status byte (integer 0..255), got ${JSON.stringify(c.st)}`;
    }
    if (c.st & RESERVED_BITS) return `ch[${i}].st ${c.st} has reserved bits set (only 0x01..0x08 are defined)`;
    out.push({ p: c.p, st: c.st });
  }
  return out;
}

function checkKeys(p: Record<string, unknown>, allowed: string[], what: string): string | undefined {
  const unknown = Object.keys(p).filter((k) => !allowed.includes(k));
  return unknown.length > 0 ? `${what} has unknown keys: ${unknown.join(', ')}` : undefined;
}

function parseTmp(v: unknown): number | string {
  if (typeof v !== 'number' || !(v >= -50 && v <= 500)) {
    return `tmp must be the box temperature in °C (-50..500), got ${JSON.stringify(v)}`;
  }
  return v;
}

function decodeTelemetry(p: unknown): DecodeResult {
  if (!isRecord(p)) return decodeError('CB2 telemetry must be a JSON object like {"ch":[{"p":0,"st":0}],"tmp":18.5}');
  // An alarm is an incident and needs QoS 1 and a seq; in a telemetry frame it would be lost or counted twice.
  if (p.alarm !== undefined) return decodeError('CB2 alarms belong on the event topic, not in telemetry');
  const bad = checkKeys(p, ['ch', 'tmp', 'ts'], 'CB2 telemetry');
  if (bad) return decodeError(bad);
  const ch = parseChannels(p.ch);
  if (typeof ch === 'string') return decodeError(ch);
  const reading: { power_w: number; temperature_c?: number; ts?: number } = {
    power_w: round(
      ch.reduce((s, c) => s + c.p, 0),
      3,
    ),
  };
  if (p.tmp !== undefined) {
    const t = parseTmp(p.tmp);
    if (typeof t === 'string') return decodeError(t);
    reading.temperature_c = t;
  }
  if (p.ts !== undefined) {
    const ts = secondsToMs(p.ts, 'ts');
    if (typeof ts === 'string') return decodeError(ts);
    reading.ts = ts;
  }
  return { ok: true, telemetry: [reading] };
}

function decodeEvent(p: unknown): DecodeResult {
  if (!isRecord(p)) return decodeError('CB2 event must be a JSON object like {"ch":[...],"alarm":"CHG_CUT"}');
  if (typeof p.alarm !== 'string') {
    return decodeError(`CB2 event needs an alarm code string, got ${JSON.stringify(p.alarm)}`);
  }
  const bad = checkKeys(p, ['ch', 'tmp', 'ts', 'alarm', 'seq'], 'CB2 event');
  if (bad) return decodeError(bad);
  if (!Object.hasOwn(VOLT_ALARM_CODES, p.alarm)) {
    return unknownEvent(
      `unknown CB2 alarm code ${JSON.stringify(p.alarm)} (known: ${Object.keys(VOLT_ALARM_CODES).join(', ')})`,
    );
  }
  const alarm = p.alarm as VoltAlarmCode;
  const base: { id?: string; ts?: number } = {};
  if (p.ts !== undefined) {
    const ts = secondsToMs(p.ts, 'ts');
    if (typeof ts === 'string') return decodeError(ts);
    base.ts = ts;
  }
  if (p.seq !== undefined) {
    if (typeof p.seq !== 'number' || !Number.isInteger(p.seq) || p.seq < 0) {
      return decodeError(`seq must be a non-negative integer, got ${JSON.stringify(p.seq)}`);
    }
    base.id = `seq-${p.seq}`;
  } else if (typeof p.ts === 'number') {
    base.id = `${alarm}-${p.ts}`;
  }
  const ch = p.ch === undefined ? undefined : parseChannels(p.ch);
  if (typeof ch === 'string') return decodeError(ch);
  const tmp = p.tmp === undefined ? undefined : parseTmp(p.tmp);
  if (typeof tmp === 'string') return decodeError(tmp);
  switch (alarm) {
    case 'CHG_CUT': {
      if (!ch) return decodeError('CHG_CUT needs ch: the load that was cut');
      // The frame is a snapshot of the load at the moment of the cut; the charger channels are what was cut.
      const chargers = ch.filter((c) => c.st & VOLT_STATUS_BITS.charger_load);
      const power = (chargers.length > 0 ? chargers : ch).reduce((s, c) => s + c.p, 0);
      return {
        ok: true,
        events: [canonicalEvent({ type: 'ebike_charging_cutoff', ...base, power_w: round(power, 3) })],
      };
    }
    case 'OVER_TEMP':
      if (tmp === undefined) return decodeError('OVER_TEMP needs tmp: the box temperature in °C');
      return { ok: true, events: [canonicalEvent({ type: 'overtemp', ...base, temperature_c: tmp })] };
    case 'COVER_OPEN':
      return { ok: true, events: [{ type: 'tamper', ...base }] };
  }
}

const T = 1_795_600_800; // 2026-11-25T18:00:00+08:00 in epoch seconds: evening, when people charge

export const VOLT_CB2: DeviceModel = {
  id: 'volt-cb2',
  vendor: 'volt',
  family: 'ebike',
  kind: 'ebike_cutoff',
  description:
    'VOLT CB2 stairwell cut-off box, 1–4 sockets: per-socket power and status byte, box temperature; cuts e-bike ' +
    'chargers and reports CHG_CUT / OVER_TEMP / COVER_OPEN alarms.',
  lastSeenTimeoutS: MAINS_TIMEOUT_S,
  installOn: ['unit', 'building'],
  fields: ['power_w', 'temperature_c'],
  events: ['ebike_charging_cutoff', 'overtemp', 'tamper'],
  commands: ['restore_power', 'cut_power'],
  decode: guarded((kind, payload) => (kind === 'telemetry' ? decodeTelemetry(payload) : decodeEvent(payload))),
  examples: {
    telemetry: {
      ch: [
        { p: 0, st: 0 },
        { p: 12.5, st: 0 },
      ],
      tmp: 18.5,
      ts: T,
    },
    event: [
      { ch: [{ p: 230.5, st: 3 }], alarm: 'CHG_CUT', seq: 17, ts: T },
      { ch: [{ p: 0, st: 6 }], tmp: 72.5, alarm: 'OVER_TEMP', seq: 18, ts: T + 30 },
      { alarm: 'COVER_OPEN', seq: 19, ts: T + 60 },
    ],
  },
};

export function voltNotes(): string {
  const bits = Object.entries(VOLT_STATUS_BITS)
    .map(([name, bit]) => `| \`0x${bit.toString(16).padStart(2, '0')}\` | ${name} |`)
    .join('\n');
  const codes = Object.entries(VOLT_ALARM_CODES)
    .map(([code, c]) => `| \`${code}\` | ${c.meaning} | \`${c.type}\` |`)
    .join('\n');
  return [
    `Frames \`{"ch": [{"p", "st"}, …], "tmp"?, "ts"?, "alarm"?, "seq"?}\` with 1..${VOLT_MAX_CHANNELS} channels: ` +
      '`p` socket power in W, `st` status byte (integer; reserved bits `0xf0` must be zero), `tmp` box temperature ' +
      'in °C, `ts` epoch seconds (→ ms). Telemetry: `power_w` is the sum over channels, `temperature_c` is `tmp`; ' +
      'an `alarm` in a telemetry frame is rejected. Events: `alarm` is required, `seq` becomes the id `seq-<seq>`; ' +
      'CHG_CUT needs `ch` (`power_w` = the charger-load channels), OVER_TEMP needs `tmp`.',
    '',
    '| bit | meaning |',
    '|---|---|',
    bits,
    '',
    '| alarm | meaning | canonical |',
    '|---|---|---|',
    codes,
  ].join('\n');
}
