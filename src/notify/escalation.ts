/**
 * Escalation (issue 4, "Queues and workers", "Escalation").
 *
 * - When an alert opens, its policy is chosen (`policyFor`) and FROZEN into a durable record in Redis (hash
 *   `<keyPrefix>:policy`, field = alert id), so later config edits do not change a running escalation. Each step
 *   becomes a deadline on the escalator's own scheduler (Clock port; timer key `esc|<alertId>|<step>`).
 * - A due step re-checks the alert first: not open any more (acknowledged, resolved, cancelled, gone) → nothing,
 *   and the later steps are cancelled; `notBefore` in the future (a fall's cancel window) → the step waits for it.
 *   Otherwise the step's recipients are resolved and, for `sms`, one BullMQ job per recipient is added to
 *   `notify-critical` (critical alerts) or `notify`, job id `n-<alertId>-<step>-<phone digits>` (no ':', never all
 *   digits, unique per alert + step + recipient, so a duplicate step adds nothing). `digest` steps only record a
 *   notification with status `bundled` (the digest itself is later work).
 * - The workers are idempotent (BullMQ delivers at least once): the notification record is created before sending
 *   (idempotent per alert + step + recipient); a record that already has a provider id or a final status is not
 *   sent again; a retry after an ambiguous failure looks the message up (`findRecent`) before sending again.
 *   Permanent failures mark the record failed; transient ones throw so BullMQ retries with exponential backoff.
 * - A permanent failure (invalid number, unsubscribed, blocked …) of a critical or major alert does not wait for the
 *   next step's time: the step after the failed one is dispatched at once (if still pending), and a maintenance
 *   alert `bad_phone_number` is raised for the household through `raiseAlert` (no number in it, only the error code).
 *   `deliveryFailed` does the same escalation for a notification the provider later reports `failed` /
 *   `undelivered` (the Twilio status webhook), for critical alerts that are still open.
 * - An auditor (a BullMQ Job Scheduler on queue `escalate`, every minute) re-schedules any frozen step that is due,
 *   not yet dispatched and has no pending timer (a lost timer, a node that died between steps).
 * - Held messages go out later as ONE SMS per recipient (a "carrier" notification; the held ones point at it):
 *   a bundle (the gate held them within its 2-minute window) as a delayed job at the window's end, and the
 *   working-hours digest (`digest` steps: minor, maintenance, supplies, visits) from a Job Scheduler on queue
 *   `digest` that never sends outside working hours. Alerts closed meanwhile are left out.
 * - Roles: a node with `timers` owns the step timers and the `escalate` queue (auditor, forwarded work); a node
 *   with `workers` sends (`notify-critical`, `notify`, `digest`). `npm run worker` is a sending-only node that
 *   forwards what needs timers (a new alert, an escalation at once) to the `escalate` queue.
 */
import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AlertChange } from '../alerts/service.ts';
import type { Alert, AlertInput, Severity } from '../alerts/types.ts';
import type { Household, Scope } from '../registry/port.ts';
import type { Clock } from '../clock/clock.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import { maskPhone } from '../logger.ts';
import type { RuleName } from '../rules/config.ts';
import { type MemoryScheduler, RedisScheduler } from '../rules/scheduler.ts';
import type { Timer } from '../rules/types.ts';
import type { RecipientGate } from './caps.ts';
import { type Policy, policyFor, type Step } from './policy.ts';
import type { Recipient } from './recipients.ts';
import type { SmsTransport } from './sms/port.ts';
import type { Notification, NotificationStatus, NotificationStore } from './store.ts';
import { type Lang, render, type TemplateVars } from './templates.ts';

export const QUEUE_CRITICAL = 'notify-critical';
export const QUEUE_NORMAL = 'notify';
export const QUEUE_AUDIT = 'escalate';
export const QUEUE_DIGEST = 'digest';
export const AUDIT_SCHEDULER_ID = 'esc-audit';
export const DIGEST_SCHEDULER_ID = 'digest-run';
export type QueueName = typeof QUEUE_CRITICAL | typeof QUEUE_NORMAL | typeof QUEUE_AUDIT | typeof QUEUE_DIGEST;

const MINUTE = 60_000;
const STOP_STATES: readonly Alert['status'][] = ['acknowledged', 'resolved', 'cancelled'];
/** The retry backoff of SMS jobs: doubling, capped (see `settings.backoffStrategy` of the workers). */
const CAPPED_BACKOFF = 'capped';
/** 2 + 4 + 8 s, then 10 s apart: about 10 minutes of retries, the SMS validity period. */
const SMS_ATTEMPTS = 60;

/** How far back the auditor looks for open alerts whose escalation never started, and how long it leaves them. */
const ORPHAN_LOOKBACK_MS = 24 * 3_600_000;
const ORPHAN_GRACE_MS = 30_000;
const ALL_SCOPE: Scope = { all: true, gridIds: [] };

/** Severities whose permanent send failures escalate at once. */
const ESCALATE_ON_PERMANENT_FAILURE: readonly Severity[] = ['critical', 'major'];
export const BAD_PHONE_ALERT_TYPE = 'bad_phone_number';

