/**
 * Rules on several nodes (feed.ts) against a real redis-server. Outages and partitions go through a TCP proxy in
 * front of that server: `down` resets every connection and refuses new ones (Redis stopped, a refused port), `frozen`
 * holds every byte in both directions without closing anything (a partition: calls wait, nothing fails) until `up`.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis } from '../../test/support/redis.ts';
import { Bus } from '../bus.ts';
import type { DeviceEventRecord, Reading } from '../ingest/types.ts';
import { freePort } from '../lifecycle/redis-server.ts';
import type { Logger } from '../logger.ts';
import {
  type FeedItem,
  type FeedTarget,
  FeedUndeliveredError,
  FeedWriter,
  type OwnedRules,
  RulesOwnership,
} from './feed.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

class TcpProxy {
  mode: 'up' | 'frozen' | 'down' = 'up';
  port = 0;
  private server = net.createServer((c) => this.accept(c));
  private pairs = new Set<{ c: net.Socket; u: net.Socket; held: [net.Socket, Buffer][] }>();

  constructor(private readonly target: number) {}

  async start(): Promise<void> {
    this.port = await freePort();
    await new Promise<void>((r) => this.server.listen(this.port, '127.0.0.1', r));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  set(mode: 'up' | 'frozen' | 'down'): void {
    this.mode = mode;
    for (const p of this.pairs) {
      if (mode === 'down') {
        p.c.destroy();
        p.u.destroy();
      } else if (mode === 'up') {
        for (const [to, d] of p.held.splice(0)) to.write(d);
      }
    }
    if (mode === 'down') this.pairs.clear();
  }

  async close(): Promise<void> {
    this.set('down');
    await new Promise((r) => this.server.close(r));
  }

  private accept(c: net.Socket): void {
    if (this.mode === 'down') {
      c.destroy();
      return;
    }
    const u = net.connect(this.target, '127.0.0.1');
    const pair = { c, u, held: [] as [net.Socket, Buffer][] };
    this.pairs.add(pair);
    const forward = (to: net.Socket) => (d: Buffer) => {
      if (this.mode === 'frozen' || pair.held.length > 0) pair.held.push([to, d]);
      else to.write(d);
    };
    c.on('data', forward(u));
    u.on('data', forward(c));
    const end = () => {
      c.destroy();
      u.destroy();
      this.pairs.delete(pair);
    };
    c.on('close', end);
    u.on('close', end);
    c.on('error', end);
    u.on('error', end);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: log lines as pino writes them
type Line = Record<string, any>;

function capture(): { logger: Logger; lines: Line[]; errors: (match: RegExp) => Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  return { logger, lines, errors: (m) => lines.filter((l) => l.level >= 50 && m.test(String(l.msg))) };
}

/** A node's connections as system.ts makes them: ioredis with no retry limit and an offline queue. */
const clients: Redis[] = [];
function client(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: null, connectionName: 'gridwatch' });
  c.on('error', () => {});
  clients.push(c);
  return c;
}
function readerOf(c: Redis): () => Redis {
  return () => {
    const r = c.duplicate({ maxRetriesPerRequest: null });
    r.on('error', () => {});
    return r;
  };
}

/** What the owner runs: records what it is given. */
class Rules implements OwnedRules {
  starts = 0;
  stops: boolean[] = [];
  running = false;
  items: FeedItem[] = [];
  failStarts = 0;
  startDelayMs = 0;
  stopThrows = false;
  private bus: Bus | undefined;

  async start(bus: Bus): Promise<string> {
    this.starts++;
    this.bus = bus;
    bus.on('event', (e) => this.items.push(['e', e]));
    bus.on('readings', (r) => this.items.push(['r', r as Reading[]]));
    await sleep(this.startDelayMs);
    if (this.failStarts > 0) {
      this.failStarts--;
      throw new Error('state load failed');
    }
    this.running = true;
    return '0-0';
  }

  target(): FeedTarget {
    const items = this.items;
    return {
      bus: this.bus!,
      status: {
        seen: (d, ts) => items.push(['s', d, ts]),
        reportStatus: () => {},
        connected: () => {},
        disconnected: () => {},
      },
      visitChanged: () => {},
    };
  }

  async stop(save: boolean): Promise<void> {
    this.stops.push(save);
    this.running = false;
    if (this.stopThrows) throw new Error('status flush to the database failed');
  }
}

const event = (id: string): DeviceEventRecord =>
  ({
    deviceId: 'btn-1',
    model: 'sos-button',
    ts: 1,
    receivedAt: 1,
    event: { type: 'sos', id },
    placement: {},
    drill: false,
  }) as unknown as DeviceEventRecord;
