/**
 * Per-recipient SMS caps and bundling (issue 4, "SMS"). BullMQ's limiter is per queue; mainland carriers reject the
 * third identical text to one number in 24 h and review the fifth different one, so this gate decides, per
 * recipient, whether a message goes now, waits to be bundled with others, or is dropped:
 *
 * - the first SMS of a critical alert to each recipient is NEVER capped, bundled or delayed (it still counts);
 * - no identical text to the same number within the dedup window (default 24 h);
 * - a cap per recipient over a rolling day (default 10);
 * - after a message went to a number, further ones within the bundle window (default 2 min) are held and released
 *   together at the end of the window, so a number gets at most one (non-first-critical) SMS per window;
 * - drill and real messages have separate state: they never share a bundle, a cap or a dedup record.
 *
 * Pure decisions on the Clock port: no timers, no I/O. The caller polls `bundleDue(now)` (or schedules a timer at
 * `nextBundleDue()`) and sends what `takeBundle` returns. Memory is bounded: old entries are pruned and the number
 * of recipients and of remembered texts per recipient is capped.
 */
import { type Static, Type } from 'typebox';
import type { Severity } from '../alerts/types.ts';
import type { Clock } from '../clock/clock.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export const SmsCapsSchema = Type.Object(
  {
    /** No identical text to one number within this window (carriers reject 3 identical a day). */
    dedupWindowMs: Type.Integer({ minimum: 0, maximum: 7 * DAY, default: DAY }),
    /** At most this many SMS per recipient within capWindowMs (first SMS of a critical alert exempt). */
    dailyCap: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
    /** The rolling window of the daily cap. */
    capWindowMs: Type.Integer({ minimum: 60_000, maximum: 7 * DAY, default: DAY }),
    /** Messages to one person within this window after an SMS become one message; 0 disables bundling. */
    bundleWindowMs: Type.Integer({ minimum: 0, maximum: HOUR, default: 120_000 }),
    /** Memory bound: recipients remembered (least recently used forgotten first, never one with a bundle). */
    maxRecipients: Type.Integer({ minimum: 10, maximum: 10_000_000, default: 100_000 }),
    /** Memory bound: distinct texts remembered per recipient for dedup (oldest forgotten first). */
    maxTextsPerRecipient: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  },
  { additionalProperties: false },
);
export type SmsCapsSettings = Static<typeof SmsCapsSchema>;

export const SMS_CAPS_DEFAULTS: SmsCapsSettings = {
  dedupWindowMs: DAY,
  dailyCap: 10,
  capWindowMs: DAY,
  bundleWindowMs: 120_000,
  maxRecipients: 100_000,
  maxTextsPerRecipient: 100,
};

export interface GateMessage {
  /** phone number (E.164) */
  recipient: string;
  body: string;
  alertId: string;
  severity: Severity;
  /** true for the first SMS about this alert to this recipient */
  firstForAlertToRecipient: boolean;
  drill: boolean;
  /** decision time, epoch ms; the clock's now when omitted */
  ts?: number;
}

export type GateDecision =
  | { action: 'send' }
  | { action: 'bundle'; until: number }
  | { action: 'drop'; reason: 'duplicate_text' | 'daily_cap' };

export interface BundledMessage {
  alertId: string;
  body: string;
  severity: Severity;
  ts: number;
}

export interface DueBundle {
  recipient: string;
  drill: boolean;
  until: number;
  size: number;
}

interface Bundle {
  until: number;
  items: BundledMessage[];
}

interface RecipientState {
  recipient: string;
  drill: boolean;
  /** times of sends within the cap window, ascending */
  sends: number[];
  /** body → last time sent (or queued), in insertion order of last use */
  texts: Map<string, number>;
  lastSend: number;
  bundle?: Bundle;
}

/** Drill and real traffic are separate states: the key carries the kind. */
const keyOf = (recipient: string, drill: boolean) => `${drill ? 'drill' : 'real'}|${recipient}`;

