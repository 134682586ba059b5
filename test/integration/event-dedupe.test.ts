/**
 * A device re-sends an event with the same id after the service restarted (its QoS 1 retry, or a redelivery):
 * the event is processed once. The dedupe lives in Redis, whose AOF the restart keeps.
 */
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeviceEventRecord } from '../../src/ingest/types.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

let node: TestNode | undefined;
afterAll(async () => node?.stop());

async function sendEvent(n: TestNode, secret: string, payload: object): Promise<void> {
  const c = await mqtt.connectAsync(n.mqttUrl, {
    clientId: 'eb-test-1',
    username: 'eb-test-1',
    password: secret,
    reconnectPeriod: 0,
  });
  await c.publishAsync('gridwatch/eb-test-1/event', JSON.stringify(payload), { qos: 1 });
  await c.endAsync();
}

describe('event dedupe across a restart', () => {
  it('processes a re-sent event id once, before and after the restart, and a new id again', async () => {
    node = await startNode();
    const token = await node.login('admin', ADMIN_PASSWORD);
    const r = await node.api(
      'POST',
      '/api/v1/devices',
      { id: 'eb-test-1', model: 'native-emergency-button', householdId: 'h-limin-01-1-0101' },
      token,
    );
    const secret = r.body.secret as string;

    const seen: DeviceEventRecord[] = [];
    node.system.bus.on('event', (e) => seen.push(e));
    await sendEvent(node, secret, { type: 'sos', id: 'sos-42' });
    await sendEvent(node, secret, { type: 'sos', id: 'sos-42' });
    await waitFor('the first sos', async () => seen.length === 1);

    const { dataDir } = node;
    await node.stop({ keepData: true });
    node = await startNode({}, dataDir);
    const after: DeviceEventRecord[] = [];
    node.system.bus.on('event', (e) => after.push(e));
    await sendEvent(node, secret, { type: 'sos', id: 'sos-42' });
    await sendEvent(node, secret, { type: 'sos', id: 'sos-43' });
    await waitFor('the new sos', async () => after.some((e) => e.event.id === 'sos-43'));
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.map((e) => e.event.id)).toEqual(['sos-42']);
    expect(after.map((e) => e.event.id)).toEqual(['sos-43']);
    const metrics = (await node.api('GET', '/metrics')).body as string;
    expect(metrics).toMatch(/gridwatch_duplicate_events_total 1\b/);
  }, 60_000);
});
