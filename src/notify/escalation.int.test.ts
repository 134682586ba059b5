/**
 * Escalation against a real redis-server (BullMQ queues and workers, the frozen policies, the durable timers), a
 * real AlertService on a temp SQLite, the outbox transport, and a VirtualClock driving the escalation timers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis } from '../../test/support/redis.ts';
import { AlertService } from '../alerts/service.ts';
import type { Alert, AlertInput } from '../alerts/types.ts';
import { VirtualClock } from '../clock/clock.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { RecipientGate } from './caps.ts';
import {
  BAD_PHONE_ALERT_TYPE,
  DIGEST_SCHEDULER_ID,
  Escalator,
  jobId,
  QUEUE_AUDIT,
  QUEUE_CRITICAL,
  QUEUE_DIGEST,
  smsVars,
  withinHours,
} from './escalation.ts';
import type { Policy } from './policy.ts';
import type { Recipient } from './recipients.ts';
import { OutboxTransport } from './sms/outbox.ts';
import type { SendResult, SmsMessage, SmsTransport } from './sms/port.ts';
import { NotificationStore } from './store.ts';

const logger = pino({ level: 'silent' });
const MIN = 60_000;

const POLICIES: Policy[] = [
  {
    name: 'urgent: critical',
    match: { categories: ['resident_safety', 'fire', 'security', 'ebike'], severities: ['critical'] },
    steps: [
      { afterMinutes: 0, to: ['grid_worker', 'grid_leader'], channel: 'sms' },
      { afterMinutes: 5, to: ['community_director'], channel: 'sms' },
      { afterMinutes: 15, to: ['street_duty_officer'], channel: 'sms' },
    ],
  },
  {
    name: 'major',
    match: { categories: ['resident_safety', 'fire', 'security', 'ebike'], severities: ['major'] },
    steps: [{ afterMinutes: 0, to: ['grid_worker'], channel: 'sms' }],
  },
  {
    name: 'minor',
    match: { categories: ['resident_safety', 'fire', 'security', 'ebike'], severities: ['minor', 'info'] },
    steps: [{ afterMinutes: 0, to: ['grid_worker', 'building_leader'], channel: 'digest' }],
  },
];

const PHONES: Record<string, string> = {
  grid_worker: '+8613800000001',
  grid_leader: '+8613800000002',
  community_director: '+8613800000003',
  street_duty_officer: '+8613800000004',
  building_leader: '+8613800000005',
};

/** A RecipientResolver stand-in: one fixed person per role. */
const recipients = {
  async resolve(to: readonly string[]): Promise<Recipient[]> {
    return to
      .filter((r) => PHONES[r])
      .map((r) => ({ phone: PHONES[r]!, staffId: `s-${r}`, as: r as Recipient['as'], displayName: '张*兰' }));
  },
};

/** The outbox, plus "the provider accepted it but our request timed out" on demand (a worker dying mid-send). */
class FlakyTransport implements SmsTransport {
  readonly name = 'outbox';
  readonly delivers = false;
  acceptThenTimeout = 0;
  sends = 0;
  /** numbers the provider rejects permanently (Twilio 21211: invalid 'To' number) */
  readonly invalid = new Set<string>();
  constructor(readonly outbox: OutboxTransport) {}
  async send(msg: SmsMessage): Promise<SendResult> {
    this.sends++;
    if (this.invalid.has(msg.to))
      return { ok: false, permanent: true, code: '21211', message: `The 'To' number ${msg.to} is not valid` };
    const r = await this.outbox.send(msg);
    if (this.acceptThenTimeout > 0) {
      this.acceptThenTimeout--;
      return { ok: false, permanent: false, code: 'TIMEOUT', message: 'timed out', maybeSent: true };
    }
    return r;
  }
  lookup = (id: string) => this.outbox.lookup(id);
  findRecent = (q: Parameters<NonNullable<SmsTransport['findRecent']>>[0]) => this.outbox.findRecent(q);
}

