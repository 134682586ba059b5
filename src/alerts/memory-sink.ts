/**
 * An in-memory AlertSink with the same semantics as the stored one (one active alert per key, repeats counted,
 * timeline kept): for rule tests and replays that do not need the database.
 */
import { randomUUID } from 'node:crypto';
import { ACTIVE_STATUSES, type Alert, type AlertInput, type AlertSink, alertKey } from './types.ts';

export class MemoryAlertSink implements AlertSink {
  readonly alerts: Alert[] = [];

  active(key: string): Alert | undefined {
    return this.alerts.find((a) => a.key === key && ACTIVE_STATUSES.includes(a.status));
  }

  /** Alerts of a type (all statuses), oldest first. */
  ofType(type: string): Alert[] {
    return this.alerts.filter((a) => a.type === type);
  }

  async raise(input: AlertInput): Promise<{ alert: Alert; created: boolean }> {
    const key = alertKey(input);
    const iso = new Date(input.ts).toISOString();
    const existing = this.active(key);
    if (existing) {
      existing.count++;
      existing.lastSeen = iso;
      existing.evidence.push(...input.evidence);
      // a repeat can make it worse, never milder
      if (rank(input.severity) < rank(existing.severity)) existing.severity = input.severity;
      existing.timeline.push({ ts: input.ts, action: 'repeated', by: `rule:${input.type}`, via: 'rule' });
      return { alert: existing, created: false };
    }
    const alert: Alert = {
      id: randomUUID(),
      type: input.type,
      category: input.category,
      severity: input.severity,
      status: 'open',
      key,
      ...input.subject,
      summary: input.summary,
      count: 1,
      firstSeen: iso,
      lastSeen: iso,
      notBefore: input.notBefore === undefined ? undefined : new Date(input.notBefore).toISOString(),
      drill: input.drill,
      evidence: [...input.evidence],
      timeline: [{ ts: input.ts, action: 'opened', by: `rule:${input.type}`, via: 'rule', note: input.summary }],
    };
    this.alerts.push(alert);
    return { alert, created: true };
  }

  async clear(key: string, reason: string, ts: number): Promise<Alert | undefined> {
    const a = this.active(key);
    if (!a) return undefined;
    a.status = 'resolved';
    a.resolvedAt = new Date(ts).toISOString();
    a.outcome = reason;
    a.timeline.push({ ts, action: 'resolved', by: 'system', via: 'rule', note: reason });
    return a;
  }

  async cancel(key: string, reason: string, ts: number, by: string): Promise<Alert | undefined> {
    const a = this.active(key);
    if (!a) return undefined;
    a.status = 'cancelled';
    a.resolvedAt = new Date(ts).toISOString();
    a.outcome = reason;
    a.timeline.push({ ts, action: 'cancelled', by, via: by.startsWith('device:') ? 'device' : 'api', note: reason });
    return a;
  }
}

const ORDER = ['critical', 'major', 'minor', 'info'];
function rank(s: string): number {
  return ORDER.indexOf(s);
}
