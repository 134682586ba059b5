/**
 * Canonical readings and events (ARCHITECTURE.md section 2). Device decoders map vendor payloads onto these;
 * `native` devices send them as they are. One schema, compiled once by ingest, typed from here.
 */
import { type Static, type TProperties, Type } from 'typebox';

/** Numeric telemetry fields and their sane physical ranges (values outside are rejected as `out_of_range`). */
export const NUMERIC_FIELDS = {
  water_total_l: { min: 0, max: 1e9, unit: 'L' },
  energy_total_kwh: { min: 0, max: 1e9, unit: 'kWh' },
  power_w: { min: 0, max: 100_000, unit: 'W' },
  gas_total_m3: { min: 0, max: 1e8, unit: 'm³' },
  heart_rate_bpm: { min: 0, max: 300, unit: 'bpm' },
  battery_pct: { min: 0, max: 100, unit: '%' },
  temperature_c: { min: -50, max: 500, unit: '°C' },
} as const;

export const BOOLEAN_FIELDS = ['motion', 'contact_open', 'smoke', 'occupancy'] as const;

export type NumericField = keyof typeof NUMERIC_FIELDS;
export type BooleanField = (typeof BOOLEAN_FIELDS)[number];
export type TelemetryField = NumericField | BooleanField;
export const TELEMETRY_FIELDS: readonly TelemetryField[] = [
  ...(Object.keys(NUMERIC_FIELDS) as NumericField[]),
  ...BOOLEAN_FIELDS,
];

export function isBooleanField(field: string): field is BooleanField {
  return (BOOLEAN_FIELDS as readonly string[]).includes(field);
}

/** `ts`: epoch milliseconds or an ISO-8601 string with a zone. */
export const Timestamp = Type.Union([
  Type.Integer({ minimum: 0, maximum: 8_640_000_000_000 }),
  Type.String({ format: 'date-time' }),
]);

const numericProps = Object.fromEntries(
  Object.entries(NUMERIC_FIELDS).map(([k, r]) => [k, Type.Optional(Type.Number({ minimum: r.min, maximum: r.max }))]),
);
const booleanProps = Object.fromEntries(BOOLEAN_FIELDS.map((k) => [k, Type.Optional(Type.Boolean())]));

/** One telemetry object: at least one canonical field, nothing unknown. */
export const TelemetrySchema = Type.Object(
  { ts: Type.Optional(Timestamp), ...numericProps, ...booleanProps },
  { additionalProperties: false, minProperties: 1 },
);
export type Telemetry = { ts?: number | string } & Partial<Record<NumericField, number>> &
  Partial<Record<BooleanField, boolean>>;

/** A telemetry message: one object, or an array of them for back-fill (bounded). */
export const TelemetryMessageSchema = Type.Union([
  TelemetrySchema,
  Type.Array(TelemetrySchema, { minItems: 1, maxItems: 500 }),
]);

const eventBase = {
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  ts: Type.Optional(Timestamp),
};
// generic over the extra properties so that Static<> keeps each event type's own fields
const ev = <T extends string, E extends TProperties = Record<never, never>>(type: T, extra?: E) =>
  Type.Object({ type: Type.Literal(type), ...eventBase, ...((extra ?? {}) as E) }, { additionalProperties: false });

export const EVENT_TYPES = [
  'sos',
  'fall',
  'smoke',
  'gas_leak',
  'door_access',
  'door_forced',
  'door_held_open',
  'ebike_charging_cutoff',
  'overtemp',
  'tamper',
  'low_battery',
  'cancel',
  'cmd_ack',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const EventSchema = Type.Union([
  ev('sos'),
  ev('fall'),
  ev('smoke'),
  ev('gas_leak'),
  ev('door_access', {
    personId: Type.Optional(Type.String({ maxLength: 64 })),
    direction: Type.Union([Type.Literal('in'), Type.Literal('out')]),
    method: Type.Union([Type.Literal('card'), Type.Literal('face'), Type.Literal('qr'), Type.Literal('pin')]),
    granted: Type.Boolean(),
  }),
  ev('door_forced'),
  ev('door_held_open', { seconds: Type.Number({ minimum: 0, maximum: 86_400 }) }),
  ev('ebike_charging_cutoff', { power_w: Type.Number({ minimum: 0, maximum: 100_000 }) }),
  ev('overtemp', { temperature_c: Type.Number({ minimum: -50, maximum: 500 }) }),
  ev('tamper'),
  ev('low_battery', { battery_pct: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })) }),
  ev('cancel', { ref: Type.Optional(Type.String({ maxLength: 64 })) }),
  // The device's answer to a command (`<base>/<deviceId>/cmd`): `ref` is the command's id, `ok` whether it was
  // carried out, `message` why not (or what happened). Accepted in this canonical form from a device of ANY model,
  // vendor models included: ingest routes it before the model's decoder. Not a domain event: it goes to the command
  // log only, never to the rules or the time-series store.
  ev('cmd_ack', {
    ref: Type.String({ minLength: 1, maxLength: 64 }),
    ok: Type.Boolean(),
    message: Type.Optional(Type.String({ maxLength: 500 })),
  }),
]);
export type CanonicalEvent = Static<typeof EventSchema>;
/** A device's answer to a command (see `cmd_ack` above). */
export type CommandAck = Extract<CanonicalEvent, { type: 'cmd_ack' }>;

/** True when a parsed event payload claims to be a command answer (validated by ingest like every event). */
export function isCommandAck(payload: unknown): boolean {
  return (
    typeof payload === 'object' &&
    payload !== null &&
    !Array.isArray(payload) &&
    (payload as { type?: unknown }).type === 'cmd_ack'
  );
}

export const StatusValues = ['online', 'offline'] as const;
export type DeviceStatus = 'online' | 'offline' | 'unknown';

/** Command sent to a device on `<base>/<deviceId>/cmd`. */
export const CommandSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64 }),
  name: Type.String({ minLength: 1, maxLength: 64 }),
  args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export type Command = Static<typeof CommandSchema>;

/** Published on `<base>/<deviceId>/error` when a message from that device was rejected. */
export interface ErrorReply {
  topic: string;
  error: RejectReason;
  message: string;
}

/** Every reason ingest rejects a message for; each is a label of `gridwatch_ingest_rejected_total`. */
export const REJECT_REASONS = [
  'bad_json',
  'schema',
  'unknown_event',
  'out_of_range',
  'too_large',
  'backdated',
  'future',
  'unknown_device',
  'disabled_device',
  'bad_topic',
  'decode',
  'rate_limited',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];
