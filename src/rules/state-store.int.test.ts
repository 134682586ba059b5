import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis } from '../../test/support/redis.ts';
import { createLogger } from '../logger.ts';
import { RuleStateStore } from './state-store.ts';
import type { Rule } from './types.ts';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let conn: Redis;
beforeAll(async () => {
  redis = await startTestRedis();
  conn = new Redis(redis.url);
});
afterAll(async () => {
  conn?.disconnect();
  await redis?.stop();
});

class Counting implements Rule {
  readonly name = 'sos' as const;
  value = 0;
  snapshot() {
    return { value: this.value };
  }
  restore(s: unknown) {
    this.value = (s as { value: number }).value;
  }
}

describe('RuleStateStore', () => {
  it('restores what was saved, saves soon after a raise, and survives a corrupt entry', async () => {
    const rule = new Counting();
    const store = new RuleStateStore(conn, [rule], createLogger('silent'), 'test:state', 60_000);
    await store.start();
    rule.value = 7;
    store.saveSoon();
    store.saveSoon(); // once, however many calls
    await new Promise((r) => setTimeout(r, 1300));
    expect(JSON.parse((await conn.hget('test:state', 'sos'))!)).toEqual({ value: 7 });
    await store.stop();

    const again = new Counting();
    await new RuleStateStore(conn, [again], createLogger('silent'), 'test:state', 60_000).start();
    expect(again.value).toBe(7);

    await conn.hset('test:state', 'sos', '{not json');
    const fresh = new Counting();
    const s3 = new RuleStateStore(conn, [fresh], createLogger('silent'), 'test:state', 60_000);
    await s3.start();
    expect(fresh.value).toBe(0);
    await s3.stop();
  });
});
