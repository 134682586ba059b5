/**
 * Fault 1 (issue 8): SIGKILL of the service during a stream of 10,000 QoS 1 events, each with its own id → restart →
 * every event whose PUBACK the publisher received produced its alert, once.
 *
 * The service runs as a real child process (`src/main.ts`, what `npm start` runs) on a Redis of its own that
 * survives the kill, and SQLite in a data dir kept across the restart. 20 emergency buttons in 20 homes publish
 * 500 SOS each over real MQTT (QoS 1, ten in flight per button); the publishers keep their own log of what was
 * acknowledged. Once 3,000 are acknowledged the service is SIGKILLed and started again on the same ports; the
 * buttons reconnect and go on. At the end, the alert store must hold every acknowledged event id exactly once
 * (`alert_event`, primary key on device + event id), and the SOS alerts' counts must add up to exactly that many
 * events: nothing acknowledged lost, nothing counted twice.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/lifecycle/redis-server.ts';
import { startTestRedis } from '../support/redis.ts';
import { type ServiceProcess, startServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/system.ts';

const BUTTONS = 20;
const PER_BUTTON = 500;
const IN_FLIGHT = 10;
const KILL_AFTER_ACKS = 3_000;

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let dataDir: string;
let mqttPort: number;
let service: ServiceProcess | undefined;
const clients: MqttClient[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'gw-fault-kill-'));
  mqttPort = await freePort();
  service = await startServiceProcess({
    dataDir,
    // the same MQTT port after the restart: the buttons reconnect to it
    env: {
      MQTT_PORT: String(mqttPort),
      REDIS_URL: redis.url,
      // 500 SOS events a second per button: far over the per-device limit, on purpose
      GRIDWATCH__ingest__rateLimit__perSecond: '0',
    },
  });
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  await service?.stop();
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('fault 1: SIGKILL during a stream of 10,000 QoS 1 events', () => {
  it('every acknowledged event yields its alert exactly once after the restart', async () => {
    const api = service!.api;
    const token = await service!.login();
    const homes = await api('GET', `/api/v1/households?limit=${BUTTONS}`, undefined, token);
    expect(homes.status).toBe(200);
    const householdIds = (homes.body.items as { id: string }[]).map((h) => h.id).slice(0, BUTTONS);
    expect(householdIds).toHaveLength(BUTTONS);
    const buttons: { id: string; secret: string }[] = [];
    for (const [i, householdId] of householdIds.entries()) {
      const id = `fault-btn-${i}`;
      const r = await api('POST', '/api/v1/devices', { id, model: 'native-emergency-button', householdId }, token);
      expect(r.status).toBe(201);
      buttons.push({ id, secret: r.body.secret as string });
    }

    const acked = new Set<string>();
    let killedAt: number | undefined;
    let restarted: Promise<void> | undefined;
    const killAndRestart = () => {
      killedAt = acked.size;
      restarted = service!.kill().then(() => service!.restart());
    };

    const streams = buttons.map(async (b) => {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
        clientId: b.id,
        username: b.id,
        password: b.secret,
        reconnectPeriod: 250,
        connectTimeout: 5_000,
        clean: false,
        protocolVersion: 4,
      });
      clients.push(c);
      c.on('error', () => {});
      const pending = new Set<Promise<void>>();
      for (let n = 0; n < PER_BUTTON; n++) {
        const id = `${b.id}-${n}`;
        const p = c
          .publishAsync(`gridwatch/${b.id}/event`, JSON.stringify({ type: 'sos', id }), { qos: 1 })
          .then(
            () => {
              acked.add(`${b.id}/${id}`);
              if (killedAt === undefined && acked.size >= KILL_AFTER_ACKS) killAndRestart();
            },
            () => {},
          )
          .finally(() => pending.delete(p));
        pending.add(p);
        if (pending.size >= IN_FLIGHT) await Promise.race(pending);
      }
      await Promise.all(pending);
    });
    await Promise.race([
      Promise.all(streams),
      new Promise((_, reject) => setTimeout(() => reject(new Error('the stream did not finish in 150 s')), 150_000)),
    ]);
    await restarted;
    expect(killedAt).toBeDefined();

    // every acknowledged id in the alert store, each once; wait for the tail to be processed
    const db = new Sqlite(path.join(dataDir, 'gridwatch.sqlite'));
    try {
      const counted = () =>
        new Set(
          (
            db.prepare('select device_id, event_id from alert_event').all() as { device_id: string; event_id: string }[]
          ).map((r) => `${r.device_id}/${r.event_id}`),
        );
      await waitFor(
        'every acknowledged event in the alert store',
        async () => {
          const have = counted();
          return [...acked].every((k) => have.has(k));
        },
        60_000,
      ).catch(() => {});
      const have = counted();
      const lost = [...acked].filter((k) => !have.has(k));
      const rows = db.prepare('select count(*) as n from alert_event').get() as { n: number };
      const counts = db
        .prepare(
          `select count(*) as alerts, sum(count) as events from alert where type = 'sos' and household_id in (${householdIds.map(() => '?').join(',')})`,
        )
        .get(...householdIds) as { alerts: number; events: number };
      const replayed = /"events":(\d+),"msg":"ingest journal/.exec(service!.log())?.[1] ?? '0';
      console.log(
        `fault 1: ${BUTTONS * PER_BUTTON} QoS 1 SOS published by ${BUTTONS} buttons; SIGKILL after ${killedAt} acknowledged; ` +
          `${acked.size} acknowledged in all, ${rows.n} counted into ${counts.alerts} alerts (sum of counts ${counts.events}), ` +
          `${replayed} replayed from the journal at restart; lost: ${lost.length}`,
      );
      expect(lost).toEqual([]);
      // nothing counted twice: the alerts' counts add up to the events counted, one row per event id
      expect(counts.events).toBe(rows.n);
      expect(rows.n).toBeGreaterThanOrEqual(acked.size);
      expect(rows.n).toBeLessThanOrEqual(BUTTONS * PER_BUTTON);
    } finally {
      db.close();
    }
  }, 300_000);
});