/** The policy frozen into an alert when it opened. */
export interface FrozenEscalation {
  alertId: string;
  policyName: string;
  steps: Step[];
  /** epoch ms: the alert's firstSeen, the base of every step's afterMinutes */
  startedAt: number;
  severity: Severity;
  /** indexes of the steps already dispatched */
  done: number[];
}

/** A held batch for one recipient: a bundle (slot = the window's end) or a digest (slot = the run's minute). */
export interface BatchJobData {
  kind: 'bundle' | 'digest';
  phone: string;
  drill: boolean;
  slot: number;
}

/** Work forwarded to the node that owns the timers (from a sending-only worker node). */
export type ForwardJobData =
  | { op: 'opened'; alertId: string }
  | { op: 'stopped'; alertId: string }
  | { op: 'escalate-now'; alertId: string; failedStep: number; reason: string };

/** When the working-hours digest goes out (community time zone). */
export interface DigestSettings {
  /** cron pattern (BullMQ Job Scheduler), e.g. `0 9,15 * * *` */
  cron: string;
  /** 'HH:MM'; a digest run outside [from, to) sends nothing */
  from: string;
  to: string;
  timezone: string;
}

/** One SMS job: one recipient of one step. */
export interface NotifyJobData {
  alertId: string;
  step: number;
  phone: string;
  staffId?: string;
  as: string;
}

export interface EscalatorDeps {
  alerts: {
    get(id: string): Promise<Alert | undefined>;
    /** open alerts for the auditor's orphan check (AlertService.list); without it the check is skipped */
    list?(
      filter: { status: 'open'; since: number },
      scope: Scope,
      page: { limit: number },
    ): Promise<{ items: Alert[] }>;
  };
  policies: () => readonly Policy[];
  recipients: { resolve(to: readonly string[], alert: Alert): Promise<Recipient[]> };
  store: NotificationStore;
  transport: SmsTransport;
  gate?: RecipientGate;
  clock: Clock;
  /** commands (the frozen records, the durable timers) */
  redis: Redis;
  /** a NEW connection for each BullMQ queue / worker, with `maxRetriesPerRequest: null`; closed by stop() */
  connection: () => Redis;
  logger: Logger;
  lang?: Lang;
  /** default `gw:esc` (hash `gw:esc:policy`, timers `gw:esc:timers:*`) */
  keyPrefix?: string;
  /** BullMQ key prefix; default `gw:bull` */
  bullPrefix?: string;
  /** the escalator's own scheduler; default a RedisScheduler on `<keyPrefix>:timers` */
  scheduler?: MemoryScheduler;
  /** default true: run the workers in this process (false: a producer-only node) */
  workers?: boolean;
  /** default 60 s */
  auditEveryMs?: number;
  /** BullMQ retry backoff: doubling from this (default 2000 ms) up to maxBackoffMs (default 10 s) */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** passed to the transport (drop a stale SMS at the provider); default 600 s */
  validitySeconds?: number;
  /** default true: this node owns the step timers and the `escalate` queue (false: a sending-only worker node) */
  timers?: boolean;
  /** the working-hours digest; without it digest notifications stay held (a test) */
  digest?: DigestSettings;
  /** BullMQ worker lock: a worker that died mid-job loses its job to another after this long; default 30 s */
  lockDurationMs?: number;
  /** how often workers look for such stalled jobs; default 30 s */
  stalledIntervalMs?: number;
  /** the household (room, masked resident name) for the SMS text; without it the text uses the alert's ids only */
  households?: { getHousehold(id: string): Promise<Pick<Household, 'room' | 'residents'> | undefined> };
  /**
   * Raises a maintenance alert (`AlertSink.raise`), here `bad_phone_number` after a permanent send failure.
   * Optional: without it the failure is only logged and recorded on the notification.
   */
  raiseAlert?: (input: AlertInput) => Promise<unknown>;
}

type SchedulerLike = MemoryScheduler & Partial<Pick<RedisScheduler, 'start' | 'stop' | 'flush'>>;

export class Escalator implements Module {
  readonly name = 'escalation';
  readonly scheduler: SchedulerLike;
  private readonly log: Logger;
  private readonly lang: Lang;
  private readonly policyKey: string;
  private readonly bullPrefix: string;
  private readonly connections: Redis[] = [];
  private queues: Record<string, Queue> = {};
  private workers: Worker[] = [];
  private readonly inflight = new Set<Promise<unknown>>();
  /** per alert: record updates run one after the other in this process */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** notifications that already passed the gate in this process (a retry must not be dropped as a duplicate) */
  private readonly gated = new Set<string>();
  private started = false;

  constructor(private readonly deps: EscalatorDeps) {
    const prefix = deps.keyPrefix ?? 'gw:esc';
    this.policyKey = `${prefix}:policy`;
    this.bullPrefix = deps.bullPrefix ?? 'gw:bull';
    this.log = deps.logger;
    this.lang = deps.lang ?? 'zh';
    this.scheduler = deps.scheduler ?? new RedisScheduler(deps.clock, deps.redis, deps.logger, `${prefix}:timers`, 200);
  }

