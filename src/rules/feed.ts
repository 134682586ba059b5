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
 */
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

export interface FeedWriterDeps {
  redis: Redis;
  /** the node's bus: its readings and events are forwarded */
  bus: Bus;
  logger: Logger;
  /** longest a batch waits before it is sent (ms) */
  lingerMs?: number;
  /** entries kept while Redis does not answer; beyond it the oldest are dropped and logged */
  maxBuffered?: number;
  key?: string;
}

/**
 * Every node: forwards its rule inputs to the feed. It is also the node's status sink (pipeline, broker connection
 * events), so that liveness, too, is judged by the owner from everybody's messages.
 */
export class FeedWriter implements Module, StatusSink, ConnectionStatusSink {
  readonly name = 'rules-feed-writer';
  private buffer: FeedItem[] = [];
  /** last `seen` per device in the current batch: a device sending 10 messages a second needs one entry */
  private seenInBatch = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  private detach: (() => void)[] = [];
  private dropped = 0;
  private running = false;

  constructor(private readonly deps: FeedWriterDeps) {}

  get key(): string {
    return this.deps.key ?? FEED_KEY;
  }

  async start(): Promise<void> {
    this.running = true;
    this.detach.push(this.deps.bus.on('readings', (r) => this.push(['r', r as Reading[]])));
    this.detach.push(this.deps.bus.on('event', (e) => this.push(['e', e])));
  }

  async stop(): Promise<void> {
    for (const d of this.detach.splice(0)) d();
    await this.settled();
    this.running = false;
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

  /** Resolves once everything pushed so far is in Redis (the ingest journal's checkpoint waits for it). */
  async settled(): Promise<void> {
    if (this.buffer.length > 0) this.flushNow();
    await this.sending;
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
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    // the coalesced `seen` entries carry the batch's newest time per device
    for (const item of batch) if (item[0] === 's') item[2] = this.seenInBatch.get(item[1]) ?? item[2];
    this.buffer = [];
    this.seenInBatch = new Map();
    this.sending = this.sending.then(() => this.send(batch));
  }

  /** Sends one batch; retried until Redis takes it (order kept: the next batch waits), bounded by maxBuffered. */
  private async send(batch: FeedItem[]): Promise<void> {
    const data = JSON.stringify(batch);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.deps.redis.xadd(this.key, '*', 'd', data);
        return;
      } catch (err) {
        const waiting = this.buffer.length + batch.length;
        if (waiting > (this.deps.maxBuffered ?? 200_000) || !this.running) {
          this.dropped += batch.length;
          this.deps.logger.error(
            { err, dropped: batch.length, droppedTotal: this.dropped },
            'rules feed: Redis unavailable too long; rule inputs dropped',
          );
          return;
        }
        if (attempt === 0) this.deps.logger.warn({ err }, 'rules feed: Redis unavailable; retrying');
        await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** What the owner starts when it takes the lease, and stops when it loses it. */
export interface OwnedRules {
  /** Starts the rules and the status tracker on `bus`; resolves with the feed position their saved state reflects. */
  start(bus: Bus): Promise<string>;
  /** The target the feed is applied to (valid after start). */
  target(): FeedTarget;
  /** Stops them; `save`: write the state first (false when the lease is lost: the successor's state wins). */
  stop(save: boolean): Promise<void>;
}

export interface RulesOwnershipDeps {
  redis: Redis;
  /** a separate connection for the blocking XREAD */
  reader: () => Redis;
  nodeId: string;
  owned: OwnedRules;
  logger: Logger;
  leaseMs?: number;
  key?: string;
  ownerKey?: string;
  /** told when this node becomes the owner or stops being it */
  onChange?: (owner: boolean) => void;
}

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** Every node: competes for the lease; the holder consumes the feed into its rules. */
export class RulesOwnership implements Module {
  readonly name = 'rules-ownership';
  private timer: NodeJS.Timeout | undefined;
  private owner = false;
  private position = '0-0';
  private reader: Redis | undefined;
  private consuming: Promise<void> | undefined;
  private transition: Promise<void> = Promise.resolve();
  private stopped = false;
  private applied = 0;
  private lastRenewed = 0;

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

  async start(): Promise<void> {
    this.stopped = false;
    await this.tick();
    const every = Math.max(100, Math.floor(this.leaseMs / 3));
    this.timer = setInterval(() => {
      void this.tick();
    }, every);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.transition;
    if (this.owner) {
      await this.resign(true);
      await this.deps.redis.eval(RELEASE, 1, this.ownerKey, this.deps.nodeId).catch(() => {});
    }
  }

  /** One lease step: take it when free, renew it when ours, give up the rules when it is gone. */
  private tick(): Promise<void> {
    this.transition = this.transition.then(async () => {
      if (this.stopped) return;
      const { redis, nodeId } = this.deps;
      try {
        if (this.owner) {
          const ok = await redis.eval(RENEW, 1, this.ownerKey, nodeId, String(this.leaseMs));
          if (ok === 1) this.lastRenewed = Date.now();
          else {
            this.deps.logger.warn({ nodeId }, 'rules: lease lost to another node; stopping the rules here');
            await this.resign(false);
          }
          return;
        }
        const got = await redis.set(this.ownerKey, nodeId, 'PX', this.leaseMs, 'NX');
        if (got === 'OK') {
          this.lastRenewed = Date.now();
          await this.takeOver();
        }
      } catch (err) {
        // Redis not answering: the lease may run out meanwhile, and then another node may take over. Stop before it
        // could: two owners would count the same messages twice.
        if (this.owner && Date.now() - this.lastRenewed > this.leaseMs * 0.8) {
          this.deps.logger.warn({ err }, 'rules: lease could not be renewed in time; stopping the rules here');
          await this.resign(false);
        } else this.deps.logger.debug({ err }, 'rules: lease step failed');
      }
    });
    return this.transition;
  }

  private async takeOver(): Promise<void> {
    this.owner = true;
    const bus = new Bus((event, err) => this.deps.logger.error({ err, event }, 'rules bus listener failed'));
    this.position = await this.deps.owned.start(bus);
    this.deps.logger.info({ nodeId: this.deps.nodeId, from: this.position }, 'rules: this node owns the rules now');
    this.reader = this.deps.reader();
    this.consuming = this.consume(this.reader, this.deps.owned.target());
    this.deps.onChange?.(true);
  }

  private async resign(save: boolean): Promise<void> {
    if (!this.owner) return;
    this.owner = false;
    this.reader?.disconnect();
    await this.consuming?.catch(() => {});
    this.reader = undefined;
    this.consuming = undefined;
    await this.deps.owned.stop(save);
    this.deps.onChange?.(false);
  }

  private async consume(reader: Redis, target: FeedTarget): Promise<void> {
    const key = this.deps.key ?? FEED_KEY;
    while (this.owner) {
      let res: [string, [string, string[]][]][] | null;
      try {
        res = (await reader.xread('COUNT', 500, 'BLOCK', 1000, 'STREAMS', key, this.position)) as typeof res;
      } catch (err) {
        if (!this.owner) return;
        this.deps.logger.warn({ err: (err as Error).message }, 'rules: reading the feed failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (!res || !this.owner) continue;
      for (const [id, fields] of res[0]?.[1] ?? []) {
        const data = fields[1];
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
        this.position = id;
        this.applied++;
      }
    }
  }
}

/** Saves the rule state with its feed position, only while `nodeId` holds the lease (fencing). */
export const SAVE_IF_OWNER = `if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('hset', KEYS[2], unpack(ARGV, 2))
return 1`;
