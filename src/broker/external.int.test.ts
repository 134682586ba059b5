/**
 * ExternalBroker against Debian's real mosquitto, with real MQTT.js devices:
 *
 * - A QoS 1 event whose journal write fails is not acknowledged and forces a reconnect, so the broker sends it again
 *   (the persistent session keeps it): with an in-flight window of 5 (the node's Receive Maximum, which mosquitto
 *   2.0 honours over its max_inflight_messages), five journal failures do not stall delivery; every event ends up
 *   journalled once and acknowledged.
 * - The same when a message arrives before ingest is attached.
 * - stop() leaves the shared group without throwing away what the broker had already queued for this node.
 * - stop() is bounded when the broker does not answer (SIGSTOP).
 * - start() survives the link dropping between CONNACK and SUBACK.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestMosquitto, type TestMosquitto } from '../../test/support/mosquitto.ts';
import { ROOT, waitFor } from '../../test/support/system.ts';
import { loadConfig } from '../config/load.ts';
import type { EventJournalPort } from './embedded.ts';
import { ExternalBroker, type ExternalBrokerDeps } from './external.ts';

let broker: TestMosquitto;
let dataDir: string;
const started: ExternalBroker[] = [];
const devices: MqttClient[] = [];

beforeAll(async () => {
  broker = await startTestMosquitto();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'gw-external-'));
});

afterEach(async () => {
  for (const d of devices.splice(0)) await d.endAsync().catch(() => {});
  for (const b of started.splice(0)) await b.stop().catch(() => {});
});

afterAll(async () => {
  await broker?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function captureLogger() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const warnings = (msg: string) => lines.filter((l) => l.level === 40 && l.msg.startsWith(msg)).length;
  return { logger, lines, warnings };
}

function node(nodeId: string, opts: Partial<ExternalBrokerDeps> & { url?: string } = {}): ExternalBroker {
  const mqttCfg = loadConfig({ cwd: ROOT, env: { GRIDWATCH_DATA_DIR: dataDir } }).mqtt;
  const b = new ExternalBroker({
    config: { ...mqttCfg, url: opts.url ?? broker.url },
    nodeId,
    logger: opts.logger ?? pino({ level: 'silent' }),
    connectTimeoutMs: 10_000,
    // a small in-flight window: five unacknowledged messages and the broker sends this session nothing more
    receiveMaximum: 5,
    ...opts,
  });
  started.push(b);
  return b;
}

async function device(id: string): Promise<MqttClient> {
  const d = await mqtt.connectAsync(broker.url, { clientId: id, reconnectPeriod: 0 });
  devices.push(d);
  return d;
}

/** A journal that fails its first `failures` appends (a short Redis outage), then stores. */
function flakyJournal(failures: number, delayMs = 0) {
  const stored: string[] = [];
  let calls = 0;
  const journal: EventJournalPort = {
    append: async (_deviceId, payload) => {
      calls++;
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      if (calls <= failures) throw new Error('redis unavailable');
      stored.push(payload.toString());
    },
  };
  return { journal, stored, calls: () => calls };
}

