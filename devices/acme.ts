/**
 * ACME WB200 wristband. Its firmware packs state into a status byte and numbers its alarms, so the decoder maps
 * both onto canonical readings and events. The code tables below are the single source for the decoder, the
 * simulator and docs/devices.md.
 *
 * telemetry: {"hr":72,"bat":0.81,"st":"0x04","t":1700000000}
 *   hr  heart rate (bpm), optional (absent while the optical sensor settles)
 *   bat battery as a fraction 0..1
 *   st  status byte as a hex string, bits in ACME_STATUS_BITS
 *   t   epoch seconds, optional
 * event:     {"evt":2,"seq":123,"t":1700000000}, plus "ref" (cancel: seq of the cancelled fall) and "bat" (low battery)
 */
import type { CanonicalEvent, Telemetry } from '../src/contracts/canonical.ts';
import {
  canonicalEvent,
  decodeError,
  guarded,
  isRecord,
  round,
  secondsToMs,
  unknownEvent,
  WRISTBAND_TIMEOUT_S,
} from './native.ts';
import type { DecodeResult, DeviceModel } from './types.ts';

/** Bits of the `st` status byte. Bits 4–7 are reserved and must be zero. */
export const ACME_STATUS_BITS = {
  /** a fall alarm raised while offline and not yet delivered as an `evt` */
  fall: 0x01,
  /** an SOS raised while offline and not yet delivered as an `evt` */
  sos: 0x02,
  /** skin contact: heart rate is only meaningful while worn */
  worn: 0x04,
  /** on its charger (explains why it is not worn) */
  charging: 0x08,
} as const;
const RESERVED_BITS = 0xf0;

/** `evt` codes → canonical event types. Anything else is `unknown_event`. */
export const ACME_EVENT_CODES = {
  1: { name: 'FALL', type: 'fall' },
  2: { name: 'SOS', type: 'sos' },
  3: { name: 'FALL_CANCEL', type: 'cancel' },
  4: { name: 'LOW_BAT', type: 'low_battery' },
  5: { name: 'STRAP_OPEN', type: 'tamper' },
} as const satisfies Record<number, { name: string; type: CanonicalEvent['type'] }>;
export type AcmeEventCode = keyof typeof ACME_EVENT_CODES;

/** The canonical event id for a WB200 sequence number: the band retransmits with the same seq, so ingest dedupes. */
export function acmeEventId(seq: number): string {
  return `seq-${seq}`;
}

function parseStatus(st: unknown): number | string {
  if (typeof st !== 'string' || !/^0x[0-9a-fA-F]{1,2}$/.test(st)) {
    return `st must be a status byte as a hex string like "0x04", got ${JSON.stringify(st)}`;
  }
  const v = Number.parseInt(st.slice(2), 16);
  if (v & RESERVED_BITS) return `st ${st} has reserved bits set (only 0x01 fall, 0x02 SOS, 0x04 worn, 0x08 charging)`;
  return v;
}

function decodeTelemetry(p: unknown): DecodeResult {
  if (!isRecord(p)) return decodeError('WB200 telemetry must be a JSON object like {"hr":72,"bat":0.81,"st":"0x04"}');
  const unknown = Object.keys(p).filter((k) => !['hr', 'bat', 'st', 't'].includes(k));
  if (unknown.length > 0) return decodeError(`WB200 telemetry has unknown keys: ${unknown.join(', ')}`);
  const st = parseStatus(p.st);
  if (typeof st === 'string') return decodeError(st);
  if (typeof p.bat !== 'number' || !(p.bat >= 0 && p.bat <= 1)) {
    return decodeError(`bat must be the battery as a fraction 0..1, got ${JSON.stringify(p.bat)}`);
  }
  if (p.hr !== undefined && (typeof p.hr !== 'number' || !(p.hr >= 0 && p.hr <= 300))) {
    return decodeError(`hr must be a heart rate in bpm (0..300), got ${JSON.stringify(p.hr)}`);
  }
  let ts: number | undefined;
  if (p.t !== undefined) {
    const t = secondsToMs(p.t, 't');
    if (typeof t === 'string') return decodeError(t);
    ts = t;
  }
  const reading: Telemetry = { battery_pct: round(p.bat * 100, 1) };
  // A band lying on the nightstand reads 0 or noise; passing that on would look like a cardiac arrest.
  if (st & ACME_STATUS_BITS.worn && typeof p.hr === 'number') reading.heart_rate_bpm = p.hr;
  if (ts !== undefined) reading.ts = ts;
  const events: CanonicalEvent[] = [];
  // Alarm bits are alarms queued while the band was offline. With `t` the id is stable, so a band that repeats the
  // report until it is acknowledged still raises the alarm once.
  for (const [bit, type] of [
    [ACME_STATUS_BITS.fall, 'fall'],
    [ACME_STATUS_BITS.sos, 'sos'],
  ] as const) {
    if (st & bit) events.push({ type, ...(ts !== undefined ? { id: `st-${type}-${ts / 1000}`, ts } : {}) });
  }
  return events.length > 0 ? { ok: true, telemetry: [reading], events } : { ok: true, telemetry: [reading] };
}

