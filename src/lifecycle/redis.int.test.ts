import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../logger.ts';
import { RedisModule, sentinelsOf } from './redis.ts';
import { startTestSentinel } from '../../test/support/redis.ts';
import { freePort, RedisServer } from './redis-server.ts';

const log = createLogger('silent');
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

function tmp(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-redismod-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
const cfg = (privatePort: number) => ({ binary: 'redis-server', privatePort, sentinelName: 'mymaster' });

describe('RedisModule with a private redis-server', () => {
  it('keeps data across restarts (AOF) and refuses a Redis that may evict keys', async () => {
    const dataDir = tmp();
    const first = new RedisModule(cfg(0), dataDir, log);
    await first.start();
    await first.client.set('kept', 'yes');
    await first.stop();
    const second = new RedisModule(cfg(0), dataDir, log);
    await second.start();
    expect(await second.client.get('kept')).toBe('yes');
    await second.client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    await second.stop();

    // an external Redis that evicts: refused with the reason
    const evicting = new RedisServer({ dataDir: tmp(), port: await freePort(), appendOnly: false });
    await evicting.start();
    cleanup.push(() => evicting.stop());
    const c = new Redis(evicting.url);
    await c.config('SET', 'maxmemory-policy', 'allkeys-lru');
    c.disconnect();
    const external = new RedisModule({ ...cfg(0), url: evicting.url }, dataDir, log);
    await expect(external.start()).rejects.toThrow(/maxmemory-policy is "allkeys-lru".*noeviction/);
    await external.stop();
  });

  it('shuts down a redis-server left over on its own data folder, and leaves a foreign one alone', async () => {
    const dataDir = tmp();
    const port = await freePort();
    // what a crashed run leaves behind: a server on the configured port, on this data folder
    const orphan = new RedisServer({ dataDir: path.join(dataDir, 'redis'), port });
    await orphan.start();
    const m = new RedisModule(cfg(port), dataDir, log);
    await m.start();
    cleanup.push(() => m.stop());
    const [, dir] = (await m.client.config('GET', 'dir')) as [string, string];
    expect(dir).toBe(path.resolve(dataDir, 'redis'));
    expect((m.client.options.port as number) ?? 0).toBe(port);
    await orphan.stop(); // already gone: returns at once

    // a Redis of someone else on the configured port: untouched, a free port is used instead
    const foreign = new RedisServer({ dataDir: tmp(), port: await freePort(), appendOnly: false });
    await foreign.start();
    cleanup.push(() => foreign.stop());
    const foreignPort = Number(new URL(foreign.url).port);
    const other = new RedisModule(cfg(foreignPort), tmp(), log);
    await other.start();
    cleanup.push(() => other.stop());
    expect(other.client.options.port).not.toBe(foreignPort);
    const probe = new Redis(foreign.url);
    expect(await probe.ping()).toBe('PONG');
    probe.disconnect();
  });
});

describe('RedisModule with Redis Sentinel', () => {
  it('reads IPv6 sentinels as [host]:port', () => {
    expect(sentinelsOf(['[::1]:26379', '10.0.0.5:26380', 'sentinel-a:26381', '[fd00::1:2]:1'])).toEqual([
      { host: '::1', port: 26379 },
      { host: '10.0.0.5', port: 26380 },
      { host: 'sentinel-a', port: 26381 },
      { host: 'fd00::1:2', port: 1 },
    ]);
  });

  it('follows a failover and says so in the log (a sentinel reached over IPv6)', async () => {
    const set = await startTestSentinel({ ipv6: true });
    cleanup.push(() => set.stop());
    const { primaryPort, replicaPort, sentinelPort } = set;
    const asSentinel = new Redis({ host: '::1', port: sentinelPort, family: 6 });
    cleanup.push(async () => asSentinel.disconnect());

    const lines: { msg: string; level: number }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
        cb();
      },
    });
    const m = new RedisModule(
      { ...cfg(0), sentinels: [`[::1]:${sentinelPort}`] },
      tmp(),
      pino({ level: 'info' }, sink),
    );
    await m.start();
    cleanup.push(() => m.stop());
    expect(m.client.options.failoverDetector).toBe(true);
    expect(m.client.stream.remotePort).toBe(primaryPort);
    await m.client.set('before', '1');
    expect(await m.client.wait(1, 5000)).toBe(1); // replicated before the failover (replication is asynchronous)

    await asSentinel.call('SENTINEL', 'FAILOVER', 'mymaster');
    const promoted = () => lines.some((l) => /promoted a new primary/.test(l.msg));
    const deadline = Date.now() + 30_000;
    while (!promoted()) {
      if (Date.now() > deadline) throw new Error('no failover in the log');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(m.client.stream.remotePort).toBe(replicaPort);
    await m.client.set('after', '1');
    expect(await m.client.get('before')).toBe('1');
  }, 60_000);
});