const events = (n: number, prefix = 'e') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('ExternalBroker with mosquitto', () => {
  it('does not acknowledge an event it could not journal, reconnects, and gets it again', async () => {
    const { logger, warnings } = captureLogger();
    const gw = node('ext-journal', { logger });
    const j = flakyJournal(5);
    gw.setEventJournal(j.journal);
    const handled: string[] = [];
    gw.onMessage((_id, kind, payload) => {
      if (kind === 'event') handled.push(payload.toString());
    });
    await gw.start();
    const d = await device('sos-ext-1');
    const sent = events(30);
    for (const e of sent) await d.publishAsync('gridwatch/sos-ext-1/event', e, { qos: 1 });
    // every event journalled exactly once in the end (the failed attempts were redelivered, not lost or doubled)
    await waitFor('every event journalled', async () => j.stored.length >= sent.length, 30_000);
    expect([...j.stored].sort()).toEqual([...sent].sort());
    // handed to ingest once each: a failed attempt is processed at once, its redelivery only journalled
    expect([...handled].sort()).toEqual([...sent].sort());
    // and acknowledged: nothing comes back once the broker has had its PUBACKs
    const calls = j.calls();
    await new Promise((r) => setTimeout(r, 1500));
    expect(j.calls()).toBe(calls);
    expect(gw.ready).toBe(true);
    // five failures, one warning (rate-limited)
    expect(warnings('mqtt: event not journalled; processed but not acknowledged')).toBe(1);
  }, 60_000);

  it('takes again what arrived before ingest was attached', async () => {
    const gw = node('ext-early');
    gw.setEventJournal(flakyJournal(0).journal);
    await gw.start();
    const d = await device('sos-ext-2');
    const sent = events(10, 'early');
    for (const e of sent) await d.publishAsync('gridwatch/sos-ext-2/event', e, { qos: 1 });
    await new Promise((r) => setTimeout(r, 300));
    const handled = new Set<string>();
    gw.onMessage((_id, kind, payload) => {
      if (kind === 'event') handled.add(payload.toString());
    });
    await waitFor('every event handled', async () => handled.size === sent.length, 30_000);
    expect(handled).toEqual(new Set(sent));
  }, 60_000);

  it('stop() hands over nothing lost: what the broker had queued for the stopping node is still processed', async () => {
    const slow = node('ext-slow');
    const fast = node('ext-fast');
    const got: string[] = [];
    const by = { slow: 0, fast: 0 };
    const take = (who: 'slow' | 'fast') => (_id: string, kind: string, payload: Buffer) => {
      if (kind !== 'event') return;
      got.push(payload.toString());
      by[who]++;
    };
    // the slow node journals at ~100 events/s with 5 in flight, so the broker queues most of its share
    slow.setEventJournal(flakyJournal(0, 10).journal);
    fast.setEventJournal(flakyJournal(0).journal);
    slow.onMessage(take('slow'));
    fast.onMessage(take('fast'));
    await slow.start();
    await fast.start();
    const d = await device('sos-ext-3');
    const sent = events(200, 'drain');
    await Promise.all(sent.map((e) => d.publishAsync('gridwatch/sos-ext-3/event', e, { qos: 1 })));
    const atStop = { ...by };
    await slow.stop();
    const slowAtEnd = by.slow;
    process.stdout.write(`[external] at stop() ${JSON.stringify(atStop)}, after it ${JSON.stringify(by)}\n`);
    await waitFor('every event processed by one node or the other', async () => got.length >= sent.length, 10_000);
    expect([...got].sort()).toEqual([...sent].sort());
    // and the stopped node left the group (its session ended): what comes next all goes to the other node
    const after = events(20, 'after');
    await Promise.all(after.map((e) => d.publishAsync('gridwatch/sos-ext-3/event', e, { qos: 1 })));
    await waitFor('the rest processed by the other node', async () => got.length >= sent.length + after.length, 5_000);
    expect(by.slow).toBe(slowAtEnd);
    expect([...got].sort()).toEqual([...sent, ...after].sort());
  }, 60_000);

  it('stop() is bounded when the broker stops answering', async () => {
    const gw = node('ext-frozen');
    gw.onMessage(() => {});
    await gw.start();
    const pid = broker.pid!;
    process.kill(pid, 'SIGSTOP');
    let timer: NodeJS.Timeout | undefined;
    try {
      const t0 = Date.now();
      const stopped = await Promise.race([
        gw.stop().then(() => true),
        new Promise<false>((r) => {
          timer = setTimeout(() => r(false), 10_000);
        }),
      ]);
      expect(stopped).toBe(true);
      expect(Date.now() - t0).toBeLessThan(6_000);
    } finally {
      clearTimeout(timer);
      process.kill(pid, 'SIGCONT');
    }
  }, 30_000);

  it('start() waits across a reconnect when the link drops before the SUBACK', async () => {
    // a proxy that cuts the first connection when the client sends its SUBSCRIBE
    let connections = 0;
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((c) => {
      const first = ++connections === 1;
      const up = net.connect(broker.port, '127.0.0.1');
      sockets.add(c).add(up);
      up.on('data', (b) => c.write(b));
      c.on('data', (b) => {
        if (first && (b[0]! & 0xf0) === 0x80) {
          c.destroy();
          up.destroy();
        } else up.write(b);
      });
      const close = () => {
        c.destroy();
        up.destroy();
      };
      c.on('close', close).on('error', close);
      up.on('close', close).on('error', close);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as net.AddressInfo).port;
    try {
      const gw = node('ext-proxy', { url: `mqtt://127.0.0.1:${port}`, connectTimeoutMs: 8_000 });
      gw.onMessage(() => {});
      await gw.start();
      expect(connections).toBeGreaterThanOrEqual(2);
      expect(gw.ready).toBe(true);
      await gw.stop();
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  }, 30_000);
});
