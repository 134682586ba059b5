/**
 * Ingest benchmark: a whole node (embedded broker, private Redis, SQLite stores) takes telemetry from a load
 * generator in another process (simulators/load.ts, real MQTT clients), then every point is counted in the store.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { LoadDevice, LoadResult } from '../../simulators/load.ts';
import { loadableDevices } from '../../simulators/load.ts';
import { startNode, type TestNode } from '../support/system.ts';
import { runTsxForReport } from '../support/tsx-child.ts';

export interface IngestBenchOptions {
  clients: number;
  seconds: number;
  qos: 0 | 1;
  inflight?: number;
  maxPerClient?: number;
}

export interface IngestBenchResult {
  load: LoadResult;
  ingestedPerSecond: number;
  pointsExpected: number;
  pointsStored: number;
  rejected: number;
  rssPeakMb: number;
  eventLoopP99Ms: number;
}

async function counter(node: TestNode, name: string): Promise<number> {
  const metric = node.system.metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.reduce((n, v) => n + v.value, 0);
}

export function runLoadProcess(args: string[]): Promise<LoadResult> {
  return runTsxForReport<LoadResult>('load generator', 'simulators/load.ts', args);
}

export async function runIngestBench(opts: IngestBenchOptions, node?: TestNode): Promise<IngestBenchResult> {
  const own = !node;
  // the load generator drives hundreds of messages a second per client: far over the per-device limit
  const n = node ?? (await startNode({ GRIDWATCH__ingest__rateLimit__perSecond: '0' }));
  try {
    const secretsFile = path.join(n.dataDir, 'demo-secrets.json');
    const devices = loadableDevices(
      (JSON.parse(readFileSync(secretsFile, 'utf8')) as { deviceSecrets: LoadDevice[] }).deviceSecrets,
    ).slice(0, opts.clients);
    const before = await counter(n, 'gridwatch_ingest_messages_total');
    const rejectedBefore = await counter(n, 'gridwatch_ingest_rejected_total');
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    let rssPeak = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }, 200);
    const load = await runLoadProcess([
      '--url',
      n.mqttUrl,
      '--secrets',
      secretsFile,
      '--clients',
      String(devices.length),
      '--seconds',
      String(opts.seconds),
      '--qos',
      String(opts.qos),
      '--inflight',
      String(opts.inflight ?? 8),
      '--max-per-client',
      String(opts.maxPerClient ?? 0),
    ]);
    // QoS 0 messages may still be in the broker's socket buffers when the generator exits
    const deadline = Date.now() + 10_000;
    while ((await counter(n, 'gridwatch_ingest_messages_total')) - before < load.sent && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    clearInterval(sampler);
    loop.disable();
    const ingested = (await counter(n, 'gridwatch_ingest_messages_total')) - before;
    await n.system.timeseries.flush();
    let stored = 0;
    for (const d of devices) {
      const q = { deviceId: d.deviceId, from: load.tsFrom, to: load.tsTo + 1, limit: 10_000_000 };
      stored += (await n.system.timeseries.query(q)).length;
    }
    return {
      load,
      ingestedPerSecond: Math.round(ingested / load.seconds),
      pointsExpected: load.fields,
      pointsStored: stored,
      rejected: (await counter(n, 'gridwatch_ingest_rejected_total')) - rejectedBefore,
      rssPeakMb: Math.round(rssPeak / 1048576),
      eventLoopP99Ms: Math.round(loop.percentile(99) / 1e5) / 10,
    };
  } finally {
    if (own) await n.stop();
  }
}
