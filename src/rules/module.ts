/**
 * The rules as one module for the composition root: household directory, durable deadlines, saved rule state and
 * the engine, started in that order (deadlines and state are loaded before the engine listens to the bus).
 */
import type { Redis } from 'ioredis';
import type { AlertSink } from '../alerts/types.ts';
import type { Bus } from '../bus.ts';
import type { Clock } from '../clock/clock.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import type { Registry } from '../registry/port.ts';
import type { DeviceDirectory } from '../registry/types.ts';
import type { VisitsService } from '../visits/service.ts';
import type { RulesConfig } from './config.ts';
import { RulesEngine } from './engine.ts';
import { RegistryHouseholds } from './households.ts';
import { createRules } from './index.ts';
import { RedisScheduler } from './scheduler.ts';
import { type RuleStateFence, RuleStateStore } from './state-store.ts';
import type { Rule } from './types.ts';
import { VisitCadenceRule } from './visits.ts';

export interface RulesModuleDeps {
  config: { rules: RulesConfig; timezone: string };
  clock: Clock;
  bus: Bus;
  redis: Redis;
  registry: Pick<Registry, 'listHouseholds'>;
  alerts: AlertSink;
  visits: VisitsService;
  devices: DeviceDirectory;
  kindOf: (modelId: string) => string | undefined;
  logger: Logger;
  /** rules on several nodes (rules/feed.ts): the state is saved with its feed position, only while owner */
  fence?: RuleStateFence;
}

export class RulesModule implements Module {
  readonly name = 'rules';
  readonly households: RegistryHouseholds;
  readonly scheduler: RedisScheduler;
  readonly rules: Rule[];
  readonly engine: RulesEngine;
  readonly visitRule: VisitCadenceRule;
  private readonly state: RuleStateStore;
  private readonly started: Module[] = [];

  constructor(deps: RulesModuleDeps) {
    const log = deps.logger.child({ module: 'rules' });
    this.households = new RegistryHouseholds(deps.registry, log, 300_000, () => deps.visits.activeAway());
    this.scheduler = new RedisScheduler(deps.clock, deps.redis, log);
    this.visitRule = new VisitCadenceRule(deps.visits);
    this.rules = [...createRules(), this.visitRule];
    this.engine = new RulesEngine({
      bus: deps.bus,
      clock: deps.clock,
      scheduler: this.scheduler,
      alerts: deps.alerts,
      rules: this.rules,
      config: deps.config,
      households: this.households,
      devices: deps.devices,
      kindOf: deps.kindOf,
      logger: log,
    });
    this.state = new RuleStateStore(deps.redis, this.rules, log, undefined, undefined, deps.fence);
    this.engine.onStateChange = () => this.state.saveSoon();
    this.state.settle = () => this.engine.settled();
  }

  async start(): Promise<void> {
    for (const m of [this.households, this.scheduler, this.state, this.engine] as Module[]) {
      await m.start();
      this.started.push(m);
    }
  }

  /** The feed position the restored state reflects (rules on several nodes). */
  get restoredPosition(): string {
    return this.state.restoredPosition;
  }

  /** `saveState` false: this node lost the rules lease, so its state must not overwrite its successor's. */
  async stop(saveState = true): Promise<void> {
    for (const m of this.started.splice(0).reverse()) {
      if (m === this.state) await this.state.stop(saveState);
      else await m.stop();
    }
  }

  /** A visit or away period changed: clear the overdue alert, reload away periods. */
  async onVisitChange(change: { kind: 'visit' | 'away'; householdId: string }): Promise<void> {
    if (change.kind === 'visit') this.visitRule.visited(change.householdId, this.engine.ctx);
    else await this.households.refreshAway();
  }
}
