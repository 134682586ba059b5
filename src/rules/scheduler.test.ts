import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock/clock.ts';
import { MemoryScheduler } from './scheduler.ts';
import type { Timer } from './types.ts';

describe('MemoryScheduler on a virtual clock', () => {
  it('fires deadlines on time and in order without any message, with one clock timer', () => {
    const clock = new VirtualClock(0);
    const s = new MemoryScheduler(clock);
    const fired: [string, number][] = [];
    s.onFire((t) => fired.push([t.key, clock.now()]));
    s.set({ key: 'b', at: 2000, rule: 'sos' });
    s.set({ key: 'a', at: 1000, rule: 'sos' });
    s.set({ key: 'c', at: 3000, rule: 'sos' });
    clock.advance(2500);
    expect(fired).toEqual([
      ['a', 1000],
      ['b', 2000],
    ]);
    clock.advance(10_000);
    expect(fired.map(([k]) => k)).toEqual(['a', 'b', 'c']);
    expect(s.size).toBe(0);
  });

  it('replaces a key, cancels, and fires timers that handlers set for later', () => {
    const clock = new VirtualClock(0);
    const s = new MemoryScheduler(clock);
    const fired: Timer[] = [];
    s.onFire((t) => {
      fired.push(t);
      if (t.key === 'again' && (t.data?.n as number) < 3)
        s.set({ key: 'again', at: t.at + 100, rule: 'sos', data: { n: (t.data?.n as number) + 1 } });
    });
    s.set({ key: 'x', at: 500, rule: 'sos' });
    s.set({ key: 'x', at: 700, rule: 'sos' }); // replaces
    s.set({ key: 'gone', at: 600, rule: 'sos' });
    s.cancel('gone');
    s.set({ key: 'again', at: 800, rule: 'sos', data: { n: 1 } });
    clock.advance(5000);
    expect(fired.map((t) => `${t.key}@${t.at}`)).toEqual(['x@700', 'again@800', 'again@900', 'again@1000']);
    expect(s.get('x')).toBeUndefined();
  });
});

describe('MemoryScheduler housekeeping', () => {
  it('does not pile up replaced deadlines: a rule moving one deadline a million times keeps the heap small', () => {
    const clock = new VirtualClock(0);
    const s = new MemoryScheduler(clock);
    s.onFire(() => {});
    for (let i = 0; i < 1_000_000; i++) s.set({ key: `k${i % 10}`, at: 1_000_000 + i, rule: 'inactivity' });
    expect(s.size).toBe(10);
    expect(s.heapSize).toBeLessThan(2 * 10 + 1025);
    const fired: string[] = [];
    s.onFire((t) => fired.push(t.key));
    clock.advance(3_000_000);
    expect(fired.sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9']);
  });
});
