/**
 * Rules on several nodes. With an external broker's shared subscription (or a clustered embedded broker) any node
 * may receive any message, but a household's rules need all of its messages in order (an inactivity clock, three
 * cut-offs in a stairwell in a week, the flat door then the building door at night). The choice made here
 * (docs/deployment.md, "Rules on several nodes"):
 *
 * - Every node ingests what it receives (decode, validate, store: the costly part, which scales with the nodes) and
 *   appends what the rules and the device-status tracker need to one Redis stream, `gw:rules:feed`, in batches
 *   (one XADD per few milliseconds, not a round trip per message).
 * - One node at a time owns the rules: it holds a lease in Redis and runs the rules engine and the status tracker,
 *   fed only from that stream, so they see every node's messages in one order. A 60,000-household street is well
 *   within one node's rules (bench:rules: ~176,000 readings/s on one core).
 * - The owner saves the rule state together with the position in the stream it reflects, only while it still holds
 *   the lease (a script checks the lease and writes in one step, so a node that lost its lease cannot overwrite its
 *   successor's state). The stream is trimmed up to the saved position. A node that takes over restores that state
 *   and replays the stream from that position: nothing the others ingested is missed, and what is applied twice is
 *   made harmless by the alert key (one active alert per key) and the per-event record (`alert_event`).
 * - Deadlines are in Redis already (rules/scheduler.ts) and escalation timers in BullMQ: the new owner takes them.
 *
 * Failure behaviour:
 * - The writer and the lease use connections of their own that fail fast (no offline queue, a command timeout), so
 *   an outage or a partition shows as an error instead of a call that waits forever.
 * - The owner keeps a local deadline: 0.8 × the lease after the last renewal Redis confirmed, counted from when that
 *   renewal was sent. Past it the owner stops applying the feed at once and stops its rules (without saving),
 *   whether or not Redis answers: the lease may have run out, and another node may hold it already.
 * - The writer never drops a device event (an SOS); while Redis is away it keeps them and drops only readings and
 *   `seen` entries beyond `maxBuffered`. settled() rejects when what it waits for is not in Redis in time, so the
 *   ingest journal keeps those events for a replay.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { Bus } from '../bus.ts';
import type { DisconnectInfo } from '../broker/status.ts';
import type { ConnectionStatusSink } from '../ingest/module.ts';
import type { StatusSink } from '../ingest/pipeline.ts';
import type { DeviceEventRecord, Reading } from '../ingest/types.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';

export const FEED_KEY = 'gw:rules:feed';
export const OWNER_KEY = 'gw:rules:owner';

/** One entry of the feed, as compact tuples (they are most of the stream's bytes). */
export type FeedItem =
  | ['r', Reading[]]
  | ['e', DeviceEventRecord]
  | ['s', string, number]
  | ['S', string, 'online' | 'offline', number, 'status_topic' | 'last_will']
  | ['c', string, number]
  | ['d', string, DisconnectInfo, number]
  | ['v', { kind: 'visit' | 'away'; householdId: string }];

/** What the owner applies the feed to. */
export interface FeedTarget {
  bus: Bus;
  status: StatusSink & ConnectionStatusSink;
  visitChanged(change: { kind: 'visit' | 'away'; householdId: string }): void;
}

export function applyFeedItem(item: FeedItem, to: FeedTarget): void {
  switch (item[0]) {
    case 'r':
      to.bus.emit('readings', item[1]);
      return;
    case 'e':
      to.bus.emit('event', item[1]);
      return;
    case 's':
      to.status.seen(item[1], item[2]);
      return;
    case 'S':
      to.status.reportStatus(item[1], item[2], item[3], item[4]);
      return;
    case 'c':
      to.status.connected(item[1], item[2]);
      return;
    case 'd':
      to.status.disconnected(item[1], item[2], item[3]);
      return;
    case 'v':
      to.visitChanged(item[1]);
      return;
  }
}

/** Whether `p` settled (either way) within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return done;
}

/** Resolves when `conn` is ready, or after `ms` (commands fail fast meanwhile and are retried by their callers). */
function readyOrAfter(conn: Redis, ms: number): Promise<void> {
  if (conn.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      conn.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    conn.once('ready', done);
  });
}