export class RecipientGate {
  readonly settings: SmsCapsSettings;
  private readonly states = new Map<string, RecipientState>();
  private lastPrune = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    options: Partial<SmsCapsSettings> = {},
  ) {
    this.settings = { ...SMS_CAPS_DEFAULTS, ...options };
  }

  decide(msg: GateMessage): GateDecision {
    const now = msg.ts ?? this.clock.now();
    this.maybePrune(now);
    const s = this.state(msg.recipient, msg.drill);
    this.expire(s, now);

    // The first SMS of a critical alert to each recipient: never capped, bundled or delayed (but it counts).
    if (msg.severity === 'critical' && msg.firstForAlertToRecipient) {
      this.recordSend(s, now, [msg.body]);
      return { action: 'send' };
    }

    const seen = s.texts.get(msg.body);
    if (seen !== undefined && now - seen < this.settings.dedupWindowMs)
      return { action: 'drop', reason: 'duplicate_text' };
    if (s.bundle?.items.some((i) => i.body === msg.body)) return { action: 'drop', reason: 'duplicate_text' };

    // Joining a pending bundle costs no extra SMS, so the cap was already checked when it opened.
    if (s.bundle) {
      s.bundle.items.push({ alertId: msg.alertId, body: msg.body, severity: msg.severity, ts: now });
      return { action: 'bundle', until: s.bundle.until };
    }

    if (s.sends.length >= this.settings.dailyCap) return { action: 'drop', reason: 'daily_cap' };

    if (this.settings.bundleWindowMs > 0 && s.sends.length > 0 && now - s.lastSend < this.settings.bundleWindowMs) {
      const until = s.lastSend + this.settings.bundleWindowMs;
      s.bundle = { until, items: [{ alertId: msg.alertId, body: msg.body, severity: msg.severity, ts: now }] };
      return { action: 'bundle', until };
    }

    this.recordSend(s, now, [msg.body]);
    return { action: 'send' };
  }

  /** Bundles whose window has ended at `now` (default: the clock's now), earliest first. */
  bundleDue(now = this.clock.now()): DueBundle[] {
    const due: DueBundle[] = [];
    for (const s of this.states.values())
      if (s.bundle && s.bundle.until <= now)
        due.push({ recipient: s.recipient, drill: s.drill, until: s.bundle.until, size: s.bundle.items.length });
    return due.sort((a, b) => a.until - b.until);
  }

  /** When the earliest pending bundle is due, for a caller that schedules a timer; undefined when none. */
  nextBundleDue(): number | undefined {
    let next: number | undefined;
    for (const s of this.states.values())
      if (s.bundle && (next === undefined || s.bundle.until < next)) next = s.bundle.until;
    return next;
  }

  /**
   * Removes and returns the pending bundle of a recipient (empty when none), recording it as one SMS sent now.
   * The caller sends one message: the single body as is, or the `bundle` template for several.
   */
  takeBundle(recipient: string, drill: boolean): BundledMessage[] {
    const s = this.states.get(keyOf(recipient, drill));
    if (!s?.bundle) return [];
    const { items } = s.bundle;
    s.bundle = undefined;
    const now = this.clock.now();
    this.expire(s, now);
    this.recordSend(
      s,
      now,
      items.map((i) => i.body),
    );
    return items;
  }

  /** SMS counted against the cap of a recipient within the cap window. */
  sentInWindow(recipient: string, drill: boolean, now = this.clock.now()): number {
    const s = this.states.get(keyOf(recipient, drill));
    if (!s) return 0;
    return s.sends.filter((t) => now - t < this.settings.capWindowMs).length;
  }

  /** Recipients (drill and real counted apart) and remembered texts: for tests and metrics. */
  stats(): { recipients: number; texts: number; sends: number; bundles: number } {
    let texts = 0;
    let sends = 0;
    let bundles = 0;
    for (const s of this.states.values()) {
      texts += s.texts.size;
      sends += s.sends.length;
      if (s.bundle) bundles++;
    }
    return { recipients: this.states.size, texts, sends, bundles };
  }

  /** Forgets everything that no rule can use any more; runs by itself at most once a minute. */
  prune(now = this.clock.now()): void {
    this.lastPrune = now;
    for (const [key, s] of this.states) {
      this.expire(s, now);
      if (!s.bundle && s.sends.length === 0 && s.texts.size === 0) this.states.delete(key);
    }
  }

  private maybePrune(now: number): void {
    if (now - this.lastPrune >= 60_000) this.prune(now);
    if (this.states.size > this.settings.maxRecipients) {
      // least recently used first (Map order is refreshed on every use); a pending bundle is never dropped
      for (const [key, s] of this.states) {
        if (this.states.size <= this.settings.maxRecipients) break;
        if (!s.bundle) this.states.delete(key);
      }
    }
  }

  private state(recipient: string, drill: boolean): RecipientState {
    const key = keyOf(recipient, drill);
    let s = this.states.get(key);
    if (s) this.states.delete(key);
    else s = { recipient, drill, sends: [], texts: new Map(), lastSend: Number.NEGATIVE_INFINITY };
    this.states.set(key, s); // most recently used last
    return s;
  }

  private expire(s: RecipientState, now: number): void {
    let drop = 0;
    while (drop < s.sends.length && now - s.sends[drop]! >= this.settings.capWindowMs) drop++;
    if (drop) s.sends.splice(0, drop);
    for (const [body, t] of s.texts) if (now - t >= this.settings.dedupWindowMs) s.texts.delete(body);
  }

  private recordSend(s: RecipientState, now: number, bodies: string[]): void {
    s.sends.push(now);
    // bounded even for a flood of critical firsts: only the cap matters, so keep a margin above it
    const keep = this.settings.dailyCap + 1000;
    if (s.sends.length > keep) s.sends.splice(0, s.sends.length - keep);
    s.lastSend = Math.max(s.lastSend, now);
    for (const body of bodies) {
      s.texts.delete(body);
      s.texts.set(body, now);
    }
    while (s.texts.size > this.settings.maxTextsPerRecipient) {
      const oldest = s.texts.keys().next().value;
      if (oldest === undefined) break;
      s.texts.delete(oldest);
    }
  }
}
