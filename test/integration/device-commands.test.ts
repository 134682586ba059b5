/**
 * Commands to devices on a real node, with real MQTT clients acting as the devices: a grid worker restores power
 * on an e-bike cut-off and the device answers with `cmd_ack`; a vendor device answers in canonical form; a command
 * the model does not have is refused and nothing is published; staff outside the device's grid, or in a role that
 * may not command, are refused; only the addressed device can answer; a command without an answer times out.
 * And the device page: battery, commands, and the latest rejected messages.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

let node: TestNode;
let admin: string;
let devices: { deviceId: string; model: string; secret: string; householdId?: string }[];
let passwords: Map<string, string>;
const tokens = new Map<string, string>();
const clients: MqttClient[] = [];

const CUTOFF = 'ec-limin-01-1'; // native-ebike-cutoff, grid g-limin-01
const SILENT_CUTOFF = 'ec-limin-01-2'; // native-ebike-cutoff, grid g-limin-01, never answers
const VOLT = 'ec-limin-02-1'; // volt-cb2 (vendor format), grid g-limin-01

interface Received {
  topic: string;
  payload: { id: string; name: string; args: Record<string, unknown> };
  qos: number;
}

/** A device on MQTT: its cmd topic subscribed, what it received kept. */
async function device(
  deviceId: string,
  answer?: (cmd: Received['payload']) => Record<string, unknown> | undefined,
): Promise<{ client: MqttClient; received: Received[]; publish: (kind: string, payload: unknown) => Promise<void> }> {
  const d = devices.find((x) => x.deviceId === deviceId);
  if (!d) throw new Error(`no demo device ${deviceId}`);
  const client = await mqtt.connectAsync(node.mqttUrl, {
    clientId: deviceId,
    username: deviceId,
    password: d.secret,
    reconnectPeriod: 0,
  });
  clients.push(client);
  const received: Received[] = [];
  const publish = async (kind: string, payload: unknown) => {
    await client.publishAsync(
      `gridwatch/${deviceId}/${kind}`,
      typeof payload === 'string' ? payload : JSON.stringify(payload),
      { qos: 1 },
    );
  };
  client.on('message', (topic, payload, packet) => {
    const cmd = JSON.parse(payload.toString()) as Received['payload'];
    received.push({ topic, payload: cmd, qos: packet.qos });
    const ack = answer?.(cmd);
    if (ack) void publish('event', ack);
  });
  await client.subscribeAsync(`gridwatch/${deviceId}/cmd`, { qos: 1 });
  return { client, received, publish };
}

async function as(username: string): Promise<string> {
  let t = tokens.get(username);
  if (!t) {
    t = await node.login(username, passwords.get(username)!);
    tokens.set(username, t);
  }
  return t;
}

async function commandsOf(deviceId: string, token = admin) {
  const r = await node.api('GET', `/api/v1/devices/${deviceId}/commands`, undefined, token);
  expect(r.status).toBe(200);
  return r.body.items as {
    id: string;
    name: string;
    status: string;
    answer?: string;
    answeredAt?: string;
    by: string;
    args: object;
  }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  node = await startNode();
  admin = await node.login('admin', ADMIN_PASSWORD);
  const secrets = JSON.parse(readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8'));
  devices = secrets.deviceSecrets;
  passwords = new Map(
    (secrets.staffPasswords as { username: string; password: string }[]).map((p) => [p.username, p.password]),
  );
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync().catch(() => undefined)));
  await node?.stop();
});

