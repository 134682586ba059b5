/**
 * HIKV AC100 single-door access controller, Hikvision-style (ISAPI alert stream). Passages and alarms arrive as
 * `AccessControllerEvent` with a major/sub event code pair; the door magnet state arrives as `AcsWorkStatus`.
 * Hikvision payloads carry many informational keys (deviceName, ipAddress, pictures…), so unknown keys are ignored,
 * while the keys we use are checked strictly.
 *
 * event:     {"AccessControllerEvent":{"majorEventType":5,"subEventType":75,"cardNo":"30117745","verifyMode":"face",
 *             "doorNo":1,"cardReaderNo":1,"serialNo":4711,"time":"2026-11-25T08:00:00+08:00"}}
 * telemetry: {"AcsWorkStatus":{"magneticStatus":[0],"time":"2026-11-25T08:00:00+08:00"}}
 */
import type { Telemetry } from '../src/contracts/canonical.ts';
import { canonicalEvent, decodeError, guarded, isRecord, unknownEvent } from './native.ts';
import type { DecodeResult, DeviceModel } from './types.ts';

type Method = 'card' | 'face' | 'qr' | 'pin';

/** What a major/sub code pair means to us. */
export type HikvCode =
  | { name: string; kind: 'passage'; granted: boolean; method: Method }
  | { name: string; kind: 'door'; open: boolean }
  | { name: string; kind: 'event'; type: 'door_forced' | 'door_held_open' | 'tamper' };

export const HIKV_MAJOR = { ALARM: 1, EVENT: 5 } as const;

/** `<major>/<sub>` → meaning. Anything else (operations, exceptions, unmapped events) is `unknown_event`. */
export const HIKV_CODES: Readonly<Record<string, HikvCode>> = {
  '5/1': { name: 'LEGAL_CARD_PASS', kind: 'passage', granted: true, method: 'card' },
  '5/2': { name: 'CARD_AND_PSW_PASS', kind: 'passage', granted: true, method: 'pin' },
  '5/6': { name: 'CARD_NO_RIGHT', kind: 'passage', granted: false, method: 'card' },
  '5/8': { name: 'CARD_OUT_OF_DATE', kind: 'passage', granted: false, method: 'card' },
  '5/9': { name: 'INVALID_CARD', kind: 'passage', granted: false, method: 'card' },
  '5/25': { name: 'DOOR_OPEN_NORMAL', kind: 'door', open: true },
  '5/26': { name: 'DOOR_CLOSE_NORMAL', kind: 'door', open: false },
  '5/27': { name: 'DOOR_OPEN_ABNORMAL', kind: 'event', type: 'door_forced' },
  '5/28': { name: 'DOOR_OPEN_TIMEOUT', kind: 'event', type: 'door_held_open' },
  '5/75': { name: 'FACE_VERIFY_PASS', kind: 'passage', granted: true, method: 'face' },
  '5/76': { name: 'FACE_VERIFY_FAIL', kind: 'passage', granted: false, method: 'face' },
  '1/1028': { name: 'HOST_DISMANTLE_ALARM', kind: 'event', type: 'tamper' },
  '1/1029': { name: 'READER_DISMANTLE_ALARM', kind: 'event', type: 'tamper' },
};

/** `verifyMode` (how this passage was verified) overrides the code's default method. */
export const HIKV_VERIFY_MODES: Readonly<Record<string, Method>> = {
  card: 'card',
  face: 'face',
  qrCode: 'qr',
  password: 'pin',
};

/** Reader 1 sits outside the door (people coming in), reader 2 inside (people going out). */
export const HIKV_READER_DIRECTION: Readonly<Record<number, 'in' | 'out'>> = { 1: 'in', 2: 'out' };

/** `AcsWorkStatus.magneticStatus` values. Short or broken circuit means someone has cut the door sensor wire. */
export const HIKV_MAGNETIC_STATUS = {
  0: { meaning: 'closed', contactOpen: false },
  1: { meaning: 'open', contactOpen: true },
  2: { meaning: 'short-circuit alarm', tamper: true },
  3: { meaning: 'broken-circuit alarm', tamper: true },
} as const;

