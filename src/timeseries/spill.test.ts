import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { captureLogger } from '../ingest/test-helpers.ts';
import { LINE_CODEC, toLineProtocol } from './influx.ts';
import type { Point } from './port.ts';
import { Spill, type SpillCodec, SpillLog, type SpillOptions } from './spill.ts';
import { POINT_CODEC } from './sqlite.ts';

const dirs: string[] = [];
const spills: Spill<unknown>[] = [];
afterEach(async () => {
  for (const s of spills.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'gw-spill-'));
  dirs.push(d);
  return d;
}

const NUM: SpillCodec<number> = {
  encode: (n) => String(n),
  decode: (l) => (/^\d+$/.test(l) ? Number(l) : undefined),
};

function options(dir: string, o: Partial<SpillOptions> = {}): SpillOptions {
  return { dir, name: 'test', ext: 'ndjson', maxBytes: 1_048_576, ...o };
}

function makeSpill<T>(opts: SpillOptions, codec: SpillCodec<T>) {
  const { logger, lines } = captureLogger('info');
  const spill = new Spill(opts, codec, logger);
  spills.push(spill as Spill<unknown>);
  return { spill, lines };
}

/** A sink that stores what it is given, and fails while `down`. */
function sink<T>() {
  const got: T[] = [];
  const s = {
    got,
    down: false,
    calls: 0,
    ready: () => true,
    write(batch: T[]) {
      s.calls++;
      if (s.down) throw new Error('store down');
      got.push(...batch);
    },
  };
  return s;
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const files = (dir: string) => readdirSync(dir).sort();

describe('SpillLog', () => {
  it('reads back what was appended, oldest first, across segments, and deletes each segment once consumed', () => {
    const dir = tempDir();
    const log = new SpillLog(options(dir, { segmentBytes: 4096 }));
    log.open();
    // 2,000 lines of ~5 bytes: several 4 KiB segments
    for (let i = 0; i < 20; i++) expect(log.append(range(10_000 + i * 100, 100).map(String))).toEqual({ kept: 100 });
    expect(log.records).toBe(2000);
    const onDisk = files(dir).reduce((s, f) => s + statSync(path.join(dir, f)).size, 0);
    expect(log.bytes).toBe(onDisk);
    expect(files(dir).length).toBeGreaterThanOrEqual(3);

    const seen: string[] = [];
    for (;;) {
      const lines = log.peek(333);
      if (lines.length === 0) break;
      seen.push(...lines);
      log.consume(lines.length);
    }
    expect(seen).toEqual(range(10_000, 2000).map(String));
    expect(log.records).toBe(0);
    expect(log.bytes).toBe(0);
    expect(files(dir)).toEqual([]);
    log.close();
  });

  it('peek does not consume: the same lines come again until consume()', () => {
    const log = new SpillLog(options(tempDir()));
    log.open();
    log.append(['a', 'b', 'c']);
    expect(log.peek(2)).toEqual(['a', 'b']);
    expect(log.peek(2)).toEqual(['a', 'b']);
    log.consume(1);
    expect(log.peek(5)).toEqual(['b', 'c']);
    log.close();
  });

  it('refuses what would pass maxBytes, keeping the prefix that fits', () => {
    const dir = tempDir();
    const log = new SpillLog(options(dir, { maxBytes: 4096 }));
    log.open();
    // 8-byte lines (7 + newline): 512 fit
    const lines = range(1_000_000, 600).map(String);
    expect(log.append(lines)).toEqual({ kept: 512 });
    expect(log.bytes).toBe(4096);
    expect(log.append(['1'])).toEqual({ kept: 0 });
    log.close();
  });
});

describe('Spill', () => {
  it('drains to the sink in order and empties the directory', async () => {
    const dir = tempDir();
    const { spill } = makeSpill(options(dir, { segmentBytes: 4096 }), NUM);
    spill.open();
    expect(spill.add(range(0, 3000))).toBe(3000);
    expect(spill.stats()).toMatchObject({ spilled: 3000, dropped: 0 });
    const s = sink<number>();
    spill.start(s);
    await vi.waitFor(() => expect(spill.stats().spilled).toBe(0), { timeout: 5000 });
    expect(s.got).toEqual(range(0, 3000));
    expect(spill.stats()).toEqual({ spilled: 0, spillBytes: 0, dropped: 0 });
    expect(files(dir)).toEqual([]);
  });

  it('drains at the configured rate', async () => {
    const { spill } = makeSpill(options(tempDir(), { drainPointsPerSecond: 5000, drainBatch: 100 }), NUM);
    spill.open();
    spill.add(range(0, 10_000));
    const s = sink<number>();
    const t0 = Date.now();
    spill.start(s);
    await new Promise((r) => setTimeout(r, 500));
    // 5,000/s for 0.5 s: about 2,500 (ticks of 500 every 100 ms), far from all 10,000
    expect(s.got.length).toBeGreaterThan(1000);
    expect(s.got.length).toBeLessThanOrEqual(Math.ceil(((Date.now() - t0) / 100 + 1) * 500));
    expect(s.got.length).toBeLessThan(10_000);
  });

  it('keeps a batch the sink refuses and writes it once the sink takes writes again', async () => {
    const { spill } = makeSpill(options(tempDir()), NUM);
    spill.open();
    spill.add(range(0, 500));
    const s = sink<number>();
    s.down = true;
    spill.start(s);
    await vi.waitFor(() => expect(s.calls).toBeGreaterThanOrEqual(2));
    expect(spill.stats().spilled).toBe(500);
    s.down = false;
    await vi.waitFor(() => expect(spill.stats().spilled).toBe(0), { timeout: 10_000 });
    expect(s.got).toEqual(range(0, 500));
  });

  it('does not drain while the sink is not ready (live writes first)', async () => {
    const { spill } = makeSpill(options(tempDir()), NUM);
    spill.open();
    spill.add(range(0, 10));
    const s = { ...sink<number>(), ready: () => false };
    spill.start(s);
    await new Promise((r) => setTimeout(r, 300));
    expect(s.calls).toBe(0);
    expect(spill.stats().spilled).toBe(10);
  });

  it('past maxBytes drops the rest, counts it and logs "spill full"', () => {
    const { spill, lines } = makeSpill(options(tempDir(), { maxBytes: 4096 }), NUM);
    spill.open();
    expect(spill.add(range(1_000_000, 600))).toBe(512);
    expect(spill.stats()).toEqual({ spilled: 512, spillBytes: 4096, dropped: 88 });
    expect(spill.add([1_234_567])).toBe(0);
    expect(spill.stats().dropped).toBe(89);
    const drop = lines.find((l) => /points dropped/.test(l.msg));
    expect(drop).toMatchObject({ level: 50, reason: 'spill full', dropped: 88 });
    // rate-limited: the second drop within 10 s is counted but not logged again
    expect(lines.filter((l) => /points dropped/.test(l.msg))).toHaveLength(1);
  });

  it('after a restart, drains what the previous instance left on disk', async () => {
    const dir = tempDir();
    const first = makeSpill(options(dir, { segmentBytes: 4096 }), NUM).spill;
    first.open();
    first.add(range(0, 1500));
    // nothing drained: the store never came back before the stop
    await first.close();
    expect(files(dir).length).toBeGreaterThan(1);

    const { spill, lines } = makeSpill(options(dir, { segmentBytes: 4096 }), NUM);
    spill.open();
    expect(spill.stats().spilled).toBe(1500);
    expect(lines.some((l) => /spilled before the restart/.test(l.msg))).toBe(true);
    // appended after the restart: drained after the old ones
    spill.add(range(1500, 10));
    const s = sink<number>();
    spill.start(s);
    await vi.waitFor(() => expect(spill.stats().spilled).toBe(0), { timeout: 5000 });
    expect(s.got).toEqual(range(0, 1510));
    expect(files(dir)).toEqual([]);
  });

  it('can be closed and opened again in the same process (a store stopped and started)', async () => {
    const dir = tempDir();
    const { spill } = makeSpill(options(dir), NUM);
    spill.open();
    spill.add(range(0, 50));
    await spill.close();
    spill.open();
    expect(spill.stats().spilled).toBe(50);
    spill.add(range(50, 5));
    const s = sink<number>();
    spill.start(s);
    await vi.waitFor(() => expect(spill.stats().spilled).toBe(0), { timeout: 5000 });
    expect(s.got).toEqual(range(0, 55));
  });

  it('skips and counts a truncated last line (killed mid-write) and an unreadable line, without crashing', async () => {
    const dir = tempDir();
    const first = makeSpill(options(dir), NUM).spill;
    first.open();
    first.add(range(0, 100));
    await first.close();
    const [file] = files(dir);
    const full = path.join(dir, file as string);
    // garbage in the middle (a torn sector), then a line cut off by the kill
    appendFileSync(full, 'x\u0000zz\n100\n101\n10');

    const { spill, lines } = makeSpill(options(dir), NUM);
    spill.open();
    // the partial "10" is cut off at open: counted as dropped, the file ends on a whole line again
    expect(readFileSync(full, 'utf8').endsWith('101\n')).toBe(true);
    expect(spill.stats()).toMatchObject({ spilled: 103, dropped: 1 });
    expect(lines.some((l) => l.reason === 'spill: truncated last line (killed mid-write) skipped')).toBe(true);
    const s = sink<number>();
    spill.start(s);
    await vi.waitFor(() => expect(spill.stats().spilled).toBe(0), { timeout: 5000 });
    expect(s.got).toEqual(range(0, 102));
    expect(spill.stats()).toEqual({ spilled: 0, spillBytes: 0, dropped: 2 });
  });

  it('ignores files that are not its own (another adapter’s spill) and refuses a second user of one directory', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'timeseries-influx-000000000001.lp'), 'reading,device=a x=1 1\n');
    const a = makeSpill(options(dir, { name: 'timeseries-sqlite' }), NUM).spill;
    a.open();
    expect(a.stats().spilled).toBe(0);
    const b = makeSpill(options(dir, { name: 'timeseries-sqlite' }), NUM).spill;
    expect(() => b.open()).toThrow(/already in use/);
  });
});

