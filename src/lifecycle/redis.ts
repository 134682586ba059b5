/**
 * Redis for queues, rule state and live fan-out: REDIS_URL when given, else a private redis-server child under
 * the data dir. Refuses to run on a Redis that may evict keys (BullMQ jobs would vanish silently).
 */
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import type { Module } from './module.ts';
import { freePort, RedisServer } from './redis-server.ts';

export class RedisModule implements Module {
  readonly name = 'redis';
  private server?: RedisServer;
  private _client?: Redis;

  constructor(
    private readonly cfg: Config['redis'],
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {}

  get client(): Redis {
    if (!this._client) throw new Error('redis not started');
    return this._client;
  }

  /** A new connection with BullMQ's required options, for workers and subscribers. */
  duplicate(): Redis {
    return this.client.duplicate({ maxRetriesPerRequest: null });
  }

  async start(): Promise<void> {
    let url = this.cfg.url;
    if (!url) {
      const port = await pickPort(this.cfg.privatePort);
      this.server = new RedisServer({ binary: this.cfg.binary, dataDir: path.join(this.dataDir, 'redis'), port });
      await this.server.start();
      url = this.server.url;
      this.log.info({ port, dir: path.join(this.dataDir, 'redis') }, 'private redis-server started (AOF on)');
    }
    const client = new Redis(url, { maxRetriesPerRequest: null, lazyConnect: true, connectionName: 'gridwatch' });
    client.on('error', (err) => this.log.warn({ err: err.message }, 'redis connection error'));
    await client.connect();
    this._client = client;
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
}

/** The configured private port, or a free one when something else already listens there. */
async function pickPort(preferred: number): Promise<number> {
  if (preferred === 0) return freePort();
  const free = await new Promise<boolean>((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(preferred, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
  return free ? preferred : freePort();
}
