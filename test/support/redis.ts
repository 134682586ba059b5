/** Real redis-server processes for tests, on free ports, in temp dirs. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, RedisServer, waitForPort } from '../../src/lifecycle/redis-server.ts';

export async function startTestRedis(): Promise<{ url: string; server: RedisServer; stop: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-redis-'));
  const server = new RedisServer({ dataDir: dir, port: await freePort(), appendOnly: false });
  await server.start();
  return {
    url: server.url,
    server,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestSentinelSet {
  primary: RedisServer;
  replica: RedisServer;
  primaryPort: number;
  replicaPort: number;
  sentinelPort: number;
  /** the sentinel's answer for `mymaster` (a port), to wait for a promotion */
  primaryPortNow(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A primary, one replica and one sentinel (quorum 1, down after 1 s), all real redis-server processes, monitoring
 * `mymaster`; resolves once the sentinel knows the replica (so that a failover can happen). `bind` of the sentinel:
 * loopback, IPv6 loopback too with `ipv6`.
 */
export async function startTestSentinel(opts: { appendOnly?: boolean; ipv6?: boolean } = {}): Promise<TestSentinelSet> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-sentinel-'));
  const [primaryPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
  const primary = new RedisServer({
    dataDir: path.join(dir, 'primary'),
    port: primaryPort,
    appendOnly: opts.appendOnly,
  });
  await primary.start();
  const replica = new RedisServer({
    dataDir: path.join(dir, 'replica'),
    port: replicaPort,
    appendOnly: opts.appendOnly,
    extraArgs: ['--replicaof', '127.0.0.1', String(primaryPort)],
  });
  await replica.start();
  const conf = path.join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${sentinelPort}`,
      opts.ipv6 ? 'bind 127.0.0.1 ::1' : 'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${primaryPort} 1`,
      'sentinel down-after-milliseconds mymaster 1000',
      'sentinel failover-timeout mymaster 5000',
      '',
    ].join('\n'),
  );
  const sentinel: ChildProcess = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  const stop = async () => {
    sentinel.kill('SIGKILL');
    await replica.stop();
    await primary.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  const asSentinel = new Redis({ host: '127.0.0.1', port: sentinelPort, lazyConnect: true });
  try {
    await waitForPort('127.0.0.1', sentinelPort, 15_000);
    await asSentinel.connect();
    const until = Date.now() + 30_000;
    while (((await asSentinel.call('SENTINEL', 'replicas', 'mymaster')) as unknown[]).length === 0) {
      if (Date.now() > until) throw new Error('the sentinel does not know the replica');
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    asSentinel.disconnect();
    await stop();
    throw err;
  }
  return {
    primary,
    replica,
    primaryPort,
    replicaPort,
    sentinelPort,
    async primaryPortNow() {
      const addr = (await asSentinel.call('SENTINEL', 'get-master-addr-by-name', 'mymaster')) as string[];
      return Number(addr?.[1]);
    },
    async stop() {
      asSentinel.disconnect();
      await stop();
    },
  };
}
