import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis } from '../../test/support/redis.ts';
import { VirtualClock } from '../clock/clock.ts';
import { createLogger } from '../logger.ts';
import { RedisScheduler } from './scheduler.ts';
import type { Timer } from './types.ts';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
const conns: Redis[] = [];
const log = createLogger('silent');
beforeAll(async () => {
  redis = await startTestRedis();
});
afterAll(async () => {
  for (const c of conns) c.disconnect();
  await redis?.stop();
});
const conn = () => {
  const c = new Redis(redis.url);
  conns.push(c);
  return c;
};

describe('RedisScheduler', () => {
  it('keeps deadlines across a restart: pending ones fire on time after it, fired and cancelled ones do not come back', async () => {
    const clock = new VirtualClock(1_000_000);
    const first = new RedisScheduler(clock, conn(), log, 'test:timers');
    await first.start();
    const fired: string[] = [];
    first.onFire((t) => fired.push(t.key));
    first.set({ key: 'inactivity|h-1', at: 1_060_000, rule: 'inactivity', data: { since: 1_000_000 } });
    first.set({ key: 'fall|wb-1', at: 1_120_000, rule: 'fall' });
    first.set({ key: 'night|h-2', at: 1_030_000, rule: 'nightExit' });
    first.set({ key: 'gone', at: 1_090_000, rule: 'sos' });
    first.cancel('gone');
    clock.advance(40_000); // night|h-2 fires
    expect(fired).toEqual(['night|h-2']);
    await first.stop();

    // a new process: the same deadlines, with their data
    const second = new RedisScheduler(clock, conn(), log, 'test:timers');
    await second.start();
    expect(
      second
        .all()
        .map((t) => t.key)
        .sort(),
    ).toEqual(['fall|wb-1', 'inactivity|h-1']);
    expect(second.get('inactivity|h-1')?.data).toEqual({ since: 1_000_000 });
    const after: Timer[] = [];
    second.onFire((t) => after.push(t));
    clock.advance(200_000);
    expect(after.map((t) => t.key)).toEqual(['inactivity|h-1', 'fall|wb-1']);
    await second.stop();

    const third = new RedisScheduler(clock, conn(), log, 'test:timers');
    await third.start();
    expect(third.size).toBe(0);
    await third.stop();
  });
});
