/**
 * The rules engine: hands each canonical reading batch, event and device status change from the bus to every
 * rule, fires the rules' deadlines, and passes their alert operations to the AlertSink — in order per alert key,
 * without making the message path wait for the database.
 */
import { type AlertInput, type AlertSink, alertKey } from '../alerts/types.ts';
import type { Bus } from '../bus.ts';
import type { Clock } from '../clock/clock.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import type { DeviceDirectory } from '../registry/types.ts';
import { type RuleName, type RulesConfig, settingsFor } from './config.ts';
import type { MemoryScheduler } from './scheduler.ts';
import type { HouseholdInfo, Rule, RuleContext, Timer } from './types.ts';

export interface HouseholdDirectory {
  get(id: string): HouseholdInfo | undefined;
}

export interface RulesEngineDeps {
  bus: Bus;
  clock: Clock;
  scheduler: MemoryScheduler;
  alerts: AlertSink;
  rules: readonly Rule[];
  config: { rules: RulesConfig; timezone: string };
  households: HouseholdDirectory;
  devices: DeviceDirectory;
  kindOf: (modelId: string) => string | undefined;
  logger: Logger;
}

export class RulesEngine implements Module {
  readonly name = 'rules';
  readonly ctx: RuleContext;
  private readonly byName = new Map<RuleName, Rule>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private detach: (() => void)[] = [];
  /** Called when rule state that matters after a crash changed (an alert was raised): see RuleStateStore. */
  onStateChange: (() => void) | undefined;

  constructor(private readonly deps: RulesEngineDeps) {
    for (const r of deps.rules) this.byName.set(r.name, r);
    const log = deps.logger;
    this.ctx = {
      clock: deps.clock,
      scheduler: deps.scheduler,
      alerts: deps.alerts,
      timezone: deps.config.timezone,
      config: () => deps.config.rules,
      settings: (householdId) =>
        settingsFor(deps.config.rules, householdId, householdId ? deps.households.get(householdId)?.colour : undefined),
      household: (id) => deps.households.get(id),
      devices: deps.devices,
      kindOf: deps.kindOf,
      log,
      raise: (input: AlertInput) => {
        this.enqueue(alertKey(input), () => deps.alerts.raise(input), `raise ${input.type}`);
        // rules remember what they raised (to clear it later): that memory should reach Redis soon
        this.onStateChange?.();
      },
      clear: (key, reason, ts) => this.enqueue(key, () => deps.alerts.clear(key, reason, ts), 'clear'),
      cancel: (key, reason, ts, by) => this.enqueue(key, () => deps.alerts.cancel(key, reason, ts, by), 'cancel'),
    };
  }

  async start(): Promise<void> {
    const { bus, scheduler } = this.deps;
    const rules = this.deps.rules;
    this.detach.push(
      bus.on('readings', (readings) => {
        for (const r of rules) if (r.onReadings) this.guard(r, () => r.onReadings!(readings, this.ctx));
      }),
      bus.on('event', (e) => {
        for (const r of rules) if (r.onEvent) this.guard(r, () => r.onEvent!(e, this.ctx));
      }),
      bus.on('status', (s) => {
        for (const r of rules) if (r.onStatus) this.guard(r, () => r.onStatus!(s, this.ctx));
      }),
    );
    scheduler.onFire((t: Timer) => {
      const rule = this.byName.get(t.rule);
      if (rule?.onTimer) this.guard(rule, () => rule.onTimer!(t, this.ctx));
    });
    for (const r of rules) if (r.start) this.guard(r, () => r.start!(this.ctx));
  }

  async stop(): Promise<void> {
    for (const d of this.detach.splice(0)) d();
    this.deps.scheduler.stopTimers();
    await this.idle();
  }

  /** Resolves when the alert operations started before this call have finished (the ingest journal's checkpoint). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /** Resolves when every alert operation started so far has finished (tests, replays, shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  rule<T extends Rule>(name: RuleName): T | undefined {
    return this.byName.get(name) as T | undefined;
  }

  private guard(rule: Rule, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.deps.logger.error({ err, rule: rule.name }, 'rule failed on a message; other rules go on');
    }
  }

  /** Runs alert operations one after another per key, so a clear never overtakes the raise before it. */
  private enqueue(key: string, op: () => Promise<unknown>, what: string): void {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev
      .then(op)
      .catch((err: unknown) => this.deps.logger.error({ err, key, op: what }, 'alert operation failed'));
    this.chains.set(key, next);
    this.inFlight.add(next);
    void next.finally(() => {
      this.inFlight.delete(next);
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
  }
}
