/**
 * The composition root: builds every module from the config, starts them in order and stops them in reverse.
 * `npm start` (src/main.ts) and the end-to-end tests both build the system here, so what is tested is what runs.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { getModel, MODELS } from '../devices/index.ts';
import { type AlertChange, AlertService, type StoredAlert } from './alerts/service.ts';
import { ConsoleHub } from './console/hub.ts';
import { DrillRunner } from './drills/runner.ts';
import { loadScenarios, type ScenarioFile } from './drills/scenario.ts';
import { loadSupplyConfig, type SupplyConfig } from './supplies/config.ts';
import { SupplyService } from './supplies/service.ts';
import type { Scope } from './registry/port.ts';
import { RulesModule } from './rules/module.ts';
import type { TwilioWebhookDeps } from './http/routes/twilio.ts';
import { OutboxTransport } from './notify/sms/outbox.ts';
import type { SmsTransport } from './notify/sms/port.ts';
import { TwilioTransport } from './notify/sms/twilio.ts';
import { RecipientGate } from './notify/caps.ts';
import { Escalator } from './notify/escalation.ts';
import { RecipientResolver } from './notify/recipients.ts';
import { DutyRoster } from './notify/roster.ts';
import { NotificationStore } from './notify/store.ts';
import { VisitsService } from './visits/service.ts';
import { EmbeddedBroker } from './broker/embedded.ts';
import { redisSharedBrokerState } from './broker/cluster.ts';
import { ExternalBroker } from './broker/external.ts';
import { FEED_KEY, FeedWriter, OWNER_KEY, RulesOwnership } from './rules/feed.ts';
import type { RuleStateFence } from './rules/state-store.ts';
import { DeviceStatusTracker } from './broker/status.ts';
import { Bus } from './bus.ts';
import { type Clock, systemClock } from './clock/clock.ts';
import type { Config } from './config/schema.ts';
import { buildHttpApp } from './http/app.ts';
import { HttpServer } from './http/server.ts';
import { EventJournal, nodeIdOf } from './ingest/event-journal.ts';
import { IngestModule } from './ingest/module.ts';
import { IngestPipeline } from './ingest/pipeline.ts';
import { CommandService } from './commands/service.ts';
import { AlertStatsService } from './alerts/stats.ts';
import { RedisEventDedupe } from './ingest/redis-dedupe.ts';
import { type Module, stopAll } from './lifecycle/module.ts';
import { RedisModule } from './lifecycle/redis.ts';
import type { Logger } from './logger.ts';
import { createMetrics, type Metrics, watchTimeSeries } from './metrics.ts';
import { AccessLog } from './registry/access-log.ts';
import { SqlRegistry } from './registry/registry.ts';
import { generateSecret, verifyDeviceSecret } from './registry/secrets.ts';
import { type DemoDevice, seedIfEmpty, writeSecretsFile } from './registry/seed.ts';
import { createDatabase, type Database } from './store/db.ts';
import { migrateToLatest } from './store/migrate.ts';
import { createTimeSeries } from './timeseries/index.ts';
import type { TimeSeriesStore } from './timeseries/port.ts';
import { SimulatedFleet } from '../simulators/fleet.ts';

export interface SystemOptions {
  clock?: Clock;
  /** Project root, for relative seed paths; default: the current directory. */
  root?: string;
}

