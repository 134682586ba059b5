import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { freePort } from '../lifecycle/redis-server.ts';
import {
  buildAggregateFlux,
  buildRangeFlux,
  InfluxTimeSeries,
  parseAnnotatedCsv,
  rowToAggregate,
  rowToPoint,
  toLineProtocol,
} from './influx.ts';
import type { Aggregate, Point } from './port.ts';

const log = pino({ level: 'silent' });
const T0 = Date.UTC(2024, 0, 1);

describe('buildRangeFlux', () => {
  it('filters on measurement, device and field, then sorts oldest first and limits', () => {
    const flux = buildRangeFlux(
      { deviceId: 'd1', field: 'power_w', from: T0, to: T0 + 240_000, limit: 50 },
      'gridwatch',
    );
    expect(flux).toBe(
      [
        'from(bucket: "gridwatch")',
        '  |> range(start: 2024-01-01T00:00:00.000Z, stop: 2024-01-01T00:04:00.000Z)',
        '  |> filter(fn: (r) => r._measurement == "reading" and r.device == "d1" and r._field == "power_w")',
        '  |> keep(columns: ["_time", "_value", "_field", "device", "drill"])',
        '  |> group()',
        '  |> sort(columns: ["_time", "device", "_field"])',
        '  |> limit(n: 50)',
      ].join('\n'),
    );
  });

  it('filters on household, with the default limit', () => {
    const flux = buildRangeFlux({ householdId: 'h1', from: T0 + 1, to: T0 + 1001 }, 'gw');
    expect(flux).toContain('|> range(start: 2024-01-01T00:00:00.001Z, stop: 2024-01-01T00:00:01.001Z)');
    expect(flux).toContain('|> filter(fn: (r) => r._measurement == "reading" and r.household == "h1")');
    expect(flux).toContain('|> limit(n: 10000)');
  });

  it('escapes quotes, backslashes and interpolation in string literals', () => {
    // `${` opens an interpolation in a Flux string literal, so it must arrive escaped
    const device = 'd"1\\x$' + '{y}';
    const flux = buildRangeFlux(
      { deviceId: device, householdId: 'h\\"', field: 'a"b', from: T0, to: T0 + 1 },
      'my "bucket"',
    );
    expect(flux).toContain('from(bucket: "my \\"bucket\\"")');
    expect(flux).toContain(
      'r.device == "d\\"1\\\\x\\$' + '{y}" and r.household == "h\\\\\\"" and r._field == "a\\"b")',
    );
  });

  it('refuses a query without device or household, and a limit that is not a positive integer', () => {
    expect(() => buildRangeFlux({ from: T0, to: T0 + 1 }, 'b')).toThrow(/deviceId or a householdId/);
    expect(() => buildRangeFlux({ deviceId: 'd', from: T0, to: T0 + 1, limit: 0 }, 'b')).toThrow(/limit/);
    expect(() => buildRangeFlux({ deviceId: 'd', from: T0, to: T0 + 1, limit: 1.5 }, 'b')).toThrow(/limit/);
  });
});

