/**
 * Fault 2b (issue 8): a Redis Sentinel failover during escalation.
 *
 * A primary (AOF on), one replica and one sentinel (quorum 1, down after 1 s), all real redis-server processes. The
 * node finds the primary through the sentinel (REDIS_SENTINELS). A first SOS opens an alert whose escalation is
 * under way and replicated. Then the primary is killed with SIGKILL; the sentinel promotes the replica and every
 * connection of the node (its own, BullMQ's queues and workers) moves to it by itself:
 * - `/readyz` is ready again on the new primary;
 * - a second SOS after the failover has its alert exactly once, its SMS once per recipient;
 * - the first alert's escalation state survived on the promoted replica: it did not start over.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSentinel, type TestSentinelSet } from '../support/redis.ts';
import { sosKit } from '../support/sos.ts';
import { ADMIN_PASSWORD, startNode, type TestNode, waitFor } from '../support/system.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of the API; the test asserts on them
type Json = any;

let redis: TestSentinelSet;
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
  redis = await startTestSentinel({ appendOnly: true });
  node = await startNode({ REDIS_SENTINELS: `127.0.0.1:${redis.sentinelPort}`, REDIS_SENTINEL_NAME: 'mymaster' });
  token = await node.login('admin', ADMIN_PASSWORD);
}, 120_000);

afterAll(async () => {
  closeAll();
  await node?.stop();
  await redis?.stop();
});

describe('fault 2b: Redis Sentinel failover during escalation', () => {
  it('follows the new primary, keeps the escalation, and alerts once after the failover', async () => {
    const homes = (await node.api('GET', '/api/v1/households?limit=2', undefined, token)).body.items as Json[];
    const [h1, h2] = [homes[0].id as string, homes[1].id as string];
    const b1 = await button('failover-1', h1);
    const b2 = await button('failover-2', h2);

    await b1.publishAsync('gridwatch/failover-1/event', JSON.stringify({ type: 'sos', id: 'f1' }), { qos: 1 });
    const first = await waitFor('the first alert', () => alertOf(h1));
    await waitFor('its first SMS', async () => (await smsOf(first.id)).length > 0);
    const firstSms = (await smsOf(first.id)).length;
    expect(await node.system.escalator!.frozen(first.id)).toBeDefined();

    // the replica has everything written so far (replication is asynchronous: a write in the last instant before a
    // crash can be lost in a failover; docs/deployment.md says how min-replicas-to-write narrows that)
    const onPrimary = new Redis(redis.primary.url);
    expect(await onPrimary.wait(1, 5000)).toBe(1);
    onPrimary.disconnect();
    const startedAt = Date.now();
    redis.primary.kill();

    await waitFor(
      'the sentinel to promote the replica',
      async () => {
        return (await redis.primaryPortNow()) === redis.replicaPort;
      },
      30_000,
    );
    const promotedAfter = Date.now() - startedAt;
    await waitFor(
      '/readyz to be ready on the new primary',
      async () => (await node.api('GET', '/readyz')).status === 200,
      30_000,
    );

    await b2.publishAsync('gridwatch/failover-2/event', JSON.stringify({ type: 'sos', id: 'f2' }), { qos: 1 });
    const second = await waitFor('the alert after the failover', () => alertOf(h2), 30_000);
    await waitFor('its SMS', async () => (await smsOf(second.id)).length > 0, 30_000);
    await new Promise((r) => setTimeout(r, 1500));

    const again = await alertOf(h2);
    expect(again.count).toBe(1);
    const sms2 = await smsOf(second.id);
    const perRecipient = countPerRecipient(sms2);
    expect([...perRecipient.values()].every((v) => v === 1)).toBe(true);
    // the first alert's escalation is on the promoted replica: not restarted, its first step not sent again
    expect(await node.system.escalator!.frozen(first.id)).toBeDefined();
    expect((await smsOf(first.id)).filter((n) => n.step === 0)).toHaveLength(firstSms);
    const journal = new Redis(redis.replica.url);
    expect((await journal.info('replication')).includes('role:master')).toBe(true);
    journal.disconnect();
    console.log(
      `fault 2b: primary SIGKILLed; replica promoted after ${promotedAfter} ms, node ready again on it; first alert's escalation kept (${firstSms} SMS, none again); second SOS: count ${again.count}, ${sms2.length} SMS, no duplicates`,
    );
  }, 120_000);
});
