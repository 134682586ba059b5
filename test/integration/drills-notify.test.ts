/**
 * Issue 6: a drill alert never reaches anyone outside the scenario's participants — not the street office, not the
 * residents' emergency contacts, even with a policy that names them — and a drill alert with no drill running for
 * it texts nobody. A real SOS during the drill, in the drill's own household, escalates normally (emergency contacts
 * and the street duty officer included) and is not a drill alert. Proven with the notification records.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/system.ts';
import { type DrillNode, drillAlert, type Json, notificationsSince, startDrillNode } from './drills-support.ts';

// every critical alert: grid worker, grid leader and the household's emergency contacts at once, the director
// after 5 min, the street duty officer after 15 min
const POLICIES = `
escalation:
  policies:
    - name: "critical, family included (test)"
      match: { severities: [critical] }
      steps:
        - { afterMinutes: 0, to: [grid_worker, grid_leader, emergency_contacts], channel: sms }
        - { afterMinutes: 5, to: [community_director], channel: sms }
        - { afterMinutes: 15, to: [street_duty_officer], channel: sms }
    - name: "everything else (test)"
      match: {}
      steps:
        - { afterMinutes: 0, to: [device_keeper], channel: digest }
`;

let d: DrillNode;
let configDir: string;
let devices: { deviceId: string; secret: string }[];

beforeAll(async () => {
  configDir = mkdtempSync(path.join(os.tmpdir(), 'gw-drill-cfg-'));
  writeFileSync(path.join(configDir, 'policies.yaml'), POLICIES);
  d = await startDrillNode({ GRIDWATCH_CONFIG: path.join(configDir, 'policies.yaml') });
  devices = JSON.parse(readFileSync(path.join(d.node.dataDir, 'demo-secrets.json'), 'utf8')).deviceSecrets;
}, 120_000);
afterAll(async () => {
  await d?.node.stop();
  rmSync(configDir, { recursive: true, force: true });
});

/** Publishes an event as a device of the sample community (its seeded secret). */
async function publishAs(deviceId: string, payload: object): Promise<void> {
  const dev = devices.find((x) => x.deviceId === deviceId)!;
  const c = await mqtt.connectAsync(d.node.mqttUrl, {
    clientId: deviceId,
    username: deviceId,
    password: dev.secret,
    reconnectPeriod: 0,
  });
  await c.publishAsync(`gridwatch/${deviceId}/event`, JSON.stringify({ ...payload, ts: d.clock.now() }), { qos: 1 });
  await c.endAsync();
}

