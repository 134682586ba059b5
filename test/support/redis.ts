/** Starts a real redis-server for a test file on a free port, in a temp dir. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, RedisServer } from '../../src/lifecycle/redis-server.ts';

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
