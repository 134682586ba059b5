/**
 * The drill runner (issue 6): starts a scenario, fires its injects on the Clock port, tracks tasks, links the
 * drill's alerts, keeps everything in the relational store and tells the consoles of every change.
 *
 * - Drill clock: running time since the start, pauses excluded (`elapsedAt` over the stored running segments). A
 *   timed inject (`at`) is due at that drill time; an `after` inject becomes due `delaySeconds` of drill time after
 *   its inject fired or its task was done. Pausing cancels the timers, resuming re-arms them, so every later inject
 *   moves by the length of the pause. Timers are Clock timeouts: on a VirtualClock a test runs a whole scenario.
 * - Device events are published by drill devices over the real MQTT path (src/drills/devices.ts); messages are
 *   recorded, shown live and sent as 【演练】 SMS to the participants; tasks are issued and marked done.
 * - A drill alert (from a drill device) belongs to the running drill whose devices raised it (or, failing that, whose
 *   scope holds its place); `audienceFor` tells the notifications who may be texted about it: the participants only.
 * - Restart: the runner resumes running and paused drills from the stored state. Drill devices get new secrets,
 *   timers are rebuilt, and injects that fell due while the node was down fire at once, in order (the drill clock
 *   keeps running through a restart: a drill is an exercise in real time).
 * - One node runs a drill's timers: the node whose runner started it (the embedded default is one node).
 */
import { randomUUID } from 'node:crypto';
import type { DeviceModel } from '../../devices/index.ts';
import type { AlertChange, StoredAlert } from '../alerts/service.ts';
import type { Alert } from '../alerts/types.ts';
import type { Cancel, Clock } from '../clock/clock.ts';
import type { Module } from '../lifecycle/module.ts';
import { type Logger, maskName } from '../logger.ts';
import type { Notification, NotificationStore } from '../notify/store.ts';
import type { SmsTransport } from '../notify/sms/port.ts';
import { RegistryError, type Scope, type Staff } from '../registry/port.ts';
import type { SqlRegistry } from '../registry/registry.ts';
import type { InstallTarget, Role } from '../registry/types.ts';
import { type DrillDeviceRegistry, DrillDevices, drillDeviceId } from './devices.ts';
import { PlaceIndex } from './places.ts';
import {
  DRILL_SMS_PREFIX,
  type DeviceEventAction,
  type Inject,
  type MessageAction,
  type Place,
  placeId,
  registryProblems,
  type Scenario,
  type ScenarioFile,
  type TaskAction,
  WIDE_ROLES,
} from './scenario.ts';
import type { ReportInput } from './report.ts';
import { elapsedAt } from './time.ts';
import type { DrillChange, DrillDetail, DrillSummary } from './schemas.ts';
import {
  type DrillEvent,
  type DrillRecord,
  DrillStore,
  type DrillTask,
  type Participant,
  type Rating,
  RATINGS,
  type TaskTargets,
} from './store.ts';

export { elapsedAt } from './time.ts';

export const MAX_NOTE = 2000;

/** Who may be texted about a drill alert. */
export interface DrillAudience {
  drillId: string;
  staffIds: ReadonlySet<string>;
  /** the scenario names residents' emergency contacts as participants */
  emergencyContacts: boolean;
}

/** Where live drill changes go (the ConsoleHub). */
export interface DrillLive {
  drillChanged(
    ev: { drillId: string; change: DrillChange; drill: DrillSummary; detail?: DrillDetail },
    gridIds: readonly string[],
  ): void;
}

export interface DrillRunnerDeps {
  database: SqlRegistry['database'];
  registry: DrillDeviceRegistry & Pick<SqlRegistry, 'listStaff' | 'getStaff' | 'coveredGrids'>;
  alerts: {
    get(id: string): Promise<StoredAlert | undefined>;
    cancel(key: string, reason: string, ts: number, by: string): Promise<unknown>;
    list(
      filter: { since?: number; gridId?: string },
      scope: Scope,
      page: { limit: number; cursor?: string },
    ): Promise<{ items: StoredAlert[]; nextCursor?: string }>;
  };
  notifications: Pick<NotificationStore, 'createPending' | 'accepted' | 'failed' | 'list'>;
  sms: SmsTransport;
  live?: DrillLive;
  clock: Clock;
  logger: Logger;
  scenarios: readonly ScenarioFile[];
  getModel: (id: string) => DeviceModel | undefined;
  /** the embedded broker for the drill devices */
  mqtt: { url: () => string; baseTopic: string };
  /** the community's time zone, for the report's wall times */
  timezone?: string;
}

interface Active {
  rec: DrillRecord;
  timers: Map<string, Cancel>;
  /** linked alerts and their last known status */
  alerts: Map<string, Alert['status']>;
  tasksDone: Set<string>;
  tasksIssued: Set<string>;
  chain: Promise<unknown>;
}

/** What the runner needs to know of an alert to find its drill. */
export type AlertRef = Partial<Pick<Alert, 'id' | 'deviceId' | 'buildingId' | 'gridId' | 'evidence'>>;

