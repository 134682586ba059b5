/**
 * From a device's MQTT message to a stored alert on a real node: SOS, a repeat, a fall cancelled by the wearer,
 * and a drill device's alert kept apart from a real one.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

let node: TestNode;
let admin: string;
let secrets: { deviceId: string; model: string; secret: string; householdId?: string }[];

beforeAll(async () => {
  node = await startNode();
  admin = await node.login('admin', ADMIN_PASSWORD);
  secrets = JSON.parse(readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8')).deviceSecrets;
});
afterAll(async () => node?.stop());

async function publish(deviceId: string, kind: 'event' | 'telemetry', payload: object): Promise<void> {
  const d = secrets.find((s) => s.deviceId === deviceId)!;
  const c = await mqtt.connectAsync(node.mqttUrl, {
    clientId: d.deviceId,
    username: d.deviceId,
    password: d.secret,
    reconnectPeriod: 0,
  });
  await c.publishAsync(`gridwatch/${d.deviceId}/${kind}`, JSON.stringify(payload), { qos: 1 });
  await c.endAsync();
}

async function alerts(query: string) {
  return (await node.api('GET', `/api/v1/alerts?${query}&limit=1000`, undefined, admin)).body.items as {
    id: string;
    type: string;
    status: string;
    severity: string;
    count: number;
    householdId?: string;
    drill: boolean;
  }[];
}

describe('alerts from devices', () => {
  it('an SOS over MQTT opens one critical alert for the household; a re-sent id is not counted, a new one is', async () => {
    const button = secrets.find((s) => s.model === 'native-emergency-button' && s.householdId)!;
    await publish(button.deviceId, 'event', { type: 'sos', id: 'sos-1' });
    const [sos] = await waitFor('the SOS alert', async () => {
      const a = await alerts(`type=sos&householdId=${button.householdId}`);
      return a.length === 1 ? a : undefined;
    });
    expect(sos).toMatchObject({
      severity: 'critical',
      status: 'open',
      count: 1,
      householdId: button.householdId,
      drill: false,
    });
    await publish(button.deviceId, 'event', { type: 'sos', id: 'sos-1' });
    await publish(button.deviceId, 'event', { type: 'sos', id: 'sos-2' });
    await waitFor(
      'the repeat counted',
      async () => (await alerts(`type=sos&householdId=${button.householdId}`))[0]?.count === 2,
    );
    expect(await alerts(`type=sos&householdId=${button.householdId}`)).toHaveLength(1);
  });

  it('a fall cancelled by the wearer within the window ends cancelled', async () => {
    const band = secrets.find((s) => s.model === 'native-wristband' && s.householdId)!;
    await publish(band.deviceId, 'event', { type: 'fall', id: 'f-1' });
    await waitFor('the fall alert', async () => (await alerts('type=fall&status=open')).length === 1);
    await publish(band.deviceId, 'event', { type: 'cancel', id: 'c-1' });
    await waitFor('cancelled', async () => (await alerts('type=fall&status=cancelled')).length === 1);
    const [fall] = await alerts('type=fall');
    const full = (await node.api('GET', `/api/v1/alerts/${fall!.id}`, undefined, admin)).body;
    expect(full.timeline.map((t: { action: string }) => t.action)).toEqual(['opened', 'cancelled']);
  });

  it('a drill device opens a drill alert, apart from a real alert of the same household', async () => {
    const drill = secrets.find((s) => s.deviceId.startsWith('drill-') && s.householdId);
    if (!drill) throw new Error('the sample community has no drill device in a household');
    const real = secrets.find((s) => s.householdId === drill.householdId && s.model === 'native-emergency-button');
    await publish(drill.deviceId, 'event', { type: 'sos', id: 'drill-sos-1' });
    if (real) await publish(real.deviceId, 'event', { type: 'sos', id: 'real-sos-9' });
    const list = await waitFor('both alerts', async () => {
      const a = await alerts(`type=sos&householdId=${drill.householdId}`);
      return a.length === (real ? 2 : 1) ? a : undefined;
    });
    expect(list.filter((a) => a.drill)).toHaveLength(1);
    if (real) expect(list.filter((a) => !a.drill)).toHaveLength(1);
  });
});

describe('alerts to phones (outbox)', () => {
  it('an SOS from a lone-elderly home reaches the grid worker and the grid leader by SMS, recorded as notifications', async () => {
    const button = secrets.find(
      (s) => s.model === 'native-emergency-button' && s.householdId?.startsWith('h-limin-02'),
    )!;
    await publish(button.deviceId, 'event', { type: 'sos', id: 'sos-sms-1' });
    const [sos] = await waitFor('the SOS alert', async () => {
      const a = await alerts(`type=sos&householdId=${button.householdId}`);
      return a.length === 1 ? a : undefined;
    });
    const sent = await waitFor('two notifications queued', async () => {
      const n = (await node.api('GET', `/api/v1/notifications?alertId=${sos!.id}`, undefined, admin)).body.items;
      return n.length >= 2 && n.every((x: { status: string }) => x.status !== 'pending') ? n : undefined;
    });
    expect(sent.map((n: { role?: string; transport: string }) => n.transport)).toEqual(['outbox', 'outbox']);
    const outbox = (node.system.sms as import('../../src/notify/sms/outbox.ts').OutboxTransport).messages();
    const bodies = outbox.filter((m) => sent.some((n: { id: string }) => n.id === m.notificationId)).map((m) => m.body);
    expect(bodies).toHaveLength(2);
    expect(bodies[0]).toMatch(/紧急呼叫/);
    expect(bodies[0]).not.toMatch(/h-limin|http/);
  });
});
