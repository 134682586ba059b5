/**
 * A short run of the ingest benchmark (`npm run bench` runs the full one): it must work, and nothing the broker
 * acknowledged may be missing from the store. No speed is asserted here; figures come from `npm run bench`.
 */
import { describe, expect, it } from 'vitest';
import { runIngestBench } from '../bench/ingest-bench.ts';

describe('ingest benchmark, smoke run', () => {
  it('stores every point of every acknowledged QoS 1 message', async () => {
    const r = await runIngestBench({ clients: 20, seconds: 2, qos: 1, inflight: 4, maxPerClient: 300 });
    expect(r.load.clients).toBe(20);
    expect(r.load.acked).toBe(r.load.sent);
    expect(r.load.sent).toBeGreaterThan(100);
    expect(r.rejected).toBe(0);
    expect(r.pointsStored).toBe(r.pointsExpected);
  }, 90_000);
});