describe('spill codecs', () => {
  const points: Point[] = [
    { deviceId: 'd1', field: 'power_w', ts: 1_700_000_000_123, value: 12.5 },
    { deviceId: 'd "2"', field: 'temp_c', ts: 1, value: -3, tags: { householdId: 'h1', drill: true } },
    { deviceId: 'd3', field: 'x', ts: 2, value: 0, tags: { buildingId: 'b', gridId: 'g' } },
  ];

  it('sqlite: a point comes back as it went, tags present or absent', () => {
    for (const p of points) {
      const line = POINT_CODEC.encode(p);
      expect(line).not.toContain('\n');
      expect(POINT_CODEC.decode(line)).toEqual(p);
    }
    for (const bad of ['', '[', '{"a":1}', '["d","f",1]', '["","f",1,2]', '["d","f",1,null]']) {
      expect(POINT_CODEC.decode(bad)).toBeUndefined();
    }
  });

  it('influx: line protocol with escaped newlines stays one line; garbage is refused', () => {
    const line = toLineProtocol({ deviceId: 'a\nb c', field: 'power_w', ts: 5, value: 1, tags: { householdId: 'h' } });
    expect(line).toBeDefined();
    expect(line).not.toContain('\n');
    expect(LINE_CODEC.decode(line as string)).toBe(line);
    for (const bad of ['', 'reading,device=a', 'reading,device=a power_w=1 12x', 'other,device=a x=1 1']) {
      expect(LINE_CODEC.decode(bad)).toBeUndefined();
    }
  });
});