const reading = (v: number): Reading[] =>
  [
    { deviceId: 'meter-1', model: 'm', field: 'power', ts: v, value: v, placement: {}, drill: false },
  ] as unknown as Reading[];

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let direct: Redis;
let n = 0;
const stops: (() => Promise<unknown>)[] = [];
const keys = () => {
  n++;
  return { key: `test:feed:${n}`, ownerKey: `test:owner:${n}` };
};

beforeAll(async () => {
  redis = await startTestRedis();
  direct = new Redis(redis.url);
});
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s().catch(() => {});
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  direct?.disconnect();
  await redis?.stop();
});

async function proxy(): Promise<TcpProxy> {
  const p = new TcpProxy(Number(new URL(redis.url).port));
  await p.start();
  stops.push(() => p.close());
  return p;
}

function ownership(url: string, nodeId: string, rules: Rules, k: ReturnType<typeof keys>, logger?: Logger) {
  const c = client(url);
  const changes: { owner: boolean; at: number }[] = [];
  const o = new RulesOwnership({
    redis: c,
    reader: readerOf(c),
    nodeId,
    owned: rules,
    logger: logger ?? capture().logger,
    leaseMs: 1000,
    ...k,
    onChange: (owner) => changes.push({ owner, at: Date.now() }),
  });
  stops.push(() => o.stop());
  return { o, changes };
}

describe('FeedWriter', () => {
  it('keeps events through an outage, drops only readings beyond maxBuffered, and settled() says so', async () => {
    const k = keys();
    const p = await proxy();
    const bus = new Bus();
    const { logger, errors } = capture();
    const writer = new FeedWriter({ redis: client(p.url), bus, logger, maxBuffered: 20, key: k.key, lingerMs: 1 });
    await writer.start();
    stops.push(() => writer.stop());
    bus.emit('event', event('before'));
    await writer.settled();

    p.set('down');
    bus.emit('event', event('sos-1'));
    for (let i = 0; i < 50; i++) bus.emit('readings', reading(i));
    writer.seen('meter-1', 5);
    bus.emit('event', event('sos-2'));
    // not in Redis: the ingest journal must not take these events as delivered
    const err = await writer.settled(500).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FeedUndeliveredError);
    expect((err as FeedUndeliveredError).waiting.events).toBe(2);
    for (let i = 50; i < 60; i++) bus.emit('readings', reading(i));
    await sleep(300);
    expect(writer.dropped).toBeGreaterThan(0);
    expect(errors(/readings dropped/).length).toBeGreaterThan(0);

    p.set('up');
    await writer.settled(10_000);
    const entries = await direct.xrange(k.key, '-', '+');
    const items = entries.flatMap(([, f]) => JSON.parse(f[1]!) as FeedItem[]);
    const events = items.filter((i) => i[0] === 'e').map((i) => (i[1] as { event: { id: string } }).event.id);
    expect(events).toEqual(['before', 'sos-1', 'sos-2']);
    const readings = items.filter((i) => i[0] === 'r' || i[0] === 's').length;
    expect(readings + writer.dropped).toBe(61);
    expect(readings).toBeLessThanOrEqual(20);
  });

  it('stop() returns within its deadline while Redis is away, and reports the events it could not send', async () => {
    const k = keys();
    const p = await proxy();
    const bus = new Bus();
    const { logger, errors } = capture();
    const writer = new FeedWriter({ redis: client(p.url), bus, logger, key: k.key, stopTimeoutMs: 500 });
    await writer.start();
    p.set('frozen');
    bus.emit('event', event('late'));
    const waiting = writer.settled(60_000).then(
      () => null,
      (e: unknown) => e,
    );
    const t0 = Date.now();
    await writer.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await waiting).toBeInstanceOf(FeedUndeliveredError);
    expect(errors(/stopped with entries/)[0]).toMatchObject({ events: 1 });
  });
});

