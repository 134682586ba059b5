/**
 * Issue 4's end-to-end test, every part real except Twilio (its local fake, driven by the real `twilio` client):
 * an SOS published over MQTT (QoS 1) by a wristband in a red-class home reaches the grid worker and the grid leader;
 * nobody acknowledges, so the community director is texted after the (shortened) wait; the grid worker's SMS reply
 * acknowledges the alert, which stops the escalation (the street duty officer is never texted); nobody gets any
 * message twice.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/lifecycle/redis-server.ts';
import { alertCode } from '../../src/notify/templates.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';
import { TwilioFake } from '../support/twilio-fake.ts';

const FROM = '+15005550006';
// minutes: the director after 2 s, the street duty officer after 5 s
const POLICY_FILE = `
escalation:
  policies:
    - name: "urgent (test timings)"
      match: { categories: [resident_safety, fire, security, ebike], severities: [critical] }
      steps:
        - { afterMinutes: 0, to: [grid_worker, grid_leader], channel: sms }
        - { afterMinutes: 0.0334, to: [community_director], channel: sms }
        - { afterMinutes: 0.0834, to: [street_duty_officer], channel: sms }
`;

let node: TestNode;
let fake: TwilioFake;
let admin: string;
let configDir: string;
let staff: { id: string; username: string; phone: string; roles: string[]; coverage: { gridIds: string[] } }[];

beforeAll(async () => {
  fake = await TwilioFake.start();
  configDir = mkdtempSync(path.join(os.tmpdir(), 'gw-e2e-cfg-'));
  writeFileSync(path.join(configDir, 'policies.yaml'), POLICY_FILE);
  const port = await freePort();
  node = await startNode({
    GRIDWATCH_CONFIG: path.join(configDir, 'policies.yaml'),
    HTTP_PORT: String(port),
    TWILIO_ACCOUNT_SID: fake.accountSid,
    TWILIO_AUTH_TOKEN: fake.authToken,
    TWILIO_FROM: FROM,
    TWILIO_API_BASE_URL: fake.url,
    TWILIO_PUBLIC_URL: `http://127.0.0.1:${port}`,
  });
  admin = await node.login('admin', ADMIN_PASSWORD);
  staff = (await node.api('GET', '/api/v1/staff?limit=1000', undefined, admin)).body.items;
}, 60_000);
afterAll(async () => {
  await node?.stop();
  await fake?.close();
  rmSync(configDir, { recursive: true, force: true });
});

describe('SOS to SMS, escalation, acknowledgement by SMS reply', () => {
  it('grid worker and leader at once, the director after the wait, a reply stops it, nothing twice', async () => {
    const secrets: { deviceId: string; model: string; secret: string; householdId?: string }[] = JSON.parse(
      readFileSync(path.join(node.dataDir, 'demo-secrets.json'), 'utf8'),
    ).deviceSecrets;
    let band: (typeof secrets)[number] | undefined;
    let gridId = '';
    for (const s of secrets.filter((x) => x.model === 'native-wristband' && x.householdId)) {
      const h = await node.system.registry.getHousehold(s.householdId!);
      if (h?.colour === 'red') {
        band = s;
        gridId = h.gridId;
        break;
      }
    }
    expect(band, 'a wristband in a red-class home in the sample community').toBeDefined();
    const phonesOf = (role: string, grid?: string) =>
      staff.filter((s) => s.roles.includes(role) && (!grid || s.coverage.gridIds.includes(grid))).map((s) => s.phone);
    const workers = phonesOf('grid_worker', gridId);
    const leaders = phonesOf('grid_leader', gridId);
    const directors = phonesOf('community_director');
    const duty = phonesOf('street_duty_officer');
    expect(workers.length).toBeGreaterThan(0);
    expect(leaders.length).toBeGreaterThan(0);
    expect(directors.length).toBeGreaterThan(0);
    expect(duty.length).toBeGreaterThan(0);

    const c = await mqtt.connectAsync(node.mqttUrl, {
      clientId: band!.deviceId,
      username: band!.deviceId,
      password: band!.secret,
      reconnectPeriod: 0,
    });
    await c.publishAsync(`gridwatch/${band!.deviceId}/event`, JSON.stringify({ type: 'sos', id: 'e2e-sos-1' }), {
      qos: 1,
    });
    await c.endAsync();
    const opened = Date.now();

    const to = (phones: string[]) => fake.messages.filter((m) => phones.includes(m.to));
    await waitFor('SMS to the grid worker and the grid leader', async () =>
      to(workers).length >= workers.length && to(leaders).length >= leaders.length ? true : undefined,
    );
    const first = to(workers)[0]!;
    expect(first.body).toMatch(/^紧急呼叫 \d\d:\d\d：\d+号楼\d+单元\d+ \S\*+\S。/); // address and masked name
    expect(first.body).not.toMatch(/https?:/);
    expect(to(directors)).toHaveLength(0);

    // no acknowledgement: the director after ~2 s
    await waitFor('SMS to the director', async () => (to(directors).length > 0 ? true : undefined), 10_000);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(1500);

    // the grid worker answers "1 <code>" by SMS: acknowledged, confirmed, the escalation stops
    const alert = (await node.api('GET', `/api/v1/alerts?type=sos&householdId=${band!.householdId}`, undefined, admin))
      .body.items[0];
    const reply = await fake.inbound(`${node.base}/webhooks/twilio/inbound`, {
      From: workers[0]!,
      To: FROM,
      Body: `1 ${alertCode(alert.id)}`,
    });
    expect(reply.status).toBe(200);
    expect(reply.responseBody).toContain('已确认');
    const acked = (await node.api('GET', `/api/v1/alerts/${alert.id}`, undefined, admin)).body;
    expect(acked.status).toBe('acknowledged');
    expect(acked.timeline.at(-1)).toMatchObject({ action: 'acknowledged', via: 'sms' });

    // past the duty officer's time: nobody else texted, nobody texted twice
    await new Promise((r) => setTimeout(r, Math.max(0, opened + 6500 - Date.now())));
    expect(to(duty)).toHaveLength(0);
    const perPhone = new Map<string, number>();
    for (const m of fake.messages) perPhone.set(m.to, (perPhone.get(m.to) ?? 0) + 1);
    expect([...perPhone.values()].every((n) => n === 1)).toBe(true);
    expect([...perPhone.keys()].sort()).toEqual([...new Set([...workers, ...leaders, ...directors])].sort());
    const notes = (await node.api('GET', `/api/v1/notifications?alertId=${alert.id}`, undefined, admin)).body.items;
    expect(notes.map((n: { step: number }) => n.step).sort()).toEqual(
      [...workers, ...leaders].map(() => 0).concat(directors.map(() => 1)),
    );
  }, 60_000);
});
