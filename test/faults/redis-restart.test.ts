/**
 * Fault 2 (issue 8): Redis stopped and started again during ingest and escalation.
 *
 * A whole node on a Redis of its own with AOF on. A first SOS opens an alert whose escalation is under way, and its
 * first SMS go out. Then Redis stops. `/readyz` reports the outage. A second SOS during the outage cannot be made
 * durable, so it is processed but not acknowledged; the button keeps it and sends it again. Redis comes back on the
 * same port from its AOF, and the service reconnects by itself:
 * - `/readyz` is ready again;
 * - the second SOS has its alert exactly once (count 1, one row per event id) and its SMS went out once per
 *   recipient;
 * - the first alert's frozen escalation survived in Redis (AOF): it did not start over or send its first step
 *   again. (Its later steps are minutes away; that steps survive a restart is in the escalation tests.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, RedisServer } from '../../src/lifecycle/redis-server.ts';
import { sosKit } from '../support/sos.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the API; the test asserts on them
type Json = any;

let redisDir: string;
let port: number;
let redis: RedisServer;
let node: TestNode;
let token: string;
const {
  button,
  alertOf,
  smsOf,
  perRecipient: countPerRecipient,
  closeAll,
} = sosKit(
  () => node,
  () => token,
);

beforeAll(async () => {
  redisDir = mkdtempSync(path.join(os.tmpdir(), 'gw-fault-redis-'));
  port = await freePort();
  redis = new RedisServer({ dataDir: redisDir, port, appendOnly: true });
  await redis.start();
  node = await startNode({ REDIS_URL: redis.url });
  token = await node.login('admin', ADMIN_PASSWORD);
}, 120_000);

afterAll(async () => {
  closeAll();
  await node?.stop();
  await redis?.stop();
  rmSync(redisDir, { recursive: true, force: true });
});

describe('fault 2: Redis stopped and started again during ingest and escalation', () => {
  it('reports the outage, loses nothing acknowledged, sends nothing twice, and resumes by itself', async () => {
    const homes = (await node.api('GET', '/api/v1/households?limit=2', undefined, token)).body.items as Json[];
    const [h1, h2] = [homes[0].id as string, homes[1].id as string];
    const b1 = await button('redis-fault-1', h1);
    const b2 = await button('redis-fault-2', h2);

    await b1.publishAsync('gridwatch/redis-fault-1/event', JSON.stringify({ type: 'sos', id: 'r1' }), { qos: 1 });
    const first = await waitFor('the first alert', () => alertOf(h1));
    await waitFor('its first SMS', async () => (await smsOf(first.id)).length > 0);
    const firstSms = (await smsOf(first.id)).length;

    await redis.stop();
    await waitFor(
      '/readyz to report the outage',
      async () => (await node.api('GET', '/readyz')).status === 503,
      20_000,
    );
    const during = b2.publishAsync('gridwatch/redis-fault-2/event', JSON.stringify({ type: 'sos', id: 'r2' }), {
      qos: 1,
    });
    // processed at once even so: the alert is there while Redis is still away
    const second = await waitFor('the second alert during the outage', () => alertOf(h2), 20_000);
    expect((await node.api('GET', '/readyz')).status).toBe(503);

    await redis.start();
    await during; // the button's resend is acknowledged once the journal takes it
    await waitFor('/readyz to be ready again', async () => (await node.api('GET', '/readyz')).status === 200, 30_000);
    await waitFor('the second alert’s SMS', async () => (await smsOf(second.id)).length > 0, 30_000);
    await new Promise((r) => setTimeout(r, 2000));

    const again = await alertOf(h2);
    expect(again.id).toBe(second.id);
    expect(again.count).toBe(1); // the resends of r2 counted once
    const sms2 = await smsOf(second.id);
    const perRecipient = countPerRecipient(sms2);
    expect([...perRecipient.values()].every((v) => v === 1)).toBe(true);
    // the first alert's escalation is still frozen in Redis (AOF): it did not start over or send its first step again
    expect((await smsOf(first.id)).filter((n) => n.step === 0)).toHaveLength(firstSms);
    expect(await node.system.escalator!.frozen(first.id)).toBeDefined();
    console.log(
      `fault 2: Redis stopped for the second SOS; first alert ${firstSms} SMS before, escalation kept; second alert count ${again.count}, ${sms2.length} SMS (${perRecipient.size} recipients × steps), no duplicates`,
    );
  }, 120_000);
});