describe('RulesOwnership', () => {
  it('hands the feed to the owner, once per entry even when an entry was written twice', async () => {
    const k = keys();
    const rules = new Rules();
    const { o } = ownership(redis.url, 'a', rules, k);
    await o.start();
    expect(o.isOwner).toBe(true);
    const bus = new Bus();
    const writer = new FeedWriter({ redis: client(redis.url), bus, logger: capture().logger, key: k.key });
    await writer.start();
    stops.push(() => writer.stop());
    bus.emit('event', event('x'));
    await writer.settled();
    // an XADD whose answer was lost and that was sent again: same writer, same batch number
    const [[, fields]] = (await direct.xrange(k.key, '-', '+')) as [[string, string[]]];
    await direct.xadd(k.key, '*', ...fields);
    bus.emit('event', event('y'));
    await writer.settled();
    await waitFor('two entries applied', () => o.appliedBatches === 2);
    await sleep(200);
    expect(rules.items.map((i) => (i[1] as { event: { id: string } }).event.id)).toEqual(['x', 'y']);
  });

  it('a takeover whose start fails gives the lease back and is tried again later', async () => {
    const k = keys();
    const rules = new Rules();
    rules.failStarts = 1;
    const log = capture();
    const { o } = ownership(redis.url, 'a', rules, k, log.logger);
    await o.start();
    // not the owner, nothing left running, the lease free for another node
    expect(o.isOwner).toBe(false);
    expect(rules.stops).toEqual([false]);
    expect(log.errors(/taking over the rules failed/)).toHaveLength(1);
    expect(await direct.get(k.ownerKey)).toBeNull();
    // tried again after a while: then it owns the rules
    await waitFor('the second attempt', () => o.isOwner, 5000);
    expect(rules.starts).toBe(2);
    expect(await direct.get(k.ownerKey)).toBe('a');
  });

  it('renews the lease while a slow takeover loads the state', async () => {
    const k = keys();
    const slow = new Rules();
    slow.startDelayMs = 3000; // three leases
    const { o: a } = ownership(redis.url, 'a', slow, k);
    const b = ownership(redis.url, 'b', new Rules(), k);
    const starting = a.start();
    await waitFor('a to take the lease', async () => (await direct.get(k.ownerKey)) === 'a');
    await b.o.start();
    await starting;
    expect(a.isOwner).toBe(true);
    expect(b.o.isOwner).toBe(false);
    expect(await direct.get(k.ownerKey)).toBe('a');
    expect(b.changes).toEqual([]);
  });

  it('an owner cut off from Redis stops its rules before another node can take the lease', async () => {
    const k = keys();
    const p = await proxy();
    const ra = new Rules();
    const rb = new Rules();
    const a = ownership(p.url, 'a', ra, k);
    await a.o.start();
    expect(a.o.isOwner).toBe(true);
    const b = ownership(redis.url, 'b', rb, k);
    await b.o.start();
    const bus = new Bus();
    const writer = new FeedWriter({ redis: client(redis.url), bus, logger: capture().logger, key: k.key });
    await writer.start();
    stops.push(() => writer.stop());

    let both = false;
    const sampler = setInterval(() => {
      if (a.o.isOwner && b.o.isOwner) both = true;
    }, 5);
    const frozenAt = Date.now();
    p.set('frozen');
    await waitFor('b to own the rules', () => b.o.isOwner, 5000);
    bus.emit('event', event('during'));
    await writer.settled();
    await waitFor('b to apply it', () => rb.items.length === 1);
    const appliedByA = a.o.appliedBatches;
    p.set('up'); // what a's connections had waiting arrives now
    await sleep(500);
    clearInterval(sampler);

    expect(both).toBe(false);
    const resigned = a.changes.find((c) => !c.owner)!;
    const took = b.changes.find((c) => c.owner)!;
    expect(resigned.at - frozenAt).toBeLessThan(1000); // within the lease, without an answer from Redis
    expect(resigned.at).toBeLessThan(took.at);
    expect(ra.stops).toEqual([false]);
    expect(ra.items).toEqual([]);
    expect(a.o.appliedBatches).toBe(appliedByA);
    expect(a.o.isOwner).toBe(false);
  });

  it('keeps going when stopping the rules fails after a lost lease, and takes the lease again later', async () => {
    const k = keys();
    const p = await proxy();
    const rules = new Rules();
    rules.stopThrows = true;
    const log = capture();
    const { o, changes } = ownership(p.url, 'a', rules, k, log.logger);
    await o.start();
    expect(o.isOwner).toBe(true);
    p.set('down');
    await waitFor('the rules to stop', () => rules.stops.length === 1, 3000);
    await waitFor('the error to be logged', () => log.errors(/stopping the rules failed/).length === 1);
    expect(o.isOwner).toBe(false);
    p.set('up');
    // later steps still run: the lease (expired meanwhile) is taken again
    await waitFor('the lease taken again', () => o.isOwner, 10_000);
    expect(rules.starts).toBe(2);
    expect(changes.map((c) => c.owner)).toEqual([true, false, true]);
  });

  it('stop() returns within its deadline while Redis does not answer', async () => {
    const k = keys();
    const p = await proxy();
    const rules = new Rules();
    const { o } = ownership(p.url, 'a', rules, k);
    await o.start();
    p.set('frozen');
    const t0 = Date.now();
    await o.stop();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(rules.running).toBe(false);
    p.set('up');
  });
});
