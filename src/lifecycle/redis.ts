/**
 * Redis for queues, rule state and live fan-out: REDIS_URL when given, the primary that Redis Sentinel names
 * (REDIS_SENTINELS) — followed through a failover —, else a private redis-server child under the data dir.
 * Refuses to run on a Redis that may evict keys (BullMQ jobs would vanish silently).
 */
import net from 'node:net';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import type { Module } from './module.ts';
import { freePort, RedisServer } from './redis-server.ts';

/** How to reach the node's Redis, for modules that make connections with a Redis client of their own. */
export type RedisConnectionSpec =
  | { url: string }
  | {
      sentinels: { host: string; port: number }[];
      name: string;
      password?: string;
      /** the sentinels' own password (their requirepass), REDIS_SENTINEL_PASSWORD */
      sentinelPassword?: string;
      /** reconnect to the new primary as soon as a sentinel announces a failover (+switch-master) */
      failoverDetector?: boolean;
    };

/** `host:port` entries of REDIS_SENTINELS (validated by the config schema); IPv6 as `[::1]:26379`. */
export function sentinelsOf(list: readonly string[]): { host: string; port: number }[] {
  return list.map((hp) => {
    const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(hp);
    if (v6) return { host: v6[1]!, port: Number(v6[2]) };
    const at = hp.lastIndexOf(':');
    return { host: hp.slice(0, at), port: Number(hp.slice(at + 1)) };
  });
}

export class RedisModule implements Module {
  readonly name = 'redis';
  private server?: RedisServer;
  private _client?: Redis;
  private _url?: string;
  private _spec?: RedisConnectionSpec;

  constructor(
    private readonly cfg: Config['redis'],
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {}

  get client(): Redis {
    if (!this._client) throw new Error('redis not started');
    return this._client;
  }

  /** Where this node's Redis is (the private server's URL when there is one), for a worker node to share it. */
  get url(): string {
    if (!this._url) throw new Error('redis not started');
    return this._url;
  }

  /** How to reach this Redis (the URL, or the sentinels), for connections made by other Redis clients. */
  get connection(): RedisConnectionSpec {
    if (!this._spec) throw new Error('redis not started');
    return this._spec;
  }

  /** A new connection with BullMQ's required options, for workers and subscribers. */
  duplicate(): Redis {
    const conn = this.client.duplicate({ maxRetriesPerRequest: null });
    // The main connection already reports an outage ('redis connection error'); without a listener ioredis would
    // print every failed reconnect of each duplicate to stderr as an unhandled error event.
    conn.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis: duplicate connection error'));
    return conn;
  }

  async start(): Promise<void> {
    const common: RedisOptions = { maxRetriesPerRequest: null, lazyConnect: true, connectionName: 'gridwatch' };
    if (this.cfg.sentinels) {
      const sentinelPassword = this.cfg.sentinelPassword;
      const spec = {
        sentinels: sentinelsOf(this.cfg.sentinels),
        name: this.cfg.sentinelName,
        ...(this.cfg.password && { password: this.cfg.password }),
        ...(sentinelPassword && { sentinelPassword }),
        // ioredis subscribes to +switch-master on the sentinels and moves the connection at once (its duplicates too)
        failoverDetector: true,
      };
      const client = new Redis({ ...spec, ...common });
      client.on('error', (err) => this.log.warn({ err: err.message }, 'redis connection error'));
      // A failover shows in the log: the connection is ready again, on another server than before. (ioredis emits no
      // '+switch-master' on the client; the failover detector, or the sentinel's CLIENT KILL of the demoted primary,
      // closes the connection, and it reconnects to the primary the sentinels name now.)
      let primary: string | undefined;
      client.on('ready', () => {
        const at = `${client.stream?.remoteAddress}:${client.stream?.remotePort}`;
        if (primary !== undefined && at !== primary) {
          this.log.warn({ from: primary, to: at }, 'redis: the sentinels promoted a new primary; connected to it');
        }
        primary = at;
      });
      await client.connect();
      this.log.info(
        { sentinels: this.cfg.sentinels, name: spec.name, primary },
        'redis: primary found through Sentinel',
      );
      await this.accept(client, `redis-sentinel://${spec.name}`, spec);
      return;
    }
    let url = this.cfg.url;
    if (!url) {
      const dir = path.join(this.dataDir, 'redis');
      const port = await this.pickPort(this.cfg.privatePort, dir);
      this.server = new RedisServer({
        binary: this.cfg.binary,
        dataDir: dir,
        port,
        onUnexpectedExit: (code, output) =>
          this.log.error({ code, output }, 'private redis-server exited; queues and dedupe are down until a restart'),
      });
      await this.server.start();
      url = this.server.url;
      this.log.info({ port, dir }, 'private redis-server started (AOF on)');
    }
    const client = new Redis(url, common);
    client.on('error', (err) => this.log.warn({ err: err.message }, 'redis connection error'));
    await client.connect();
    await this.accept(client, url, { url });
  }

  private async accept(client: Redis, url: string, spec: RedisConnectionSpec): Promise<void> {
    this._client = client;
    this._url = url;
    this._spec = spec;
    const [, policy] = (await client.config('GET', 'maxmemory-policy')) as [string, string];
    if (policy !== 'noeviction') {
      throw new Error(
        `Redis maxmemory-policy is "${policy}"; GridWatch needs "noeviction" so that queued alerts are never evicted. ` +
          'Set it in redis.conf (maxmemory-policy noeviction) or with CONFIG SET.',
      );
    }
  }

  async ping(): Promise<boolean> {
    return (await this._client?.ping()) === 'PONG';
  }

  async stop(): Promise<void> {
    await this._client?.quit().catch(() => this._client?.disconnect());
    await this.server?.stop();
  }

  /**
   * The configured private port, or a free one when something else listens there. A redis-server left running by a
   * crashed GridWatch on the same data folder is shut down first (it flushes its AOF), so that two servers never
   * write one AOF.
   */
  private async pickPort(preferred: number, dir: string): Promise<number> {
    if (preferred === 0) return freePort();
    if (await portIsFree(preferred)) return preferred;
    const other = new Redis({
      host: '127.0.0.1',
      port: preferred,
      lazyConnect: true,
      connectTimeout: 1000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    other.on('error', () => {});
    try {
      await other.connect();
      const [, otherDir] = (await other.config('GET', 'dir')) as [string, string];
      if (otherDir === path.resolve(dir)) {
        this.log.warn(
          { port: preferred, dir },
          'a redis-server from an earlier run still uses this data folder; shutting it down',
        );
        await other.shutdown().catch(() => {});
        const deadline = Date.now() + 10_000;
        while (!(await portIsFree(preferred)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        if (await portIsFree(preferred)) return preferred;
      }
    } catch {
      // not a Redis, or not ours: leave it alone
    } finally {
      other.disconnect();
    }
    return freePort();
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
