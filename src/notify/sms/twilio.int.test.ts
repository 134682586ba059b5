import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TwilioFake } from '../../../test/support/twilio-fake.ts';
import { TwilioTransport, verifyTwilioSignature } from './twilio.ts';

interface Received {
  path: string;
  params: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
}

let fake: TwilioFake;
let hook: Server;
let hookUrl: string;
const received: Received[] = [];

beforeAll(async () => {
  fake = await TwilioFake.start();
  hook = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      raw += c;
    });
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        params: Object.fromEntries(new URLSearchParams(raw)),
        headers: req.headers,
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await fake.close();
  await new Promise<void>((r) => hook.close(() => r()));
});

afterEach(() => fake.reset());

function transport(over: Partial<ConstructorParameters<typeof TwilioTransport>[0]> = {}): TwilioTransport {
  return new TwilioTransport({
    accountSid: fake.accountSid,
    authToken: fake.authToken,
    from: '+15005550006',
    baseUrl: fake.url,
    timeoutMs: 1000,
    ...over,
  });
}

const msg = (over: Partial<Parameters<TwilioTransport['send']>[0]> = {}) => ({
  to: '+8613800138000',
  body: '【演练】3号楼2单元501 张*兰 SOS 求助，请尽快处理。代码 A7K2',
  notificationId: 'n-1',
  ...over,
});