describe('buildAggregateFlux', () => {
  it('windows per device and field with the requested function', () => {
    const flux = buildAggregateFlux(
      { deviceId: 'd1', field: 'power_w', from: T0, to: T0 + 3_600_000, every: 300_000, agg: 'mean' },
      'gridwatch',
    );
    expect(flux).toBe(
      [
        'from(bucket: "gridwatch")',
        '  |> range(start: 2024-01-01T00:00:00.000Z, stop: 2024-01-01T01:00:00.000Z)',
        '  |> filter(fn: (r) => r._measurement == "reading" and r.device == "d1" and r._field == "power_w")',
        '  |> group(columns: ["device", "_field", "drill"])',
        '  |> aggregateWindow(every: 300000ms, fn: mean, createEmpty: false, timeSrc: "_start")',
        '  |> keep(columns: ["_time", "_value", "_field", "device", "drill"])',
        '  |> group()',
        '  |> sort(columns: ["device", "_field", "_time"])',
        '  |> limit(n: 10000)',
      ].join('\n'),
    );
  });

  it('sorts by time before `last`, which takes the last row of a table', () => {
    const flux = buildAggregateFlux(
      { householdId: 'h1', from: T0, to: T0 + 60_000, every: 60_000, agg: 'last', limit: 7 },
      'gridwatch',
    );
    expect(flux).toBe(
      [
        'from(bucket: "gridwatch")',
        '  |> range(start: 2024-01-01T00:00:00.000Z, stop: 2024-01-01T00:01:00.000Z)',
        '  |> filter(fn: (r) => r._measurement == "reading" and r.household == "h1")',
        '  |> group(columns: ["device", "_field", "drill"])',
        '  |> sort(columns: ["_time"])',
        '  |> aggregateWindow(every: 60000ms, fn: last, createEmpty: false, timeSrc: "_start")',
        '  |> keep(columns: ["_time", "_value", "_field", "device", "drill"])',
        '  |> group()',
        '  |> sort(columns: ["device", "_field", "_time"])',
        '  |> limit(n: 7)',
      ].join('\n'),
    );
  });

  it('uses each of the six functions by its Flux name', () => {
    for (const agg of ['mean', 'min', 'max', 'sum', 'count', 'last'] as const) {
      const flux = buildAggregateFlux({ deviceId: 'd', from: T0, to: T0 + 1, every: 1000, agg }, 'b');
      expect(flux).toContain(`aggregateWindow(every: 1000ms, fn: ${agg}, createEmpty: false, timeSrc: "_start")`);
    }
  });

  it('lets nothing but a known function and a whole positive window into the query text', () => {
    const q = { deviceId: 'd', from: T0, to: T0 + 1, every: 1000 };
    expect(() => buildAggregateFlux({ ...q, agg: 'mean) |> drop(' as Aggregate }, 'b')).toThrow(/unknown aggregate/);
    expect(() => buildAggregateFlux({ ...q, every: 0.5, agg: 'mean' }, 'b')).toThrow(/every/);
    expect(() => buildAggregateFlux({ ...q, every: -1000, agg: 'mean' }, 'b')).toThrow(/every/);
  });
});

// Annotated CSV as InfluxDB 2 answers the queries above (CRLF line ends, a blank line after each table).
const RAW_CSV = [
  '#datatype,string,long,dateTime:RFC3339,double,string,string,string',
  '#group,false,false,false,false,false,false,false',
  '#default,_result,,,,,,',
  ',result,table,_time,_value,_field,device,drill',
  ',,0,2024-01-01T00:00:00Z,1,power_w,d1,false',
  ',,0,2024-01-01T00:00:20Z,3,power_w,d1,false',
  ',,0,2024-01-01T00:00:20Z,21.5,temperature_c,d1,false',
  ',,0,2024-01-01T00:00:30.25Z,1,smoke,dd,true',
  ',,0,2024-01-01T00:01:05.123456789Z,-4.75,power_w,"d,2",false',
  '',
  '',
].join('\r\n');

const COUNT_CSV = [
  '#datatype,string,long,string,string,string,long,dateTime:RFC3339',
  '#group,false,false,false,false,false,false,false',
  '#default,_result,,,,,,',
  ',result,table,_field,device,drill,_value,_time',
  ',,0,power_w,d1,false,3,2024-01-01T00:00:30Z',
  ',,0,power_w,d1,false,2,2024-01-01T00:01:00Z',
  ',,0,smoke,dd,true,1,2024-01-01T00:00:00Z',
  '',
  '',
].join('\r\n');