function decodeEvent(p: unknown): DecodeResult {
  if (!isRecord(p)) return decodeError('WB200 event must be a JSON object like {"evt":2,"seq":123,"t":1700000000}');
  if (typeof p.evt !== 'number' || !Number.isInteger(p.evt)) {
    return decodeError(`evt must be an integer event code, got ${JSON.stringify(p.evt)}`);
  }
  if (typeof p.seq !== 'number' || !Number.isInteger(p.seq) || p.seq < 0 || p.seq > 0xffff) {
    return decodeError(`seq must be an integer 0..65535, got ${JSON.stringify(p.seq)}`);
  }
  const code = ACME_EVENT_CODES[p.evt as AcmeEventCode];
  if (!code) {
    return unknownEvent(`unknown WB200 event code ${p.evt} (known: ${Object.keys(ACME_EVENT_CODES).join(', ')})`);
  }
  const base: { id: string; ts?: number } = { id: acmeEventId(p.seq) };
  if (p.t !== undefined) {
    const t = secondsToMs(p.t, 't');
    if (typeof t === 'string') return decodeError(t);
    base.ts = t;
  }
  switch (code.type) {
    case 'cancel': {
      if (p.ref === undefined) return { ok: true, events: [{ type: 'cancel', ...base }] };
      if (typeof p.ref !== 'number' || !Number.isInteger(p.ref) || p.ref < 0 || p.ref > 0xffff) {
        return decodeError(`ref must be the seq (0..65535) of the cancelled fall, got ${JSON.stringify(p.ref)}`);
      }
      return { ok: true, events: [canonicalEvent({ type: 'cancel', ...base, ref: acmeEventId(p.ref) })] };
    }
    case 'low_battery': {
      if (p.bat === undefined) return { ok: true, events: [{ type: 'low_battery', ...base }] };
      if (typeof p.bat !== 'number' || !(p.bat >= 0 && p.bat <= 1)) {
        return decodeError(`bat must be the battery as a fraction 0..1, got ${JSON.stringify(p.bat)}`);
      }
      return {
        ok: true,
        events: [canonicalEvent({ type: 'low_battery', ...base, battery_pct: round(p.bat * 100, 1) })],
      };
    }
    default:
      return { ok: true, events: [{ type: code.type, ...base }] };
  }
}

const T = 1_795_564_800; // 2026-11-25T08:00:00+08:00 in epoch seconds, as the band sends it

export const ACME_WB200: DeviceModel = {
  id: 'acme-wb200',
  vendor: 'acme',
  family: 'elderly_home',
  kind: 'wristband',
  description:
    'ACME WB200 wristband: heart rate, battery fraction and a status byte (fall / SOS / worn / charging); numbered ' +
    'alarm codes with a sequence number.',
  lastSeenTimeoutS: WRISTBAND_TIMEOUT_S,
  installOn: ['household'],
  fields: ['heart_rate_bpm', 'battery_pct'],
  events: ['fall', 'sos', 'cancel', 'low_battery', 'tamper'],
  commands: ['locate'],
  decode: guarded((kind, payload) => (kind === 'telemetry' ? decodeTelemetry(payload) : decodeEvent(payload))),
  examples: {
    telemetry: { hr: 72, bat: 0.81, st: '0x04', t: T },
    event: [
      { evt: 1, seq: 122, t: T },
      { evt: 2, seq: 123, t: T },
      { evt: 3, seq: 124, ref: 122, t: T + 15 },
      { evt: 4, seq: 125, bat: 0.14, t: T },
      { evt: 5, seq: 126, t: T },
    ],
  },
};

/** Markdown for docs/devices.md, built from the tables above so the docs cannot drift from the decoder. */
export function acmeNotes(): string {
  const bits = Object.entries(ACME_STATUS_BITS)
    .map(([name, bit]) => `| \`0x${bit.toString(16).padStart(2, '0')}\` | ${name} |`)
    .join('\n');
  const codes = Object.entries(ACME_EVENT_CODES)
    .map(([code, c]) => `| ${code} | ${c.name} | \`${c.type}\` |`)
    .join('\n');
  return [
    'Telemetry `{"hr", "bat", "st", "t"?}`: `hr` bpm (dropped unless the worn bit is set, so a band on the ' +
      'nightstand never reads as a stopped heart), `bat` a fraction 0..1 (→ `battery_pct` ×100), `st` the status ' +
      'byte as a hex string, `t` epoch seconds (→ ms). Reserved bits `0xf0` must be zero. The fall / SOS bits carry ' +
      'alarms raised while the band was offline and become `fall` / `sos` events (id `st-<type>-<t>`).',
    '',
    '| bit | meaning |',
    '|---|---|',
    bits,
    '',
    'Events `{"evt", "seq", "t"?, "ref"?, "bat"?}`: `seq` (0..65535) becomes the event id `seq-<seq>`; `ref` on a ' +
      'cancel is the seq of the cancelled fall.',
    '',
    '| evt | name | canonical |',
    '|---|---|---|',
    codes,
  ].join('\n');
}
