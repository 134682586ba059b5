/**
 * Rule state (learned thresholds, last activity, recent cut-offs …) saved to Redis as one compact JSON document
 * per rule: every `everyMs` and at stop, restored at start. A restart then keeps what the rules learned instead of
 * going back to the cold-start thresholds.
 */
import type { Redis } from 'ioredis';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import type { Rule } from './types.ts';

export class RuleStateStore implements Module {
  readonly name = 'rule-state';
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly rules: readonly Rule[],
    private readonly log: Logger,
    private readonly key = 'gw:rules:state',
    private readonly everyMs = 30_000,
  ) {}

  async start(): Promise<void> {
    const saved = await this.redis.hgetall(this.key);
    for (const rule of this.rules) {
      const json = saved[rule.name];
      if (!json || !rule.restore) continue;
      try {
        rule.restore(JSON.parse(json));
      } catch (err) {
        // a state from an older version must not stop the rules: start that rule fresh
        this.log.warn({ err, rule: rule.name }, 'rules: saved state not usable; starting fresh');
      }
    }
    this.timer = setInterval(() => {
      this.save().catch((err: unknown) => this.log.warn({ err }, 'rules: saving state failed'));
    }, this.everyMs);
    this.timer.unref();
  }

  async save(): Promise<number> {
    const fields: Record<string, string> = {};
    for (const rule of this.rules) {
      if (!rule.snapshot) continue;
      fields[rule.name] = JSON.stringify(rule.snapshot());
    }
    if (Object.keys(fields).length > 0) await this.redis.hset(this.key, fields);
    return Object.values(fields).reduce((n, s) => n + s.length, 0);
  }

  /**
   * Saves within a second (once, however many calls): after a raise, so that a crash soon after cannot lose the
   * rule's memory of the alert it must clear later.
   */
  saveSoon(): void {
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.save().catch((err: unknown) => this.log.warn({ err }, 'rules: saving state failed'));
    }, 1000);
    this.soon.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.soon);
    await this.save();
  }
}
