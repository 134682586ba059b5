import { describe, expect, it } from 'vitest';
import { inWindow, localTime, nextLocalMinute, parseHHMM, zoneOffset } from './time.ts';

describe('local time in the community zone', () => {
  it('knows Shanghai is UTC+8 and New York changes with daylight saving', () => {
    expect(zoneOffset(Date.UTC(2026, 0, 1), 'Asia/Shanghai')).toBe(8 * 3_600_000);
    expect(zoneOffset(Date.UTC(2026, 0, 15), 'America/New_York')).toBe(-5 * 3_600_000);
    expect(zoneOffset(Date.UTC(2026, 6, 15), 'America/New_York')).toBe(-4 * 3_600_000);
  });

  it('gives minute of day, weekday and local midnight', () => {
    // 2026-11-25 23:30 UTC is 2026-11-26 07:30 in Shanghai, a Thursday
    const lt = localTime(Date.UTC(2026, 10, 25, 23, 30), 'Asia/Shanghai');
    expect(lt.minuteOfDay).toBe(7 * 60 + 30);
    expect(lt.weekday).toBe(4);
    expect(lt.midnight).toBe(Date.UTC(2026, 10, 25, 16, 0));
  });

  it('handles windows across midnight and the next occurrence of a time', () => {
    expect(inWindow(parseHHMM('23:00'), parseHHMM('22:00'), parseHHMM('06:00'))).toBe(true);
    expect(inWindow(parseHHMM('05:59'), parseHHMM('22:00'), parseHHMM('06:00'))).toBe(true);
    expect(inWindow(parseHHMM('06:00'), parseHHMM('22:00'), parseHHMM('06:00'))).toBe(false);
    expect(inWindow(parseHHMM('12:00'), parseHHMM('07:00'), parseHHMM('22:00'))).toBe(true);
    const t = Date.UTC(2026, 10, 25, 15, 0); // 23:00 Shanghai
    expect(nextLocalMinute(t, parseHHMM('07:00'), 'Asia/Shanghai')).toBe(Date.UTC(2026, 10, 25, 23, 0));
    expect(nextLocalMinute(t, parseHHMM('23:00'), 'Asia/Shanghai')).toBe(t);
  });
});

describe('local midnight on a daylight-saving day', () => {
  it('is the instant the local day began, not shifted by the change later that day', () => {
    // 2026-03-08 in New York: clocks go from 02:00 EST (UTC-5) to 03:00 EDT (UTC-4); 12:00 local is EDT
    const noon = Date.UTC(2026, 2, 8, 16, 0, 0);
    const lt = localTime(noon, 'America/New_York');
    expect(new Date(lt.midnight).toISOString()).toBe('2026-03-08T05:00:00.000Z');
    expect(lt.minuteOfDay).toBe(12 * 60);
  });
});
