/** The alert model (ARCHITECTURE.md section 2, issue 3). */

export const CATEGORIES = ['resident_safety', 'fire', 'security', 'ebike', 'maintenance', 'supplies', 'visit'] as const;
export type Category = (typeof CATEGORIES)[number];
export const SEVERITIES = ['critical', 'major', 'minor', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const ALERT_STATUSES = ['open', 'acknowledged', 'resolved', 'cancelled'] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];
/** An alert is active (and so unique per key) while open or acknowledged. */
export const ACTIVE_STATUSES: readonly AlertStatus[] = ['open', 'acknowledged'];

/** What an alert is about; the key of an active alert is `type` + one of these (see AlertInput.keyOn). */
export interface AlertSubject {
  householdId?: string;
  unitId?: string;
  buildingId?: string;
  areaId?: string;
  gridId?: string;
  communityId?: string;
  deviceId?: string;
  colour?: 'red' | 'orange' | 'yellow' | 'blue' | 'green';
}

/** A reading, event or rule observation that made the alert, with its time. */
export interface Evidence {
  /** epoch ms */
  ts: number;
  kind: 'reading' | 'event' | 'status' | 'rule';
  deviceId?: string;
  field?: string;
  value?: number | boolean | string;
  eventType?: string;
  /** the device's own id of the event (`id` in the payload): makes raising from it idempotent */
  eventId?: string;
  /** short human text, no personal data: "no activity since 09:12 (threshold 2 h 40 min)" */
  note?: string;
}

export interface TimelineEntry {
  /** epoch ms */
  ts: number;
  action: 'opened' | 'repeated' | 'acknowledged' | 'note' | 'resolved' | 'cancelled' | 'escalated' | 'notified';
  /** staff id, or `system` / `rule:<type>` / `device:<id>` */
  by: string;
  /** how: console, sms, api, rule, device */
  via: string;
  note?: string;
}

export interface AlertInput {
  type: string;
  category: Category;
  severity: Severity;
  subject: AlertSubject;
  /** Which subject id makes the dedup key together with the type. */
  keyOn: 'household' | 'device' | 'building' | 'area' | 'unit';
  drill: boolean;
  /** when the condition was observed (event time), epoch ms */
  ts: number;
  evidence: Evidence[];
  /** one line for the console and (later) the SMS template: no names, no health detail */
  summary: string;
  /** Notifications wait until then (a fall's cancel window); epoch ms. */
  notBefore?: number;
}

export interface Alert {
  id: string;
  type: string;
  category: Category;
  severity: Severity;
  status: AlertStatus;
  key: string;
  householdId?: string;
  unitId?: string;
  buildingId?: string;
  areaId?: string;
  gridId?: string;
  communityId?: string;
  deviceId?: string;
  colour?: AlertSubject['colour'];
  summary: string;
  count: number;
  /** ISO-8601 */
  firstSeen: string;
  lastSeen: string;
  notBefore?: string;
  drill: boolean;
  evidence: Evidence[];
  timeline: TimelineEntry[];
  resolvedAt?: string;
  outcome?: string;
}

/**
 * Key of an active alert: `<type>|<keyOn>:<id>`, with `|drill` for drills, so that a real emergency during a
 * drill opens its own alert instead of being counted into the drill's.
 */
export function alertKey(input: Pick<AlertInput, 'type' | 'keyOn' | 'subject'> & { drill?: boolean }): string {
  const id =
    input.keyOn === 'household'
      ? input.subject.householdId
      : input.keyOn === 'device'
        ? input.subject.deviceId
        : input.keyOn === 'building'
          ? input.subject.buildingId
          : input.keyOn === 'unit'
            ? input.subject.unitId
            : input.subject.areaId;
  if (!id) throw new Error(`alert ${input.type}: keyOn ${input.keyOn} but the subject has no ${input.keyOn} id`);
  return `${input.type}|${input.keyOn}:${id}${input.drill ? '|drill' : ''}`;
}

/**
 * Where rules send alerts (implemented by the alert service over the relational store). Every call is idempotent
 * for an active key: raising again bumps count and lastSeen; clearing a key with no active alert does nothing.
 */
export interface AlertSink {
  raise(input: AlertInput): Promise<{ alert: Alert; created: boolean }>;
  /** Resolves the active alert of `key` by itself (condition cleared), with the reason on the timeline. */
  clear(key: string, reason: string, ts: number): Promise<Alert | undefined>;
  /** Cancels the active alert of `key` (e.g. the wearer cancelled a fall within the window). */
  cancel(key: string, reason: string, ts: number, by: string): Promise<Alert | undefined>;
}
