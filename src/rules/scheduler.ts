/**
 * Deadlines for the rules ("no activity by 14:30", a fall's cancel window, a night exit's return wait).
 *
 * MemoryScheduler keeps timers in a min-heap and arms ONE Clock timeout for the earliest, so it works the same on
 * the wall clock and on a VirtualClock (tests and replays fire every due deadline in order, without sleeping), and
 * 60,000 households' deadlines cost one timer. RedisScheduler adds durability: every change is written behind to a
 * Redis sorted set, and a restarted node reloads its deadlines (overdue ones fire at once).
 */
import type { Redis } from 'ioredis';
import type { Cancel, Clock } from '../clock/clock.ts';
import type { Logger } from '../logger.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Scheduler, Timer } from './types.ts';

interface Entry {
  timer: Timer;
  seq: number;
}

export class MemoryScheduler implements Scheduler {
  private readonly byKey = new Map<string, Entry>();
  private heap: Entry[] = [];
  private seq = 0;
  private armedAt: number | undefined;
  private disarm: Cancel | undefined;
  private handler: ((t: Timer) => void) | undefined;
  private firing = false;
  /** Observes how late each deadline fired (ms after its time): for /metrics and the rules benchmark. */
  observeLateness: ((timer: Timer, lateMs: number) => void) | undefined;

  constructor(protected readonly clock: Clock) {}

  onFire(handler: (t: Timer) => void): void {
    this.handler = handler;
    this.arm();
  }

  set(timer: Timer): void {
    const entry = { timer, seq: ++this.seq };
    this.byKey.set(timer.key, entry);
    this.push(entry);
    // replaced and cancelled entries stay in the heap until they surface; rebuild it before they pile up
    if (this.heap.length > 2 * this.byKey.size + 1024) this.compact();
    this.arm();
  }

  private compact(): void {
    const live = [...this.byKey.values()].sort((a, b) => (this.less(a, b) ? -1 : 1));
    // a sorted array is a valid min-heap
    this.heap = live;
  }

  /** Entries held in the heap, live or stale (for tests). */
  get heapSize(): number {
    return this.heap.length;
  }

  cancel(key: string): void {
    // lazy removal: the heap entry is skipped when it surfaces
    this.byKey.delete(key);
  }

  get(key: string): Timer | undefined {
    return this.byKey.get(key)?.timer;
  }

  get size(): number {
    return this.byKey.size;
  }

  all(): Timer[] {
    return [...this.byKey.values()].map((e) => e.timer);
  }

  stopTimers(): void {
    this.disarm?.();
    this.disarm = undefined;
    this.armedAt = undefined;
  }

  /** Fires every timer due at the clock's now, earliest first (also timers set by the handlers, if due). */
  private fireDue(): void {
    if (this.firing) return;
    this.firing = true;
    this.armedAt = undefined;
    this.disarm = undefined;
    try {
      for (;;) {
        const top = this.peekLive();
        if (!top || top.timer.at > this.clock.now()) break;
        this.pop();
        this.byKey.delete(top.timer.key);
        this.fired(top.timer);
        this.observeLateness?.(top.timer, Date.now() - top.timer.at);
        this.handler?.(top.timer);
      }
    } finally {
      this.firing = false;
      this.arm();
    }
  }

  /** Hook for subclasses: a timer left the schedule by firing. */
  protected fired(_timer: Timer): void {}

  private arm(): void {
    if (!this.handler || this.firing) return;
    const top = this.peekLive();
    if (!top) {
      this.stopTimers();
      return;
    }
    if (this.armedAt !== undefined && this.armedAt <= top.timer.at) return;
    this.disarm?.();
    this.armedAt = top.timer.at;
    this.disarm = this.clock.setTimeout(() => this.fireDue(), Math.max(0, top.timer.at - this.clock.now()));
  }

  private peekLive(): Entry | undefined {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (this.byKey.get(top.timer.key) === top) return top;
      this.pop(); // cancelled or replaced
    }
    return undefined;
  }

  private less(a: Entry, b: Entry): boolean {
    return a.timer.at < b.timer.at || (a.timer.at === b.timer.at && a.seq < b.seq);
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

/** Durable deadlines: MemoryScheduler plus write-behind to Redis (sorted set by time + hash of timers). */
export class RedisScheduler extends MemoryScheduler implements Module {
  readonly name = 'rule-timers';
  private readonly pending = new Map<string, Timer | null>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    clock: Clock,
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly prefix = 'gw:timers',
    private readonly flushEveryMs = 200,
  ) {
    super(clock);
  }

  /** Loads the saved deadlines; call before onFire so overdue ones fire once the engine listens. */
  async start(): Promise<void> {
    const all = await this.redis.hgetall(`${this.prefix}:data`);
    let n = 0;
    for (const json of Object.values(all)) {
      try {
        super.set(JSON.parse(json) as Timer);
        n++;
      } catch {
        // a corrupt entry must not stop the rules: skip it
      }
    }
    this.flushTimer = setInterval(() => void this.flush(), this.flushEveryMs);
    this.flushTimer.unref();
    if (n > 0) this.log.info({ timers: n }, 'rule deadlines reloaded');
  }

  override set(timer: Timer): void {
    super.set(timer);
    this.pending.set(timer.key, timer);
  }

  override cancel(key: string): void {
    super.cancel(key);
    this.pending.set(key, null);
  }

  protected override fired(timer: Timer): void {
    this.pending.set(timer.key, null);
  }

  /** Writes the changes since the last flush in one round trip. */
  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending.clear();
    const multi = this.redis.multi();
    for (const [key, timer] of batch) {
      if (timer) {
        multi.zadd(`${this.prefix}:at`, timer.at, key);
        multi.hset(`${this.prefix}:data`, key, JSON.stringify(timer));
      } else {
        multi.zrem(`${this.prefix}:at`, key);
        multi.hdel(`${this.prefix}:data`, key);
      }
    }
    this.flushing = multi
      .exec()
      .then(() => undefined)
      .catch((err: unknown) => {
        // keep the changes for the next try, unless newer ones replaced them meanwhile
        for (const [key, timer] of batch) if (!this.pending.has(key)) this.pending.set(key, timer);
        this.log.warn({ err }, 'rule deadlines: saving to Redis failed; will retry');
      })
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  async stop(): Promise<void> {
    clearInterval(this.flushTimer);
    this.stopTimers();
    // a periodic flush may be under way: wait for it, then write what changed meanwhile
    // (bounded: with Redis gone, the changes stay unsaved rather than hanging the stop)
    for (let i = 0; i < 5 && (this.flushing || this.pending.size > 0); i++) await this.flush();
  }
}
