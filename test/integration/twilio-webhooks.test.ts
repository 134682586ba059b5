/**
 * Twilio's webhooks on a real node, called the way Twilio calls them (form-encoded, signed with the account's token
 * over the public URL, retried with the same idempotency token), by the local Twilio fake.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/lifecycle/redis-server.ts';
import { alertCode } from '../../src/notify/templates.ts';
import { ADMIN_PASSWORD, startNode, type TestNode } from '../support/system.ts';
import { TwilioFake } from '../support/twilio-fake.ts';

let node: TestNode;
let fake: TwilioFake;
let admin: string;
let workerPhone: string;

beforeAll(async () => {
  fake = await TwilioFake.start();
  const port = await freePort();
  node = await startNode({
    HTTP_PORT: String(port),
    TWILIO_ACCOUNT_SID: fake.accountSid,
    TWILIO_AUTH_TOKEN: fake.authToken,
    TWILIO_FROM: '+15005550006',
    TWILIO_PUBLIC_URL: `http://127.0.0.1:${port}`,
  });
  admin = await node.login('admin', ADMIN_PASSWORD);
  const staff = await node.api('GET', '/api/v1/staff?limit=1000', undefined, admin);
  workerPhone = staff.body.items.find((s: { username: string }) => s.username === 'gw.limin.01').phone;
});
afterAll(async () => {
  await node?.stop();
  await fake?.close();
});

async function openSos(householdId: string) {
  return (
    await node.system.alerts.raise({
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      keyOn: 'household',
      subject: { householdId, gridId: 'g-limin-01' },
      drill: false,
      ts: Date.now(),
      evidence: [],
      summary: 'SOS',
    })
  ).alert;
}

async function postSigned(
  path: string,
  params: Record<string, string>,
  opts: { signature?: string; token?: string } = {},
) {
  const url = `${node.base}${path}`;
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': opts.signature ?? fake.sign(url, params),
      ...(opts.token ? { 'i-twilio-idempotency-token': opts.token } : {}),
    },
    body: new URLSearchParams(params).toString(),
  });
}

describe('SMS replies', () => {
  it('"1 <code>" acknowledges the alert and answers with a confirmation; "2" resolves the sender’s only open alert', async () => {
    const alert = await openSos('h-limin-01-1-0101');
    const r = await fake.inbound(`${node.base}/webhooks/twilio/inbound`, {
      From: workerPhone,
      To: '+15005550006',
      Body: `1 ${alertCode(alert.id)}`,
    });
    expect(r.status).toBe(200);
    expect(r.responseBody).toContain('已确认');
    const acked = await node.api('GET', `/api/v1/alerts/${alert.id}`, undefined, admin);
    expect(acked.body.status).toBe('acknowledged');
    expect(acked.body.timeline.at(-1)).toMatchObject({ action: 'acknowledged', via: 'sms' });

    // the acknowledged alert is no longer open: a fresh one is the sender's only open alert
    const second = await openSos('h-limin-01-1-0201');
    const r2 = await fake.inbound(`${node.base}/webhooks/twilio/inbound`, {
      From: workerPhone,
      To: '+15005550006',
      Body: '1',
    });
    expect(r2.responseBody).toContain('已确认');
    const r3 = await fake.inbound(`${node.base}/webhooks/twilio/inbound`, {
      From: workerPhone,
      To: '+15005550006',
      Body: `2 ${alertCode(second.id)}`,
    });
    expect(r3.responseBody).toContain('处理完毕');
    expect((await node.api('GET', `/api/v1/alerts/${second.id}`, undefined, admin)).body.status).toBe('resolved');
  });

  it('answers an unknown sender or text with how to reply, and changes nothing', async () => {
    const alert = await openSos('h-limin-01-1-0301');
    const unknown = await fake.inbound(`${node.base}/webhooks/twilio/inbound`, {
      From: '+8613000000000',
      To: '+15005550006',
      Body: `1 ${alertCode(alert.id)}`,
    });
    expect(unknown.responseBody).toContain('未能识别');
    const gibberish = await fake.inbound(`${node.base}/webhooks/twilio/inbound`, {
      From: workerPhone,
      To: '+15005550006',
      Body: 'who is this?',
    });
    expect(gibberish.responseBody).toContain('未能识别');
    expect((await node.api('GET', `/api/v1/alerts/${alert.id}`, undefined, admin)).body.status).toBe('open');
  });

  it('refuses a forged or unsigned request with 403', async () => {
    const params = { From: workerPhone, To: '+15005550006', Body: '1' };
    expect((await postSigned('/webhooks/twilio/inbound', params, { signature: 'forged' })).status).toBe(403);
    const url = `${node.base}/webhooks/twilio/inbound`;
    // signed for other parameters than those sent
    const sig = fake.sign(url, { ...params, Body: '2' });
    expect((await postSigned('/webhooks/twilio/inbound', params, { signature: sig })).status).toBe(403);
  });
});

describe('delivery status', () => {
  it('updates the notification by message id, never backwards, and ignores a retried webhook', async () => {
    const alert = await openSos('h-limin-01-1-0401');
    const { notification } = await node.system.notifications.createPending({
      alertId: alert.id,
      step: 0,
      recipient: workerPhone,
      body: 'SOS',
      transport: 'twilio',
      drill: false,
    });
    await node.system.notifications.accepted(notification.id, 'SM00000000000000000000000000000001', 'queued');
    const base = { MessageSid: 'SM00000000000000000000000000000001', AccountSid: fake.accountSid };
    expect(
      (await postSigned('/webhooks/twilio/status', { ...base, MessageStatus: 'delivered' }, { token: 't-1' })).status,
    ).toBe(200);
    // Twilio retries the same webhook (same token) and a late "sent" arrives: neither changes anything
    await postSigned(
      '/webhooks/twilio/status',
      { ...base, MessageStatus: 'failed', ErrorCode: '30003' },
      { token: 't-1' },
    );
    await postSigned('/webhooks/twilio/status', { ...base, MessageStatus: 'sent' }, { token: 't-2' });
    const n = await node.system.notifications.get(notification.id);
    expect(n?.status).toBe('delivered');
    expect(n?.statusHistory.map((h) => h.status)).toEqual(['pending', 'queued', 'delivered']);
  });
});
