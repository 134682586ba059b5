/**
 * Rule state (learned thresholds, last activity, recent cut-offs …) saved to Redis as one compact JSON document
 * per rule: every `everyMs` and at stop, restored at start. A restart then keeps what the rules learned instead of
 * going back to the cold-start thresholds.
 */
import type { Redis } from 'ioredis';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import { SAVE_IF_OWNER } from './feed.ts';
import type { Rule } from './types.ts';

/**
 * Rules on several nodes (rules/feed.ts): the state is saved with the feed position it reflects, only while this
 * node holds the lease, and the feed is trimmed up to that position.
 */
export interface RuleStateFence {
  ownerKey: string;
  nodeId: string;
  feedKey: string;
  /** the last feed entry applied to the rules, read at the moment of the snapshot */
  position: () => string;
}

/** The hash field that holds the feed position (not a rule name: those are lower-case words). */
const POSITION_FIELD = '@feed';

export class RuleStateStore implements Module {
  readonly name = 'rule-state';
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  /** the feed position the restored state reflects ('0-0': none saved, read the feed from its start) */
  restoredPosition = '0-0';
  /** false once the state must not be written any more (the lease was lost) */
  private writable = true;

  constructor(
    private readonly redis: Redis,
    private readonly rules: readonly Rule[],
    private readonly log: Logger,
    private readonly key = 'gw:rules:state',
    private readonly everyMs = 30_000,
    private readonly fence?: RuleStateFence,
  ) {}

  /** Resolves when the alert writes started so far are done (the engine's settled()); awaited before a save. */
  settle?: () => Promise<void>;

  async start(): Promise<void> {
    const saved = await this.redis.hgetall(this.key);
    this.restoredPosition = saved[POSITION_FIELD] ?? '0-0';
    this.writable = true;
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
    if (!this.writable) return 0;
    const fields: Record<string, string> = {};
    for (const rule of this.rules) {
      if (!rule.snapshot) continue;
      fields[rule.name] = JSON.stringify(rule.snapshot());
    }
    const bytes = Object.values(fields).reduce((n, s) => n + s.length, 0);
    const fence = this.fence;
    if (!fence) {
      if (Object.keys(fields).length > 0) await this.redis.hset(this.key, fields);
      return bytes;
    }
    // snapshot and position are taken in the same synchronous step, so the position is exactly what the state saw
    const position = fence.position();
    // The feed up to `position` is trimmed below: the alerts its entries raised must be committed first, or a
    // crash in between would leave a successor neither the entries nor the alerts.
    await this.settle?.();
    const args = [fence.nodeId, POSITION_FIELD, position, ...Object.entries(fields).flat()];
    const saved = await this.redis.eval(SAVE_IF_OWNER, 2, fence.ownerKey, this.key, ...args);
    if (saved !== 1) {
      this.writable = false;
      this.log.warn('rules: state not saved, this node no longer holds the rules lease');
      return 0;
    }
    // what the saved state reflects is not needed by a successor any more
    if (position !== '0-0') await this.redis.xtrim(fence.feedKey, 'MINID', position);
    return bytes;
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

  /** `save` false: the lease is gone, the successor's state must not be overwritten. */
  async stop(save = true): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.soon);
    if (save) await this.save();
    else this.writable = false;
  }
}
