import { describe, expect, it } from 'vitest';
import { pageByTime, parseTime, parseWindow } from './readings.ts';

describe('reading query parameters', () => {
  it('parses times as epoch ms or ISO-8601, and windows', () => {
    expect(parseTime('1700000000000')).toBe(1_700_000_000_000);
    expect(parseTime('2026-11-25T08:00:00+08:00')).toBe(Date.UTC(2026, 10, 25, 0, 0, 0));
    expect(parseTime('yesterday')).toBeUndefined();
    expect(parseWindow('30s')).toBe(30_000);
    expect(parseWindow('5m')).toBe(300_000);
    expect(parseWindow('1d')).toBe(86_400_000);
    expect(parseWindow('0m')).toBeUndefined();
    expect(parseWindow('5w')).toBeUndefined();
  });
});

describe('pageByTime', () => {
  const pts = (...ts: number[]) => ts.map((t, i) => ({ ts: t, i }));

  it('returns everything when it fits', () => {
    expect(pageByTime(pts(1, 2, 3), 3)).toEqual({ page: pts(1, 2, 3) });
  });

  it('ends a page on a whole millisecond and continues at the next one', () => {
    // limit 3, fetched 4: the point at ts 3 that fits is held back with its twin
    const r = pageByTime(pts(1, 2, 3, 3), 3);
    expect(r.page.map((p) => p.ts)).toEqual([1, 2]);
    expect(r.nextCursor).toBe('3');
    expect(pageByTime(pts(1, 2, 3, 4), 3)).toEqual({ page: pts(1, 2, 3), nextCursor: '4' });
  });

  it('returns a millisecond larger than a page whole and continues after it', () => {
    const r = pageByTime(pts(5, 5, 5), 2);
    expect(r.page).toHaveLength(3);
    expect(r.nextCursor).toBe('6');
  });
});
