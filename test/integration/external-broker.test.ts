/**
 * External-broker mode with two ingest nodes: Debian's real mosquitto, two GridWatch nodes with MQTT_URL set
 * sharing one Redis and one PostgreSQL, each taking part in the shared subscription `$share/gridwatch/gridwatch/+/+`.
 *
 * - Each message is processed once: the readings of one device are split between the two nodes' stores, and
 *   together they hold every reading exactly once.
 * - Rule state is shared (rules/feed.ts): three e-bike cut-offs at one stairwell are split by the broker between
 *   the nodes, yet make one `ebike_charging_repeated` alert — each node alone would have seen one or two.
 * - The rules owner stops; the other node takes the lease, restores the saved state, replays the feed, and the
 *   next cut-off still counts the two before it.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestMosquitto, type TestMosquitto } from '../support/mosquitto.ts';
import { startTestPostgres, type TestPostgres } from '../support/postgres.ts';
import { startTestRedis } from '../support/redis.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

let broker: TestMosquitto;
let pg: TestPostgres;
let redis: Awaited<ReturnType<typeof startTestRedis>>;
const nodes: TestNode[] = [];
let device: MqttClient | undefined;

const CUTOFF = 'ec-limin-01-1';

async function startExternalNode(): Promise<TestNode> {
  const node = await startNode({
    MQTT_URL: broker.url,
    REDIS_URL: redis.url,
    DATABASE_URL: pg.url,
    // a stopped owner hands over at once (it releases the lease); a crashed one after this
    GRIDWATCH__placement__leaseMs: '3000',
  });
  nodes.push(node);
  return node;
}

beforeAll(async () => {
  [broker, pg, redis] = await Promise.all([startTestMosquitto(), startTestPostgres(), startTestRedis()]);
}, 60_000);

afterAll(async () => {
  await device?.endAsync();
  for (const n of nodes.reverse()) await n.stop().catch(() => {});
  await Promise.all([broker?.stop(), pg?.stop(), redis?.stop()]);
});

async function repeatedAlerts(node: TestNode, token: string): Promise<{ count: number; id: string }[]> {
  const r = await node.api('GET', '/api/v1/alerts?type=ebike_charging_repeated', undefined, token);
  return r.body.items;
}

describe('external broker (mosquitto), two ingest nodes', () => {
  it('splits the traffic, processes each message once, and runs the rules on one owner that can change', async () => {
    const a = await startExternalNode();
    const b = await startExternalNode();
    expect(a.system.broker).toBeUndefined();
    expect(a.mqttUrl).toBe(broker.url);
    // exactly one owner of the rules
    const owners = () => nodes.filter((n) => n.system.rulesOwnership?.isOwner);
    expect(owners()).toHaveLength(1);
    const token = await a.login('admin', ADMIN_PASSWORD);
    expect((await a.api('GET', '/readyz')).status).toBe(200);
    expect((await b.api('GET', '/readyz')).status).toBe(200);

    device = await mqtt.connectAsync(broker.url, { clientId: CUTOFF, reconnectPeriod: 0 });
    const n = 200;
    const t0 = Date.now() - 3_600_000;
    for (let i = 0; i < n; i++) {
      await device.publishAsync(
        `gridwatch/${CUTOFF}/telemetry`,
        JSON.stringify({ power_w: i, temperature_c: 20, ts: t0 + i }),
        { qos: 1 },
      );
    }
    const stored = async (node: TestNode) => {
      await node.system.timeseries.flush();
      const points = await node.system.timeseries.query({ deviceId: CUTOFF, field: 'power_w', from: t0, to: t0 + n });
      return points.map((p) => p.value);
    };
    const both = await waitFor('every reading stored once', async () => {
      const [onA, onB] = [await stored(a), await stored(b)];
      return onA.length + onB.length >= n ? { onA, onB } : undefined;
    });
    process.stdout.write(
      `[external-broker] ${n} readings: node A stored ${both.onA.length}, node B ${both.onB.length}\n`,
    );
    // split between the nodes, nothing twice, nothing missing
    expect(both.onA.length).toBeGreaterThan(0);
    expect(both.onB.length).toBeGreaterThan(0);
    expect([...both.onA, ...both.onB].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));

    // the device's liveness reaches the owner's status tracker from both nodes' messages
    const owner = owners()[0]!;
    await waitFor('device online at the owner', async () => owner.system.status?.get(CUTOFF)?.status === 'online');

    // two cut-offs: one minor alert, no repeat yet
    const cutoff = (i: number) =>
      device!.publishAsync(
        `gridwatch/${CUTOFF}/event`,
        JSON.stringify({ type: 'ebike_charging_cutoff', id: `cut-${i}`, power_w: 230, ts: Date.now() }),
        { qos: 1 },
      );
    await cutoff(1);
    await cutoff(2);
    await waitFor('cut-offs counted', async () => {
      const r = await a.api('GET', '/api/v1/alerts?type=ebike_charging', undefined, token);
      return r.body.items[0]?.count === 2;
    });
    expect(await repeatedAlerts(a, token)).toHaveLength(0);

    // the owner stops; the other node takes over with the state (two cut-offs) and the feed after it
    const other = owner === a ? b : a;
    await owner.stop();
    nodes.splice(nodes.indexOf(owner), 1);
    await waitFor('the other node owns the rules', async () => other.system.rulesOwnership?.isOwner === true, 10_000);
    const token2 = await other.login('admin', ADMIN_PASSWORD);
    await cutoff(3);
    const repeated = await waitFor('one repeated-charging alert', async () => {
      const items = await repeatedAlerts(other, token2);
      return items.length > 0 ? items : undefined;
    });
    expect(repeated).toHaveLength(1);
    const charging = await waitFor('the third cut-off counted into the same alert', async () => {
      const items = (await other.api('GET', '/api/v1/alerts?type=ebike_charging', undefined, token2)).body.items;
      return items[0]?.count === 3 ? items : undefined;
    });
    expect(charging).toHaveLength(1);
  }, 120_000);
});