/** A drill device an inject publishes from. */
interface DeviceTarget {
  deviceId: string;
  model: string;
  install: InstallTarget;
}

const iso = (ms: number) => new Date(ms).toISOString();

export class DrillRunner implements Module {
  readonly name = 'drills';
  readonly store: DrillStore;
  readonly places: PlaceIndex;
  readonly devices: DrillDevices;
  private readonly active = new Map<string, Active>();
  private readonly log: Logger;
  private readonly clock: Clock;
  private availability = new Map<string, { problems: string[]; communityId?: string }>();
  private started = false;
  /** background work (SMS of a message, alert links), awaited by idle() */
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(private readonly deps: DrillRunnerDeps) {
    this.store = new DrillStore(deps.database);
    this.places = new PlaceIndex(deps.registry.db);
    this.log = deps.logger;
    this.clock = deps.clock;
    this.devices = new DrillDevices({
      registry: deps.registry,
      url: deps.mqtt.url,
      baseTopic: deps.mqtt.baseTopic,
      clock: deps.clock,
      logger: deps.logger,
      getModel: deps.getModel,
    });
  }

  // ------------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    await this.refreshAvailability();
    const unavailable = [...this.availability].filter(([, a]) => a.problems.length > 0);
    for (const [id, a] of unavailable) {
      this.log.warn(
        { scenarioId: id, problems: a.problems },
        'drill scenario not available: its places are not in the registry',
      );
    }
    this.started = true;
    for (const rec of await this.store.active()) {
      const a = await this.activate(rec);
      await this.serial(a, async () => {
        await this.store.event(rec.id, { ts: this.clock.now(), kind: 'restarted', by: 'system' });
        if (rec.status === 'running') {
          await this.connectDevices(a);
          this.arm(a);
        }
      }).catch((err: unknown) => this.log.error({ err, drillId: rec.id }, 'drill could not be resumed'));
      this.log.info({ drillId: rec.id, status: rec.status }, 'drill resumed after a restart');
    }
    this.log.info(
      { scenarios: this.deps.scenarios.length, unavailable: unavailable.length, active: this.active.size },
      'drills ready',
    );
  }

  /** Timers stop and drill devices are disabled; running drills stay running in the store and resume at start. */
  async stop(): Promise<void> {
    this.started = false;
    for (const a of this.active.values()) this.disarm(a);
    await this.idle();
    await Promise.allSettled([...this.active.values()].map((a) => a.chain));
    const ids = [...this.active.values()].flatMap((a) => a.rec.state.devices);
    await this.devices.release(ids).catch((err: unknown) => this.log.warn({ err }, 'drill devices not released'));
    this.active.clear();
  }

  /** Waits for background work (messages' SMS, alert links): for tests. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    await Promise.allSettled([...this.active.values()].map((a) => a.chain));
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.log.error({ err }, 'drill background work failed'));
    this.inflight.add(q);
    void q.finally(() => this.inflight.delete(q));
  }

  private serial<T>(a: Active, fn: () => Promise<T>): Promise<T> {
    const run = a.chain.then(fn, fn);
    a.chain = run.catch(() => {});
    return run;
  }

  private async activate(rec: DrillRecord): Promise<Active> {
    const a: Active = {
      rec,
      timers: new Map(),
      alerts: new Map(),
      tasksDone: new Set(),
      tasksIssued: new Set(),
      chain: Promise.resolve(),
    };
    for (const l of await this.store.alerts(rec.id)) {
      const alert = await this.deps.alerts.get(l.alertId);
      a.alerts.set(l.alertId, alert?.status ?? 'open');
    }
    for (const t of await this.store.tasks(rec.id)) {
      a.tasksIssued.add(t.taskId);
      if (t.status === 'done') a.tasksDone.add(t.taskId);
    }
    this.active.set(rec.id, a);
    return a;
  }

  // ------------------------------------------------------------------ scenarios

  async refreshAvailability(): Promise<void> {
    await this.places.load();
    const next = new Map<string, { problems: string[]; communityId?: string }>();
    for (const { scenario } of this.deps.scenarios) next.set(scenario.id, registryProblems(scenario, this.places));
    this.availability = next;
  }

  scenarios(): (ScenarioFile & {
    available: boolean;
    problems: string[];
    communityId?: string;
    activeDrillId?: string;
  })[] {
    return this.deps.scenarios.map((f) => {
      const a = this.availability.get(f.scenario.id) ?? { problems: [] };
      const active = [...this.active.values()].find(
        (x) => a.communityId !== undefined && x.rec.communityId === a.communityId,
      );
      return {
        ...f,
        available: a.problems.length === 0,
        problems: a.problems,
        communityId: a.communityId,
        activeDrillId: active?.rec.id,
      };
    });
  }

  scenario(id: string): Scenario | undefined {
    return this.deps.scenarios.find((f) => f.scenario.id === id)?.scenario;
  }

  // ------------------------------------------------------------------ controlling a drill

  /** Starts a drill of a scenario: participants resolved, drill devices ready, timed injects armed. */
  async startDrill(scenarioId: string, by: Staff): Promise<DrillRecord> {
    if (!this.started) throw new RegistryError('conflict', 'drills are not running on this node');
    const scenario = this.scenario(scenarioId);
    if (!scenario) throw new RegistryError('not_found', `no drill scenario ${scenarioId}`);
    await this.refreshAvailability();
    const avail = this.availability.get(scenarioId)!;
    if (avail.problems.length > 0 || !avail.communityId) {
      throw new RegistryError(
        'conflict',
        `scenario ${scenarioId} cannot run here: ${avail.problems.join('; ') || 'its scope has no community'}`,
        avail.problems,
      );
    }
    const communityId = avail.communityId;
    const running = [...this.active.values()].find((x) => x.rec.communityId === communityId);
    if (running) {
      throw new RegistryError('conflict', `drill ${running.rec.id} is already ${running.rec.status} in ${communityId}`);
    }
    const scopeGrids = this.places.gridsOf(scenario.scope);
    const participants = await this.participantsOf(scenario, new Set(scopeGrids));
    const now = this.clock.now();
    const id = randomUUID();
    const targets = this.allTargets(scenario);
    const due: Record<string, number> = {};
    for (const inj of scenario.injects) if (inj.trigger.at !== undefined) due[inj.id] = inj.trigger.at * 1000;
    const gridIds = new Set(scopeGrids);
    for (const p of participants) {
      const s = await this.deps.registry.getStaff(p.staffId);
      if (s) for (const g of this.deps.registry.coveredGrids(s)) gridIds.add(g);
    }
    const rec: DrillRecord = {
      id,
      scenarioId,
      communityId,
      status: 'running',
      scenario,
      participants,
      gridIds: [...gridIds].sort(),
      state: { segments: [{ from: now }], fired: {}, due, devices: targets.map((t) => t.deviceId), lastInjectOf: {} },
      startedAt: now,
      startedBy: by.id,
      updatedAt: now,
    };
    // devices first: a drill whose devices cannot connect does not start
    try {
      await this.connectTargets(targets);
    } catch (err) {
      await this.devices.release(rec.state.devices).catch(() => {});
      throw err;
    }
    await this.store.insert(rec);
    const a = await this.activate(rec);
    await this.serial(a, async () => {
      await this.store.event(id, {
        ts: now,
        kind: 'started',
        by: by.id,
        data: { participants: participants.length, devices: targets.length },
      });
      this.publish(a, 'started', { by: by.id });
      this.arm(a);
    });
    this.log.info(
      { drillId: id, scenarioId, by: by.id, participants: participants.length, devices: targets.length },
      'drill started',
    );
    return rec;
  }

  async pause(id: string, by: Staff): Promise<DrillRecord> {
    const a = this.mustBeActive(id);
    return this.serial(a, async () => {
      if (a.rec.status !== 'running')
        throw new RegistryError('conflict', `drill ${id} is ${a.rec.status}, not running`);
      const now = this.clock.now();
      this.disarm(a);
      const last = a.rec.state.segments.at(-1);
      if (last && last.to === undefined) last.to = now;
      a.rec.status = 'paused';
      await this.save(a, now);
      await this.store.event(id, { ts: now, kind: 'paused', by: by.id });
      this.publish(a, 'paused', { by: by.id });
      this.log.info({ drillId: id, by: by.id }, 'drill paused');
      return a.rec;
    });
  }

  async resume(id: string, by: Staff): Promise<DrillRecord> {
    const a = this.mustBeActive(id);
    return this.serial(a, async () => {
      if (a.rec.status !== 'paused') throw new RegistryError('conflict', `drill ${id} is ${a.rec.status}, not paused`);
      const now = this.clock.now();
      await this.connectDevices(a);
      a.rec.state.segments.push({ from: now });
      a.rec.status = 'running';
      await this.save(a, now);
      await this.store.event(id, { ts: now, kind: 'resumed', by: by.id });
      this.publish(a, 'resumed', { by: by.id });
      this.arm(a);
      this.log.info({ drillId: id, by: by.id }, 'drill resumed');
      return a.rec;
    });
  }

  /**
   * Ends the drill: timers stop, drill devices are disabled, the drill's alerts still open or acknowledged are
   * cancelled (their escalation stops), open tasks stay open in the report.
   */
  async end(id: string, by: Staff): Promise<DrillRecord> {
    const a = this.mustBeActive(id);
    const rec = await this.serial(a, async () => {
      const now = this.clock.now();
      this.disarm(a);
      const last = a.rec.state.segments.at(-1);
      if (last && last.to === undefined) last.to = now;
      a.rec.status = 'ended';
      a.rec.endedAt = now;
      a.rec.endedBy = by.id;
      await this.save(a, now);
      await this.store.event(id, { ts: now, kind: 'ended', by: by.id });
      for (const alertId of a.alerts.keys()) {
        const alert = await this.deps.alerts.get(alertId);
        if (alert && (alert.status === 'open' || alert.status === 'acknowledged')) {
          await this.deps.alerts
            .cancel(alert.key, 'the drill ended', now, by.id)
            .catch((err: unknown) => this.log.warn({ err, alertId }, 'drill alert not cancelled at the end'));
        }
      }
      await this.devices.release(a.rec.state.devices);
      this.active.delete(id);
      this.publish(a, 'ended', { by: by.id });
      this.log.info({ drillId: id, by: by.id }, 'drill ended');
      return a.rec;
    });
    return rec;
  }

  /** A controller fires an inject now (a manual one, or a timed one early). */
  async trigger(id: string, injectId: string, by: Staff): Promise<DrillRecord> {
    const a = this.mustBeActive(id);
    return this.serial(a, async () => {
      if (a.rec.status !== 'running')
        throw new RegistryError('conflict', `drill ${id} is ${a.rec.status}: resume it first`);
      const inj = a.rec.scenario.injects.find((x) => x.id === injectId);
      if (!inj) throw new RegistryError('not_found', `no inject ${injectId} in drill ${id}`);
      if (a.rec.state.fired[injectId]) throw new RegistryError('conflict', `inject ${injectId} has fired already`);
      await this.fire(a, inj, by.id, true);
      return a.rec;
    });
  }

  /** A participant (or a controller) marks a task done. */
  async taskDone(id: string, taskId: string, by: Staff, note?: string): Promise<DrillTask> {
    const a = this.mustBeActive(id, 'tasks can only be marked done while the drill runs');
    return this.serial(a, async () => {
      const inj = a.rec.scenario.injects.find((x) => x.id === taskId && x.action.kind === 'task');
      if (!inj) throw new RegistryError('not_found', `no task ${taskId} in drill ${id}`);
      if (!a.tasksIssued.has(taskId)) throw new RegistryError('conflict', `task ${taskId} has not been issued yet`);
      if (note !== undefined && note.length > MAX_NOTE) {
        throw new RegistryError('invalid', `note: at most ${MAX_NOTE} characters`);
      }
      const now = this.clock.now();
      if (!(await this.store.taskDone(id, taskId, now, by.id, note))) {
        throw new RegistryError('conflict', `task ${taskId} is done already`);
      }
      a.tasksDone.add(taskId);
      await this.store.event(id, { ts: now, kind: 'task_done', ref: taskId, by: by.id });
      this.publish(a, 'task_done', { taskId, by: by.id, text: inj.title });
      this.log.info({ drillId: id, taskId, by: by.id }, 'drill task done');
      this.follow(a, { taskId }, now);
      const task = (await this.store.tasks(id)).find((t) => t.taskId === taskId)!;
      return task;
    });
  }

  /** An evaluator's or controller's note: at any time, also after the end. */
  async addNote(id: string, text: string, by: Staff): Promise<void> {
    const rec = await this.record(id);
    if (text.trim() === '' || text.length > MAX_NOTE) {
      throw new RegistryError('invalid', `text: 1 to ${MAX_NOTE} characters`);
    }
    const now = this.clock.now();
    await this.store.addNote(id, now, by.id, text);
    await this.store.event(id, { ts: now, kind: 'note', by: by.id });
    this.publishFor(rec, 'note', { by: by.id });
  }

  /** The evaluator's HSEEP rating of an objective (P, S, M, U); a second rating replaces the first. */
  async rate(id: string, objectiveId: string, rating: Rating, by: Staff, note?: string): Promise<void> {
    const rec = await this.record(id);
    if (!rec.scenario.objectives.some((o) => o.id === objectiveId)) {
      throw new RegistryError('not_found', `no objective ${objectiveId} in drill ${id}`);
    }
    if (!RATINGS.includes(rating)) throw new RegistryError('invalid', `rating: one of ${RATINGS.join(', ')}`);
    if (note !== undefined && note.length > MAX_NOTE)
      throw new RegistryError('invalid', `note: at most ${MAX_NOTE} characters`);
    const now = this.clock.now();
    await this.store.rate(id, { objectiveId, rating, note, by: by.id, ts: now });
    await this.store.event(id, { ts: now, kind: 'rating', ref: objectiveId, by: by.id, data: { rating } });
    this.publishFor(rec, 'rating', { objectiveId, by: by.id });
  }

  // ------------------------------------------------------------------ reading

  /** The drill from memory (active) or the store. */
  async record(id: string): Promise<DrillRecord> {
    const rec = this.active.get(id)?.rec ?? (await this.store.get(id));
    if (!rec) throw new RegistryError('not_found', `no drill ${id}`);
    return rec;
  }

  isParticipant(rec: DrillRecord, staffId: string): boolean {
    return rec.participants.some((p) => p.staffId === staffId);
  }

  /** May this person see the drill? All-seeing roles, its participants, and staff of its grids. */
  canSee(rec: DrillRecord, staff: Staff, scope: Scope): boolean {
    return scope.all || this.isParticipant(rec, staff.id) || rec.gridIds.some((g) => scope.gridIds.includes(g));
  }

  /** Drill time now (ms). */
  elapsed(rec: DrillRecord, at = this.clock.now()): number {
    return elapsedAt(rec.state.segments, at);
  }

  async summary(rec: DrillRecord, counts?: { tasksDone: number; alerts: number }): Promise<DrillSummary> {
    const a = this.active.get(rec.id);
    let tasksDone = counts?.tasksDone ?? a?.tasksDone.size;
    let alerts = counts?.alerts ?? a?.alerts.size;
    if (tasksDone === undefined) tasksDone = (await this.store.tasks(rec.id)).filter((t) => t.status === 'done').length;
    if (alerts === undefined) alerts = (await this.store.alerts(rec.id)).length;
    return this.summaryOf(rec, tasksDone, alerts);
  }

  private summaryOf(rec: DrillRecord, tasksDone: number, alerts: number): DrillSummary {
    const now = this.clock.now();
    const s: DrillSummary = {
      id: rec.id,
      scenarioId: rec.scenarioId,
      name: rec.scenario.name,
      type: rec.scenario.type,
      communityId: rec.communityId,
      status: rec.status,
      startedAt: iso(rec.startedAt),
      startedBy: rec.startedBy,
      clock: { elapsedS: this.elapsed(rec, now) / 1000, running: rec.status === 'running', asOf: iso(now) },
      progress: {
        injects: { total: rec.scenario.injects.length, fired: Object.keys(rec.state.fired).length },
        tasks: { total: rec.scenario.injects.filter((i) => i.action.kind === 'task').length, done: tasksDone },
        alerts,
      },
      participants: rec.participants.length,
      gridIds: rec.gridIds,
    };
    if (rec.endedAt !== undefined) s.endedAt = iso(rec.endedAt);
    if (rec.endedBy !== undefined) s.endedBy = rec.endedBy;
    return s;
  }

  async events(id: string): Promise<DrillEvent[]> {
    return this.store.events(id);
  }

  /** The drill devices an inject publishes from. */
  targetsOf(inj: Inject): DeviceTarget[] {
    if (inj.action.kind !== 'device_event') return [];
    const a: DeviceEventAction = inj.action;
    const installs: InstallTarget[] = [];
    if (a.each === 'household') {
      for (const h of this.places.householdsIn(a.place)) installs.push({ kind: 'household', householdId: h.id });
    } else installs.push(installOf(a.place));
    return installs.map((install) => ({ deviceId: drillDeviceId(install, a.model), model: a.model, install }));
  }

  private allTargets(s: Scenario): DeviceTarget[] {
    const byId = new Map<string, DeviceTarget>();
    for (const inj of s.injects) for (const t of this.targetsOf(inj)) byId.set(t.deviceId, t);
    return [...byId.values()];
  }

  // ------------------------------------------------------------------ alerts and notifications

  /**
   * For the AlertService's onChange: a drill alert opened by a drill's devices (or in its scope) is linked to the
   * drill; its acknowledgement, resolution and cancellation go into the drill's log. Real alerts are not touched.
   */
  onAlertChange(alert: StoredAlert, change: AlertChange): void {
    if (!alert.drill) return;
    const a = this.drillOf(alert);
    if (!a) return;
    const known = a.alerts.has(alert.id);
    if (!known && change !== 'opened' && change !== 'repeated') return;
    if (known && !['acknowledged', 'resolved', 'cancelled'].includes(change)) return;
    this.track(
      this.serial(a, async () => {
        const now = this.clock.now();
        if (!a.alerts.has(alert.id)) {
          const injectId = alert.deviceId ? a.rec.state.lastInjectOf[alert.deviceId] : undefined;
          if (await this.store.linkAlert(a.rec.id, alert.id, injectId, now)) {
            a.alerts.set(alert.id, alert.status);
            await this.store.event(a.rec.id, {
              ts: Date.parse(alert.firstSeen),
              kind: 'alert_opened',
              ref: alert.id,
              data: { type: alert.type, severity: alert.severity, injectId },
            });
            this.publish(a, 'alert', { alertId: alert.id, injectId });
          }
          return;
        }
        a.alerts.set(alert.id, alert.status);
        const entry = [...alert.timeline].reverse().find((e) => e.action === change);
        await this.store.event(a.rec.id, {
          ts: entry?.ts ?? now,
          kind: `alert_${change}`,
          ref: alert.id,
          by: entry?.by,
          data: { type: alert.type },
        });
        this.publish(a, 'alert', { alertId: alert.id, by: entry?.by });
      }),
    );
  }

  /**
   * For the notifications (RecipientResolver): who may be texted about a drill alert — the participants of the
   * running or paused drill it belongs to — or undefined when no drill is running for it (then nobody is).
   */
  audienceFor(alert: AlertRef): DrillAudience | undefined {
    const a = this.drillOf(alert);
    if (!a) return undefined;
    return {
      drillId: a.rec.id,
      staffIds: new Set(a.rec.participants.map((p) => p.staffId)),
      emergencyContacts: a.rec.scenario.participants.emergencyContacts === true,
    };
  }

  /** The active drill a drill alert belongs to: linked, raised by its devices, or in its scope. */
  private drillOf(alert: AlertRef): Active | undefined {
    const actives = [...this.active.values()];
    const linked = alert.id !== undefined ? actives.find((a) => a.alerts.has(alert.id!)) : undefined;
    if (linked) return linked;
    const devices = new Set<string>();
    if (alert.deviceId) devices.add(alert.deviceId);
    for (const e of alert.evidence ?? []) if (e.deviceId) devices.add(e.deviceId);
    const byDevice = actives.find((a) => a.rec.state.devices.some((d) => devices.has(d)));
    if (byDevice) return byDevice;
    return actives.find((a) => this.places.inScope(alert, a.rec.scenario.scope));
  }

  // ------------------------------------------------------------------ internals

  private mustBeActive(id: string, endedMessage?: string): Active {
    const a = this.active.get(id);
    if (a) return a;
    // not active here: ended, unknown, or run by another node
    throw new RegistryError('conflict', endedMessage ? `drill ${id}: ${endedMessage}` : `drill ${id} is not running`);
  }

  private async save(a: Active, now: number): Promise<void> {
    a.rec.updatedAt = now;
    await this.store.save(a.rec);
  }

  private async participantsOf(s: Scenario, scopeGrids: ReadonlySet<string>): Promise<Participant[]> {
    const out: Participant[] = [];
    const roles = s.participants.roles ?? [];
    const named = new Set(s.participants.staff ?? []);
    let cursor: string | undefined;
    do {
      const page = await this.deps.registry.listStaff({ limit: 1000, cursor });
      for (const st of page.items) {
        if (st.disabled) continue;
        const covered = this.deps.registry.coveredGrids(st);
        const as: Role[] = [];
        for (const r of roles) {
          if (!st.roles.includes(r)) continue;
          if (covered.some((g) => scopeGrids.has(g)) || (covered.length === 0 && WIDE_ROLES.includes(r))) as.push(r);
        }
        const isNamed = named.has(st.username);
        if (as.length === 0 && !isNamed) continue;
        out.push({
          staffId: st.id,
          username: st.username,
          name: maskName(st.name),
          roles: [...st.roles],
          as,
          named: isNamed,
        });
      }
      cursor = page.nextCursor;
    } while (cursor);
    return out.sort((x, y) => x.username.localeCompare(y.username));
  }

  private async connectTargets(targets: readonly DeviceTarget[]): Promise<void> {
    // a few at a time: scrypt hashing and MQTT connects, without a burst on the broker
    const queue = [...targets];
    const worker = async () => {
      for (let t = queue.shift(); t; t = queue.shift()) await this.devices.ensure(t.deviceId, t.model, t.install);
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  private async connectDevices(a: Active): Promise<void> {
    await this.places.load();
    await this.connectTargets(this.allTargets(a.rec.scenario));
  }

  /** Timers for every due inject; an inject already due fires at once (in order of its time). */
  private arm(a: Active): void {
    this.disarm(a);
    if (a.rec.status !== 'running' || !this.started) return;
    const elapsed = this.elapsed(a.rec);
    const due = Object.entries(a.rec.state.due).sort((x, y) => x[1] - y[1]);
    for (const [injectId, at] of due) {
      const inj = a.rec.scenario.injects.find((x) => x.id === injectId);
      if (!inj || a.rec.state.fired[injectId]) continue;
      const run = () => {
        a.timers.delete(injectId);
        void this.serial(a, async () => {
          if (a.rec.status !== 'running' || a.rec.state.fired[injectId] || a.rec.state.due[injectId] === undefined)
            return;
          await this.fire(a, inj, 'schedule', false);
        }).catch((err: unknown) => this.log.error({ err, drillId: a.rec.id, injectId }, 'inject failed'));
      };
      if (at <= elapsed) run();
      else a.timers.set(injectId, this.clock.setTimeout(run, at - elapsed));
    }
  }

  private disarm(a: Active): void {
    for (const cancel of a.timers.values()) cancel();
    a.timers.clear();
  }

  /** Fires one inject (inside the drill's chain). A failed action is recorded on the inject, never thrown. */
  private async fire(a: Active, inj: Inject, by: string, manual: boolean): Promise<void> {
    const now = this.clock.now();
    const rec = a.rec;
    a.timers.get(inj.id)?.();
    a.timers.delete(inj.id);
    delete rec.state.due[inj.id];
    let error: string | undefined;
    try {
      await this.perform(a, inj, now);
    } catch (err) {
      error = (err as Error).message;
      this.log.error({ err, drillId: rec.id, injectId: inj.id }, 'inject action failed');
    }
    rec.state.fired[inj.id] = error ? { at: now, by, error } : { at: now, by };
    await this.save(a, now);
    await this.store.event(rec.id, {
      ts: now,
      kind: 'inject_fired',
      ref: inj.id,
      by,
      data: { kind: inj.action.kind, manual, ...(error ? { error } : {}) },
    });
    this.publish(a, 'inject_fired', { injectId: inj.id, by, text: inj.title });
    if (inj.action.kind === 'message') this.publish(a, 'message', { injectId: inj.id, text: inj.action.text });
    this.log.info({ drillId: rec.id, injectId: inj.id, kind: inj.action.kind, manual, error }, 'inject fired');
    this.follow(a, { injectId: inj.id }, now);
  }

  /** Injects waiting for this inject or task are now due after their delay. */
  private follow(a: Active, what: { injectId?: string; taskId?: string }, now: number): void {
    const elapsed = this.elapsed(a.rec, now);
    let changed = false;
    for (const inj of a.rec.scenario.injects) {
      const after = inj.trigger.after;
      if (!after || a.rec.state.fired[inj.id] || a.rec.state.due[inj.id] !== undefined) continue;
      const match =
        (what.injectId !== undefined && after.injectId === what.injectId) ||
        (what.taskId !== undefined && after.taskId === what.taskId);
      if (!match) continue;
      a.rec.state.due[inj.id] = elapsed + (after.delaySeconds ?? 0) * 1000;
      changed = true;
    }
    if (!changed) return;
    this.track(this.save(a, now));
    this.arm(a);
  }

  private async perform(a: Active, inj: Inject, now: number): Promise<void> {
    const action = inj.action;
    if (action.kind === 'device_event') return this.publishDeviceEvent(a, inj, action, now);
    if (action.kind === 'message') return this.sendMessage(a, inj, action, now);
    return this.issueTask(a, inj, action, now);
  }

  private async publishDeviceEvent(a: Active, inj: Inject, action: DeviceEventAction, now: number): Promise<void> {
    const targets = this.targetsOf(inj);
    if (targets.length === 0) throw new Error(`no drill device for ${placeId(action.place)}`);
    const short = a.rec.id.slice(0, 8);
    const failures: string[] = [];
    await Promise.all(
      targets.map(async (t) => {
        a.rec.state.lastInjectOf[t.deviceId] = inj.id;
        try {
          await this.devices.ensure(t.deviceId, t.model, t.install);
          if (action.event) {
            await this.devices.publish(t.deviceId, 'event', { ...action.event, id: `${short}-${inj.id}`, ts: now });
          } else {
            await this.devices.publish(t.deviceId, 'telemetry', { ...action.telemetry, ts: now });
          }
        } catch (err) {
          failures.push(`${t.deviceId}: ${(err as Error).message}`);
        }
      }),
    );
    if (failures.length > 0) {
      throw new Error(
        `${failures.length} of ${targets.length} drill devices failed: ${failures.slice(0, 3).join('; ')}`,
      );
    }
  }

  /** A message: in the log and the console at once; as 【演练】 SMS to the participants it names. */
  private async sendMessage(a: Active, inj: Inject, action: MessageAction, now: number): Promise<void> {
    await this.store.event(a.rec.id, { ts: now, kind: 'message', ref: inj.id, data: { text: action.text } });
    if (action.sms === false) return;
    const to = a.rec.participants.filter((p) => !action.to || p.as.some((r) => action.to?.includes(r as Role)));
    const body = DRILL_SMS_PREFIX + action.text.zh;
    this.track(
      Promise.allSettled(to.map((p) => this.sendSms(a.rec.id, inj.id, p.staffId, body))).then((rs) => {
        const failed = rs.filter((r) => r.status === 'rejected' || r.value === 'failed').length;
        this.log.info({ drillId: a.rec.id, injectId: inj.id, recipients: to.length, failed }, 'drill message sent');
      }),
    );
  }

  private async sendSms(
    drillId: string,
    injectId: string,
    staffId: string,
    body: string,
  ): Promise<'sent' | 'failed' | 'skipped'> {
    const staff = await this.deps.registry.getStaff(staffId);
    if (!staff?.phone || staff.disabled) return 'skipped';
    const { notification: n, created } = await this.deps.notifications.createPending({
      alertId: drillMessageAlertId(drillId, injectId),
      step: 0,
      recipient: staff.phone,
      staffId,
      role: 'drill_message',
      body,
      transport: this.deps.sms.name,
      drill: true,
    });
    if (!created || n.providerId || n.status !== 'pending') return 'skipped';
    for (let attempt = 1; ; attempt++) {
      const res = await this.deps.sms.send({ to: staff.phone, body, notificationId: n.id, validitySeconds: 600 });
      if (res.ok) {
        await this.deps.notifications.accepted(n.id, res.providerId, 'sent');
        return 'sent';
      }
      if (res.permanent || attempt >= 3) {
        await this.deps.notifications.failed(n.id, res.code, res.message);
        this.log.warn({ drillId, injectId, staffId, code: res.code }, 'drill message SMS failed');
        return 'failed';
      }
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }

  private async issueTask(a: Active, inj: Inject, action: TaskAction, now: number): Promise<void> {
    const targets: TaskTargets = { households: [], places: [] };
    const households = action.householdIds
      ? action.householdIds.map((id) => this.places.household(id)).filter((h) => h !== undefined)
      : action.households
        ? this.places.select(action.households)
        : [];
    targets.households = households.map((h) => ({ id: h.id, address: h.address, colour: h.colour }));
    targets.places = (action.places ?? []).map((p) => ({
      kind: installOf(p).kind,
      id: placeId(p),
      name: this.places.nameOf(p),
    }));
    await this.store.issueTask(a.rec.id, inj.id, now, targets);
    a.tasksIssued.add(inj.id);
  }

  private publish(a: Active, change: DrillChange, detail?: DrillDetail): void {
    this.publishSummary(a.rec, this.summaryOf(a.rec, a.tasksDone.size, a.alerts.size), change, detail);
  }

  private publishFor(rec: DrillRecord, change: DrillChange, detail?: DrillDetail): void {
    const a = this.active.get(rec.id);
    if (a) {
      this.publish(a, change, detail);
      return;
    }
    this.track(this.summary(rec).then((s) => this.publishSummary(rec, s, change, detail)));
  }

  private publishSummary(rec: DrillRecord, drill: DrillSummary, change: DrillChange, detail?: DrillDetail): void {
    try {
      this.deps.live?.drillChanged({ drillId: rec.id, change, drill, detail }, rec.gridIds);
    } catch (err) {
      this.log.warn({ err, drillId: rec.id, change }, 'drill change not published');
    }
  }

  /** Notifications of a drill (its alerts' SMS and its messages' SMS). */
  async notificationsOf(rec: DrillRecord, alertIds: readonly string[]): Promise<Notification[]> {
    const ids = [
      ...alertIds,
      ...rec.scenario.injects.filter((i) => i.action.kind === 'message').map((i) => drillMessageAlertId(rec.id, i.id)),
    ];
    const out: Notification[] = [];
    for (const alertId of ids) {
      let cursor: string | undefined;
      do {
        const page = await this.deps.notifications.list({ alertId }, { limit: 500, cursor });
        out.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
    }
    return out;
  }

  /** Real (not drill) alerts in the drill's grids while it ran. */
  async realAlertsDuring(rec: DrillRecord): Promise<StoredAlert[]> {
    const grids = this.places.gridsOf(rec.scenario.scope);
    const out: StoredAlert[] = [];
    const until = rec.endedAt ?? Number.POSITIVE_INFINITY;
    for (const gridId of grids) {
      const page = await this.deps.alerts.list(
        { since: rec.startedAt, gridId },
        { all: true, gridIds: [] },
        { limit: 500 },
      );
      for (const al of page.items) if (!al.drill && Date.parse(al.firstSeen) <= until) out.push(al);
    }
    return out.sort((x, y) => x.firstSeen.localeCompare(y.firstSeen));
  }

  /** Everything the view and the after-action report are made of. */
  async reportInput(id: string): Promise<ReportInput> {
    const rec = await this.record(id);
    const links = await this.store.alerts(id);
    const alerts: ReportInput['alerts'][number][] = [];
    for (const l of links) {
      const alert = await this.deps.alerts.get(l.alertId);
      if (alert) alerts.push(l.injectId ? { alert, injectId: l.injectId } : { alert });
    }
    const [events, tasks, notes, ratings] = await Promise.all([
      this.store.events(id),
      this.store.tasks(id),
      this.store.notes(id),
      this.store.ratings(id),
    ]);
    const notifications = await this.notificationsOf(
      rec,
      links.map((l) => l.alertId),
    );
    const realAlerts = await this.realAlertsDuring(rec);
    // people who acted without being participants (an admin who ended it): masked names
    const staff = new Map<string, { username: string; name: string }>();
    const ids = new Set<string>([rec.startedBy, ...(rec.endedBy ? [rec.endedBy] : [])]);
    for (const e of events)
      if (e.by && e.by !== 'schedule' && e.by !== 'system' && !e.by.startsWith('rule:')) ids.add(e.by);
    for (const n of notes) ids.add(n.by);
    for (const r of ratings) ids.add(r.by);
    for (const sid of ids) {
      if (rec.participants.some((p) => p.staffId === sid)) continue;
      const st = await this.deps.registry.getStaff(sid).catch(() => undefined);
      if (st) staff.set(sid, { username: st.username, name: maskName(st.name) });
    }
    const summary = this.summaryOf(rec, tasks.filter((t) => t.status === 'done').length, links.length);
    return {
      rec,
      summary,
      events,
      tasks,
      notes,
      ratings,
      alerts,
      notifications,
      realAlerts,
      staff,
      now: this.clock.now(),
      timezone: this.deps.timezone,
    };
  }

  get activeCount(): number {
    return this.active.size;
  }
}

/** The `alertId` a drill message's SMS are recorded under (no alert has it: `drill:` cannot start a UUID). */
export function drillMessageAlertId(drillId: string, injectId: string): string {
  return `drill:${drillId}:${injectId}`;
}

function installOf(p: Place): InstallTarget {
  if (p.householdId) return { kind: 'household', householdId: p.householdId };
  if (p.unitId) return { kind: 'unit', unitId: p.unitId };
  if (p.buildingId) return { kind: 'building', buildingId: p.buildingId };
  return { kind: 'area', areaId: p.areaId! };
}
