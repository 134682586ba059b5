import { describe, expect, it } from 'vitest';
import { DeviceRateLimiter } from './rate-limit.ts';

describe('DeviceRateLimiter', () => {
  it('lets a burst through, then the sustained rate, per device', () => {
    let t = 0;
    const limiter = new DeviceRateLimiter({ perSecond: 10, burst: 5 }, () => t);
    const passed = (id: string, n: number) => Array.from({ length: n }, () => limiter.take(id)).filter(Boolean).length;
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

  it('is off with perSecond 0', () => {
    const limiter = new DeviceRateLimiter({ perSecond: 0, burst: 0 }, () => 0);
    expect(limiter.enabled).toBe(false);
    expect(Array.from({ length: 1000 }, () => limiter.take('d')).every(Boolean)).toBe(true);
  });
});
