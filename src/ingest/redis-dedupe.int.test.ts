import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis } from '../../test/support/redis.ts';
import { RedisEventDedupe } from './redis-dedupe.ts';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let a: Redis;
let b: Redis;

beforeAll(async () => {
  redis = await startTestRedis();
  a = new Redis(redis.url);
  b = new Redis(redis.url);
});
afterAll(async () => {
  a?.disconnect();
  b?.disconnect();
  await redis?.stop();
});

describe('RedisEventDedupe', () => {
  it('says new once, then seen, per device and id', async () => {
    const d = new RedisEventDedupe(a, 60_000, 'test1:');
    expect(await d.seen('dev-1', 'e1')).toBe(false);
    expect(await d.seen('dev-1', 'e1')).toBe(true);
    expect(await d.seen('dev-2', 'e1')).toBe(false);
    expect(await d.seen('dev-1', 'e2')).toBe(false);
  });

  it('is shared between nodes: two connections racing on the same event, exactly one wins', async () => {
    const n1 = new RedisEventDedupe(a, 60_000, 'test2:');
    const n2 = new RedisEventDedupe(b, 60_000, 'test2:');
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? n1 : n2).seen('dev-1', 'sos-1')));
    expect(answers.filter((seen) => !seen)).toHaveLength(1);
  });

  it('forgets an id after the window', async () => {
    const d = new RedisEventDedupe(a, 100, 'test3:');
    expect(await d.seen('dev-1', 'e1')).toBe(false);
    await new Promise((r) => setTimeout(r, 250));
    expect(await d.seen('dev-1', 'e1')).toBe(false);
  });

  it('answers with an error within its timeout when Redis is gone, instead of holding the event', async () => {
    const own = await startTestRedis();
    const conn = new Redis(own.url, { maxRetriesPerRequest: null });
    const d = new RedisEventDedupe(conn, 60_000, 'test4:', 200);
    expect(await d.seen('dev-1', 'e1')).toBe(false);
    await own.stop();
    const started = Date.now();
    await expect(d.seen('dev-1', 'e2')).rejects.toThrow(/no answer from Redis/);
    expect(Date.now() - started).toBeLessThan(2000);
    conn.disconnect();
  });
});