describe('TwilioTransport against the local Twilio fake (real twilio client)', () => {
  it('sends: the real client gets a sid, the params arrive as Twilio expects', async () => {
    const t = transport();
    const r = await t.send(msg({ validitySeconds: 300, statusCallbackUrl: `${hookUrl}/webhooks/twilio/status` }));
    expect(r).toMatchObject({ ok: true, status: 'queued' });
    if (!r.ok) throw new Error('unreachable');
    expect(r.providerId).toMatch(/^SM[0-9a-f]{32}$/);
    const req = fake.requests.at(-1)!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe(`/2010-04-01/Accounts/${fake.accountSid}/Messages.json`);
    expect(req.headers['content-type']).toContain('application/x-www-form-urlencoded');
    expect(req.params).toEqual({
      To: '+8613800138000',
      From: '+15005550006',
      Body: msg().body,
      ValidityPeriod: '300',
      StatusCallback: `${hookUrl}/webhooks/twilio/status`,
    });
    expect(fake.message(r.providerId)?.status).toBe('queued');
  });

  it('sends through a Messaging Service (accepted), clamps the validity period', async () => {
    const t = transport({ from: undefined, messagingServiceSid: 'MG' + '0'.repeat(32) });
    const r = await t.send(msg({ validitySeconds: 999_999 }));
    expect(r).toMatchObject({ ok: true, status: 'accepted' });
    const p = fake.requests.at(-1)!.params;
    expect(p.MessagingServiceSid).toBe('MG' + '0'.repeat(32));
    expect(p.From).toBeUndefined();
    expect(p.ValidityPeriod).toBe('36000');
    expect(p.StatusCallback).toBeUndefined();
  });

  it('ignores a template (free-text provider)', async () => {
    const r = await transport().send(msg({ template: { code: 'SMS_1', params: { a: 'b' } } }));
    expect(r.ok).toBe(true);
    expect(Object.keys(fake.requests.at(-1)!.params).sort()).toEqual(['Body', 'From', 'To']);
  });

  it('21211 invalid number and 21610 unsubscribed → permanent', async () => {
    const t = transport();
    fake.failNext(21211);
    expect(await t.send(msg())).toMatchObject({ ok: false, permanent: true, code: '21211' });
    fake.failNext(21610);
    expect(await t.send(msg())).toMatchObject({ ok: false, permanent: true, code: '21610' });
    // the fake also rejects a malformed number by itself, as Twilio does
    expect(await t.send(msg({ to: '12345' }))).toMatchObject({ ok: false, permanent: true, code: '21211' });
  });

  it('429 and 500 → transient with a retry hint (Retry-After honoured)', async () => {
    const t = transport();
    fake.failNext(429);
    const a = await t.send(msg());
    expect(a).toMatchObject({ ok: false, permanent: false, code: '20429' });
    expect(a.ok === false && a.retryAfterMs).toBeGreaterThan(0);
    fake.failNext(429, 1, { retryAfterSeconds: 7 });
    expect(await t.send(msg())).toMatchObject({ ok: false, permanent: false, code: '20429', retryAfterMs: 7000 });
    fake.failNext(500, 2);
    const b = await t.send(msg());
    expect(b).toMatchObject({ ok: false, permanent: false, code: '20500', maybeSent: true });
    expect(b.ok === false && b.retryAfterMs).toBeGreaterThan(0);
    expect(await t.send(msg())).toMatchObject({ ok: false, permanent: false, code: '20500' });
    expect((await t.send(msg())).ok).toBe(true); // failures used up
  });

  it('a hanging server → transient TIMEOUT within timeoutMs; findRecent then finds nothing to resend over', async () => {
    const t = transport({ timeoutMs: 300 });
    fake.hangNext(1);
    const since = new Date();
    const started = performance.now();
    const r = await t.send(msg({ body: 'hang test' }));
    const took = performance.now() - started;
    expect(r).toMatchObject({ ok: false, permanent: false, code: 'TIMEOUT', maybeSent: true });
    expect(took).toBeLessThan(300 + 200);
    expect(took).toBeGreaterThanOrEqual(250);
    expect(await t.findRecent({ to: msg().to, body: 'hang test', since })).toBeUndefined();
  });

  it('lookup by sid; unknown sid → undefined; findRecent finds a message that was created', async () => {
    const t = transport();
    const since = new Date();
    const r = await t.send(msg({ body: 'lookup test', statusCallbackUrl: `${hookUrl}/s` }));
    if (!r.ok) throw new Error('send failed');
    expect(await t.lookup(r.providerId)).toEqual({ status: 'queued', errorCode: null });
    await fake.deliver(r.providerId, 'undelivered', { errorCode: 30003 });
    expect(await t.lookup(r.providerId)).toEqual({ status: 'undelivered', errorCode: '30003' });
    expect(await t.lookup('SM' + 'f'.repeat(32))).toBeUndefined();
    expect(await t.findRecent({ to: msg().to, body: 'lookup test', since })).toMatchObject({
      providerId: r.providerId,
    });
  });

  it('wrong credentials → permanent auth error 20003', async () => {
    const t = transport({ authToken: 'wrong' });
    expect(await t.send(msg())).toMatchObject({ ok: false, permanent: true, code: '20003' });
    expect(fake.requests.at(-1)!.authorized).toBe(false);
  });

  it('a refused connection → transient NETWORK, not sent', async () => {
    const t = transport({ baseUrl: 'http://127.0.0.1:9' });
    expect(await t.send(msg())).toMatchObject({ ok: false, permanent: false, code: 'NETWORK', maybeSent: false });
  });

  it('verifyTwilioSignature accepts the fake’s signed status callback, rejects tampering and a wrong URL', async () => {
    const t = transport();
    const cb = `${hookUrl}/webhooks/twilio/status?tenant=a`;
    const r = await t.send(msg({ statusCallbackUrl: cb }));
    if (!r.ok) throw new Error('send failed');
    received.length = 0;
    const d = await fake.deliver(r.providerId, 'delivered');
    expect(d.status).toBe(204);
    const got = received[0]!;
    expect(got.path).toBe('/webhooks/twilio/status?tenant=a');
    expect(got.params).toMatchObject({ MessageSid: r.providerId, MessageStatus: 'delivered', To: msg().to });
    expect(got.params.ErrorCode).toBeUndefined();
    expect(got.headers['i-twilio-idempotency-token']).toBe(d.idempotencyToken);
    const sig = got.headers['x-twilio-signature'];
    expect(verifyTwilioSignature(fake.authToken, cb, got.params, sig)).toBe(true);
    expect(verifyTwilioSignature(fake.authToken, cb, { ...got.params, MessageStatus: 'failed' }, sig)).toBe(false);
    expect(verifyTwilioSignature(fake.authToken, `${hookUrl}/webhooks/twilio/status`, got.params, sig)).toBe(false);
    expect(verifyTwilioSignature('other-token', cb, got.params, sig)).toBe(false);
    expect(verifyTwilioSignature(fake.authToken, cb, got.params, undefined)).toBe(false);

    // failed delivery carries ErrorCode; a retried webhook reuses its idempotency token
    const f = await fake.deliver(r.providerId, 'failed', { errorCode: 30007 });
    const again = await fake.deliver(r.providerId, 'failed', { idempotencyToken: f.idempotencyToken });
    expect(received[1]!.params.ErrorCode).toBe('30007');
    expect(received[2]!.headers['i-twilio-idempotency-token']).toBe(f.idempotencyToken);
    expect(again.signature).toBe(f.signature);
  });

  it('inbound SMS is signed the same way', async () => {
    received.length = 0;
    const url = `${hookUrl}/webhooks/twilio/inbound`;
    await fake.inbound(url, { From: '+8613800138000', To: '+15005550006', Body: '收到 A7K2' });
    const got = received[0]!;
    expect(got.params).toMatchObject({ From: '+8613800138000', Body: '收到 A7K2', AccountSid: fake.accountSid });
    expect(got.params.MessageSid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(verifyTwilioSignature(fake.authToken, url, got.params, got.headers['x-twilio-signature'])).toBe(true);
    expect(
      verifyTwilioSignature(fake.authToken, url, { ...got.params, Body: '2 A7K2' }, got.headers['x-twilio-signature']),
    ).toBe(false);
  });
});
