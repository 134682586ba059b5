/**
 * The rules engine's contracts. A rule is a small object that reacts to canonical readings, events, device status
 * changes and its own timers, keeps compact per-household or per-device state, and raises or clears alerts
 * through the AlertSink. Rules never read the time-series store on the message path.
 */
import type { Alert, AlertInput, AlertSink } from '../alerts/types.ts';
import type { Clock } from '../clock/clock.ts';
import type { DeviceEventRecord, Reading, StatusChange } from '../ingest/types.ts';
import type { Logger } from '../logger.ts';
import type { Colour, DeviceDirectory } from '../registry/types.ts';
import type { RuleName, RuleSettings, RulesConfig } from './config.ts';

/** What rules need to know about a household (cached from the registry). */
export interface HouseholdInfo {
  id: string;
  colour: Colour;
  loneElderly: boolean;
  atRisk: boolean;
  gridId: string;
  buildingId: string;
  unitId: string;
  communityId: string;
  /** away periods set by staff (family visit, hospital): home rules stay quiet inside them */
  away?: AwayInterval[];
}

export interface AwayInterval {
  /** epoch ms */
  from: number;
  until: number;
}

/** Is the household inside a staff-set away period at `ts`? */
export function awayByStaff(h: HouseholdInfo | undefined, ts: number): boolean {
  return h?.away?.some((a) => a.from <= ts && ts < a.until) ?? false;
}

/** A deadline. `key` is unique: setting a timer with the same key replaces it. */
export interface Timer {
  key: string;
  /** epoch ms */
  at: number;
  rule: RuleName;
  /** small, JSON-serialisable: timers survive restarts */
  data?: Record<string, string | number | boolean>;
}

/** Deadlines on the Clock port: durable in Redis live, in memory on a virtual clock in tests and replays. */
export interface Scheduler {
  set(timer: Timer): void;
  cancel(key: string): void;
  /** the pending timer of a key, if any */
  get(key: string): Timer | undefined;
}

export interface RuleContext {
  clock: Clock;
  scheduler: Scheduler;
  alerts: AlertSink;
  /** the community's IANA time zone, for rule windows */
  timezone: string;
  /** the current rule configuration */
  config(): RulesConfig;
  /** settings for a household (defaults ← colour class ← household overrides) */
  settings(householdId?: string): RuleSettings;
  household(id: string): HouseholdInfo | undefined;
  devices: DeviceDirectory;
  /** device kind of a model id (devices/), e.g. `wristband` */
  kindOf(modelId: string): string | undefined;
  log: Logger;
  /** Raises without awaiting: errors are logged; the engine's idle() waits for it. */
  raise(input: AlertInput): void;
  clear(key: string, reason: string, ts: number): void;
  cancel(key: string, reason: string, ts: number, by: string): void;
}

export interface Rule {
  readonly name: RuleName;
  /** Called once when the engine starts (e.g. to arm a daily check). */
  start?(ctx: RuleContext): void;
  onReadings?(readings: readonly Reading[], ctx: RuleContext): void;
  onEvent?(event: DeviceEventRecord, ctx: RuleContext): void;
  onStatus?(change: StatusChange, ctx: RuleContext): void;
  onTimer?(timer: Timer, ctx: RuleContext): void;
  /** Compact state for persistence (JSON), and its restore; rules without state omit both. */
  snapshot?(): unknown;
  restore?(state: unknown): void;
}

export type { Alert, AlertInput };