async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 8000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('escalation', () => {
  const clock = new VirtualClock(Date.UTC(2026, 2, 1, 2, 0, 0));
  let redisStop: () => Promise<void>;
  let url: string;
  let redis: Redis;
  let dir: string;
  let database: Database;
  let alerts: AlertService;
  let store: NotificationStore;
  let esc: Escalator;
  const outbox = new OutboxTransport({ now: () => new Date(clock.now()) });
  const transport = new FlakyTransport(outbox);
  let seq = 0;
  const raised: AlertInput[] = [];

  beforeAll(async () => {
    const r = await startTestRedis();
    url = r.url;
    redisStop = r.stop;
    redis = new Redis(url, { maxRetriesPerRequest: null });
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-esc-'));
    database = await createDatabase({ sqliteFile: 'esc.sqlite' }, dir);
    await migrateToLatest(database.db);
    store = new NotificationStore(database, clock);
    alerts = new AlertService(database, { clock, logger, onChange: (a, c) => esc.onAlertChange(a, c) });
    esc = new Escalator({
      alerts,
      policies: () => POLICIES,
      recipients,
      store,
      transport,
      // a short bundle window: held messages go out on a BullMQ delay, which runs on real time
      gate: new RecipientGate(clock, { bundleWindowMs: 1000 }),
      digest: { cron: '0 9,15 * * *', from: '08:00', to: '20:00', timezone: 'Asia/Shanghai' },
      households: {
        async getHousehold(id: string) {
          return {
            room: /-0?(\d+)$/.exec(id)?.[1] ?? '',
            residents: [{ id: 'r1', displayName: '张*兰', loneElderly: true, atRisk: false }],
          };
        },
      },
      clock,
      redis,
      connection: () => new Redis(url, { maxRetriesPerRequest: null }),
      logger,
      backoffMs: 50,
      raiseAlert: (input) => {
        raised.push(input);
        return alerts.raise(input);
      },
    });
    await esc.start();
  });

  afterAll(async () => {
    await esc?.stop();
    await redis?.quit();
    await database?.close?.();
    await redisStop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  async function tick(ms: number): Promise<void> {
    await esc.idle();
    clock.advance(ms);
    await esc.idle();
  }

  async function raise(extra: Partial<AlertInput> = {}): Promise<Alert> {
    const n = ++seq;
    const { alert } = await alerts.raise({
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      subject: {
        householdId: `h-limin-03-2-050${n}`,
        unitId: 'u-limin-03-2',
        buildingId: 'b-limin-03',
        gridId: 'g-1',
        communityId: 'c-1',
        colour: 'red',
      },
      keyOn: 'household',
      drill: false,
      ts: clock.now(),
      evidence: [{ ts: clock.now(), kind: 'event', eventType: 'sos' }],
      summary: 'SOS button pressed',
      ...extra,
    });
    await esc.idle();
    return alert;
  }

  /** Phones that got an SMS (in the outbox) about this alert, per step. */
  async function sent(alertId: string): Promise<{ step: number; to: string; status: string; providerId?: string }[]> {
    const page = await store.list({ alertId }, { limit: 100 });
    return page.items
      .map((n) => ({
        step: n.step,
        to: n.recipient,
        status: n.status,
        providerId: n.providerId,
        transport: n.transport,
      }))
      .sort((a, b) => a.step - b.step || a.to.localeCompare(b.to));
  }
  const outboxTo = (alertId: string, ids: Set<string>) =>
    outbox.messages().filter((m) => ids.has(m.notificationId) && m.body.length > 0 && alertId.length > 0);
  async function outboxFor(alertId: string) {
    const page = await store.list({ alertId }, { limit: 100 });
    return outboxTo(alertId, new Set(page.items.map((n) => n.id)));
  }

  it('critical alert in a red home: grid worker + leader at once, director after 5 min, duty officer after 15', async () => {
    const a = await raise();
    expect((await esc.frozen(a.id))?.policyName).toBe('urgent: critical');
    await tick(0);
    await waitFor(async () => (await outboxFor(a.id)).length === 2);
    const first = await outboxFor(a.id);
    expect(first.map((m) => m.to).sort()).toEqual([PHONES.grid_worker, PHONES.grid_leader]);
    expect(first[0]!.body).toContain('3号楼2单元501');
    expect(first[0]!.body).toContain('张*兰'); // the resident's masked name from the household
    expect(first[0]!.body).not.toContain('h-limin');
    expect((await sent(a.id)).every((n) => n.status === 'queued' && n.providerId?.startsWith('OB'))).toBe(true);

    await tick(4 * MIN + 59_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(await outboxFor(a.id)).toHaveLength(2);
    await tick(1000);
    await waitFor(async () => (await outboxFor(a.id)).some((m) => m.to === PHONES.community_director));

    await tick(9 * MIN);
    await new Promise((r) => setTimeout(r, 200));
    expect((await outboxFor(a.id)).some((m) => m.to === PHONES.street_duty_officer)).toBe(false);
    await tick(MIN);
    await waitFor(async () => (await outboxFor(a.id)).some((m) => m.to === PHONES.street_duty_officer));
    expect((await sent(a.id)).map((n) => [n.step, n.to])).toEqual([
      [0, PHONES.grid_worker],
      [0, PHONES.grid_leader],
      [1, PHONES.community_director],
      [2, PHONES.street_duty_officer],
    ]);
    // every step dispatched: the frozen record is gone
    expect(await esc.frozen(a.id)).toBeUndefined();

    // (3) the same step job delivered again sends nothing more
    const job = { alertId: a.id, step: 0, phone: PHONES.grid_worker!, staffId: 's-grid_worker', as: 'grid_worker' };
    const id = jobId(a.id, 0, PHONES.grid_worker!);
    expect(id).not.toContain(':');
    const q = esc.queue(QUEUE_CRITICAL);
    await q.add('sms', job, { jobId: id }); // still kept: BullMQ ignores the duplicate id
    await (await q.getJob(id))?.remove().catch(() => {});
    const again = await q.add('sms', job, { jobId: id }); // removed: a real redelivery, the handler runs
    await waitFor(async () => (await q.getJob(again.id!))?.returnvalue);
    expect((await q.getJob(again.id!))?.returnvalue).toBe('already-queued');
    expect(await esc.processJob({ id, data: job, attemptsMade: 1 })).toBe('already-queued');
    expect(await outboxFor(a.id)).toHaveLength(4);
  });

  it('acknowledging before 5 min stops the escalation', async () => {
    const a = await raise();
    await tick(0);
    await waitFor(async () => (await outboxFor(a.id)).length === 2);
    await tick(2 * MIN);
    await alerts.acknowledge(a.id, 's-grid_worker', 'console');
    await esc.idle();
    expect(await esc.frozen(a.id)).toBeUndefined();
    await tick(20 * MIN);
    await new Promise((r) => setTimeout(r, 300));
    const to = (await outboxFor(a.id)).map((m) => m.to);
    expect(to.sort()).toEqual([PHONES.grid_worker, PHONES.grid_leader]);
  });

  it('a fall waits for its cancel window (notBefore)', async () => {
    const a = await raise({ type: 'fall', notBefore: clock.now() + 60_000 });
    await tick(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(await sent(a.id)).toEqual([]);
    await tick(30_000);
    expect(await sent(a.id)).toEqual([]);
    await tick(30_000);
    await waitFor(async () => (await outboxFor(a.id)).length === 2);
  });

  it('a minor alert only makes digest records, no SMS', async () => {
    const a = await raise({ type: 'water_low', severity: 'minor' });
    await tick(0);
    const recs = await waitFor(async () => {
      const s = await sent(a.id);
      return s.length === 2 ? s : undefined;
    });
    expect(recs.map((r) => r.status)).toEqual(['bundled', 'bundled']);
    expect(recs.map((r) => r.to).sort()).toEqual([PHONES.grid_worker, PHONES.building_leader]);
    expect(await outboxFor(a.id)).toHaveLength(0);
  });

  it('the provider accepted but the request timed out: the retry finds the message and does not send again', async () => {
    transport.acceptThenTimeout = 1;
    const before = transport.sends;
    const a = await raise({ type: 'smoke', category: 'fire' });
    await tick(0);
    await waitFor(async () => {
      const s = await sent(a.id);
      return s.length === 2 && s.every((n) => n.providerId);
    });
    expect(transport.sends - before).toBe(2); // one per recipient, the timed-out one not sent again
    expect(await outboxFor(a.id)).toHaveLength(2);
  });

  it('the auditor restarts an overdue step whose timer was lost, via a Job Scheduler', async () => {
    expect(await esc.queue(QUEUE_AUDIT).getJobScheduler('esc-audit')).toBeDefined();
    const a = await raise();
    await tick(0);
    await waitFor(async () => (await outboxFor(a.id)).length === 2);
    esc.scheduler.cancel(`esc|${a.id}|1`); // the timer is lost (e.g. a node died between steps)
    await tick(6 * MIN);
    await new Promise((r) => setTimeout(r, 200));
    expect((await outboxFor(a.id)).some((m) => m.to === PHONES.community_director)).toBe(false);
    expect(await esc.audit()).toBe(1);
    await tick(0);
    await waitFor(async () => (await outboxFor(a.id)).some((m) => m.to === PHONES.community_director));
    await esc.stopped(a.id);
  });

  it('a permanent failure for one recipient: the next step at once, and a bad_phone_number maintenance alert', async () => {
    transport.invalid.add(PHONES.grid_worker!);
    try {
      const a = await raise();
      const t0 = clock.now();
      await tick(0);
      // the director (step 1, due after 5 min) gets the SMS without the clock moving
      await waitFor(async () => (await outboxFor(a.id)).some((m) => m.to === PHONES.community_director));
      await esc.idle();
      expect(clock.now()).toBe(t0);
      const s = await sent(a.id);
      expect(s.map((n) => [n.step, n.to, n.status])).toEqual([
        [0, PHONES.grid_worker, 'failed'],
        [0, PHONES.grid_leader, 'queued'],
        [1, PHONES.community_director, 'queued'],
      ]);
      expect((await store.list({ alertId: a.id, status: 'failed' }, { limit: 10 })).items[0]?.errorCode).toBe('21211');
      expect((await esc.frozen(a.id))?.done.sort()).toEqual([0, 1]);
      expect(esc.scheduler.get(`esc|${a.id}|1`)).toBeUndefined();
      expect(esc.scheduler.get(`esc|${a.id}|2`)).toBeDefined(); // the duty officer still waits for 15 min

      // the maintenance alert: on the household, no number anywhere, the error code as evidence
      const bad = raised.filter((r) => r.type === BAD_PHONE_ALERT_TYPE && r.subject.householdId === a.householdId);
      expect(bad).toHaveLength(1);
      expect(bad[0]).toMatchObject({ category: 'maintenance', severity: 'minor', keyOn: 'household', drill: false });
      expect(bad[0]!.evidence).toEqual([expect.objectContaining({ note: 'error 21211' })]);
      const text = JSON.stringify(bad[0]);
      expect(text).not.toContain(PHONES.grid_worker!.slice(3));
      const maint = await alerts.active(`${BAD_PHONE_ALERT_TYPE}|household:${a.householdId}`);
      expect(maint).toMatchObject({ category: 'maintenance', severity: 'minor', status: 'open' });
      expect(maint!.summary).toContain('grid_worker');

      // the director's step does not come again at its own time
      await tick(6 * MIN);
      await new Promise((r) => setTimeout(r, 200));
      expect((await outboxFor(a.id)).filter((m) => m.to === PHONES.community_director)).toHaveLength(1);
      await esc.stopped(a.id);
    } finally {
      transport.invalid.delete(PHONES.grid_worker!);
    }
  });

  it('deliveryFailed: an undelivered SMS of an open critical alert escalates at once, once', async () => {
    const a = await raise();
    const t0 = clock.now();
    await tick(0);
    await waitFor(async () => (await outboxFor(a.id)).length === 2);
    const [worker, leader] = (await store.list({ alertId: a.id }, { limit: 10 })).items.sort((x, y) =>
      x.recipient.localeCompare(y.recipient),
    );
    // still queued: not a failure
    expect(await esc.deliveryFailed(worker!.id)).toBeUndefined();
    expect(await esc.deliveryFailed('no-such-notification')).toBeUndefined();

    await store.statusFromProvider(worker!.providerId!, 'undelivered', '30003');
    expect(await esc.deliveryFailed(worker!.id)).toBe(1);
    await waitFor(async () => (await outboxFor(a.id)).some((m) => m.to === PHONES.community_director));
    expect(clock.now()).toBe(t0);
    // a retried callback, or the other recipient of the same step failing too, does not skip further up
    expect(await esc.deliveryFailed(worker!.id)).toBeUndefined();
    await store.statusFromProvider(leader!.providerId!, 'failed', '30005');
    expect(await esc.deliveryFailed(leader!.id)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 200));
    expect((await outboxFor(a.id)).some((m) => m.to === PHONES.street_duty_officer)).toBe(false);
    // the director's SMS undelivered as well: the duty officer now
    const director = (await store.list({ alertId: a.id }, { limit: 10 })).items.find((n) => n.step === 1)!;
    await waitFor(async () => (await store.get(director.id))?.providerId);
    await store.statusFromProvider((await store.get(director.id))!.providerId!, 'undelivered', '30003');
    expect(await esc.deliveryFailed(director.id)).toBe(2);
    await waitFor(async () => (await outboxFor(a.id)).some((m) => m.to === PHONES.street_duty_officer));
    expect(await esc.frozen(a.id)).toBeUndefined(); // every step dispatched
  });

  it('deliveryFailed does nothing for an acknowledged alert', async () => {
    const a = await raise();
    await tick(0);
    await waitFor(async () => (await outboxFor(a.id)).length === 2);
    await alerts.acknowledge(a.id, 's-grid_leader', 'console');
    await esc.idle();
    const n = (await store.list({ alertId: a.id }, { limit: 10 })).items[0]!;
    await store.statusFromProvider(n.providerId!, 'failed', '30003');
    expect(await esc.deliveryFailed(n.id)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 200));
    expect(await outboxFor(a.id)).toHaveLength(2);
  });

  it('smsVars: building / unit / room from the sample id convention, never the ids', () => {
    const v = smsVars({
      id: 'x',
      drill: true,
      buildingId: 'b-limin-03',
      unitId: 'u-limin-03-2',
      householdId: 'h-limin-03-2-0501',
      firstSeen: new Date(0).toISOString(),
    });
    expect(v).toMatchObject({ building: '3', unit: '2', room: '501', drill: true });
    expect(smsVars({ id: 'x', drill: false, buildingId: 'weird', firstSeen: new Date(0).toISOString() }).building).toBe(
      undefined,
    );
  });

  it('messages within the bundle window go out as ONE SMS at its end; the first SMS of a critical alert never waits', async () => {
    const crit = await raise();
    await tick(0);
    await waitFor(async () => (await outboxFor(crit.id)).length === 2); // sent at once
    const b = await raise({ type: 'smoke', category: 'fire', severity: 'major' });
    const c = await raise({ type: 'door_forced', category: 'security', severity: 'major' });
    await tick(0);
    const held = await waitFor(async () => {
      const s = [...(await sent(b.id)), ...(await sent(c.id))];
      return s.length === 2 && s.every((n) => n.status === 'bundled') ? s : undefined;
    });
    expect(held.map((n) => n.to)).toEqual([PHONES.grid_worker, PHONES.grid_worker]);
    // the delayed bundle job: one SMS naming both alerts, the held records point at it
    const carrier = await waitFor(async () => {
      const page = await store.list({ status: 'queued' }, { limit: 50 });
      return page.items.find((n) => n.role === 'bundle' && n.recipient === PHONES.grid_worker);
    });
    expect(carrier.body).toMatch(/2条告警/);
    const members = [
      ...(await store.list({ alertId: b.id }, { limit: 5 })).items,
      ...(await store.list({ alertId: c.id }, { limit: 5 })).items,
    ];
    // the carrier is listed under the first alert too
    expect(members.filter((m) => m.role !== 'bundle').map((m) => [m.batchId, m.status])).toEqual([
      [carrier.id, 'bundled'],
      [carrier.id, 'bundled'],
    ]);
    expect(outbox.messages().filter((m) => m.notificationId === carrier.id)).toHaveLength(1);
    // the same bundle job again sends nothing
    const job = {
      kind: 'bundle' as const,
      phone: PHONES.grid_worker!,
      drill: false,
      slot: 42,
    };
    expect(await esc.processBatch({ data: job, attemptsMade: 0 })).toBe('empty');
    await esc.stopped(crit.id);
  });

  it('the working-hours digest: one SMS per recipient listing the open alerts, nothing at night', async () => {
    expect(await esc.queue(QUEUE_DIGEST).getJobScheduler(DIGEST_SCHEDULER_ID)).toMatchObject({
      pattern: '0 9,15 * * *',
      tz: 'Asia/Shanghai',
    });
    const a = await raise({ type: 'water_low', severity: 'minor' });
    const closed = await raise({ type: 'water_low', severity: 'minor' });
    await tick(0);
    await waitFor(async () => (await sent(closed.id)).length === 2);
    await alerts.resolve(closed.id, 's-grid_worker', 'resident_fine', 'console');
    // 03:00 in Shanghai: nothing
    const night = Date.UTC(2026, 2, 1, 19, 0, 0);
    expect(withinHours(night, { from: '08:00', to: '20:00', timezone: 'Asia/Shanghai' })).toBe(false);
    expect(await esc.runDigest(night)).toBe(0);
    // 10:00: the grid worker gets one digest; the resolved alert is left out
    expect(await esc.runDigest(clock.now())).toBeGreaterThanOrEqual(2);
    const digest = await waitFor(async () => {
      const page = await store.list({}, { limit: 100 });
      return page.items.find((n) => n.role === 'digest' && n.recipient === PHONES.grid_worker && n.status === 'queued');
    });
    expect(digest.body).toMatch(/^待处理\d+条\(非紧急\)/);
    const gw = (id: string) =>
      store.list({ alertId: id }, { limit: 5 }).then((p) => p.items.find((n) => n.recipient === PHONES.grid_worker));
    expect((await gw(a.id))?.batchId).toBe(digest.id);
    const closedRec = await gw(closed.id);
    expect(closedRec?.status).toBe('capped');
    expect(closedRec?.batchId).toBeUndefined();
    // a second run the same minute adds nothing; nothing is held any more for the grid worker
    expect(await store.held({ recipient: PHONES.grid_worker!, drill: false, transport: 'digest' })).toEqual([]);
    expect(outbox.messages().filter((m) => m.notificationId === digest.id)).toHaveLength(1);
  });
});
