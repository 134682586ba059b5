/**
 * A node on PostgreSQL (DATABASE_URL), as deployed: migrations and seeding at start, sign-in, provisioning, and a
 * device's readings through MQTT. The registry suite covers the query layer on both databases in depth.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../support/postgres.ts';
import { ADMIN_PASSWORD, startNode, type TestNode } from '../support/system.ts';

let pg: TestPostgres;
let node: TestNode | undefined;

beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(async () => {
  await node?.stop();
  await pg?.stop();
});

describe('a node on PostgreSQL', () => {
  it('migrates, seeds, signs in, provisions and ingests; a second start does not seed again', async () => {
    node = await startNode({ DATABASE_URL: pg.url });
    expect(node.system.database.dialect).toBe('postgres');
    const token = await node.login('admin', ADMIN_PASSWORD);
    const households = await node.api('GET', '/api/v1/households?limit=1000', undefined, token);
    expect(households.body.items).toHaveLength(150);

    const r = await node.api(
      'POST',
      '/api/v1/devices',
      { id: 'pg-meter-1', model: 'native-water-meter', householdId: 'h-limin-01-1-0101' },
      token,
    );
    expect(r.status).toBe(201);
    const client = await mqtt.connectAsync(node.mqttUrl, {
      clientId: 'pg-meter-1',
      username: 'pg-meter-1',
      password: r.body.secret,
      reconnectPeriod: 0,
    });
    await client.publishAsync('gridwatch/pg-meter-1/telemetry', JSON.stringify({ water_total_l: 12.5 }), { qos: 1 });
    await client.endAsync();
    await node.system.timeseries.flush();
    const readings = await node.api('GET', '/api/v1/readings?deviceId=pg-meter-1', undefined, token);
    expect(readings.body.items).toEqual([expect.objectContaining({ field: 'water_total_l', value: 12.5 })]);

    // a second node start on the same database (another data dir): nothing seeded twice, the device is known
    await node.stop();
    node = await startNode({ DATABASE_URL: pg.url });
    const token2 = await node.login('admin', ADMIN_PASSWORD);
    expect((await node.api('GET', '/api/v1/households?limit=1000', undefined, token2)).body.items).toHaveLength(150);
    expect((await node.api('GET', '/api/v1/devices/pg-meter-1', undefined, token2)).status).toBe(200);
  }, 90_000);
});