/** A running GridWatch node; fields are exposed for tests and benchmarks. */
export class GridWatch {
  readonly bus: Bus;
  readonly metrics: Metrics;
  readonly modules: Module[] = [];
  redis!: RedisModule;
  database!: Database;
  registry!: SqlRegistry;
  alerts!: AlertService;
  visits!: VisitsService;
  notifications!: NotificationStore;
  /** who is off duty and who stands in for them */
  roster!: DutyRoster;
  /** the console's live fan-out (WS /ws) */
  consoleHub!: ConsoleHub;
  escalator?: Escalator;
  /** where SMS go: Twilio when configured, else the outbox (recorded, nothing leaves the machine) */
  sms!: SmsTransport;
  rules?: RulesModule;
  timeseries!: TimeSeriesStore;
  /** the embedded broker; undefined in external-broker mode (MQTT_URL) */
  broker?: EmbeddedBroker;
  /** where the devices' messages come from and commands go: the embedded broker, or the external one */
  transport!: EmbeddedBroker | ExternalBroker;
  /**
   * The device-status tracker. With the rules shared between nodes it runs on the rules owner only, fed from the
   * rules feed, and is undefined on the other nodes (their API falls back to the saved status).
   */
  status?: DeviceStatusTracker;
  /** Rules on several nodes (rules/feed.ts): this node's rule inputs go to the feed; the lease decides who runs them. */
  ruleFeed?: FeedWriter;
  rulesOwnership?: RulesOwnership;
  pipeline!: IngestPipeline;
  /** commands to devices and their answers */
  commands!: CommandService;
  /** the community overview statistics */
  stats!: AlertStatsService;
  http!: HttpServer;
  fleet?: SimulatedFleet;
  /** drills: scenarios, runner, after-action reports (issue 6) */
  drills?: DrillRunner;
  /** emergency supplies: depots, stock, ledger, transfers (issue 7) */
  supplies?: SupplyService;
  private scenarios: ScenarioFile[] = [];
  private supplyConfig?: SupplyConfig;
  private readonly clock: Clock;
  private readonly root: string;
  private started = false;

  constructor(
    readonly config: Config,
    readonly log: Logger,
    opts: SystemOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.root = opts.root ?? process.cwd();
    this.bus = new Bus((event, err) => log.error({ err, event }, 'bus listener failed'));
    this.metrics = createMetrics();
  }

