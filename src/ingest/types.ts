/** What ingest produces: canonical readings and events, enriched with where the device is. */
import type { CanonicalEvent, RejectReason, TelemetryField } from '../contracts/canonical.ts';
import type { DeviceStatus } from '../contracts/canonical.ts';
import type { Placement } from '../registry/types.ts';

export interface Reading {
  deviceId: string;
  model: string;
  field: TelemetryField;
  /** epoch ms */
  ts: number;
  value: number | boolean;
  placement: Placement;
  drill: boolean;
}

export interface DeviceEventRecord {
  deviceId: string;
  model: string;
  /** epoch ms of the event (device time when given and sane, else server time) */
  ts: number;
  receivedAt: number;
  event: CanonicalEvent;
  placement: Placement;
  drill: boolean;
}

export interface StatusChange {
  deviceId: string;
  status: DeviceStatus;
  ts: number;
  reason: 'status_topic' | 'last_will' | 'timeout' | 'message' | 'disconnect';
}

export interface Rejection {
  deviceId?: string;
  topic: string;
  reason: RejectReason;
  message: string;
  ts: number;
}
