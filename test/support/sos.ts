/** SOS buttons, their alerts and SMS through a node's API: shared by the fault tests that break Redis. */
import mqtt, { type MqttClient } from 'mqtt';
import { expect } from 'vitest';
import type { TestNode } from './system.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the API; the tests assert on them
type Json = any;

export function sosKit(node: () => TestNode, token: () => string) {
  const clients: MqttClient[] = [];
  return {
    /** A registered emergency button, connected with a persistent session that resends what was not acknowledged. */
    async button(id: string, householdId: string): Promise<MqttClient> {
      const n = node();
      const r = await n.api('POST', '/api/v1/devices', { id, model: 'native-emergency-button', householdId }, token());
      expect(r.status).toBe(201);
      const c = await mqtt.connectAsync(n.mqttUrl, {
        clientId: id,
        username: id,
        password: r.body.secret as string,
        reconnectPeriod: 300,
        clean: false,
      });
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
    async alertOf(householdId: string): Promise<Json | undefined> {
      const r = await node().api('GET', `/api/v1/alerts?householdId=${householdId}&type=sos`, undefined, token());
      return (r.body?.items as Json[] | undefined)?.[0];
    },
    async smsOf(alertId: string): Promise<Json[]> {
      const r = await node().api('GET', `/api/v1/notifications?alertId=${alertId}`, undefined, token());
      return (r.body?.items as Json[] | undefined) ?? [];
    },
    /** How many SMS each (step, recipient) got: all 1 when nothing was sent twice. */
    perRecipient(sms: Json[]): Map<string, number> {
      const counts = new Map<string, number>();
      for (const n of sms) counts.set(`${n.step}|${n.recipient}`, (counts.get(`${n.step}|${n.recipient}`) ?? 0) + 1);
      return counts;
    },
    closeAll(): void {
      for (const c of clients) c.end(true);
    },
  };
}
