/**
 * The ingest journal: a QoS 1 device event (SOS, fall, smoke, door, cut-off …) is acknowledged only once it is
 * durable, so a process killed right after the PUBACK loses nothing.
 *
 * - The broker appends the raw event (device, payload, time received) to this node's Redis stream
 *   `gw:ingest:journal:<nodeId>` before it sends the PUBACK, then hands the event to the pipeline at once (the live
 *   path is not delayed by anything but that one round trip; telemetry never touches the journal).
 * - A checkpoint every second trims the stream up to the newest entry whose processing has finished: the
 *   pipeline's pending dedupe answers and the rules' alert writes started before the checkpoint have settled.
 * - At start, before the broker accepts connections, whatever is left in the stream (the process died between the
 *   PUBACK and the checkpoint) goes through the pipeline again. The event-id dedupe is bypassed for these, because
 *   the crash may have come between the dedupe mark and the alert; the alert store counts each event id once
 *   (`alert_event`), so an event processed before the crash changes nothing the second time.
 *
 * The stream is per node (a node id kept in the data dir): each node replays only what it acknowledged itself.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';

export interface EventJournalDeps {
  redis: Redis;
  nodeId: string;
  /** Processes one journalled event again after a restart (pipeline.handle with the dedupe bypassed). */
  replay: (deviceId: string, payload: Buffer, receivedAt: number) => void;
  /** Resolves when the processing of every event handed over so far has finished (pipeline, then rules). */
  settled: () => Promise<void>;
  logger: Logger;
  /** Called at start and hourly, e.g. to forget counted event ids long past any replay. */
  housekeeping?: () => Promise<unknown>;
  checkpointMs?: number;
  /** An append Redis does not answer within this is an error: the event is not acknowledged (the device resends). */
  appendTimeoutMs?: number;
  keyPrefix?: string;
}

/** A stable id for this node: kept in the data dir, created on first start. */
export function nodeIdOf(dataDir: string): string {
  const file = path.join(dataDir, 'node-id');
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (id) return id;
  }
  const id = randomUUID();
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${id}\n`);
  return id;
}

/** The smallest stream id after `id` ("ms-seq"): XTRIM MINID with it drops `id` and everything before. */
function after(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms}-${BigInt(seq ?? '0') + 1n}`;
}

export class EventJournal implements Module {
  readonly name = 'event-journal';
  readonly key: string;
  /** the newest id Redis answered for an append */
  private lastId: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private housekeepingTimer: NodeJS.Timeout | undefined;
  private checkpointing: Promise<void> | undefined;
  private appended = 0;
  private replayedCount = 0;

  constructor(private readonly deps: EventJournalDeps) {
    this.key = `${deps.keyPrefix ?? 'gw:ingest:journal:'}${deps.nodeId}`;
  }

  get stats(): { appended: number; replayed: number } {
    return { appended: this.appended, replayed: this.replayedCount };
  }

  /** Makes one event durable; resolves when Redis has it, rejects on an error or after the timeout. */
  append(deviceId: string, payload: Buffer, receivedAt: number): Promise<void> {
    const ms = this.deps.appendTimeoutMs ?? 1000;
    const add = this.deps.redis.xadd(this.key, '*', 'd', deviceId, 't', String(receivedAt), 'p', payload);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`ingest journal: no answer from Redis in ${ms} ms`)), ms);
    });
    return Promise.race([add, timeout]).then(
      (id) => {
        clearTimeout(timer);
        // replies come back in order on one connection, so the last answer is the newest id
        if (id) this.lastId = id;
        this.appended++;
      },
      (err: unknown) => {
        clearTimeout(timer);
        throw err;
      },
    );
  }

  async start(): Promise<void> {
    await this.replayLeftovers();
    const every = this.deps.checkpointMs ?? 1000;
    this.timer = setInterval(() => void this.checkpoint(), every);
    this.timer.unref();
    if (this.deps.housekeeping) {
      const run = () =>
        void this.deps.housekeeping!().catch((err: unknown) =>
          this.deps.logger.warn({ err }, 'ingest journal: housekeeping failed'),
        );
      run();
      this.housekeepingTimer = setInterval(run, 3_600_000);
      this.housekeepingTimer.unref();
    }
  }

  /** After the broker has stopped (modules stop in reverse): trim what was processed, keep the rest for next start. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.housekeepingTimer);
    await this.checkpoint();
  }

  /** Trims the stream up to the newest append whose processing has settled. */
  checkpoint(): Promise<void> {
    if (this.checkpointing) return this.checkpointing;
    const upTo = this.lastId;
    if (!upTo) return Promise.resolve();
    this.checkpointing = (async () => {
      try {
        await this.deps.settled();
        await this.deps.redis.xtrim(this.key, 'MINID', after(upTo));
        if (this.lastId === upTo) this.lastId = undefined;
      } catch (err) {
        // kept for the next checkpoint; the entries stay, so nothing is lost, only replayed if we die now
        this.deps.logger.warn({ err }, 'ingest journal: checkpoint failed');
      } finally {
        this.checkpointing = undefined;
      }
    })();
    return this.checkpointing;
  }

  private async replayLeftovers(): Promise<void> {
    let from = '-';
    let last: string | undefined;
    let n = 0;
    for (;;) {
      const page = await this.deps.redis.xrangeBuffer(this.key, from, '+', 'COUNT', 500);
      for (const [idBuf, fields] of page) {
        const id = idBuf.toString();
        last = id;
        let deviceId: string | undefined;
        let receivedAt = Date.now();
        let payload: Buffer | undefined;
        for (let i = 0; i + 1 < fields.length; i += 2) {
          const name = fields[i]!.toString();
          if (name === 'd') deviceId = fields[i + 1]!.toString();
          else if (name === 't') receivedAt = Number(fields[i + 1]!.toString());
          else if (name === 'p') payload = fields[i + 1]!;
        }
        if (deviceId && payload) {
          this.deps.replay(deviceId, payload, receivedAt);
          n++;
        }
      }
      if (page.length < 500) break;
      from = after(last!);
    }
    if (!last) return;
    try {
      await this.deps.settled();
    } catch (err) {
      // not yet certain that what the replay started is durable (e.g. the rules feed slow at start): the entries
      // stay, and the next checkpoint trims them once it is
      this.deps.logger.warn({ err }, 'ingest journal: replayed events not settled yet; kept for the next checkpoint');
      this.lastId = last;
      this.replayedCount += n;
      return;
    }
    await this.deps.redis.xtrim(this.key, 'MINID', after(last));
    this.replayedCount += n;
    this.deps.logger.warn(
      { events: n },
      'ingest journal: events acknowledged before the last stop but not yet processed were processed now',
    );
  }
}