  // ------------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    const timers = this.deps.timers !== false;
    if (timers) await this.scheduler.start?.();
    const queueOpts = (attempts: number) => ({
      prefix: this.bullPrefix,
      connection: this.conn(),
      defaultJobOptions: {
        attempts,
        backoff: { type: CAPPED_BACKOFF, delay: this.deps.backoffMs ?? 2000 },
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        removeOnFail: { age: 7 * 24 * 3600 },
      },
    });
    this.queues = {
      // An SMS keeps being retried through a provider outage for about as long as it may still be delivered
      // (its validity period, 10 min by default): 2, 4, 8 s, then every 10 s.
      [QUEUE_CRITICAL]: new Queue(QUEUE_CRITICAL, queueOpts(SMS_ATTEMPTS)),
      [QUEUE_NORMAL]: new Queue(QUEUE_NORMAL, queueOpts(SMS_ATTEMPTS)),
      [QUEUE_AUDIT]: new Queue(QUEUE_AUDIT, queueOpts(3)),
      [QUEUE_DIGEST]: new Queue(QUEUE_DIGEST, queueOpts(5)),
    };
    // BullMQ prints a queue's connection errors to stderr when nobody listens; the node's main Redis connection
    // already reports an outage (and /readyz shows it), so these only go to the debug log
    for (const [name, queue] of Object.entries(this.queues))
      queue.on('error', (err) => this.log.debug({ err: err.message, queue: name }, 'notify queue connection error'));
    const workerOpts = (concurrency: number) => ({
      prefix: this.bullPrefix,
      connection: this.conn(),
      concurrency,
      lockDuration: this.deps.lockDurationMs ?? 30_000,
      settings: {
        backoffStrategy: (attemptsMade: number) =>
          Math.min(
            this.deps.maxBackoffMs ?? 10_000,
            (this.deps.backoffMs ?? 2000) * 2 ** Math.max(0, attemptsMade - 1),
          ),
      },
      stalledInterval: this.deps.stalledIntervalMs ?? 30_000,
    });
    const onFailed = (job: Job | undefined, err: Error) =>
      this.log.warn({ jobId: job?.id, attempts: job?.attemptsMade, err: err.message }, 'notify job failed');
    if (this.deps.workers !== false) {
      for (const [q, concurrency] of [
        [QUEUE_CRITICAL, 16],
        [QUEUE_NORMAL, 4],
        [QUEUE_DIGEST, 2],
      ] as const) {
        const w = new Worker(q, (job) => this.process(job), workerOpts(concurrency));
        w.on('failed', onFailed);
        w.on('error', (err) => this.log.warn({ err: err.message, queue: q }, 'notify worker error'));
        this.workers.push(w);
      }
    }
    if (timers) {
      const esc = new Worker(QUEUE_AUDIT, (job) => this.processEscalate(job), workerOpts(4));
      esc.on('failed', onFailed);
      esc.on('error', (err) => this.log.warn({ err: err.message }, 'escalation worker error'));
      this.workers.push(esc);
      await this.queues[QUEUE_AUDIT]!.upsertJobScheduler(
        AUDIT_SCHEDULER_ID,
        { every: this.deps.auditEveryMs ?? MINUTE },
        { name: AUDIT_SCHEDULER_ID, opts: { removeOnComplete: true, removeOnFail: 100 } },
      );
      const d = this.deps.digest;
      if (d) {
        await this.queues[QUEUE_DIGEST]!.upsertJobScheduler(
          DIGEST_SCHEDULER_ID,
          { pattern: d.cron, tz: d.timezone },
          { name: DIGEST_SCHEDULER_ID, opts: { removeOnComplete: true, removeOnFail: 100 } },
        );
      }
      this.scheduler.onFire((t) => this.track(this.serial(String(t.data?.alertId), () => this.stepDue(t))));
    }
    this.started = true;
  }

  async stop(): Promise<void> {
    this.started = false;
    this.scheduler.stopTimers();
    await this.idle().catch(() => {});
    await Promise.allSettled(this.workers.map((w) => w.close()));
    await Promise.allSettled(Object.values(this.queues).map((q) => q.close()));
    await this.scheduler.stop?.();
    await Promise.allSettled(this.connections.map((c) => c.quit().catch(() => c.disconnect())));
    this.workers = [];
    this.queues = {};
    this.connections.length = 0;
  }

  /** Waits until the step handlers started so far (and those they start) are done: for tests and shutdown. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  queue(name: QueueName): Queue {
    const q = this.queues[name];
    if (!q) throw new Error('escalation not started');
    return q;
  }

  // ------------------------------------------------------------------ alert lifecycle (AlertService.onChange)

  /** For the AlertService's `onChange`: opened → escalate; acknowledged / resolved / cancelled → stop. */
  onAlertChange(alert: Alert, change: AlertChange): void {
    const stop = change === 'acknowledged' || change === 'resolved' || change === 'cancelled';
    if (change !== 'opened' && !stop) return;
    if (this.deps.timers === false) {
      // a worker node: the node that owns the timers starts or stops the escalation
      const data: ForwardJobData = { op: stop ? 'stopped' : 'opened', alertId: alert.id };
      this.track(this.queue(QUEUE_AUDIT).add(data.op, data, { jobId: `f-${data.op}-${safeId(alert.id)}` }));
    } else this.track(stop ? this.stopped(alert.id) : this.opened(alert));
  }

  /** The `escalate` queue: the auditor and work forwarded by worker nodes. */
  private async processEscalate(job: Job): Promise<unknown> {
    if (job.name === AUDIT_SCHEDULER_ID) return this.audit();
    const f = job.data as ForwardJobData;
    if (f.op === 'opened') {
      const alert = await this.deps.alerts.get(f.alertId);
      return alert && !STOP_STATES.includes(alert.status) ? this.opened(alert) : undefined;
    }
    if (f.op === 'stopped') return this.stopped(f.alertId);
    if (f.op === 'escalate-now') return this.escalateNow(f.alertId, f.failedStep, f.reason);
    return undefined;
  }

  /** Chooses and freezes the policy of a newly opened alert and schedules its steps. Idempotent. */
  async opened(alert: Pick<Alert, 'id' | 'category' | 'severity' | 'colour' | 'firstSeen'>): Promise<void> {
    return this.serial(alert.id, async () => {
      const policy = policyFor(this.deps.policies(), alert);
      if (!policy) {
        this.log.warn(
          { alertId: alert.id, category: alert.category, severity: alert.severity },
          'no policy: nobody is told',
        );
        return;
      }
      const frozen: FrozenEscalation = {
        alertId: alert.id,
        policyName: policy.name,
        steps: structuredClone(policy.steps),
        startedAt: Date.parse(alert.firstSeen),
        severity: alert.severity,
        done: [],
      };
      // first writer wins: a repeated `opened` (or a second node) keeps the policy frozen the first time
      await this.deps.redis.hsetnx(this.policyKey, alert.id, JSON.stringify(frozen));
      const rec = await this.frozen(alert.id);
      if (!rec) return;
      for (let i = 0; i < rec.steps.length; i++) {
        if (!rec.done.includes(i) && !this.scheduler.get(timerKey(rec.alertId, i))) this.schedule(rec, i);
      }
      this.log.info({ alertId: alert.id, policy: policy.name, steps: rec.steps.length }, 'escalation started');
    });
  }

  /** The alert was acknowledged, resolved or cancelled: its later steps are cancelled. */
  async stopped(alertId: string): Promise<void> {
    return this.serial(alertId, async () => {
      const rec = await this.frozen(alertId);
      for (let i = 0; i < (rec?.steps.length ?? 16); i++) this.scheduler.cancel(timerKey(alertId, i));
      await this.deps.redis.hdel(this.policyKey, alertId);
    });
  }

  /** The frozen escalation of an alert (undefined once it ended or when no policy applied). */
  async frozen(alertId: string): Promise<FrozenEscalation | undefined> {
    const json = await this.deps.redis.hget(this.policyKey, alertId);
    return json ? (JSON.parse(json) as FrozenEscalation) : undefined;
  }

  // ------------------------------------------------------------------ steps

  private schedule(rec: FrozenEscalation, step: number, at?: number): void {
    const s = rec.steps[step];
    if (!s) return;
    this.scheduler.set({
      key: timerKey(rec.alertId, step),
      at: at ?? rec.startedAt + s.afterMinutes * MINUTE,
      // the Timer type is shared with the rules; the escalator's scheduler only ever holds its own timers
      rule: 'escalation' as unknown as RuleName,
      data: { alertId: rec.alertId, step },
    });
  }

  private async stepDue(t: Timer): Promise<void> {
    await this.runStep(String(t.data?.alertId), Number(t.data?.step));
  }

  /** Runs one step if it is still pending and the alert still open; true when it was dispatched. */
  private async runStep(alertId: string, step: number): Promise<boolean> {
    const rec = await this.frozen(alertId);
    if (!rec || rec.done.includes(step) || !rec.steps[step]) return false; // stale or duplicate timer
    const alert = await this.deps.alerts.get(alertId);
    if (!alert || STOP_STATES.includes(alert.status)) {
      for (let i = 0; i < rec.steps.length; i++) this.scheduler.cancel(timerKey(alertId, i));
      await this.deps.redis.hdel(this.policyKey, alertId);
      return false;
    }
    const now = this.deps.clock.now();
    const notBefore = alert.notBefore ? Date.parse(alert.notBefore) : undefined;
    if (notBefore !== undefined && notBefore > now) {
      this.schedule(rec, step, notBefore);
      return false;
    }
    await this.dispatch(alert, rec, step);
    rec.done.push(step);
    if (rec.done.length >= rec.steps.length) await this.deps.redis.hdel(this.policyKey, alertId);
    else await this.deps.redis.hset(this.policyKey, alertId, JSON.stringify(rec));
    return true;
  }

  /**
   * Dispatches the step after `failedStep` now instead of at its time, if it is still pending (a second failure in
   * the same step does not skip further up the chain). Returns the step dispatched, or undefined.
   */
  private async escalateNow(alertId: string, failedStep: number, reason: string): Promise<number | undefined> {
    if (this.deps.timers === false) {
      const data: ForwardJobData = { op: 'escalate-now', alertId, failedStep, reason };
      await this.queue(QUEUE_AUDIT).add(data.op, data, { jobId: `f-esc-${safeId(alertId)}-${failedStep}` });
      return undefined;
    }
    return this.serial(alertId, async () => {
      const rec = await this.frozen(alertId);
      const next = failedStep + 1;
      if (!rec?.steps[next] || rec.done.includes(next)) return undefined;
      this.scheduler.cancel(timerKey(alertId, next));
      // not dispatched: the alert ended (its record is gone) or is in a cancel window (runStep re-timed the step)
      if (!(await this.runStep(alertId, next))) return undefined;
      this.log.warn({ alertId, step: next, after: failedStep, reason }, 'escalated at once');
      return next;
    });
  }

  /**
   * The provider reports a notification `failed` / `undelivered` (the Twilio status webhook): when its alert is
   * critical and still open, the step after the notification's step is dispatched now. Idempotent (a repeated
   * callback finds that step done). Returns the step dispatched, or undefined.
   */
  async deliveryFailed(notificationId: string): Promise<number | undefined> {
    const n = await this.deps.store.get(notificationId);
    if (!n || (n.status !== 'failed' && n.status !== 'undelivered')) return undefined;
    const alert = await this.deps.alerts.get(n.alertId);
    if (alert?.severity !== 'critical' || alert.status !== 'open') return undefined;
    return this.escalateNow(alert.id, n.step, `delivery ${n.status}${n.errorCode ? ` ${n.errorCode}` : ''}`);
  }

  private async dispatch(alert: Alert, rec: FrozenEscalation, step: number): Promise<void> {
    const s = rec.steps[step]!;
    const recipients = await this.deps.recipients.resolve(s.to, alert);
    if (recipients.length === 0) this.log.warn({ alertId: alert.id, step, to: s.to }, 'escalation step reaches nobody');
    if (s.channel === 'digest') {
      const body = await this.body(alert);
      for (const r of recipients) {
        const { notification } = await this.deps.store.createPending({
          alertId: alert.id,
          step,
          recipient: r.phone,
          staffId: r.staffId,
          role: roleLabel(r),
          body,
          transport: 'digest',
          drill: alert.drill,
        });
        await this.deps.store.advance(notification.id, 'bundled', { detail: 'for the working-hours digest' });
      }
      return;
    }
    const queue = this.queue(rec.severity === 'critical' ? QUEUE_CRITICAL : QUEUE_NORMAL);
    await queue.addBulk(
      recipients.map((r) => ({
        name: 'sms',
        data: { alertId: alert.id, step, phone: r.phone, staffId: r.staffId, as: roleLabel(r) } satisfies NotifyJobData,
        opts: { jobId: jobId(alert.id, step, r.phone) },
      })),
    );
    this.log.info({ alertId: alert.id, step, recipients: recipients.length }, 'escalation step dispatched');
  }

  // ------------------------------------------------------------------ the workers

  /** The sending queues: one SMS of a step, a held bundle, a digest run, one recipient's digest. */
  private async process(job: Job): Promise<unknown> {
    if (job.name === DIGEST_SCHEDULER_ID) return this.runDigest();
    if (job.name === 'bundle' || job.name === 'digest') return this.processBatch(job as Job<BatchJobData>);
    return this.processJob(job as Job<NotifyJobData>);
  }

  /** Sends one SMS of one step to one recipient, at most once whatever BullMQ redelivers. */
  async processJob(job: Pick<Job<NotifyJobData>, 'data' | 'attemptsMade' | 'id'>): Promise<string> {
    const { alertId, step, phone, staffId, as } = job.data;
    const alert = await this.deps.alerts.get(alertId);
    if (!alert) return 'no-alert';
    const body = await this.body(alert);
    const { notification: n, created } = await this.deps.store.createPending({
      alertId,
      step,
      recipient: phone,
      staffId,
      role: as,
      body,
      transport: this.deps.transport.name,
      drill: alert.drill,
    });
    if (n.providerId || n.status !== 'pending') return `already-${n.status}`;
    // a later step for an alert acknowledged meanwhile: not sent (the first SMS of a step still goes if open)
    if (STOP_STATES.includes(alert.status)) {
      await this.deps.store.advance(n.id, 'capped', { detail: `alert ${alert.status} before sending` });
      return 'alert-closed';
    }
    // an earlier attempt (or a worker that died mid-send) may have reached the provider: look before sending
    if (await this.foundEarlier(n, job.attemptsMade > 0 || !created)) return 'found';
    const gate = this.deps.gate;
    if (gate && job.attemptsMade === 0 && !this.gated.has(n.id)) {
      const first = await this.firstToRecipient(alertId, phone, n.id);
      const d = gate.decide({
        recipient: phone,
        body: n.body,
        alertId,
        severity: alert.severity,
        firstForAlertToRecipient: first,
        drill: alert.drill,
      });
      if (d.action === 'drop') {
        await this.deps.store.advance(n.id, 'capped', { detail: d.reason });
        return 'capped';
      }
      if (d.action === 'bundle') {
        await this.deps.store.advance(n.id, 'bundled', { detail: `bundle until ${new Date(d.until).toISOString()}` });
        await this.holdForBundle(phone, alert, d.until);
        return 'bundled';
      }
      this.gated.add(n.id);
      if (this.gated.size > 10_000) this.gated.delete(this.gated.values().next().value!);
    }
    const res = await this.send(n);
    if (res === 'failed') await this.permanentFailure(alert, step, as, staffId, n.errorCode ?? '');
    return res;
  }

  /** A held bundle goes out at the end of its window: one delayed job per recipient and window. */
  private async holdForBundle(phone: string, alert: Alert, until: number): Promise<void> {
    const data: BatchJobData = { kind: 'bundle', phone, drill: alert.drill, slot: until };
    const queue = this.queue(alert.severity === 'critical' ? QUEUE_CRITICAL : QUEUE_NORMAL);
    await queue.add('bundle', data, {
      jobId: batchJobId(data),
      delay: Math.max(0, until - this.deps.clock.now()),
    });
  }

  /**
   * Sends the messages held for one recipient as ONE SMS: the carrier notification is written (and the held ones
   * linked to it) before sending, so a redelivered job finds it and never sends twice. Held notifications of alerts
   * closed meanwhile are withdrawn. Returns what happened.
   */
  async processBatch(job: Pick<Job<BatchJobData>, 'data' | 'attemptsMade'>): Promise<string> {
    const { kind, phone, drill, slot } = job.data;
    const key = `${kind}|${drill ? 'drill' : 'real'}|${phone}|${slot}`;
    if (kind === 'bundle') this.deps.gate?.takeBundle(phone, drill);
    let carrier = await this.deps.store.getByDedupeKey(key);
    const created = !carrier;
    if (!carrier) {
      const held = await this.deps.store.held({
        recipient: phone,
        drill,
        transport: kind === 'digest' ? 'digest' : this.deps.transport.name,
      });
      const items: { n: Notification; alert: Alert }[] = [];
      for (const n of held) {
        const alert = await this.deps.alerts.get(n.alertId);
        // a bundle is for alerts nobody answered yet; a digest lists what is still to be done
        const stillDue =
          alert && (kind === 'digest' ? !['resolved', 'cancelled'].includes(alert.status) : alert.status === 'open');
        if (alert && stillDue) items.push({ n, alert });
        else await this.deps.store.withdraw(n.id, `alert ${alert?.status ?? 'gone'} before the ${kind}`);
      }
      if (items.length === 0) return 'empty';
      const body =
        kind === 'bundle' && items.length === 1
          ? items[0]!.n.body
          : render(
              kind,
              {
                drill,
                items: items.map(({ alert }) => ({
                  ...smsVars(alert),
                  alertType: alert.type,
                  alertId: alert.id,
                  count: alert.count,
                })),
              },
              this.lang,
            );
      const first = items[0]!.n;
      carrier = (
        await this.deps.store.createBatch({
          dedupeKey: key,
          alertId: first.alertId,
          step: first.step,
          recipient: phone,
          staffId: first.staffId,
          role: kind,
          body,
          transport: this.deps.transport.name,
          drill,
          memberIds: items.map((i) => i.n.id),
        })
      ).notification;
    }
    if (carrier.providerId || carrier.status !== 'pending') return `already-${carrier.status}`;
    if (await this.foundEarlier(carrier, job.attemptsMade > 0 || !created)) return 'found';
    const res = await this.send(carrier);
    this.log.info({ kind, drill, to: maskPhone(phone), result: res }, `${kind} sent`);
    return res;
  }

  /**
   * The working-hours digest: one `digest` job per recipient with held digest notifications, or nothing outside
   * working hours (minor and maintenance alerts never wake anyone). Returns how many recipients it queued.
   */
  async runDigest(now = this.deps.clock.now()): Promise<number> {
    const d = this.deps.digest;
    if (!d) return 0;
    if (!withinHours(now, d)) {
      this.log.info({ from: d.from, to: d.to }, 'digest run outside working hours: nothing sent');
      return 0;
    }
    const recipients = await this.deps.store.heldRecipients('digest');
    const slot = Math.floor(now / MINUTE) * MINUTE;
    await this.queue(QUEUE_DIGEST).addBulk(
      recipients.map(({ recipient, drill }) => {
        const data: BatchJobData = { kind: 'digest', phone: recipient, drill, slot };
        return { name: 'digest', data, opts: { jobId: batchJobId(data) } };
      }),
    );
    if (recipients.length > 0) this.log.info({ recipients: recipients.length }, 'digest queued');
    return recipients.length;
  }

  /** After an ambiguous earlier attempt: is the message already at the provider? Then only the record is updated. */
  private async foundEarlier(n: Notification, maybeSent: boolean): Promise<boolean> {
    if (!maybeSent || !this.deps.transport.findRecent) return false;
    const found = await this.deps.transport.findRecent({ to: n.recipient, body: n.body, since: new Date(n.createdAt) });
    if (!found) return false;
    await this.deps.store.accepted(n.id, found.providerId, providerStatus(found.status));
    return true;
  }

  /** Hands a written record to the transport: 'sent', or 'failed' (permanent); a transient failure throws (retry). */
  private async send(n: Notification): Promise<'sent' | 'failed'> {
    const res = await this.deps.transport.send({
      to: n.recipient,
      body: n.body,
      notificationId: n.id,
      validitySeconds: this.deps.validitySeconds ?? 600,
    });
    if (res.ok) {
      await this.deps.store.accepted(n.id, res.providerId, providerStatus(res.status));
      return 'sent';
    }
    if (res.permanent) {
      await this.deps.store.failed(n.id, res.code, res.message);
      n.errorCode = res.code;
      this.log.warn(
        { alertId: n.alertId, step: n.step, to: maskPhone(n.recipient), code: res.code },
        'sms failed permanently',
      );
      return 'failed';
    }
    throw new Error(`sms transient failure ${res.code}: ${res.message}`);
  }

  /** After a permanent failure: the next step at once (critical / major), and a maintenance alert for the number. */
  private async permanentFailure(
    alert: Alert,
    step: number,
    as: string,
    staffId: string | undefined,
    code: string,
  ): Promise<void> {
    if (ESCALATE_ON_PERMANENT_FAILURE.includes(alert.severity) && alert.status === 'open') {
      // errors are logged, never thrown: the job itself is done (a retry would only find the record failed)
      await this.escalateNow(alert.id, step, `send failed permanently ${code}`).catch((err: unknown) =>
        this.log.error({ err, alertId: alert.id, step }, 'escalating after a permanent failure failed'),
      );
    }
    const raise = this.deps.raiseAlert;
    if (!raise) return;
    if (!alert.householdId) {
      this.log.warn({ alertId: alert.id, step, as, code }, 'bad phone number: no household to raise it on');
      return;
    }
    const now = this.deps.clock.now();
    const who = staffId ? `${as} (${staffId})` : as;
    await raise({
      type: BAD_PHONE_ALERT_TYPE,
      category: 'maintenance',
      severity: 'minor',
      subject: {
        householdId: alert.householdId,
        unitId: alert.unitId,
        buildingId: alert.buildingId,
        areaId: alert.areaId,
        gridId: alert.gridId,
        communityId: alert.communityId,
        colour: alert.colour,
      },
      keyOn: 'household',
      // the number is really bad, drill or not
      drill: false,
      ts: now,
      evidence: [{ ts: now, kind: 'status', note: `error ${code}` }],
      summary: `SMS to ${who} failed permanently: check the phone number`,
    }).catch((err: unknown) => this.log.error({ err, alertId: alert.id }, 'raising bad_phone_number failed'));
  }

  private async firstToRecipient(alertId: string, phone: string, selfId: string): Promise<boolean> {
    const page = await this.deps.store.list({ alertId }, { limit: 200 });
    const sentStates: NotificationStatus[] = ['queued', 'sent', 'delivered'];
    return !page.items.some(
      (x: Notification) => x.id !== selfId && x.recipient === phone && sentStates.includes(x.status),
    );
  }

  /** The alert's SMS text: address from the ids, room and masked resident name from the household when known. */
  private async body(alert: Alert): Promise<string> {
    const vars = smsVars(alert);
    if (alert.householdId && this.deps.households) {
      const h = await this.deps.households.getHousehold(alert.householdId).catch(() => undefined);
      if (h) {
        vars.room = h.room || vars.room;
        // residents' display names are already masked (张*兰)
        vars.name = h.residents[0]?.displayName;
      }
    }
    return render(alert.type, vars, this.lang);
  }

  // ------------------------------------------------------------------ auditor

  /**
   * Finds frozen escalations whose next step is due, not dispatched and without a timer, and schedules them now.
   * Ended alerts lose their record. Returns how many steps it restarted.
   */
  async audit(): Promise<number> {
    const all = await this.deps.redis.hgetall(this.policyKey);
    const now = this.deps.clock.now();
    let restarted = 0;
    for (const json of Object.values(all)) {
      let rec: FrozenEscalation;
      try {
        rec = JSON.parse(json) as FrozenEscalation;
      } catch {
        continue;
      }
      for (let i = 0; i < rec.steps.length; i++) {
        if (rec.done.includes(i) || this.scheduler.get(timerKey(rec.alertId, i))) continue;
        if (rec.startedAt + rec.steps[i]!.afterMinutes * MINUTE > now) continue;
        this.schedule(rec, i, now);
        restarted++;
      }
    }
    if (restarted > 0) this.log.warn({ restarted }, 'escalation auditor restarted overdue steps');
    return restarted + (await this.adoptOrphans(all, now));
  }

  /**
   * Open alerts whose escalation never started: the process died between the alert's commit and its `opened`
   * (a replayed event then only repeats into the alert). Nobody was told and nothing is frozen for them, so they are
   * started now. A grace period leaves a just-opened alert to the node that is starting it.
   */
  private readonly adopted = new Set<string>();

  private async adoptOrphans(frozen: Record<string, string>, now: number): Promise<number> {
    const list = this.deps.alerts.list;
    if (!list) return 0;
    const page = await list.call(this.deps.alerts, { status: 'open', since: now - ORPHAN_LOOKBACK_MS }, ALL_SCOPE, {
      limit: 500,
    });
    let adopted = 0;
    for (const a of page.items) {
      // once per alert and process: an escalation that ran its course with nobody to tell must not start over
      if (a.id in frozen || this.adopted.has(a.id) || Date.parse(a.firstSeen) > now - ORPHAN_GRACE_MS) continue;
      if (!policyFor(this.deps.policies(), a)) continue;
      const told = await this.deps.store.list({ alertId: a.id }, { limit: 1 });
      if (told.items.length > 0) continue;
      if (this.adopted.size >= 10_000) this.adopted.clear();
      this.adopted.add(a.id);
      await this.opened(a);
      adopted++;
    }
    if (adopted > 0) this.log.warn({ adopted }, 'escalation auditor started escalations that never began');
    return adopted;
  }

  // ------------------------------------------------------------------ helpers

  private conn(): Redis {
    const c = this.deps.connection();
    this.connections.push(c);
    return c;
  }

  private track<T>(p: Promise<T>): void {
    const q = p.catch((err: unknown) => this.log.error({ err }, 'escalation failed'));
    this.inflight.add(q);
    void q.finally(() => this.inflight.delete(q));
  }

  private serial<T>(alertId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(alertId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.chains.set(alertId, tail);
    void tail.then(() => {
      if (this.chains.get(alertId) === tail) this.chains.delete(alertId);
    });
    return run;
  }

  get running(): boolean {
    return this.started;
  }
}