/** ISO-8601 with an explicit zone → epoch ms. A zoneless time would be read in the server's zone: refuse it. */
function parseTime(v: unknown, where: string): number | string {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v)) {
    return `${where} must be ISO-8601 with a zone like "2026-11-25T08:00:00+08:00", got ${JSON.stringify(v)}`;
  }
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? `${where} ${JSON.stringify(v)} is not a real date` : ms;
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function decodeEvent(p: unknown): DecodeResult {
  if (!isRecord(p) || !isRecord(p.AccessControllerEvent)) {
    return decodeError('AC100 event must be an object with an "AccessControllerEvent" object');
  }
  const e = p.AccessControllerEvent;
  if (!isInt(e.majorEventType) || !isInt(e.subEventType)) {
    return decodeError(
      `majorEventType and subEventType must be integers, got ${JSON.stringify(e.majorEventType)} / ${JSON.stringify(e.subEventType)}`,
    );
  }
  const key = `${e.majorEventType}/${e.subEventType}`;
  const code = Object.hasOwn(HIKV_CODES, key) ? HIKV_CODES[key] : undefined;
  if (!code) {
    return unknownEvent(
      `unknown AC100 event code major ${e.majorEventType} sub ${e.subEventType} (0x${e.subEventType.toString(16)})`,
    );
  }
  const base: { id?: string; ts?: number } = {};
  if (e.time !== undefined) {
    const ts = parseTime(e.time, 'time');
    if (typeof ts === 'string') return decodeError(ts);
    base.ts = ts;
  }
  if (e.serialNo !== undefined) {
    if (!isInt(e.serialNo) || e.serialNo < 0) {
      return decodeError(`serialNo must be a non-negative integer, got ${JSON.stringify(e.serialNo)}`);
    }
    // The controller numbers its events and resends with the same serialNo: ingest counts a redelivery once.
    base.id = `sn-${e.serialNo}`;
  }
  switch (code.kind) {
    case 'passage': {
      let method = code.method;
      if (e.verifyMode !== undefined) {
        const m = typeof e.verifyMode === 'string' && Object.hasOwn(HIKV_VERIFY_MODES, e.verifyMode);
        if (!m) {
          return decodeError(
            `unknown verifyMode ${JSON.stringify(e.verifyMode)} (known: ${Object.keys(HIKV_VERIFY_MODES).join(', ')})`,
          );
        }
        method = HIKV_VERIFY_MODES[e.verifyMode as string]!;
      }
      // Single-reader doors are left with the exit button, so a reader-less passage is an entry.
      let direction: 'in' | 'out' = 'in';
      if (e.cardReaderNo !== undefined) {
        const d = isInt(e.cardReaderNo) ? HIKV_READER_DIRECTION[e.cardReaderNo] : undefined;
        if (!d)
          return decodeError(
            `cardReaderNo must be 1 (outside, in) or 2 (inside, out), got ${JSON.stringify(e.cardReaderNo)}`,
          );
        direction = d;
      }
      const person = e.employeeNoString ?? e.cardNo;
      if (person !== undefined && (typeof person !== 'string' || person.length === 0 || person.length > 64)) {
        return decodeError(
          `employeeNoString / cardNo must be a string of 1..64 characters, got ${JSON.stringify(person)}`,
        );
      }
      const ev = canonicalEvent({
        type: 'door_access',
        ...base,
        ...(person !== undefined ? { personId: person } : {}),
        direction,
        method,
        granted: code.granted,
      });
      return { ok: true, events: [ev] };
    }
    case 'door': {
      // Door open/closed is state, not an incident: it becomes the contact_open reading.
      const reading: Telemetry = { contact_open: code.open };
      if (base.ts !== undefined) reading.ts = base.ts;
      return { ok: true, telemetry: [reading] };
    }
    case 'event': {
      if (code.type !== 'door_held_open') return { ok: true, events: [{ type: code.type, ...base }] };
      const s = e.openDuration;
      if (typeof s !== 'number' || !(s >= 0 && s <= 86_400)) {
        return decodeError(`DOOR_OPEN_TIMEOUT needs openDuration in seconds (0..86400), got ${JSON.stringify(s)}`);
      }
      return { ok: true, events: [canonicalEvent({ type: 'door_held_open', ...base, seconds: s })] };
    }
  }
}

