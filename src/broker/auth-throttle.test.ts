import { describe, expect, it } from 'vitest';
import { AuthThrottle } from './auth-throttle.ts';

describe('AuthThrottle', () => {
  it('blocks an address after maxFailures within the window, others never, and forgets after the window', () => {
    const t = new AuthThrottle({ maxFailures: 3, windowMs: 60_000 });
    for (let i = 0; i < 2; i++) t.failed('10.0.0.9', 1000 + i);
    expect(t.blocked('10.0.0.9', 1500)).toBe(false);
    t.failed('10.0.0.9', 2000);
    expect(t.blocked('10.0.0.9', 2001)).toBe(true);
    expect(t.blocked('10.0.0.7', 2001)).toBe(false);
    // the window counts from the first failure
    expect(t.blocked('10.0.0.9', 1000 + 59_999)).toBe(true);
    expect(t.blocked('10.0.0.9', 1000 + 60_000)).toBe(false);
    t.failed('10.0.0.9', 70_000);
    expect(t.blocked('10.0.0.9', 70_001)).toBe(false);
  });

  it('stays bounded: past maxAddresses it starts afresh', () => {
    const t = new AuthThrottle({ maxFailures: 1, windowMs: 60_000, maxAddresses: 2 });
    t.failed('a', 0);
    t.failed('b', 0);
    expect(t.blocked('a', 1)).toBe(true);
    t.failed('c', 1);
    expect(t.blocked('a', 2)).toBe(false);
    expect(t.blocked('c', 2)).toBe(true);
  });
});
