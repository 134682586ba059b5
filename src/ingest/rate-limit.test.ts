import { describe, expect, it } from 'vitest';
import { DeviceRateLimiter } from './rate-limit.ts';

describe('DeviceRateLimiter', () => {
  it('lets a burst through, then the sustained rate, per device', () => {
    let t = 1_800_000_000_000;
    const limiter = new DeviceRateLimiter({ perSecond: 10, burst: 5 });
    const passed = (id: string, n: number) =>
      Array.from({ length: n }, () => limiter.take(id, t)).filter(Boolean).length;
    expect(passed('flooder', 20)).toBe(5);
    // another device is not affected by the flooder
    expect(passed('quiet', 3)).toBe(3);
    t += 1000; // one second: 10 tokens, capped at the burst of 5
    expect(passed('flooder', 20)).toBe(5);
    t += 300; // 3 tokens
    expect(passed('flooder', 20)).toBe(3);
    expect(limiter.takeRefused('flooder')).toBe(15 + 15 + 17);
    expect(limiter.takeRefused('flooder')).toBe(0);
    expect(limiter.takeRefused('quiet')).toBe(0);
  });

  it('runs on the messages’ own time: a backlog delivered at once passes, a flood does not', () => {
    const limiter = new DeviceRateLimiter({ perSecond: 1, burst: 5 });
    const t0 = 1_800_000_000_000;
    // four hours of one reading a minute, delivered in one go by a broker that kept them
    const backlog = Array.from({ length: 240 }, (_, i) => limiter.take('meter', t0 + i * 60_000));
    expect(backlog.every(Boolean)).toBe(true);
    // a flood stamped with the same few milliseconds gets the burst only
    const flood = Array.from({ length: 100 }, (_, i) => limiter.take('flooder', t0 + (i % 3)));
    expect(flood.filter(Boolean)).toHaveLength(5);
    // out-of-order (older) messages refill nothing
    expect(limiter.take('flooder', t0 - 60_000)).toBe(false);
    // a jump forward refills at most to the burst
    const jumped = Array.from({ length: 20 }, () => limiter.take('flooder', t0 + 3_600_000));
    expect(jumped.filter(Boolean)).toHaveLength(5);
  });

  it('is off with perSecond 0', () => {
    const limiter = new DeviceRateLimiter({ perSecond: 0, burst: 0 });
    expect(limiter.enabled).toBe(false);
    expect(Array.from({ length: 1000 }, () => limiter.take('d', 0)).every(Boolean)).toBe(true);
  });
});
