/**
 * Native models: devices that speak the canonical payloads of ARCHITECTURE.md section 2 directly (our own firmware
 * and white-label hardware flashed with it). Their decoder passes the payload through unchanged, because ingest
 * validates the canonical schema afterwards and reports precise schema errors; a second, looser check here would
 * only hide them.
 *
 * This file also holds the few helpers the vendor decoders share (results, seconds → ms), since every vendor file
 * builds on the same rules: never throw, unknown codes are `unknown_event`, malformed shapes are `decode`.
 */
import type { CanonicalEvent, Telemetry } from '../src/contracts/canonical.ts';
import type { DecodeResult, DeviceModel } from './types.ts';

/** Battery sensors report once a day; 25 h leaves an hour of slack for a late or retried daily report. */
export const DAILY_REPORT_TIMEOUT_S = 90_000;
/** Mains devices report every minute or so; an hour without a word means power or network trouble. */
export const MAINS_TIMEOUT_S = 3_600;
/** A wristband reports every minute while worn; ten silent minutes may mean an elderly person is unprotected. */
export const WRISTBAND_TIMEOUT_S = 600;

// ---------------------------------------------------------------------------------------------------------------
// Helpers shared by the vendor decoders
// ---------------------------------------------------------------------------------------------------------------

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function decodeError(message: string): DecodeResult {
  return { ok: false, reason: 'decode', message };
}

export function unknownEvent(message: string): DecodeResult {
  return { ok: false, reason: 'unknown_event', message };
}

/** Builds a canonical event, checked against the per-type fields of the canonical schema's type. */
export function canonicalEvent(e: CanonicalEvent): CanonicalEvent {
  return e;
}

/** Epoch seconds above this are surely milliseconds (year 5138): a common firmware bug worth naming. */
const MAX_EPOCH_S = 1e11;

/**
 * Vendor timestamps in epoch seconds → epoch ms. Returns a string (the problem) when the value is not a plausible
 * epoch-seconds number, so each decoder can name the field in its message.
 */
export function secondsToMs(v: unknown, field: string): number | string {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    return `${field} must be epoch seconds (a non-negative number), got ${JSON.stringify(v)}`;
  }
  if (v >= MAX_EPOCH_S) return `${field} ${v} looks like milliseconds; this vendor sends epoch seconds`;
  return Math.round(v * 1000);
}