describe('commands to devices', () => {
  it('a grid worker restores power; the cut-off gets {id, name, args} at QoS 1 and answers with cmd_ack', async () => {
    const dev = await device(CUTOFF, (cmd) => ({
      type: 'cmd_ack',
      id: `ack-${cmd.id}`,
      ref: cmd.id,
      ok: true,
      message: 'power restored',
    }));
    const gw = await as('gw.limin.01');
    const r = await node.api('POST', `/api/v1/devices/${CUTOFF}/commands`, { name: 'restore_power' }, gw);
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({
      deviceId: CUTOFF,
      name: 'restore_power',
      args: {},
      by: 'st-gw.limin.01',
      status: 'sent',
    });
    const [got] = await waitFor('the command at the device', async () =>
      dev.received.length > 0 ? dev.received : undefined,
    );
    expect(got).toEqual({
      topic: `gridwatch/${CUTOFF}/cmd`,
      payload: { id: r.body.id, name: 'restore_power', args: {} },
      qos: 1,
    });
    const [cmd] = await waitFor('the answer recorded', async () => {
      const list = await commandsOf(CUTOFF, gw);
      return list[0]?.status === 'acknowledged' ? list : undefined;
    });
    expect(cmd).toMatchObject({ id: r.body.id, status: 'acknowledged', answer: 'power restored' });
    expect(Date.parse(cmd!.answeredAt!)).toBeGreaterThan(0);

    // with args, sent by the director; newest first in the list
    const dir = await as('dir.limin');
    const second = await node.api(
      'POST',
      `/api/v1/devices/${CUTOFF}/commands`,
      { name: 'cut_power', args: { channel: 1 } },
      dir,
    );
    expect(second.status).toBe(202);
    await waitFor('the second command at the device', async () => dev.received.length === 2);
    expect(dev.received[1]!.payload).toEqual({ id: second.body.id, name: 'cut_power', args: { channel: 1 } });
    const list = await waitFor('both answered', async () => {
      const l = await commandsOf(CUTOFF);
      return l.length === 2 && l.every((c) => c.status === 'acknowledged') ? l : undefined;
    });
    expect(list.map((c) => [c.name, c.by])).toEqual([
      ['cut_power', 'st-dir.limin'],
      ['restore_power', 'st-gw.limin.01'],
    ]);
  });

  it('a vendor-format device answers in canonical form; a refusal is `failed` with its message', async () => {
    await device(VOLT, (cmd) => ({ type: 'cmd_ack', ref: cmd.id, ok: false, message: 'relay stuck' }));
    const r = await node.api('POST', `/api/v1/devices/${VOLT}/commands`, { name: 'restore_power' }, admin);
    expect(r.status).toBe(202);
    const [cmd] = await waitFor('the refusal recorded', async () => {
      const list = await commandsOf(VOLT);
      return list[0]?.status === 'failed' ? list : undefined;
    });
    expect(cmd).toMatchObject({ id: r.body.id, status: 'failed', answer: 'relay stuck' });
    // the answer is not a rejected message of the vendor decoder
    expect((await node.api('GET', `/api/v1/devices/${VOLT}/rejects`, undefined, admin)).body.items).toEqual([]);
  });

  it('a command the model does not have is a 400 and nothing is published or recorded', async () => {
    const dev = await device(SILENT_CUTOFF);
    const before = (await commandsOf(SILENT_CUTOFF)).length;
    const r = await node.api('POST', `/api/v1/devices/${SILENT_CUTOFF}/commands`, { name: 'open_door' }, admin);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ error: 'unknown_command' });
    expect(r.body.message).toMatch(/restore_power/);
    const bad = await node.api('POST', `/api/v1/devices/${SILENT_CUTOFF}/commands`, { nme: 'restore_power' }, admin);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('bad_request');
    const missing = await node.api('POST', '/api/v1/devices/no-such-device/commands', { name: 'x' }, admin);
    expect(missing.status).toBe(404);
    await sleep(500);
    expect(dev.received).toEqual([]);
    expect(await commandsOf(SILENT_CUTOFF)).toHaveLength(before);
  });

  it('staff outside the device’s grid, and roles that may not command, get 403 and nothing is sent', async () => {
    const dev = await device('da-limin-01'); // native-door-access, grid g-limin-01
    for (const username of ['gw.limin.02', 'cm.limin', 'eval.heping', 'bl.limin']) {
      const r = await node.api(
        'POST',
        '/api/v1/devices/da-limin-01/commands',
        { name: 'open_door' },
        await as(username),
      );
      expect(r.status, username).toBe(403);
      expect(r.body.error, username).toBe('forbidden');
    }
    // outside the grid: the list is refused too; a committee member (community-wide) may read it
    const gw2 = await as('gw.limin.02');
    expect((await node.api('GET', '/api/v1/devices/da-limin-01/commands', undefined, gw2)).status).toBe(403);
    expect(
      (await node.api('GET', '/api/v1/devices/da-limin-01/commands', undefined, await as('cm.limin'))).status,
    ).toBe(200);
    // the grid leader of both grids may open the door
    const ok = await node.api(
      'POST',
      '/api/v1/devices/da-limin-01/commands',
      { name: 'open_door' },
      await as('gl.limin.1'),
    );
    expect(ok.status).toBe(202);
    await waitFor('only the allowed command arrived', async () => dev.received.length === 1);
    await sleep(300);
    expect(dev.received.map((c) => c.payload.id)).toEqual([ok.body.id]);
  });

  it('only the device the command was sent to can answer it; unknown refs are ignored', async () => {
    const r = await node.api('POST', `/api/v1/devices/${SILENT_CUTOFF}/commands`, { name: 'cut_power' }, admin);
    expect(r.status).toBe(202);
    // another device claims to answer it, and answers a command that does not exist
    const other = await device('ec-limin-03-1');
    await other.publish('event', { type: 'cmd_ack', ref: r.body.id, ok: true });
    await other.publish('event', { type: 'cmd_ack', ref: 'no-such-command', ok: true });
    await sleep(500);
    const [cmd] = await commandsOf(SILENT_CUTOFF);
    expect(cmd).toMatchObject({ id: r.body.id, status: 'sent' });
    expect(cmd!.answer).toBeUndefined();
    // a malformed answer is a rejected message like any other, shown on the device page
    await other.publish('event', { type: 'cmd_ack', ref: r.body.id });
    const rejects = await waitFor('the malformed answer rejected', async () => {
      const items = (await node.api('GET', '/api/v1/devices/ec-limin-03-1/rejects', undefined, admin)).body.items;
      return items.length > 0 ? items : undefined;
    });
    expect(rejects[0]).toMatchObject({ kind: 'event', reason: 'schema', message: expect.stringMatching(/ok/) });
  });

  it('a command without an answer within 60 s is `timeout`; a later answer does not change it', async () => {
    const dev = await device('ec-limin-03-2');
    const r = await node.api('POST', '/api/v1/devices/ec-limin-03-2/commands', { name: 'restore_power' }, admin);
    expect(r.status).toBe(202);
    await waitFor('the command at the device', async () => dev.received.length === 1);
    expect((await commandsOf('ec-limin-03-2'))[0]?.status).toBe('sent');
    // 61 seconds pass (the command's sent_at moves back instead of the test waiting a minute)
    await sql`update device_command set sent_at = ${Date.now() - 61_000} where id = ${r.body.id}`.execute(
      node.system.database.db,
    );
    const [cmd] = await commandsOf('ec-limin-03-2');
    expect(cmd).toMatchObject({ id: r.body.id, status: 'timeout' });
    await dev.publish('event', { type: 'cmd_ack', ref: r.body.id, ok: true });
    await sleep(500);
    expect((await commandsOf('ec-limin-03-2'))[0]).toMatchObject({ status: 'timeout' });
    expect((await commandsOf('ec-limin-03-2'))[0]?.answer).toBeUndefined();
  });
});