/** A connection of its own that fails fast: no offline queue, no retry of a sent command, a command timeout. */
function failFastConnection(redis: Redis, name: string, commandTimeoutMs: number, logger: Logger): Redis {
  const conn = redis.duplicate({
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: commandTimeoutMs,
    connectionName: name,
  });
  // the node's main connection reports an outage already; without a listener every failed reconnect is printed
  conn.on('error', (err: Error) => logger.debug({ err: err.message, conn: name }, 'rules: redis connection error'));
  return conn;
}

/** What settled() rejects with: rule inputs the caller waits for are not in Redis (yet). */
export class FeedUndeliveredError extends Error {
  constructor(
    message: string,
    /** entries not in Redis, and how many of them are device events */
    readonly waiting: { entries: number; events: number },
  ) {
    super(message);
    this.name = 'FeedUndeliveredError';
  }
}

export interface FeedWriterDeps {
  /** the node's connection; the writer makes a fail-fast connection of its own from it (duplicate) */
  redis: Redis;
  /** the node's bus: its readings and events are forwarded */
  bus: Bus;
  logger: Logger;
  /** longest a batch waits before it is sent (ms) */
  lingerMs?: number;
  /**
   * entries kept while Redis does not take them; beyond it the oldest readings and `seen` entries are dropped (counted
   * and logged). Device events, status and connection changes are never dropped.
   */
  maxBuffered?: number;
  /** longest settled() waits by default before it reports entries as not delivered (ms, default 2000) */
  settleTimeoutMs?: number;
  /** longest stop() waits for Redis to take what is left (ms, default 2000) */
  stopTimeoutMs?: number;
  /** an XADD Redis does not answer within this is retried (ms, default 2000) */
  commandTimeoutMs?: number;
  key?: string;
}

interface Batch {
  /** per writer, increasing: the owner skips an entry it has seen already (an XADD retried after a lost answer) */
  seq: number;
  items: FeedItem[];
}

interface Waiter {
  upTo: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const droppable = (item: FeedItem) => item[0] === 'r' || item[0] === 's';

/**
 * Every node: forwards its rule inputs to the feed. It is also the node's status sink (pipeline, broker connection
 * events), so that liveness, too, is judged by the owner from everybody's messages.
 */
export class FeedWriter implements Module, StatusSink, ConnectionStatusSink {
  readonly name = 'rules-feed-writer';
  /** this process's id in the entries it writes (with the batch number: duplicates are recognised) */
  readonly writerId = randomUUID();
  private buffer: FeedItem[] = [];
  /** last `seen` per device in the current batch: a device sending 10 messages a second needs one entry */
  private seenInBatch = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** batches formed and not yet in Redis, oldest first (sent one at a time, in order) */
  private queue: Batch[] = [];
  private queuedItems = 0;
  private inFlight: Batch | undefined;
  private lastSeq = 0;
  /** every batch up to this one is in Redis (or was emptied by drops) */
  private doneSeq = 0;
  private sender: Promise<void> | undefined;
  private waiters = new Set<Waiter>();
  private conn: Redis | undefined;
  private detach: (() => void)[] = [];
  private droppedCount = 0;
  private lastDropLog = 0;
  private failing = false;
  private running = false;
  /** ends the retry pause at once (stop) */
  private wake: (() => void) | undefined;

  constructor(private readonly deps: FeedWriterDeps) {}

  get key(): string {
    return this.deps.key ?? FEED_KEY;
  }

  /** Readings and `seen` entries dropped because Redis did not take them for too long. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Entries not yet in Redis. */
  get waiting(): number {
    return this.queuedItems + this.buffer.length;
  }

  async start(): Promise<void> {
    this.conn = failFastConnection(
      this.deps.redis,
      'gridwatch-rules-feed',
      this.deps.commandTimeoutMs ?? 2000,
      this.deps.logger,
    );
    this.running = true;
    this.detach.push(this.deps.bus.on('readings', (r) => this.push(['r', r as Reading[]])));
    this.detach.push(this.deps.bus.on('event', (e) => this.push(['e', e])));
    await readyOrAfter(this.conn, 1000);
  }

