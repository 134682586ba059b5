/**
 * A device model: data about a product plus a decoder from its payloads to canonical readings and events.
 * Models are registered in devices/index.ts; ingest looks a device's model up by id.
 */
import type { CanonicalEvent, Telemetry } from '../src/contracts/canonical.ts';

export const FAMILIES = ['elderly_home', 'door_access', 'ebike'] as const;
export type Family = (typeof FAMILIES)[number];

/** The kinds of device, each with its own last-seen budget (a wristband is chatty, a smoke detector is not). */
export type DeviceKind =
  | 'water_meter'
  | 'electricity_meter'
  | 'gas_meter'
  | 'motion_sensor'
  | 'door_contact'
  | 'wristband'
  | 'emergency_button'
  | 'smoke_detector'
  | 'gas_detector'
  | 'door_access'
  | 'ebike_cutoff'
  | 'charging_area';

export type DecodeResult =
  | { ok: true; telemetry?: Telemetry[]; events?: CanonicalEvent[] }
  | { ok: false; reason: 'decode' | 'unknown_event'; message: string };

export interface DeviceModel {
  /** Globally unique id, e.g. `native-wristband` or `acme-wb200`. */
  id: string;
  vendor: string;
  family: Family;
  kind: DeviceKind;
  description: string;
  /** Offline after this long without any message (also without status `online`). */
  lastSeenTimeoutS: number;
  /** Where it may be installed. */
  installOn: ReadonlyArray<'household' | 'building' | 'unit' | 'area'>;
  /** Canonical telemetry fields and event types it produces (documentation and simulator hints). */
  fields: readonly string[];
  events: readonly string[];
  /** Commands it accepts on its cmd topic. */
  commands: readonly string[];
  /**
   * Decodes an already JSON-parsed payload from `telemetry` or `event`. Native models return it unchanged;
   * the result is validated against the canonical schema by ingest afterwards.
   */
  decode(kind: 'telemetry' | 'event', payload: unknown): DecodeResult;
  /** Example payloads per topic for docs/devices.md and tests. */
  examples: { telemetry?: unknown; event?: unknown[] };
}
