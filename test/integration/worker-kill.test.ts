/**
 * Issue 4: "BullMQ delivers at least once … Prove with a test that kills a worker mid-send."
 *
 * A main node (real Redis, SQLite, the sample community) that does not send itself, a separate `worker` process
 * (`src/main.ts --role=worker`, exactly what `npm run worker` starts) that sends through the real `twilio` client
 * to the local Twilio fake. The fake accepts one message but never answers (the worker cannot know whether it went);
 * the worker is SIGKILLed right then. A second worker process takes the stalled job over, looks the message up at
 * the provider before sending, finds it, and records its sid: every recipient got exactly one SMS.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startNode, type TestNode } from '../support/system.ts';
import { TwilioFake } from '../support/twilio-fake.ts';

const FROM = '+15005550006';

async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a worker process killed mid-send', () => {
  let fake: TwilioFake;
  let node: TestNode;
  let env: Record<string, string>;
  const children: ChildProcess[] = [];

  /** Starts `src/main.ts --role=worker` sharing the node's Redis and database; resolves once it is up. */
  async function startWorker(): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--role=worker'], {
      cwd: ROOT,
      env: { ...process.env, ...env, REDIS_URL: node.system.redis.url, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor(() => out.includes('GridWatch worker is up') || child.exitCode !== null, 60_000);
    if (child.exitCode !== null) throw new Error(`worker exited ${child.exitCode}: ${out}`);
    return child;
  }

  beforeAll(async () => {
    fake = await TwilioFake.start();
    env = {
      TWILIO_ACCOUNT_SID: fake.accountSid,
      TWILIO_AUTH_TOKEN: fake.authToken,
      TWILIO_FROM: FROM,
      TWILIO_API_BASE_URL: fake.url,
      // the main node only owns the timers; the worker processes send
      GRIDWATCH__escalation__workers__inProcess: 'false',
      GRIDWATCH__escalation__workers__lockDurationMs: '2000',
      GRIDWATCH__escalation__workers__stalledIntervalMs: '1000',
    };
    node = await startNode(env);
    env.GRIDWATCH_DATA_DIR = node.dataDir;
    env.GRIDWATCH_DEMO = 'false';
  }, 60_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await node?.stop();
    await fake?.close();
  });

  it('the next worker finds the message at the provider and does not send it again', async () => {
    const first = await startWorker();
    const { system } = node;
    const page = await system.registry.listHouseholds({ colour: 'red' }, { all: true, gridIds: [] }, { limit: 1 });
    const h = page.items[0]!;
    fake.hangAfterCreateNext(1);
    const { alert } = await system.alerts.raise({
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      subject: {
        householdId: h.id,
        unitId: h.unitId,
        buildingId: h.buildingId,
        gridId: h.gridId,
        communityId: h.communityId,
        colour: h.colour,
      },
      keyOn: 'household',
      drill: false,
      ts: Date.now(),
      evidence: [{ ts: Date.now(), kind: 'event', eventType: 'sos' }],
      summary: 'SOS button pressed',
    });
    // the first step reaches the grid's workers and leader; one request is left hanging at the provider
    const records = async () => (await system.notifications.list({ alertId: alert.id }, { limit: 50 })).items;
    const hung = await waitFor(async () => {
      const rs = await records();
      const pending = rs.filter((n) => n.status === 'pending');
      return rs.length >= 2 && fake.messages.length === rs.length && pending.length === 1 ? pending[0] : undefined;
    });
    const recipients = (await records()).length;
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(fake.messages.filter((m) => m.to === hung.recipient)).toHaveLength(1);

    await startWorker();
    const done = await waitFor(async () => {
      const n = await system.notifications.get(hung.id);
      return n?.providerId ? n : undefined;
    });
    const message = fake.messages.find((m) => m.to === hung.recipient)!;
    expect(done.providerId).toBe(message.sid);
    expect(done.status).toBe('queued');
    // exactly one SMS per recipient, and the lookup (GET) happened instead of a second create (POST)
    expect(fake.messages).toHaveLength(recipients);
    expect(new Set(fake.messages.map((m) => m.to)).size).toBe(recipients);
    const creates = fake.requests.filter((r) => r.method === 'POST' && r.params.To === hung.recipient);
    expect(creates).toHaveLength(1);
    expect(fake.requests.some((r) => r.method === 'GET' && r.params.To === hung.recipient)).toBe(true);
    await system.alerts.acknowledge(alert.id, 'admin', 'console');
  }, 90_000);
});