  /** Sends what is left, waiting at most stopTimeoutMs for Redis; what Redis did not take by then is logged. */
  async stop(): Promise<void> {
    for (const d of this.detach.splice(0)) d();
    if (!this.running) return;
    this.flushNow();
    await within(this.drained(), this.deps.stopTimeoutMs ?? 2000);
    this.flushNow();
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.wake?.();
    if (this.waiting > 0) {
      const waiting = this.waitingCounts();
      this.deps.logger.error(
        waiting,
        'rules feed: stopped with entries Redis did not take; their events stay in the ingest journal for a replay',
      );
      this.queue = [];
      this.queuedItems = 0;
      this.buffer = [];
      this.rejectWaiters(new FeedUndeliveredError('rules feed: stopped before Redis took these entries', waiting));
    }
    this.conn?.disconnect();
    this.conn = undefined;
    await within(this.sender ?? Promise.resolve(), 1000);
  }

  seen(deviceId: string, ts: number): void {
    const prev = this.seenInBatch.get(deviceId);
    if (prev === undefined) this.push(['s', deviceId, ts]);
    if (prev === undefined || ts > prev) this.seenInBatch.set(deviceId, ts);
  }

  reportStatus(deviceId: string, status: 'online' | 'offline', ts: number, reason: 'status_topic' | 'last_will'): void {
    this.push(['S', deviceId, status, ts, reason]);
  }

  connected(deviceId: string, ts = Date.now()): void {
    this.push(['c', deviceId, ts]);
  }

  disconnected(deviceId: string, info: DisconnectInfo, ts = Date.now()): void {
    this.push(['d', deviceId, info, ts]);
  }

  visitChanged(change: { kind: 'visit' | 'away'; householdId: string }): void {
    this.push(['v', change]);
  }

