/**
 * Local time in the community's zone, cheaply: the zone's UTC offset is looked up once per quarter hour (offsets
 * only change on such boundaries) and cached, so rules can ask "what time of day is it there" per message.
 */
const MINUTE = 60_000;
const QUARTER = 15 * MINUTE;

const formatters = new Map<string, Intl.DateTimeFormat>();
const offsets = new Map<string, number>();

/** Offset of `timeZone` from UTC at `ts`, in ms (Asia/Shanghai: +8 h). */
export function zoneOffset(ts: number, timeZone: string): number {
  const bucket = Math.floor(ts / QUARTER);
  const cacheKey = `${timeZone}|${bucket}`;
  const hit = offsets.get(cacheKey);
  if (hit !== undefined) return hit;
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  const at = bucket * QUARTER;
  const p = Object.fromEntries(f.formatToParts(new Date(at)).map((x) => [x.type, x.value]));
  const asUtc = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute));
  const offset = asUtc - at;
  if (offsets.size > 10_000) offsets.clear();
  offsets.set(cacheKey, offset);
  return offset;
}

export interface LocalTime {
  /** minutes since local midnight, 0..1439 */
  minuteOfDay: number;
  /** local calendar day as a number of days since 1970-01-01 */
  day: number;
  /** 0 Sunday … 6 Saturday */
  weekday: number;
  /** epoch ms of the local midnight that starts this day */
  midnight: number;
}

export function localTime(ts: number, timeZone: string): LocalTime {
  const off = zoneOffset(ts, timeZone);
  const local = ts + off;
  const day = Math.floor(local / 86_400_000);
  const minuteOfDay = Math.floor((local - day * 86_400_000) / MINUTE);
  // the offset AT midnight: on a daylight-saving day it differs from the offset now
  const guess = day * 86_400_000 - off;
  const midnight = day * 86_400_000 - zoneOffset(guess, timeZone);
  return { minuteOfDay, day, weekday: (day + 4) % 7, midnight };
}

/** "07:30" → 450 */
export function parseHHMM(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

/** Is minute-of-day `m` inside [start, end)? Windows may wrap midnight (22:00–06:00). */
export function inWindow(m: number, start: number, end: number): boolean {
  return start <= end ? m >= start && m < end : m >= start || m < end;
}

/** The first epoch ms at or after `ts` whose local time is `minuteOfDay`. */
export function nextLocalMinute(ts: number, minuteOfDay: number, timeZone: string): number {
  const lt = localTime(ts, timeZone);
  let candidate = lt.midnight + minuteOfDay * MINUTE;
  if (candidate < ts) candidate = localTime(ts + 86_400_000, timeZone).midnight + minuteOfDay * MINUTE;
  return candidate;
}