describe('drill SMS go to the participants only', () => {
  it('a drill fall reaches participants only; a real SOS in the same home meanwhile escalates normally', async () => {
    const since = d.clock.now() - 1;
    const household = (await d.api('GET', '/api/v1/households/h-limin-01-2-0501')).body;
    expect(household.emergencyContacts.length).toBeGreaterThan(0);

    const started = await d.api('POST', '/api/v1/drills', { scenarioId: 'lone-elderly-unresponsive' }, 'director');
    expect(started.status).toBe(201);
    const id = started.body.id;
    const participants = new Set<string>(started.body.participants.map((p: Json) => p.staffId));
    expect(participants.has(d.staffIds.duty)).toBe(false);
    const fall = await drillAlert(d, id, 'fall');

    // a real emergency in the same home while the drill runs
    await d.advance(10_000);
    await publishAs('eb-limin-01-2-0501', { type: 'sos', id: 'real-sos-during-drill' });
    const real = await waitFor('the real SOS', async () => {
      const items = (await d.api('GET', '/api/v1/alerts?type=sos&householdId=h-limin-01-2-0501')).body.items;
      return items.find((a: Json) => !a.drill);
    });
    expect(real).toMatchObject({ drill: false, status: 'open', severity: 'critical' });
    expect(real.key).not.toContain('|drill');

    // nobody acknowledges anything for 16 minutes: every step of both escalations runs
    await d.advance(16 * 60_000);
    // the queues send in real time: wait for the last step of the real alert (the drill's ran at the same moment)
    const all = await waitFor('the street duty officer texted about the real SOS', async () => {
      const ns = await notificationsSince(d, since);
      const director = ns.some((n: Json) => n.alertId === fall.id && n.staffId === d.staffIds.director);
      const duty = ns.some((n: Json) => n.alertId === real.id && n.staffId === d.staffIds.duty);
      return director && duty ? ns : undefined;
    });
    const ofDrill = all.filter((n: Json) => n.alertId === fall.id);
    const ofReal = all.filter((n: Json) => n.alertId === real.id);

    // the drill fall: participants only (grid worker, grid leader, director); no family, no street office
    expect(ofDrill.length).toBeGreaterThan(0);
    for (const n of ofDrill) {
      expect(n.drill).toBe(true);
      expect(n.body.startsWith('【演练】')).toBe(true);
      expect(n.staffId).toBeDefined();
      expect(participants.has(n.staffId)).toBe(true);
    }
    expect(new Set(ofDrill.map((n: Json) => n.staffId))).toEqual(
      new Set([d.staffIds.gw1, d.staffIds.leader, d.staffIds.director]),
    );
    const family = household.emergencyContacts.map((c: Json) => c.phone);
    expect(ofDrill.some((n: Json) => family.includes(n.recipient))).toBe(false);
    // the drill's messages too
    const messages = all.filter((n: Json) => String(n.alertId).startsWith(`drill:${id}:`));
    expect(messages.length).toBeGreaterThan(0);
    expect(messages.every((n: Json) => participants.has(n.staffId) && n.body.startsWith('【演练】'))).toBe(true);

    // the real SOS: everyone the policy names, family and the street duty officer included, no drill mark
    expect(ofReal.every((n: Json) => n.drill === false && !n.body.includes('演练'))).toBe(true);
    expect(ofReal.some((n: Json) => n.role === 'emergency_contacts' && family.includes(n.recipient))).toBe(true);
    expect(ofReal.some((n: Json) => n.staffId === d.staffIds.duty)).toBe(true);
    expect(ofReal.some((n: Json) => n.staffId === d.staffIds.director)).toBe(true);

    // the drill shows the real alert apart, never as one of its own
    const v = await d.view(id);
    expect(v.alerts.map((a: Json) => a.id)).toEqual([fall.id]);
    expect(v.realAlerts.map((a: Json) => a.id)).toContain(real.id);
    const report = (await d.api('GET', `/api/v1/drills/${id}/report`, undefined, 'controller')).body;
    expect(report.realAlerts.map((a: Json) => a.id)).toContain(real.id);
    expect(report.alerts.map((a: Json) => a.id)).toEqual([fall.id]);
    expect((await d.api('POST', `/api/v1/drills/${id}/end`, undefined, 'director')).status).toBe(200);
    await d.settle();
    // ending the drill cancels its alert; the real one is untouched
    expect((await d.api('GET', `/api/v1/alerts/${fall.id}`)).body.status).toBe('cancelled');
    expect((await d.api('GET', `/api/v1/alerts/${real.id}`)).body.status).toBe('open');
  });

  it('a drill alert with no drill running for it texts nobody', async () => {
    const since = d.clock.now() - 1;
    // the sample community's own drill device in the charging area, used outside any drill
    await publishAs('drill-ca-limin-01', { type: 'smoke', id: 'stray-drill-smoke' });
    const alert = await waitFor('the stray drill alert', async () => {
      const items = (await d.api('GET', `/api/v1/alerts?type=charging_area_fire&since=${since}`)).body.items;
      return items.find((a: Json) => a.drill);
    });
    expect(alert.drill).toBe(true);
    await d.advance(20 * 60_000, 30_000);
    await new Promise((r) => setTimeout(r, 500)); // time for a queued SMS, were there one, to be written
    const texts = (await notificationsSince(d, since)).filter((n: Json) => n.alertId === alert.id);
    expect(texts).toEqual([]);
  });
});
