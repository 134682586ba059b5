/**
 * The MQTT topic contract (ARCHITECTURE.md section 2): every device lives under `<base>/<deviceId>/<kind>`.
 * Shared by the broker, ingest, simulators and tests so the topic grammar is written down once.
 */
export const INBOUND_KINDS = ['telemetry', 'event', 'status'] as const;
export const OUTBOUND_KINDS = ['cmd', 'error'] as const;
export type InboundKind = (typeof INBOUND_KINDS)[number];
export type OutboundKind = (typeof OUTBOUND_KINDS)[number];
export type TopicKind = InboundKind | OutboundKind;

/** Device ids: letters, digits, `-` and `_`, 1–64 characters; no MQTT wildcards or separators. */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
const deviceIdRe = new RegExp(DEVICE_ID_PATTERN);

export function isValidDeviceId(id: string): boolean {
  return deviceIdRe.test(id);
}

export function deviceTopic(base: string, deviceId: string, kind: TopicKind): string {
  return `${base}/${deviceId}/${kind}`;
}

export interface ParsedTopic {
  deviceId: string;
  kind: TopicKind;
}

/** Parses `<base>/<deviceId>/<kind>`; returns undefined for anything else. */
export function parseDeviceTopic(base: string, topic: string): ParsedTopic | undefined {
  const prefix = `${base}/`;
  if (!topic.startsWith(prefix)) return undefined;
  const rest = topic.slice(prefix.length).split('/');
  if (rest.length !== 2) return undefined;
  const [deviceId, kind] = rest as [string, string];
  if (!isValidDeviceId(deviceId)) return undefined;
  if (!(INBOUND_KINDS as readonly string[]).includes(kind) && !(OUTBOUND_KINDS as readonly string[]).includes(kind)) {
    return undefined;
  }
  return { deviceId, kind: kind as TopicKind };
}

/** True when `topic` (or a subscription filter) stays under the device's own subtree. */
export function isUnderDevice(base: string, deviceId: string, topic: string): boolean {
  const prefix = `${base}/${deviceId}/`;
  return topic.startsWith(prefix) && topic.length > prefix.length;
}