function decodeTelemetry(p: unknown): DecodeResult {
  if (!isRecord(p) || !isRecord(p.AcsWorkStatus)) {
    return decodeError('AC100 telemetry must be an object with an "AcsWorkStatus" object');
  }
  const w = p.AcsWorkStatus;
  const ms = w.magneticStatus;
  // The AC100 drives one door; a longer array means the device is not an AC100 or is misconfigured.
  if (!Array.isArray(ms) || ms.length !== 1 || !isInt(ms[0])) {
    return decodeError(
      `magneticStatus must be an array with one integer (the AC100 has one door), got ${JSON.stringify(ms)}`,
    );
  }
  const status = HIKV_MAGNETIC_STATUS[ms[0] as keyof typeof HIKV_MAGNETIC_STATUS];
  if (!status) return decodeError(`magneticStatus ${ms[0]} is not one of 0 closed, 1 open, 2 short, 3 broken`);
  let ts: number | undefined;
  if (w.time !== undefined) {
    const t = parseTime(w.time, 'time');
    if (typeof t === 'string') return decodeError(t);
    ts = t;
  }
  if ('tamper' in status) {
    return { ok: true, events: [{ type: 'tamper', ...(ts !== undefined ? { id: `mag-${ts}`, ts } : {}) }] };
  }
  return { ok: true, telemetry: [{ contact_open: status.contactOpen, ...(ts !== undefined ? { ts } : {}) }] };
}

const TIME = '2026-11-25T08:00:00+08:00';
const acEvent = (major: number, sub: number, extra: Record<string, unknown> = {}) => ({
  AccessControllerEvent: { majorEventType: major, subEventType: sub, doorNo: 1, time: TIME, ...extra },
});

export const HIKV_AC100: DeviceModel = {
  id: 'hikv-ac100',
  vendor: 'hikv',
  family: 'door_access',
  kind: 'door_access',
  description:
    'HIKV AC100 single-door access controller (Hikvision-style event codes): card, face, QR and PIN passages on an ' +
    'outside and an inside reader, door magnet state, forced and held-open doors, tamper.',
  lastSeenTimeoutS: 1_800,
  installOn: ['building', 'unit'],
  fields: ['contact_open'],
  events: ['door_access', 'door_forced', 'door_held_open', 'tamper'],
  commands: ['open_door'],
  decode: guarded((kind, payload) => (kind === 'telemetry' ? decodeTelemetry(payload) : decodeEvent(payload))),
  examples: {
    telemetry: { AcsWorkStatus: { magneticStatus: [0], time: TIME } },
    event: [
      acEvent(5, 1, { cardNo: '30117745', verifyMode: 'card', cardReaderNo: 2, serialNo: 4711 }),
      acEvent(5, 75, { employeeNoString: 'res-h-0101', verifyMode: 'face', cardReaderNo: 1, serialNo: 4712 }),
      acEvent(5, 9, { cardNo: '99000001', cardReaderNo: 1, serialNo: 4713 }),
      acEvent(5, 25, { serialNo: 4714 }),
      acEvent(5, 28, { serialNo: 4715, openDuration: 180 }),
      acEvent(5, 27, { serialNo: 4716 }),
      acEvent(1, 1028, { serialNo: 4717 }),
    ],
  },
};

export function hikvNotes(): string {
  const codes = Object.entries(HIKV_CODES)
    .map(([key, c]) => {
      const [major, sub] = key.split('/') as [string, string];
      const maps =
        c.kind === 'passage'
          ? `\`door_access\` granted=${c.granted}, method ${c.method}`
          : c.kind === 'door'
            ? `telemetry \`contact_open: ${c.open}\``
            : `\`${c.type}\``;
      return `| ${major} | ${sub} (0x${Number(sub).toString(16)}) | ${c.name} | ${maps} |`;
    })
    .join('\n');
  const modes = Object.entries(HIKV_VERIFY_MODES)
    .map(([k, v]) => `\`${k}\`→${v}`)
    .join(', ');
  const mag = Object.entries(HIKV_MAGNETIC_STATUS)
    .map(([k, v]) => `${k} ${v.meaning}${'tamper' in v ? ' (→ `tamper`)' : ''}`)
    .join(', ');
  return [
    'Events `{"AccessControllerEvent": {"majorEventType", "subEventType", "time"?, "serialNo"?, "cardNo"?, ' +
      '"employeeNoString"?, "verifyMode"?, "cardReaderNo"?, "openDuration"?}}`; other keys are ignored. `time` is ' +
      'ISO-8601 with a zone (→ ms), `serialNo` becomes the id `sn-<serialNo>`, the person is `employeeNoString` or ' +
      `else \`cardNo\`, \`cardReaderNo\` 1 = in and 2 = out (absent: in), \`verifyMode\` overrides the method ` +
      `(${modes}), \`openDuration\` (seconds) is required with DOOR_OPEN_TIMEOUT.`,
    '',
    '| major | sub | name | canonical |',
    '|---|---|---|---|',
    codes,
    '',
    `Telemetry \`{"AcsWorkStatus": {"magneticStatus": [n], "time"?}}\`, n: ${mag}.`,
  ].join('\n');
}