  /** Starts each module in turn; if one fails, the ones already started are stopped again. */
  async start(): Promise<void> {
    const { config, log } = this;
    mkdirSync(config.dataDir, { recursive: true });
    if (config.role === 'worker') return this.startWorker();
    // scenario files are configuration: a broken one stops the start before anything runs
    this.scenarios = loadScenarios(path.resolve(this.root, config.drills.dir));
    this.supplyConfig = loadSupplyConfig(
      path.resolve(this.root, config.supplies.catalogueFile),
      path.resolve(this.root, config.supplies.depotsFile),
    );
    try {
      this.redis = await this.add(new RedisModule(config.redis, config.dataDir, log.child({ module: 'redis' })));
      await this.startStores();
      await this.startEscalation();
      await this.startRules();
      await this.startDeviceSide();
      await this.startDrills();
      await this.startSupplies();
      await this.startHttp();
      if (config.demo.enabled) await this.startDemo();
      for (const w of this.warnings()) log.warn(w);
      this.started = true;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /**
   * A sending-only node (`npm run worker`): the SMS workers of the notify queues, next to an `all` node whose Redis
   * and database it shares. No broker, rules, HTTP or timers: what needs timers goes to that node's `escalate` queue.
   */
  private async startWorker(): Promise<void> {
    const { config, log } = this;
    // the `all` node's private redis-server on this machine, unless REDIS_URL says where
    const redisCfg = { ...config.redis, url: config.redis.url ?? `redis://127.0.0.1:${config.redis.privatePort}` };
    try {
      this.redis = await this.add(new RedisModule(redisCfg, config.dataDir, log.child({ module: 'redis' }))).catch(
        (err: unknown) => {
          throw new Error(
            `worker: cannot reach Redis at ${config.redis.url ? 'REDIS_URL' : redisCfg.url} (${(err as Error).message}); start the main node first or set REDIS_URL`,
          );
        },
      );
      this.database = await createDatabase(config.database, config.dataDir);
      this.modules.push({ name: 'database', start: async () => {}, stop: () => this.database.close() });
      await migrateToLatest(this.database.db);
      this.registry = await this.add(
        new SqlRegistry(this.database, {
          knownModel: (id) => getModel(id) !== undefined,
          logger: log.child({ module: 'registry' }),
          clock: this.clock,
        }),
      );
      this.alerts = new AlertService(this.database, {
        clock: this.clock,
        logger: log.child({ module: 'alerts' }),
        onChange: (a, change) => this.alertChanged(a, change),
      });
      this.notifications = new NotificationStore(this.database, this.clock);
      this.consoleHub = this.createConsoleHub();
      this.roster = new DutyRoster(this.database, this.clock, this.registry);
      this.sms = this.createSmsTransport();
      await this.startEscalation({ timers: false, workers: true });
      for (const w of this.warnings()) log.warn(w);
      this.started = true;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Every alert change: the escalation starts or stops, and every console hears of it. */
  private alertChanged(alert: StoredAlert, change: AlertChange): void {
    this.escalator?.onAlertChange(alert, change);
    this.consoleHub?.alertChanged(alert, change);
    this.drills?.onAlertChange(alert, change);
  }

  /**
   * The console's live events go through Redis, so any node (a worker node's SMS status changes too) publishes;
   * only nodes serving consoles start the hub's reader (startHttp).
   */
  private createConsoleHub(): ConsoleHub {
    const hub = new ConsoleHub({
      redis: this.redis.client,
      connection: () => this.redis.duplicate(),
      logger: this.log.child({ module: 'console' }),
      openAlerts: (scope) => this.openAlerts(scope),
      smsOutbox: () => this.sms.name === 'outbox',
      timezone: this.config.timezone,
    });
    // The live channel only needs the alert's grid, not the whole alert with its timeline for every SMS change.
    this.notifications.onChange = (n) => {
      this.alerts.gridOf(n.alertId).then(
        (gridId) => hub.notificationChanged(n, { gridId }),
        () => {},
      );
    };
    return hub;
  }

  /** Open and acknowledged alerts a scope may see, for a console's snapshot. */
  private async openAlerts(scope: Scope): Promise<StoredAlert[]> {
    const out: StoredAlert[] = [];
    for (const status of ['open', 'acknowledged'] as const) {
      let cursor: string | undefined;
      do {
        const page = await this.alerts.list({ status }, scope, { limit: 500, cursor });
        out.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor && out.length < 10_000);
    }
    return out;
  }

  private async add<M extends Module>(m: M): Promise<M> {
    await m.start();
    this.modules.push(m);
    return m;
  }

  private async startStores(): Promise<void> {
    const { config, log } = this;
    this.database = await createDatabase(config.database, config.dataDir);
    this.modules.push({ name: 'database', start: async () => {}, stop: () => this.database.close() });
    await migrateToLatest(this.database.db);
    this.registry = await this.add(
      new SqlRegistry(this.database, {
        knownModel: (id) => getModel(id) !== undefined,
        logger: log.child({ module: 'registry' }),
        clock: this.clock,
      }),
    );
    if (config.registry.seedFile) {
      const seeded = await seedIfEmpty(this.registry, path.resolve(this.root, config.registry.seedFile));
      if (seeded.seeded) {
        log.info({ counts: seeded.counts, file: config.registry.seedFile }, 'registry seeded');
        // Device secrets are for the simulators, generated staff passwords for people trying the demo: both only
        // in a 0600 file under the data dir, never in a log.
        await writeSecretsFile(this.demoSecretsFile(), {
          deviceSecrets: seeded.deviceSecrets,
          staffPasswords: seeded.staffPasswords,
        });
      }
    }
    await this.ensureAdmin();
    this.timeseries = await this.add(createTimeSeries(config.timeseries, config.dataDir, log));
    const timeseries = this.timeseries;
    watchTimeSeries(this.metrics, () => timeseries.stats());
    // after the migrations (its tables) and the time-series store (lifecycle points)
    this.alerts = new AlertService(this.database, {
      clock: this.clock,
      logger: log.child({ module: 'alerts' }),
      timeseries: this.timeseries,
      onChange: (a, change) => this.alertChanged(a, change),
    });
    this.notifications = new NotificationStore(this.database, this.clock);
    this.consoleHub = this.createConsoleHub();
    this.roster = new DutyRoster(this.database, this.clock, this.registry);
    this.sms = this.createSmsTransport();
    this.visits = new VisitsService(this.database, this.clock, (change) => {
      // shared rules: the change goes through the feed to whichever node runs them
      if (this.ruleFeed) this.ruleFeed.visitChanged(change);
      else this.rules?.onVisitChange(change).catch((err: unknown) => log.error({ err }, 'rules: visit change failed'));
    });
  }

  /** Alerts become SMS: escalation steps on durable timers, sending on BullMQ queues (critical apart). */
  private async startEscalation(
    role: { timers: boolean; workers: boolean } = { timers: true, workers: this.config.escalation.workers.inProcess },
  ): Promise<void> {
    const { escalation } = this.config;
    const recipients = new RecipientResolver(this.registry, () => this.clock.now(), undefined, {
      roster: this.roster,
      log: this.log.child({ module: 'recipients' }),
      // a drill alert is texted to its drill's participants only, and to nobody when no drill runs for it
      drillAudience: (alert) => this.drills?.audienceFor(alert),
      // a supplies alert goes to the keeper of its depot
      depotKeepers: (alert) => this.supplies?.keepersFor(alert) ?? [],
    });
    this.registry.onStaffChange(() => recipients.invalidate());
    this.escalator = await this.add(
      new Escalator({
        ...role,
        digest: { ...escalation.digest, timezone: this.config.timezone },
        lockDurationMs: escalation.workers.lockDurationMs,
        stalledIntervalMs: escalation.workers.stalledIntervalMs,
        households: this.registry,
        alerts: this.alerts,
        policies: () => this.config.escalation.policies,
        recipients,
        store: this.notifications,
        transport: this.sms,
        gate: new RecipientGate(this.clock, this.config.sms.caps),
        clock: this.clock,
        redis: this.redis.client,
        connection: () => this.redis.duplicate(),
        logger: this.log.child({ module: 'escalation' }),
        validitySeconds: this.config.sms.twilio.validitySeconds,
        raiseAlert: (input) => this.alerts.raise(input),
      }),
    );
    const late = this.metrics.escalationStepLateness;
    this.escalator.scheduler.observeLateness = (_t, lateMs) => late.observe(lateMs / 1000);
  }

  /** The rules listen to the bus before any device message can arrive. */
  private async startRules(): Promise<void> {
    if (this.rulesShared()) return this.startSharedRules();
    this.rules = await this.add(this.createRules(this.bus));
  }

  private createRules(bus: Bus, fence?: RuleStateFence): RulesModule {
    const rules = new RulesModule({
      config: this.config,
      clock: this.clock,
      bus,
      redis: this.redis.client,
      registry: this.registry,
      alerts: this.alerts,
      visits: this.visits,
      devices: this.registry.devices,
      kindOf: (m) => getModel(m)?.kind,
      logger: this.log,
      fence,
    });
    const lateness = this.metrics.ruleDeadlineLateness;
    rules.scheduler.observeLateness = (_t, lateMs) => lateness.observe(lateMs / 1000);
    return rules;
  }

  private createStatusTracker(bus: Bus): DeviceStatusTracker {
    const { config, registry } = this;
    return new DeviceStatusTracker({
      bus,
      clock: this.clock,
      directory: registry.devices,
      getModel,
      load: () => registry.loadDeviceStates(),
      save: (rows) => registry.saveDeviceStates(rows),
      // only changed rows are written; a second keeps the API's status filter close to the live state
      saveIntervalMs: 1000,
      config: config.mqtt,
      logger: this.log.child({ module: 'status' }),
      metrics: this.metrics,
    });
  }

  /** Several nodes take device messages (external broker, clustered broker): one of them runs the rules. */
  private rulesShared(): boolean {
    const { placement, mqtt } = this.config;
    if (placement.rules !== 'auto') return placement.rules === 'shared';
    return Boolean(mqtt.url) || mqtt.cluster?.enabled === true;
  }

  /**
   * Rules on several nodes (rules/feed.ts): every node writes its rule inputs to the feed; the node holding the
   * lease runs the rules and the status tracker on a bus of their own, fed only from the feed.
   */
  private async startSharedRules(): Promise<void> {
    const { config, log } = this;
    const nodeId = nodeIdOf(config.dataDir);
    const feedLog = log.child({ module: 'rules-feed' });
    this.ruleFeed = await this.add(new FeedWriter({ redis: this.redis.client, bus: this.bus, logger: feedLog }));
    let ruleBus: Bus | undefined;
    const ownership: RulesOwnership = new RulesOwnership({
      redis: this.redis.client,
      reader: () => this.redis.duplicate(),
      nodeId,
      leaseMs: config.placement.leaseMs,
      logger: feedLog,
      owned: {
        start: async (bus) => {
          ruleBus = bus;
          const fence = { ownerKey: OWNER_KEY, nodeId, feedKey: FEED_KEY, position: () => ownership.appliedPosition };
          // set before their start: a start that fails half-way is stopped through owned.stop(false)
          const rules = this.createRules(bus, fence);
          this.rules = rules;
          await rules.start();
          const status = this.createStatusTracker(bus);
          this.status = status;
          await status.start();
          return rules.restoredPosition;
        },
        target: () => ({
          bus: ruleBus!,
          status: this.status!,
          visitChanged: (change) => {
            this.rules?.onVisitChange(change).catch((err: unknown) => log.error({ err }, 'rules: visit change failed'));
          },
        }),
        stop: async (save) => {
          const { rules, status } = this;
          this.rules = undefined;
          this.status = undefined;
          await status?.stop();
          await rules?.stop(save);
        },
      },
    });
    this.rulesOwnership = await this.add(ownership);
  }

  private async startDeviceSide(): Promise<void> {
    const { config, log, bus, metrics, registry } = this;
    const url = config.mqtt.url;
    if (url) {
      this.transport = new ExternalBroker({
        config: { ...config.mqtt, url },
        nodeId: nodeIdOf(config.dataDir),
        logger: log.child({ module: 'broker' }),
        metrics,
      });
    } else {
      this.broker = new EmbeddedBroker({
        config: config.mqtt,
        directory: registry.devices,
        verifySecret: verifyDeviceSecret,
        logger: log.child({ module: 'broker' }),
        metrics,
        stopTimeoutMs: Math.min(5000, config.shutdownTimeoutMs),
        // mqtt.cluster: sessions, retained and queued messages, and the fan-out between nodes in the shared Redis
        ...(config.mqtt.cluster?.enabled && {
          shared: redisSharedBrokerState({
            connection: this.redis.connection,
            offlineMessageTtlS: config.mqtt.cluster.offlineMessageTtlS,
            logger: log.child({ module: 'broker' }),
          }),
        }),
      });
      this.transport = this.broker;
    }
    const transport = this.transport;
    // one node: the tracker listens to this node's broker; several: the feed carries liveness to the rules owner
    if (!this.ruleFeed) this.status = await this.add(this.createStatusTracker(bus));
    const statusSink = this.ruleFeed ?? this.status!;
    this.pipeline = new IngestPipeline({
      baseTopic: config.mqtt.baseTopic,
      config: config.ingest,
      directory: registry.devices,
      getModel,
      bus,
      timeseries: this.timeseries,
      metrics,
      logger: log.child({ module: 'ingest' }),
      clock: this.clock,
      replies: transport,
      status: statusSink,
      dedupe: new RedisEventDedupe(this.redis.client, config.ingest.dedupeWindowS * 1000),
    });
    // commands out through the broker, their answers (`cmd_ack` events) in from the bus
    this.commands = await this.add(
      new CommandService({
        database: this.database,
        bus,
        clock: this.clock,
        logger: log.child({ module: 'commands' }),
        publisher: transport,
        commandsOf: (model) => getModel(model)?.commands,
      }),
    );
    await this.add(new IngestModule({ transport, pipeline: this.pipeline, status: statusSink }));
    // QoS 1 events are durable before their PUBACK; what a killed process left unprocessed is replayed here,
    // before the broker accepts connections again.
    const pipeline = this.pipeline;
    const rules = this.rules;
    const alerts = this.alerts;
    const journal = await this.add(
      new EventJournal({
        redis: this.redis.client,
        nodeId: nodeIdOf(config.dataDir),
        replay: (deviceId, payload, receivedAt) => pipeline.handle(deviceId, 'event', payload, receivedAt, false, true),
        settled: async () => {
          await pipeline.settled();
          // shared rules: the event is safe once it is in the feed (the owner replays the feed after a takeover)
          if (this.ruleFeed) await this.ruleFeed.settled();
          else await rules?.engine.settled();
        },
        housekeeping: () => alerts.pruneEventKeys(this.clock.now() - 30 * 86_400_000),
        logger: log.child({ module: 'journal' }),
      }),
    );
    transport.setEventJournal(journal);
    // The broker listens last and so stops first: while it accepts and acknowledges messages, ingest is attached.
    await this.add(transport);
  }

  /** Drills: after the broker (drill devices publish through it), before the HTTP API that controls them. */
  private async startDrills(): Promise<void> {
    const { config, log } = this;
    const host = ['0.0.0.0', '::', ''].includes(config.mqtt.host) ? '127.0.0.1' : config.mqtt.host;
    this.drills = await this.add(
      new DrillRunner({
        database: this.database,
        registry: this.registry,
        alerts: this.alerts,
        notifications: this.notifications,
        sms: this.sms,
        live: this.consoleHub,
        clock: this.clock,
        logger: log.child({ module: 'drills' }),
        scenarios: this.scenarios,
        getModel,
        mqtt: { url: () => this.deviceBrokerUrl(host), baseTopic: config.mqtt.baseTopic },
        timezone: config.timezone,
      }),
    );
  }

  /** Emergency supplies: depots synced from config, the daily stock check; alerts through the alert service. */
  private async startSupplies(): Promise<void> {
    const { config, log } = this;
    this.supplies = await this.add(
      new SupplyService({
        database: this.database,
        registry: this.registry,
        alerts: this.alerts,
        live: this.consoleHub,
        clock: this.clock,
        logger: log.child({ module: 'supplies' }),
        config: this.supplyConfig!,
        settings: {
          checkEveryMinutes: config.supplies.checkEveryMinutes,
          expiringInfoDays: config.supplies.expiringInfoDays,
          expiringMinorDays: config.supplies.expiringMinorDays,
          sample: config.supplies.sample ?? config.demo.enabled,
        },
        timezone: config.timezone,
      }),
    );
    const supplies = this.supplies;
    this.registry.onStaffChange(() => {
      supplies.refresh().catch((err: unknown) => log.warn({ err }, 'supplies: keepers not refreshed'));
    });
    // the sample keepers' generated passwords join the demo secrets (never a log)
    const created = supplies.createdKeepers;
    if (created.length > 0 && existsSync(this.demoSecretsFile())) {
      const file = this.demoSecretsFile();
      const data = JSON.parse(readFileSync(file, 'utf8')) as Parameters<typeof writeSecretsFile>[1];
      const others = (data.staffPasswords ?? []).filter((p) => !created.some((c) => c.username === p.username));
      await writeSecretsFile(file, { ...data, staffPasswords: [...others, ...created] });
    }
  }

  private async startHttp(): Promise<void> {
    const { config, log, registry, metrics } = this;
    await this.add(this.consoleHub);
    this.stats = new AlertStatsService(this.database, { clock: this.clock, timezone: config.timezone });
    const consoleDir = await this.consoleDir();
    const app = await buildHttpApp({
      consoleHub: this.consoleHub,
      consoleDir,
      config,
      log,
      registry,
      timeseries: this.timeseries,
      deviceState: { get: (id) => this.status?.get(id) },
      alerts: this.alerts,
      rules: () => ({ timezone: config.timezone, rules: config.rules }),
      visits: this.visits,
      cadenceDays: () => config.rules.visits.days,
      notifications: this.notifications,
      accessLog: new AccessLog(this.database, this.clock),
      roster: this.roster,
      commands: this.commands,
      deviceRejects: this.pipeline.rejects,
      stats: this.stats,
      drills: this.drills,
      supplies: this.supplies,
      warnings: () => this.warnings(),
      twilio: this.twilioWebhooks(),
      metricsText: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
      readiness: [
        { name: 'broker', check: async () => this.transport.ready },
        { name: 'redis', check: () => this.redis.ping() },
        { name: 'database', check: () => this.database.ping() },
        { name: 'timeseries', check: () => this.timeseries.ping() },
      ],
      models: {
        get: (id) => getModel(id),
        list: () =>
          MODELS.map((m) => ({
            id: m.id,
            vendor: m.vendor,
            family: m.family,
            kind: m.kind,
            description: m.description,
            fields: m.fields,
            events: m.events,
            commands: m.commands,
            lastSeenTimeoutS: m.lastSeenTimeoutS,
          })),
      },
    });
    this.http = await this.add(new HttpServer(app, config.http, log));
  }

  /**
   * The operations console's files (dist/console), built first when missing or older than its sources
   * (src/console/build.ts; a few stats when up to date). A console that cannot be built leaves the API running.
   */
  private async consoleDir(): Promise<string | undefined> {
    const { DEFAULT_CONSOLE_DIR, ensureConsoleBuilt } = await import('./console/build.ts');
    try {
      const r = await ensureConsoleBuilt(DEFAULT_CONSOLE_DIR);
      if (r.built) this.log.info({ ms: Math.round(r.ms), reason: r.reason }, 'console built');
      return DEFAULT_CONSOLE_DIR;
    } catch (err) {
      this.log.warn({ err }, 'the console could not be built; the API runs without it (npm run build:console)');
      return existsSync(path.join(DEFAULT_CONSOLE_DIR, 'index.html')) ? DEFAULT_CONSOLE_DIR : undefined;
    }
  }

  /** Where devices (the demo fleet, drill devices) connect: the embedded broker on `host`, or the external one. */
  deviceBrokerUrl(host: string): string {
    return this.broker ? `mqtt://${host}:${this.broker.ports.tcp}` : (this.transport as ExternalBroker).url;
  }

  private demoSecretsFile(): string {
    return path.join(this.config.dataDir, 'demo-secrets.json');
  }

  private async startDemo(): Promise<void> {
    const file = this.demoSecretsFile();
    if (!existsSync(file)) {
      this.log.warn(
        { file },
        'demo: no device secrets file (the registry was not seeded by this data dir); no simulated devices',
      );
      return;
    }
    const { deviceSecrets: devices } = JSON.parse(readFileSync(file, 'utf8')) as { deviceSecrets: DemoDevice[] };
    this.fleet = new SimulatedFleet({
      url: this.deviceBrokerUrl('127.0.0.1'),
      baseTopic: this.config.mqtt.baseTopic,
      devices,
      speed: this.config.demo.speed,
      intervalS: this.config.demo.intervalS,
      log: this.log.child({ module: 'demo' }),
    });
    await this.add(this.fleet);
    this.log.info({ devices: devices.length, speed: this.config.demo.speed }, 'demo: simulated devices publishing');
  }

  /**
   * The bootstrap admin: GRIDWATCH_ADMIN_PASSWORD when set; otherwise, on a first start, a generated password in
   * data/admin-password.txt (0600) so that a newcomer can sign in without reading logs for secrets.
   */
  private async ensureAdmin(): Promise<void> {
    const pw = this.config.auth.adminPassword;
    if (pw) {
      await this.registry.ensureAdmin(pw);
      return;
    }
    const file = path.join(this.config.dataDir, 'admin-password.txt');
    if (existsSync(file)) return;
    const generated = generateSecret();
    await this.registry.ensureAdmin(generated);
    writeFileSync(file, `${generated}\n`, { mode: 0o600 });
    this.log.info(
      { file },
      'admin account created; its password is in this file (set GRIDWATCH_ADMIN_PASSWORD to choose one)',
    );
  }

  private createSmsTransport(): SmsTransport {
    const { sms } = this.config;
    const t = sms.twilio;
    if (sms.transport !== 'twilio' || !t.accountSid || !t.authToken) return new OutboxTransport();
    const base = t.publicUrl?.replace(/\/$/, '');
    return new TwilioTransport({
      accountSid: t.accountSid,
      authToken: t.authToken,
      from: t.from,
      messagingServiceSid: t.messagingServiceSid,
      timeoutMs: t.timeoutMs,
      defaultValiditySeconds: t.validitySeconds,
      statusCallbackUrl: base ? `${base}/webhooks/twilio/status` : undefined,
      baseUrl: t.apiBaseUrl,
    });
  }

  /** The webhooks need the token and the public URL Twilio signs over. */
  private twilioWebhooks(): TwilioWebhookDeps | undefined {
    const t = this.config.sms.twilio;
    if (this.config.sms.transport !== 'twilio' || !t.authToken || !t.publicUrl) return undefined;
    return {
      authToken: t.authToken,
      publicUrl: t.publicUrl,
      store: this.notifications,
      tokens: new RedisEventDedupe(this.redis.client, 86_400_000, 'gw:twilio:'),
      registry: this.registry,
      deliveryFailed: (id) => this.escalator?.deliveryFailed(id) ?? Promise.resolve(undefined),
    };
  }

  /** Configuration choices an operator must not miss. */
  warnings(): string[] {
    const out: string[] = [];
    if (this.config.sms.transport === 'outbox') {
      out.push(
        'SMS go to the outbox (no provider configured): nobody’s phone will ring. Set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM.',
      );
    } else if (!this.config.sms.twilio.publicUrl) {
      out.push('TWILIO_PUBLIC_URL is not set: delivery reports and SMS replies from Twilio are refused.');
    }
    return out;
  }

  async stop(): Promise<void> {
    const modules = this.modules.splice(0);
    await stopAll(modules, this.config.shutdownTimeoutMs, (m, err) =>
      this.log.error({ err, module: m.name }, 'stop failed'),
    );
    this.started = false;
  }

  get running(): boolean {
    return this.started;
  }
}