/** Rounds away float noise from unit conversions (0.3 kW * 1000 = 300.00000000000006 W). */
export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Runs a vendor decoder with a last-resort guard: a decoder bug must become a rejection, never a crash of ingest. */
export function guarded(fn: (kind: 'telemetry' | 'event', payload: unknown) => DecodeResult) {
  return (kind: 'telemetry' | 'event', payload: unknown): DecodeResult => {
    try {
      return fn(kind, payload);
    } catch (err) {
      return decodeError(`decoder failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Native models
// ---------------------------------------------------------------------------------------------------------------

/**
 * Pass-through: a telemetry array is back-fill and stays an array of readings; anything else is one reading or one
 * event. The casts are honest: ingest validates the canonical schema on what we return.
 */
function nativeDecode(kind: 'telemetry' | 'event', payload: unknown): DecodeResult {
  if (kind === 'telemetry') {
    return { ok: true, telemetry: (Array.isArray(payload) ? payload : [payload]) as Telemetry[] };
  }
  return { ok: true, events: [payload as CanonicalEvent] };
}

type NativeSpec = Omit<DeviceModel, 'vendor' | 'decode'>;

function native(spec: NativeSpec): DeviceModel {
  return { ...spec, vendor: 'native', decode: nativeDecode };
}

// Example timestamps: 25 Nov 2026, morning in China (UTC+8), in epoch ms as native devices send them.
const T = Date.UTC(2026, 10, 25, 0, 5, 0);

export const NATIVE_MODELS: readonly DeviceModel[] = [
  native({
    id: 'native-water-meter',
    family: 'elderly_home',
    kind: 'water_meter',
    description:
      'NB-IoT water meter with a cumulative register; bursts of use (toilet, washing, cooking) show the resident is up and about.',
    lastSeenTimeoutS: MAINS_TIMEOUT_S,
    installOn: ['household'],
    fields: ['water_total_l', 'battery_pct'],
    events: ['tamper', 'low_battery'],
    commands: [],
    examples: {
      telemetry: { water_total_l: 48213.5, battery_pct: 87, ts: T },
      event: [{ type: 'tamper', id: 'wm-000311', ts: T }],
    },
  }),
  native({
    id: 'native-electricity-meter',
    family: 'elderly_home',
    kind: 'electricity_meter',
    description: 'Smart electricity meter (mains): cumulative energy and instantaneous power of the household.',
    lastSeenTimeoutS: MAINS_TIMEOUT_S,
    installOn: ['household'],
    fields: ['energy_total_kwh', 'power_w'],
    events: ['tamper'],
    commands: [],
    examples: {
      telemetry: { energy_total_kwh: 3120.42, power_w: 860, ts: T },
      event: [{ type: 'tamper', id: 'em-000017', ts: T }],
    },
  }),
  native({
    id: 'native-gas-meter',
    family: 'elderly_home',
    kind: 'gas_meter',
    description: 'Smart gas meter with a cumulative register; cooking and the gas water heater show up as flow.',
    lastSeenTimeoutS: MAINS_TIMEOUT_S,
    installOn: ['household'],
    fields: ['gas_total_m3', 'battery_pct'],
    events: ['tamper', 'low_battery'],
    commands: [],
    examples: {
      telemetry: { gas_total_m3: 1432.118, battery_pct: 74, ts: T },
      event: [{ type: 'low_battery', id: 'gm-000042', battery_pct: 18, ts: T }],
    },
  }),
  native({
    id: 'native-motion',
    family: 'elderly_home',
    kind: 'motion_sensor',
    description:
      'Battery PIR motion sensor: reports when motion starts and stops, and an hourly heartbeat, so a silent flat is ' +
      'told apart from a dead sensor within a few hours.',
    // Hourly heartbeat plus two missed beats: inactivity alerts are only as good as the sensor being alive.
    lastSeenTimeoutS: 10_800,
    installOn: ['household'],
    fields: ['motion', 'battery_pct'],
    events: ['tamper', 'low_battery'],
    commands: [],
    examples: {
      telemetry: { motion: true, battery_pct: 92, ts: T },
      event: [{ type: 'tamper', id: 'pir-000003', ts: T }],
    },
  }),
  native({
    id: 'native-door-contact',
    family: 'elderly_home',
    kind: 'door_contact',
    description: 'Battery magnetic contact on the flat door: open/close on change, battery once a day.',
    lastSeenTimeoutS: DAILY_REPORT_TIMEOUT_S,
    installOn: ['household'],
    fields: ['contact_open', 'battery_pct'],
    events: ['tamper', 'low_battery'],
    commands: [],
    examples: {
      telemetry: { contact_open: true, battery_pct: 81, ts: T },
      event: [{ type: 'low_battery', id: 'dc-000120', battery_pct: 15, ts: T }],
    },
  }),
  native({
    id: 'native-wristband',
    family: 'elderly_home',
    kind: 'wristband',
    description: 'Wristband for the elderly: heart rate while worn, fall detection with a cancel window, SOS button.',
    lastSeenTimeoutS: WRISTBAND_TIMEOUT_S,
    installOn: ['household'],
    fields: ['heart_rate_bpm', 'battery_pct'],
    events: ['sos', 'fall', 'cancel', 'low_battery'],
    commands: ['locate'],
    examples: {
      telemetry: { heart_rate_bpm: 72, battery_pct: 81, ts: T },
      event: [
        { type: 'fall', id: 'wb-000123', ts: T },
        { type: 'cancel', id: 'wb-000124', ref: 'wb-000123', ts: T + 12_000 },
        { type: 'sos', id: 'wb-000125', ts: T },
      ],
    },
  }),
  native({
    id: 'native-emergency-button',
    family: 'elderly_home',
    kind: 'emergency_button',
    description: 'Wall-mounted emergency call button (紧急呼叫按钮) by the bed or in the bathroom; battery once a day.',
    lastSeenTimeoutS: DAILY_REPORT_TIMEOUT_S,
    installOn: ['household'],
    fields: ['battery_pct'],
    events: ['sos', 'cancel', 'low_battery'],
    commands: [],
    examples: {
      telemetry: { battery_pct: 96, ts: T },
      event: [{ type: 'sos', id: 'eb-000007', ts: T }],
    },
  }),
  native({
    id: 'native-smoke-detector',
    family: 'elderly_home',
    kind: 'smoke_detector',
    description: 'Battery photoelectric smoke detector with a temperature sensor; battery and state once a day.',
    lastSeenTimeoutS: DAILY_REPORT_TIMEOUT_S,
    installOn: ['household', 'unit', 'area'],
    fields: ['smoke', 'temperature_c', 'battery_pct'],
    events: ['smoke', 'tamper', 'low_battery'],
    commands: [],
    examples: {
      telemetry: { smoke: false, temperature_c: 21.5, battery_pct: 88, ts: T },
      event: [{ type: 'smoke', id: 'sd-000002', ts: T }],
    },
  }),
  native({
    id: 'native-gas-detector',
    family: 'elderly_home',
    kind: 'gas_detector',
    description: 'Kitchen gas-leak detector (燃气报警器); battery once a day, an alarm on leak.',
    lastSeenTimeoutS: DAILY_REPORT_TIMEOUT_S,
    installOn: ['household'],
    fields: ['battery_pct'],
    events: ['gas_leak', 'tamper', 'low_battery'],
    commands: [],
    examples: {
      telemetry: { battery_pct: 90, ts: T },
      event: [{ type: 'gas_leak', id: 'gd-000001', ts: T }],
    },
  }),
  native({
    id: 'native-door-access',
    family: 'door_access',
    kind: 'door_access',
    description:
      'Building or unit door access controller (智能门禁): card, face, QR or PIN passages in both directions, door ' +
      'state, forced and held-open doors.',
    // Mains powered and security relevant: a silent door controller should be noticed well within the hour.
    lastSeenTimeoutS: 1_800,
    installOn: ['building', 'unit'],
    fields: ['contact_open'],
    events: ['door_access', 'door_forced', 'door_held_open', 'tamper'],
    commands: ['open_door'],
    examples: {
      telemetry: { contact_open: false, ts: T },
      event: [
        {
          type: 'door_access',
          id: 'da-004711',
          personId: 'card-30117745',
          direction: 'out',
          method: 'card',
          granted: true,
          ts: T,
        },
        {
          type: 'door_access',
          id: 'da-004712',
          personId: 'card-99000001',
          direction: 'in',
          method: 'face',
          granted: false,
          ts: T,
        },
        { type: 'door_forced', id: 'da-004713', ts: T },
        { type: 'door_held_open', id: 'da-004714', seconds: 180, ts: T },
      ],
    },
  }),
  native({
    id: 'native-ebike-cutoff',
    family: 'ebike',
    kind: 'ebike_cutoff',
    description:
      'Stairwell socket cut-off (楼道智能断电装置): recognises an e-bike charger by its load signature and cuts the ' +
      'power; restored by command.',
    lastSeenTimeoutS: MAINS_TIMEOUT_S,
    installOn: ['unit', 'building'],
    fields: ['power_w', 'temperature_c'],
    events: ['ebike_charging_cutoff', 'overtemp', 'tamper'],
    commands: ['restore_power', 'cut_power'],
    examples: {
      telemetry: { power_w: 0, temperature_c: 18.5, ts: T },
      event: [
        { type: 'ebike_charging_cutoff', id: 'co-000210', power_w: 231.5, ts: T },
        { type: 'overtemp', id: 'co-000211', temperature_c: 71, ts: T },
      ],
    },
  }),
  native({
    id: 'native-charging-area',
    family: 'ebike',
    kind: 'charging_area',
    description:
      'Central e-bike charging area (集中充电区域): total port power, cabinet temperature, smoke and whether any port ' +
      'is in use. Smoke or over-temperature here is a fire emergency.',
    // Fire relevant and mains powered: a dead charging-area controller must not go unnoticed for long.
    lastSeenTimeoutS: 1_800,
    installOn: ['area'],
    fields: ['power_w', 'temperature_c', 'smoke', 'occupancy'],
    events: ['smoke', 'overtemp', 'tamper'],
    commands: ['cut_power', 'restore_power'],
    examples: {
      telemetry: { power_w: 2140, temperature_c: 27.5, smoke: false, occupancy: true, ts: T },
      event: [
        { type: 'overtemp', id: 'ca-000031', temperature_c: 68.5, ts: T },
        { type: 'smoke', id: 'ca-000032', ts: T },
      ],
    },
  }),
];
