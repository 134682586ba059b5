/**
 * Fault 4 (issue 8): the SMS provider failing for 60 s during a critical alert.
 *
 * A whole node sends through the real `twilio` client to the local Twilio fake. Just before an SOS, the fake starts
 * failing: 500 for 20 s, then 429 with Retry-After for 20 s, then no answer at all for 20 s (timeouts). Then it
 * recovers. The SOS's first SMS to the grid worker and the grid leader must go out once the provider is back,
 * exactly once per recipient. They are retried with capped backoff for the message's validity period, so they are
 * never dropped after a few attempts.
 *
 * The permanent failures (invalid number → failed, the next step at once, a maintenance alert for the number) are
 * proven in src/notify/escalation.int.test.ts.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/lifecycle/redis-server.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';
import { TwilioFake } from '../support/twilio-fake.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the API; the test asserts on them
type Json = any;

const PHASE_MS = 20_000;
let fake: TwilioFake;
let node: TestNode;
let token: string;

beforeAll(async () => {
  fake = await TwilioFake.start();
  const port = await freePort();
  node = await startNode({
    HTTP_PORT: String(port),
    TWILIO_ACCOUNT_SID: fake.accountSid,
    TWILIO_AUTH_TOKEN: fake.authToken,
    TWILIO_FROM: '+15005550006',
    TWILIO_API_BASE_URL: fake.url,
    TWILIO_PUBLIC_URL: `http://127.0.0.1:${port}`,
    // a hung request counts as a timeout after 2 s (default 10 s)
    GRIDWATCH__sms__twilio__timeoutMs: '2000',
  });
  token = await node.login('admin', ADMIN_PASSWORD);
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await fake?.close();
});

describe('fault 4: the SMS provider failing for 60 s during a critical alert', () => {
  it('every first-step SMS goes out once the provider is back, exactly once per recipient', async () => {
    const h = (await node.api('GET', '/api/v1/households?limit=1', undefined, token)).body.items[0] as Json;
    const dev = await node.api(
      'POST',
      '/api/v1/devices',
      { id: 'sms-fault-btn', model: 'native-emergency-button', householdId: h.id },
      token,
    );
    expect(dev.status).toBe(201);
    const client = await mqtt.connectAsync(node.mqttUrl, {
      clientId: 'sms-fault-btn',
      username: 'sms-fault-btn',
      password: dev.body.secret as string,
      reconnectPeriod: 0,
    });

    fake.failNext(500, 1_000_000);
    const started = Date.now();
    await client.publishAsync('gridwatch/sms-fault-btn/event', JSON.stringify({ type: 'sos', id: 'sms-1' }), {
      qos: 1,
    });
    await client.endAsync();
    const alert = await waitFor('the alert', async () => {
      const r = await node.api('GET', `/api/v1/alerts?householdId=${h.id}&type=sos`, undefined, token);
      return r.body.items?.[0] as Json | undefined;
    });

    await new Promise((r) => setTimeout(r, PHASE_MS));
    fake.reset();
    fake.failNext(429, 1_000_000, { retryAfterSeconds: 1 });
    await new Promise((r) => setTimeout(r, PHASE_MS));
    fake.reset();
    fake.hang(true);
    await new Promise((r) => setTimeout(r, PHASE_MS));
    fake.reset();
    const recovered = Date.now();
    const failedTries = fake.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Messages.json')).length;
    expect(fake.messages).toHaveLength(0); // nothing got through during the outage

    const sms = async () =>
      (
        (await node.api('GET', `/api/v1/notifications?alertId=${alert.id}`, undefined, token)).body.items as Json[]
      ).filter((n) => n.step === 0);
    const first = await sms();
    expect(first.length).toBeGreaterThanOrEqual(2); // grid worker and grid leader
    await waitFor('every first-step SMS through', async () => fake.messages.length >= first.length, 60_000);
    const deliveredAfter = Date.now() - recovered;
    await new Promise((r) => setTimeout(r, 3000));
    const to = fake.messages.map((m) => m.to);
    expect(new Set(to).size).toBe(to.length); // nobody twice
    expect(to.length).toBe(first.length);
    const after = await sms();
    expect(after.every((n) => n.status !== 'failed')).toBe(true);
    console.log(
      `fault 4: provider down ${Math.round((recovered - started) / 1000)} s (500, 429, no answer); ${failedTries} send ` +
        `attempts refused meanwhile; ${to.length} first-step SMS delivered ${Math.round(deliveredAfter / 1000)} s ` +
        'after it came back, none twice, none dropped',
    );
  }, 150_000);
});