  /**
   * Resolves once everything pushed so far is in Redis (the ingest journal's checkpoint waits for it). Rejects with a
   * FeedUndeliveredError when that has not happened within `timeoutMs`, or when the writer stopped first: the entries
   * are still queued (events are never dropped) and go out when Redis is back, but the caller must not act as if the
   * owner could read them — the ingest journal keeps its events and checkpoints again later.
   */
  settled(timeoutMs = this.deps.settleTimeoutMs ?? 2000): Promise<void> {
    this.flushNow();
    const upTo = this.lastSeq;
    if (this.doneSeq >= upTo) return Promise.resolve();
    if (!this.running) {
      return Promise.reject(new FeedUndeliveredError('rules feed: stopped', this.waitingCounts()));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        upTo,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const waiting = this.waitingCounts();
          reject(
            new FeedUndeliveredError(
              `rules feed: ${waiting.entries} entries (${waiting.events} events) not in Redis after ${timeoutMs} ms`,
              waiting,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  private push(item: FeedItem): void {
    if (!this.running) return;
    this.buffer.push(item);
    if (this.buffer.length >= 2000) this.flushNow();
    else if (!this.timer) this.timer = setTimeout(() => this.flushNow(), this.deps.lingerMs ?? 5);
  }

  private flushNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer.length === 0 || !this.running) return;
    const items = this.buffer;
    // the coalesced `seen` entries carry the batch's newest time per device
    for (const item of items) if (item[0] === 's') item[2] = this.seenInBatch.get(item[1]) ?? item[2];
    this.buffer = [];
    this.seenInBatch = new Map();
    this.queue.push({ seq: ++this.lastSeq, items });
    this.queuedItems += items.length;
    this.dropOverLimit();
    this.sender ??= this.sendQueued().finally(() => {
      this.sender = undefined;
    });
  }

  /** Resolves when the queue is empty (or the writer stopped). */
  private async drained(): Promise<void> {
    while (this.sender) await this.sender;
  }

  /** Sends the queued batches in order, each retried until Redis takes it (the next one waits). */
  private async sendQueued(): Promise<void> {
    let attempt = 0;
    while (this.running && this.queue.length > 0) {
      const batch = this.queue[0]!;
      if (batch.items.length === 0) {
        this.done(batch);
        continue;
      }
      const conn = this.conn;
      try {
        if (!conn) throw new Error('rules feed: no connection');
        this.inFlight = batch;
        await conn.xadd(this.key, '*', 'd', JSON.stringify(batch.items), 'w', this.writerId, 'n', String(batch.seq));
        this.inFlight = undefined;
        this.done(batch);
        attempt = 0;
        if (this.failing) {
          this.failing = false;
          this.deps.logger.info({ dropped: this.droppedCount }, 'rules feed: Redis takes the feed again');
        }
      } catch (err) {
        this.inFlight = undefined;
        if (!this.failing) {
          this.failing = true;
          this.deps.logger.warn(
            { err: (err as Error).message },
            'rules feed: Redis unavailable; retrying (events kept, readings dropped beyond maxBuffered)',
          );
        }
        this.dropOverLimit();
        if (!this.running) return;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(2000, 50 * 2 ** attempt++));
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }

  private done(batch: Batch): void {
    if (this.queue[0] === batch) this.queue.shift();
    this.queuedItems -= batch.items.length;
    this.doneSeq = batch.seq;
    for (const w of this.waiters) {
      if (w.upTo > this.doneSeq) continue;
      clearTimeout(w.timer);
      this.waiters.delete(w);
      w.resolve();
    }
  }

  /** Beyond maxBuffered: the oldest readings and `seen` entries go (never events, status or connection changes). */
  private dropOverLimit(): void {
    const over = this.queuedItems + this.buffer.length - (this.deps.maxBuffered ?? 200_000);
    if (over <= 0) return;
    let dropped = 0;
    for (const batch of this.queue) {
      if (dropped >= over) break;
      if (batch === this.inFlight) continue;
      const kept: FeedItem[] = [];
      for (const item of batch.items) {
        if (dropped < over && droppable(item)) dropped++;
        else kept.push(item);
      }
      batch.items = kept;
    }
    this.queuedItems -= dropped;
    this.droppedCount += dropped;
    const now = Date.now();
    if (now - this.lastDropLog < 5000) return;
    this.lastDropLog = now;
    if (dropped > 0) {
      this.deps.logger.error(
        { dropped, droppedTotal: this.droppedCount, waiting: this.waiting },
        'rules feed: Redis unavailable too long; readings dropped (events kept)',
      );
    }
    if (dropped < over) {
      this.deps.logger.error(
        this.waitingCounts(),
        'rules feed: more events and status changes waiting for Redis than maxBuffered; all kept',
      );
    }
  }

  private waitingCounts(): { entries: number; events: number } {
    let events = 0;
    for (const b of this.queue) for (const item of b.items) if (item[0] === 'e') events++;
    for (const item of this.buffer) if (item[0] === 'e') events++;
    return { entries: this.waiting, events };
  }

  private rejectWaiters(err: Error): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters.clear();
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** What the owner starts when it takes the lease, and stops when it loses it. */
export interface OwnedRules {
  /** Starts the rules and the status tracker on `bus`; resolves with the feed position their saved state reflects. */
  start(bus: Bus): Promise<string>;
  /** The target the feed is applied to (valid after start). */
  target(): FeedTarget;
  /**
   * Stops them; `save`: write the state first (false when the lease is lost: the successor's state wins). Also called
   * after a start that failed, to stop whatever of it had started.
   */
  stop(save: boolean): Promise<void>;
}

export interface RulesOwnershipDeps {
  /** the node's connection; the lease gets a fail-fast connection of its own from it (duplicate) */
  redis: Redis;
  /** a separate connection for the blocking XREAD */
  reader: () => Redis;
  nodeId: string;
  owned: OwnedRules;
  logger: Logger;
  leaseMs?: number;
  /** longest stop() waits for a takeover under way, and for the lease's release (ms, default 2000) */
  stopTimeoutMs?: number;
  key?: string;
  ownerKey?: string;
  /** told when this node becomes the owner or stops being it */
  onChange?: (owner: boolean) => void;
}

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
/**
 * Takes the lease when free, or when it is this node's already (a take whose answer was lost, run by Redis after all;
 * a lease given up locally that Redis still keeps): taken back rather than left to run out with no owner meanwhile.
 */
const ACQUIRE = `local v = redis.call('get', KEYS[1])
if v == false then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if v == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** The owner stops when this share of the lease has passed since the last confirmed renewal was sent. */
const SAFE_SHARE = 0.8;

const now = () => performance.now();

/**
 * Every node: competes for the lease; the holder consumes the feed into its rules.
 *
 * The lease steps (take, renew) run on a timer of their own, every lease/5, on a fail-fast connection: a takeover
 * loading the state, or a Redis that does not answer, never holds them up. Starting and stopping the rules run one at
 * a time in `chain`.
 */
export class RulesOwnership implements Module {
  readonly name = 'rules-ownership';
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lease: Redis | undefined;
  /** this node holds the lease (as far as it knows): it renews it */
  private leaseHeld = false;
  /** when the last renewal (or the take) that Redis confirmed was sent (performance.now()) */
  private confirmedSentAt = 0;
  /** the rules run here and the feed is applied to them */
  private owner = false;
  /** owned.start() succeeded and owned.stop() has not been called since */
  private rulesRunning = false;
  /** onChange(true) was told */
  private announced = false;
  /** changes whenever the feed must no longer be applied by the consume loop that was started before */
  private generation = 0;
  private renewing = false;
  private acquiring = false;
  /** a takeover or a resignation under way in `chain` */
  private transitions = 0;
  /** no new attempt to take the lease before this (after a takeover that failed) */
  private retryAt = 0;
  private position = '0-0';
  private reader: Redis | undefined;
  private consuming: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private applied = 0;

  constructor(private readonly deps: RulesOwnershipDeps) {}

  get isOwner(): boolean {
    return this.owner;
  }

  /** Feed entries applied by this node while owner (tests, metrics). */
  get appliedBatches(): number {
    return this.applied;
  }

  /** The stream position the owner has applied up to (its state is saved with it). */
  get appliedPosition(): string {
    return this.position;
  }

  private get leaseMs(): number {
    return this.deps.leaseMs ?? 10_000;
  }

  private get ownerKey(): string {
    return this.deps.ownerKey ?? OWNER_KEY;
  }

  /** The lease step's period, and the command timeout of the lease connection. */
  private get stepMs(): number {
    return Math.max(50, Math.floor(this.leaseMs / 5));
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.lease = failFastConnection(this.deps.redis, 'gridwatch-rules-lease', this.stepMs, this.deps.logger);
    await readyOrAfter(this.lease, Math.min(this.leaseMs, 2000));
    this.timer = setInterval(() => this.tick(), this.stepMs);
    // the first attempt is awaited: a node that finds the lease free runs the rules when start() resolves
    await this.acquire();
  }

  /**
   * Saves the state and gives the lease back. The lease is renewed until the rules have stopped (the save is fenced
   * by it); a takeover under way is waited for at most stopTimeoutMs (it stops what it started by itself when it
   * ends, as it sees `stopped`), and so is the release.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const budget = this.deps.stopTimeoutMs ?? 2000;
    const idle = await within(this.chain, budget);
    if (!idle)
      this.deps.logger.error('rules: a takeover or resignation is still under way at stop; not waiting for it');
    else if (this.rulesRunning) await this.enqueue(() => this.stopRules(true), 'stopping the rules');
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.leaseHeld) {
      this.dropLease();
      await within(this.release(), budget);
    }
    clearTimeout(this.watchdog);
    this.lease?.disconnect();
    this.lease = undefined;
  }

  /** One lease step (timer): renew the lease when ours, try to take it when free (not once stopping). Never throws. */
  private tick(): void {
    try {
      if (this.leaseHeld) {
        if (!this.fresh()) this.lose('expired');
        else if (!this.renewing) void this.renew();
      } else if (!this.stopped && !this.acquiring && this.transitions === 0 && now() >= this.retryAt) {
        void this.acquire();
      }
    } catch (err) {
      this.deps.logger.error({ err }, 'rules: lease step failed');
    }
  }

  /** The local deadline has not passed: the lease is certainly still ours. */
  private fresh(): boolean {
    return now() - this.confirmedSentAt < this.leaseMs * SAFE_SHARE;
  }

  private async acquire(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.stopped) return;
    this.acquiring = true;
    const sentAt = now();
    let got: unknown;
    try {
      got = await lease.eval(ACQUIRE, 1, this.ownerKey, this.deps.nodeId, String(this.leaseMs));
    } catch (err) {
      this.deps.logger.debug({ err: (err as Error).message }, 'rules: taking the lease failed');
      return;
    } finally {
      this.acquiring = false;
    }
    if (got !== 1) return;
    if (this.stopped) {
      await this.release();
      return;
    }
    this.leaseHeld = true;
    this.confirmed(sentAt);
    await this.enqueue(() => this.takeOver(), 'taking over the rules');
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    this.renewing = true;
    const sentAt = now();
    try {
      const ok = await lease.eval(RENEW, 1, this.ownerKey, this.deps.nodeId, String(this.leaseMs));
      if (!this.leaseHeld) return;
      if (ok === 1) this.confirmed(sentAt);
      else this.lose('taken');
    } catch (err) {
      // the watchdog stops the rules when the lease cannot be renewed in time; the next step tries again
      if (this.leaseHeld) this.deps.logger.warn({ err: (err as Error).message }, 'rules: renewing the lease failed');
    } finally {
      this.renewing = false;
    }
  }

  /** Redis confirmed a take or a renewal sent at `sentAt`: the lease is ours until sentAt + lease at least. */
  private confirmed(sentAt: number): void {
    if (sentAt > this.confirmedSentAt) this.confirmedSentAt = sentAt;
    this.armWatchdog();
  }

  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    if (!this.leaseHeld) return;
    const due = this.confirmedSentAt + this.leaseMs * SAFE_SHARE - now();
    this.watchdog = setTimeout(
      () => {
        if (!this.leaseHeld) return;
        if (this.fresh()) this.armWatchdog();
        else this.lose('expired');
      },
      Math.max(0, Math.ceil(due)),
    );
  }

  private dropLease(): void {
    this.leaseHeld = false;
    clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }

  /**
   * The lease is gone ('taken': another node holds it) or may be ('expired': not renewed in time, Redis silent). The
   * feed stops being applied now, before anything else; the rules are stopped without saving (the successor's state
   * wins), and an expired lease that is still ours is given back so that a successor need not wait.
   */
  private lose(why: 'taken' | 'expired'): void {
    if (!this.leaseHeld) return;
    this.dropLease();
    this.owner = false;
    this.generation++;
    this.deps.logger.warn(
      { nodeId: this.deps.nodeId, why },
      why === 'taken'
        ? 'rules: lease lost to another node; stopping the rules here'
        : 'rules: lease not renewed in time; stopping the rules here',
    );
    void this.enqueue(async () => {
      await this.stopRules(false);
      if (why === 'expired' && !this.leaseHeld) await this.release();
    }, 'giving up the rules');
  }

  /** Runs `step` after the steps before it; an error is logged, never passed on (the chain goes on). */
  private enqueue(step: () => Promise<void>, what: string): Promise<void> {
    this.transitions++;
    const run = this.chain
      .then(step)
      .catch((err: unknown) => this.deps.logger.error({ err }, `rules: ${what} failed`))
      .finally(() => {
        this.transitions--;
      });
    this.chain = run;
    return run;
  }

  private async takeOver(): Promise<void> {
    if (!this.leaseHeld || this.stopped) return;
    const bus = new Bus((event, err) => this.deps.logger.error({ err, event }, 'rules bus listener failed'));
    let position: string;
    try {
      position = await this.deps.owned.start(bus);
    } catch (err) {
      this.deps.logger.error(
        { err, nodeId: this.deps.nodeId },
        'rules: taking over the rules failed; lease given back, trying again later',
      );
      try {
        await this.deps.owned.stop(false);
      } catch (stopErr) {
        this.deps.logger.error({ err: stopErr }, 'rules: stopping a failed takeover failed');
      }
      // the lease's other candidates get one lease's time to take it first
      this.retryAt = now() + this.leaseMs;
      if (this.leaseHeld) {
        this.dropLease();
        await this.release();
      }
      return;
    }
    this.rulesRunning = true;
    if (!this.leaseHeld || this.stopped) {
      // the lease was lost while the state loaded, or the node is stopping: nothing was applied, nothing to save
      await this.stopRules(false);
      if (this.leaseHeld) {
        this.dropLease();
        await this.release();
      }
      return;
    }
    this.position = position;
    this.owner = true;
    const gen = ++this.generation;
    this.deps.logger.info({ nodeId: this.deps.nodeId, from: position }, 'rules: this node owns the rules now');
    this.reader = this.deps.reader();
    this.consuming = this.consume(this.reader, this.deps.owned.target(), gen);
    this.announced = true;
    this.tell(true);
  }

  private async stopRules(save: boolean): Promise<void> {
    this.owner = false;
    this.generation++;
    const reader = this.reader;
    const consuming = this.consuming;
    this.reader = undefined;
    this.consuming = undefined;
    reader?.disconnect();
    if (consuming) await within(consuming, 2000);
    if (this.rulesRunning) {
      this.rulesRunning = false;
      try {
        await this.deps.owned.stop(save);
      } catch (err) {
        this.deps.logger.error({ err, save }, 'rules: stopping the rules failed');
      }
    }
    if (this.announced) {
      this.announced = false;
      this.tell(false);
    }
  }

  private tell(owner: boolean): void {
    try {
      this.deps.onChange?.(owner);
    } catch (err) {
      this.deps.logger.error({ err }, 'rules: onChange failed');
    }
  }

  /** Deletes the lease if it is still ours (best effort: it runs out by itself otherwise). */
  private async release(): Promise<void> {
    try {
      await this.lease?.eval(RELEASE, 1, this.ownerKey, this.deps.nodeId);
    } catch (err) {
      this.deps.logger.debug({ err: (err as Error).message }, 'rules: releasing the lease failed');
    }
  }

  private async consume(reader: Redis, target: FeedTarget, gen: number): Promise<void> {
    const key = this.deps.key ?? FEED_KEY;
    /** per writer, the newest batch applied: an entry written twice (an XADD retried) is applied once */
    const lastSeq = new Map<string, number>();
    while (gen === this.generation) {
      let res: [string, [string, string[]][]][] | null;
      try {
        res = (await reader.xread('COUNT', 500, 'BLOCK', 1000, 'STREAMS', key, this.position)) as typeof res;
      } catch (err) {
        if (gen !== this.generation) return;
        this.deps.logger.warn({ err: (err as Error).message }, 'rules: reading the feed failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const [id, fields] of res?.[0]?.[1] ?? []) {
        // nothing is applied once the lease is lost, or may be: another node may be applying it already
        if (gen !== this.generation) return;
        if (!this.fresh()) {
          this.lose('expired');
          return;
        }
        this.position = id;
        let data: string | undefined;
        let writer: string | undefined;
        let seq = 0;
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i] === 'd') data = fields[i + 1];
          else if (fields[i] === 'w') writer = fields[i + 1];
          else if (fields[i] === 'n') seq = Number(fields[i + 1]);
        }
        if (writer && seq > 0) {
          if (seq <= (lastSeq.get(writer) ?? 0)) continue;
          lastSeq.set(writer, seq);
        }
        if (data) {
          let items: FeedItem[];
          try {
            items = JSON.parse(data) as FeedItem[];
          } catch {
            this.deps.logger.error({ id }, 'rules feed: unreadable entry skipped');
            items = [];
          }
          for (const item of items) {
            try {
              applyFeedItem(item, target);
            } catch (err) {
              this.deps.logger.error({ err, kind: item[0] }, 'rules feed: applying an entry failed');
            }
          }
        }
        this.applied++;
      }
    }
  }
}

/** Saves the rule state with its feed position, only while `nodeId` holds the lease (fencing). */
export const SAVE_IF_OWNER = `if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('hset', KEYS[2], unpack(ARGV, 2))
return 1`;