describe('the device page', () => {
  it('shows status, last seen, the battery reading and the commands the model accepts', async () => {
    const pir = devices.find((d) => d.model === 'native-motion' && d.householdId)!;
    const dev = await device(pir.deviceId);
    await dev.publish('telemetry', { motion: true, battery_pct: 77 });
    const page = await waitFor('the reading', async () => {
      const r = await node.api('GET', `/api/v1/devices/${pir.deviceId}`, undefined, admin);
      return r.body.battery ? r.body : undefined;
    });
    expect(page).toMatchObject({ id: pir.deviceId, status: 'online', battery: { pct: 77 }, commands: [] });
    expect(Date.parse(page.lastSeen)).toBeGreaterThan(Date.now() - 60_000);
    expect(Date.parse(page.battery.ts)).toBeGreaterThan(Date.now() - 60_000);
    const cutoff = await node.api('GET', `/api/v1/devices/${CUTOFF}`, undefined, admin);
    expect(cutoff.body.commands).toEqual(['restore_power', 'cut_power']);
    expect(cutoff.body.battery).toBeUndefined();
  });

  it('lists the device’s latest rejected messages, newest first, at most 20', async () => {
    const meter = devices.find((d) => d.model === 'native-water-meter' && d.householdId)!;
    const dev = await device(meter.deviceId);
    await dev.publish('telemetry', '{not json');
    await dev.publish('telemetry', { water_total_l: -5 });
    await dev.publish('event', { type: 'earthquake' });
    const items = await waitFor('three rejects', async () => {
      const r = await node.api('GET', `/api/v1/devices/${meter.deviceId}/rejects`, undefined, admin);
      return r.body.items.length === 3 ? r.body.items : undefined;
    });
    expect(items.map((i: { kind: string; reason: string }) => [i.kind, i.reason])).toEqual([
      ['event', 'unknown_event'],
      ['telemetry', 'out_of_range'],
      ['telemetry', 'bad_json'],
    ]);
    expect(items[0]).toMatchObject({
      topic: `gridwatch/${meter.deviceId}/event`,
      message: expect.stringContaining('earthquake'),
    });
    expect(Date.parse(items[0].ts)).toBeGreaterThan(Date.now() - 60_000);
    for (let i = 0; i < 25; i++) await dev.publish('telemetry', { water_total_l: -i - 100 });
    const last = await waitFor('20 kept', async () => {
      const r = await node.api('GET', `/api/v1/devices/${meter.deviceId}/rejects`, undefined, admin);
      return r.body.items[0]?.message.includes('-124') ? r.body.items : undefined;
    });
    expect(last).toHaveLength(20);
    expect(last[19].message).toContain('-105');
    // scope: a grid worker of the other grid may not look
    const home = (await node.api('GET', `/api/v1/devices/${meter.deviceId}`, undefined, admin)).body;
    const outsider = home.placement.gridId === 'g-limin-01' ? 'gw.limin.02' : 'gw.limin.01';
    expect(
      (await node.api('GET', `/api/v1/devices/${meter.deviceId}/rejects`, undefined, await as(outsider))).status,
    ).toBe(403);
    expect((await node.api('GET', '/api/v1/devices/nope/rejects', undefined, admin)).status).toBe(404);
  });
});