describe('annotated CSV answers', () => {
  it('maps raw rows onto points: RFC 3339 times to epoch ms, quoted values, the drill flag', () => {
    expect(parseAnnotatedCsv(RAW_CSV, rowToPoint)).toEqual([
      { deviceId: 'd1', field: 'power_w', ts: T0, value: 1 },
      { deviceId: 'd1', field: 'power_w', ts: T0 + 20_000, value: 3 },
      { deviceId: 'd1', field: 'temperature_c', ts: T0 + 20_000, value: 21.5 },
      { deviceId: 'dd', field: 'smoke', ts: T0 + 30_250, value: 1, drill: true },
      { deviceId: 'd,2', field: 'power_w', ts: T0 + 65_123, value: -4.75 },
    ]);
  });

  it('maps aggregate rows onto window starts aligned to the epoch (a clipped first window included)', () => {
    // the first row's _time is the range start (00:00:30) because the range began inside the window
    expect(parseAnnotatedCsv(COUNT_CSV, (v, m) => rowToAggregate(v, m, 60_000, 'count'))).toEqual([
      { deviceId: 'd1', field: 'power_w', ts: T0, value: 3, agg: 'count' },
      { deviceId: 'd1', field: 'power_w', ts: T0 + 60_000, value: 2, agg: 'count' },
      { deviceId: 'dd', field: 'smoke', ts: T0, value: 1, agg: 'count', drill: true },
    ]);
  });

  it('reads every table of a multi-table answer', () => {
    // a new table starts after a blank line with its own annotations, here with other columns and types
    const rows = parseAnnotatedCsv(RAW_CSV + COUNT_CSV, rowToPoint);
    expect(rows).toHaveLength(8);
    expect(rows[7]).toEqual({ deviceId: 'dd', field: 'smoke', ts: T0, value: 1, drill: true });
  });

  it('turns an error table in the stream into an exception, not an empty result', () => {
    const csv = [
      '#datatype,string,string',
      '#group,true,true',
      '#default,,',
      ',error,reference',
      ',"runtime error @6:6-6:52: sort: schema collision: cannot group string and float types together",',
      '',
    ].join('\r\n');
    expect(() => parseAnnotatedCsv(csv, rowToPoint)).toThrow(/Flux query failed: runtime error .*schema collision/);
  });

  it('answers nothing for an empty result', () => {
    expect(parseAnnotatedCsv('\r\n', rowToPoint)).toEqual([]);
  });
});

describe('toLineProtocol', () => {
  const point = (over: Partial<Point> = {}): Point => ({
    deviceId: 'd1',
    field: 'power_w',
    ts: 1_700_000_000_000,
    value: 12.5,
    tags: { householdId: 'h1', buildingId: 'b1', gridId: 'g1' },
    ...over,
  });

  it('writes measurement reading, tags in key order, the field as a float, ms time', () => {
    expect(toLineProtocol(point())).toBe(
      'reading,building=b1,device=d1,drill=false,grid=g1,household=h1 power_w=12.5 1700000000000',
    );
    expect(toLineProtocol(point({ value: 3, tags: { drill: true } }))).toBe(
      'reading,device=d1,drill=true power_w=3 1700000000000',
    );
  });

  it('escapes commas, spaces and equals signs in tags and field names', () => {
    expect(toLineProtocol(point({ deviceId: 'a b,c=d', field: 'x y', tags: { householdId: 'h 1' } }))).toBe(
      'reading,device=a\\ b\\,c\\=d,drill=false,household=h\\ 1 x\\ y=12.5 1700000000000',
    );
  });

  it('refuses what cannot be stored', () => {
    expect(toLineProtocol(point({ value: Number.NaN }))).toBeUndefined();
    expect(toLineProtocol(point({ value: Number.POSITIVE_INFINITY }))).toBeUndefined();
    expect(toLineProtocol(point({ deviceId: '' }))).toBeUndefined();
    expect(toLineProtocol(point({ ts: Number.NaN }))).toBeUndefined();
  });
});

describe('InfluxTimeSeries with no server listening', () => {
  it('keeps failed batches for retry, drops (and counts) only beyond maxBufferLines, and stop() accounts for the rest', async () => {
    const port = await freePort();
    const store = new InfluxTimeSeries(
      {
        url: `http://127.0.0.1:${port}`,
        token: 't',
        org: 'o',
        bucket: 'b',
        batchSize: 50,
        flushIntervalMs: 60_000,
        maxBufferLines: 100,
        maxRetries: 5,
        maxRetryDelayMs: 60_000,
      },
      log,
    );
    expect(await store.ping()).toBe(false);
    await store.start();
    const points: Point[] = Array.from({ length: 170 }, (_, i) => ({
      deviceId: 'd1',
      field: 'power_w',
      ts: T0 + i,
      value: i,
    }));
    // does not throw although nothing answers
    store.write(points);
    await expect(store.flush()).rejects.toThrow();
    // three full batches and the 20-line rest have each failed once
    await vi.waitFor(() => expect(store.stats().failedFlushes).toBeGreaterThanOrEqual(4));
    const s = store.stats();
    expect(s.written).toBe(0);
    expect(s.buffered).toBeLessThanOrEqual(100);
    expect(s.dropped).toBeGreaterThanOrEqual(70);
    expect(s.buffered + s.dropped).toBe(170);

    await store.stop();
    expect(store.stats()).toMatchObject({ written: 0, buffered: 0, dropped: 170 });
    // after stop, writes are counted, not thrown
    store.write(points.slice(0, 2));
    expect(store.stats().dropped).toBe(172);
  });
});