/** The recipient's role as recorded on the notification, saying when the roster changed who it is. */
export function roleLabel(r: Recipient): string {
  if (r.substituteFor) return `${r.as} (substitute for ${r.substituteFor})`;
  if (r.offDuty) return `${r.as} (off duty, no substitute)`;
  return r.as;
}

/** BullMQ job ids: no ':' and never all digits. */
function safeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]/g, '_');
}

export function batchJobId(d: BatchJobData): string {
  return `${d.kind === 'bundle' ? 'b' : 'd'}-${d.drill ? 'd' : 'r'}-${d.phone.replace(/\D/g, '')}-${d.slot}`;
}

/** Is `now` within the digest's working hours, in its time zone? */
export function withinHours(now: number, d: Pick<DigestSettings, 'from' | 'to' | 'timezone'>): boolean {
  const hm = new Intl.DateTimeFormat('en-GB', {
    timeZone: d.timezone,
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(now);
  return hm >= d.from && hm < d.to;
}

export function timerKey(alertId: string, step: number): string {
  return `esc|${alertId}|${step}`;
}

/** `n-<alertId>-<step>-<phone digits>`: no ':' (alert ids are UUIDs / safe ids), never all digits. */
export function jobId(alertId: string, step: number, phone: string): string {
  return `n-${alertId.replace(/:/g, '_')}-${step}-${phone.replace(/\D/g, '')}`;
}

function providerStatus(s: string): NotificationStatus {
  if (s === 'queued' || s === 'accepted' || s === 'scheduled') return 'queued';
  if (s === 'delivered') return 'delivered';
  if (s === 'undelivered') return 'undelivered';
  if (s === 'failed') return 'failed';
  return 'sent';
}

/**
 * Template variables from the alert's ids alone (the registry's names are not looked up here): the sample
 * convention `b-<community>-03` → building 3, `u-<community>-03-2` → unit 2, `h-<community>-03-2-0501` → room 501.
 * Ids of another shape give no address (the SMS then says the alert type and code only); ids themselves never
 * reach the text. Resident names are not included (no registry lookup yet).
 */
export function smsVars(
  alert: Pick<Alert, 'id' | 'drill' | 'buildingId' | 'unitId' | 'householdId' | 'firstSeen'>,
): TemplateVars {
  const building = /^b-.+-(\d{1,4})$/.exec(alert.buildingId ?? '')?.[1];
  const unit = /^u-.+-\d{1,4}-(\d{1,3})$/.exec(alert.unitId ?? '')?.[1];
  const room = /^h-.+-\d{1,4}-\d{1,3}-(\d{3,5})$/.exec(alert.householdId ?? '')?.[1];
  return {
    alertId: alert.id,
    drill: alert.drill,
    building: building ? String(Number(building)) : undefined,
    unit: unit ? String(Number(unit)) : undefined,
    room: room ? String(Number(room)) : undefined,
    ts: Date.parse(alert.firstSeen),
  };
}
