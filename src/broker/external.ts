/**
 * External-broker mode (MQTT_URL): no embedded aedes; the service is a client of an existing broker (EMQX,
 * Mosquitto, HiveMQ) and takes the devices' messages through an MQTT 5 shared subscription
 * `$share/<group>/<base>/+/+`, so several ingest nodes split the traffic and each message goes to one of them.
 *
 * - Devices authenticate at the broker, against this registry (docs/brokers.md: EMQX / mosquitto-go-auth call our
 *   HTTP endpoints, Debian's mosquitto reads files generated from the registry). The broker's ACL keeps a device to
 *   its own topics, so the device id in the topic is the publisher.
 * - Nothing acknowledged is lost on this leg either: the session is persistent (clean start off, a session expiry),
 *   so what the broker sent us and we did not acknowledge is sent again after a reconnect, and a QoS 1 event is
 *   acknowledged to the broker only once it is in the ingest journal (MQTT.js sends the PUBACK when `handleMessage`
 *   calls back). One that could not be journalled is not acknowledged, and the link is dropped on purpose: MQTT.js
 *   5.16 ignores an error passed to that callback (it only skips the PUBACK), and a broker resends unacknowledged
 *   messages only on a new connection, while each one holds a slot of the session's in-flight window until then.
 * - Connection events: a broker does not tell its clients who connected; devices' status comes from their status
 *   topic (and Last Will) and from the silence timeouts.
 */
import { createHash } from 'node:crypto';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import type { Config } from '../config/schema.ts';
import { deviceTopic, parseDeviceTopic, type OutboundKind } from '../contracts/topics.ts';
import type { DeviceConnectionHandler, DeviceMessageHandler, DeviceTransport } from '../ingest/module.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { EventJournalPort } from './embedded.ts';

export interface ExternalBrokerDeps {
  config: Config['mqtt'] & { url: string };
  /** stable per node: the persistent session's client id is derived from it */
  nodeId: string;
  logger: Logger;
  metrics?: Metrics;
  /** how long the broker keeps this node's session (and the messages queued for it) while it is away */
  sessionExpirySeconds?: number;
  /** first connection: give up (start fails) after this */
  connectTimeoutMs?: number;
  /** MQTT 5 Receive Maximum: how many unacknowledged QoS 1 messages the broker may have in flight to us (1000) */
  receiveMaximum?: number;
}

/** stop(): bound on each exchange with the broker (UNSUBSCRIBE, DISCONNECT) */
const STOP_STEP_MS = 2000;
/** stop(): after the UNSUBACK, the session is drained when nothing has arrived for this long … */
const DRAIN_QUIET_MS = 300;
/** … or, at the latest, after this */
const DRAIN_LIMIT_MS = 3000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves true when `p` settles in time (a rejection counts as settled), false after `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = p.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** The packet as MQTT.js hands it to handleMessage (its type is not exported under a stable name). */
interface IncomingPublish {
  topic: string;
  payload: Buffer | string;
  qos: 0 | 1 | 2;
  /** set on a redelivery */
  dup?: boolean;
}

export class ExternalBroker implements Module, DeviceTransport {
  readonly name = 'mqtt-external';
  private client: MqttClient | undefined;
  private messageHandler: DeviceMessageHandler | undefined;
  private journal: EventJournalPort | undefined;
  private stopping = false;
  private subscribed = false;
  private readonly lastWarn = new Map<string, number>();
  /** start(): called once the shared subscription is granted, on whichever connection that happens */
  private onSubscribed: (() => void) | undefined;
  private lastRefusal: string | undefined;
  /** bumped when a link closes: an acknowledgement is only sent on the link its message came on */
  private link = 0;
  /** a reconnect was forced (a message left unacknowledged): what still arrives on the old link is not taken */
  private resetting = false;
  /** journal writes in progress, and when the last message arrived (stop() drains the session on them) */
  private pendingWrites = 0;
  private lastArrival = 0;
  /** messages left unacknowledged while stopping: the session is kept so that the broker sends them again */
  private unackedWhileStopping = 0;
  /**
   * Events handed to ingest without their PUBACK (the journal failed): the copy the broker sends again is journalled
   * and acknowledged, not handed over once more (during an outage that would be once per reconnect). Bounded.
   */
  private readonly handedUnacked = new Set<string>();

  constructor(private readonly deps: ExternalBrokerDeps) {}

  /** The shared subscription this node takes part in. */
  get filter(): string {
    return `$share/${this.deps.config.sharedGroup}/${this.deps.config.baseTopic}/+/+`;
  }

  get clientId(): string {
    // 23 characters fit every broker's default limit for MQTT client ids
    return `gw-${this.deps.nodeId.replace(/[^A-Za-z0-9]/g, '').slice(0, 20)}`;
  }

  get ready(): boolean {
    return this.client?.connected === true && this.subscribed && !this.stopping;
  }

  /** The broker devices connect to (drills and the demo fleet publish there too). */
  get url(): string {
    return this.deps.config.url;
  }

  setEventJournal(journal: EventJournalPort | undefined): void {
    this.journal = journal;
  }

  async start(): Promise<void> {
    const cfg = this.deps.config;
    this.stopping = false;
    this.resetting = false;
    this.unackedWhileStopping = 0;
    const client = mqtt.connect(cfg.url, {
      protocolVersion: 5,
      clientId: this.clientId,
      clean: false,
      properties: {
        sessionExpiryInterval: this.deps.sessionExpirySeconds ?? 86_400,
        receiveMaximum: this.deps.receiveMaximum ?? 1000,
      },
      username: cfg.username,
      password: cfg.password,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      // resubscribing is ours to do (the session may have expired while we were away); see 'connect' below
      resubscribe: false,
      manualConnect: true,
    });
    this.client = client;
    client.handleMessage = (packet, callback) => this.receive(client, packet as unknown as IncomingPublish, callback);
    client.on('connect', (connack) => {
      this.resetting = false;
      this.deps.logger.info(
        { url: redact(cfg.url), sessionPresent: connack.sessionPresent, filter: this.filter },
        'mqtt: connected to the external broker',
      );
      // Subscribing again on a present session is harmless (same filter, same options) and covers a broker that
      // kept the session but lost the subscription (restart without persistence).
      client.subscribe(this.filter, { qos: 1 }, (err, granted) => {
        const refused = granted?.find((g) => g.qos > 2);
        if (err && !refused) {
          // the link went away before the SUBACK: the next 'connect' subscribes again
          this.subscribed = false;
          this.warnLimited('subscribe', { err: err.message }, 'mqtt: subscribing failed; retried on reconnect');
          return;
        }
        if (refused) {
          this.subscribed = false;
          this.lastRefusal = `reason code ${refused.qos}`;
          this.deps.logger.error(
            { reasonCode: refused.qos, filter: this.filter },
            'mqtt: the external broker refused the shared subscription (check the ACL of the service account)',
          );
          return;
        }
        this.subscribed = true;
        this.onSubscribed?.();
      });
    });
    client.on('close', () => {
      this.link++;
      this.subscribed = false;
    });
    client.on('offline', () => {
      // a reconnect we forced is no outage (receive() logged why)
      if (!this.stopping && !this.resetting)
        this.deps.logger.warn({ url: redact(cfg.url) }, 'mqtt: external broker unreachable');
    });
    client.on('error', (err) => this.warnLimited('error', { err: err.message }, 'mqtt: external broker error'));
    await this.firstConnection(client);
  }

  /** Until the shared subscription is granted, across as many reconnects as that takes within the limit. */
  private async firstConnection(client: MqttClient): Promise<void> {
    const limit = this.deps.connectTimeoutMs ?? 30_000;
    this.lastRefusal = undefined;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.onSubscribed = undefined;
        client.end(true);
        const url = redact(this.deps.config.url);
        reject(
          new Error(
            this.lastRefusal
              ? `external MQTT broker ${url} refused the shared subscription ${this.filter} (${this.lastRefusal})`
              : `external MQTT broker ${url} not reachable (or no SUBACK) within ${limit} ms`,
          ),
        );
      }, limit);
      this.onSubscribed = () => {
        this.onSubscribed = undefined;
        clearTimeout(timer);
        resolve();
      };
      client.connect();
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.onSubscribed = undefined;
    const client = this.client;
    this.client = undefined;
    this.subscribed = false;
    if (!client) return;
    // Brokers hand a shared subscription's messages to offline members with a live session too (they queue for
    // it), so a node that stops on purpose leaves the group: unsubscribe first (nothing new is routed to us after the
    // UNSUBACK), take and acknowledge what the broker had already queued or in flight for us (until the session has
    // been quiet a moment), then end the session (expiry 0): mosquitto does not pass a session's queue on to the
    // group, so ending it earlier would throw away messages the devices already have their PUBACK for.
    // A crashed node keeps its session: its share waits at the broker until it is back (docs/deployment.md). So does
    // one that could not drain, or that left messages unacknowledged (journal down): the broker resends them then.
    if (!client.connected || this.resetting) {
      client.end(true);
      return;
    }
    const log = this.deps.logger;
    const unsubscribed = await within(client.unsubscribeAsync(this.filter), STOP_STEP_MS);
    const drained = unsubscribed && (await this.drain());
    const leave = drained && this.unackedWhileStopping === 0;
    if (!leave)
      log.warn(
        { unsubscribed, drained, unacknowledged: this.unackedWhileStopping },
        'mqtt: stopping without ending the session; the broker keeps what is left for this node until it is back',
      );
    const ended = await within(
      client.endAsync(false, leave ? { properties: { sessionExpiryInterval: 0 } } : {}),
      STOP_STEP_MS,
    );
    if (!ended) {
      log.warn('mqtt: the external broker did not take the DISCONNECT in time; closing the connection');
      // end(false) may have begun (then end(true) does nothing): close the stream itself
      client.end(true);
      client.stream?.destroy();
    }
  }

  /** After the UNSUBACK: until nothing has arrived for DRAIN_QUIET_MS and no journal write is pending (bounded). */
  private async drain(): Promise<boolean> {
    const deadline = Date.now() + DRAIN_LIMIT_MS;
    this.lastArrival = Date.now();
    for (;;) {
      const quietFor = Date.now() - this.lastArrival;
      if (this.pendingWrites === 0 && quietFor >= DRAIN_QUIET_MS) return true;
      if (Date.now() >= deadline) return false;
      await sleep(Math.min(50, Math.max(10, DRAIN_QUIET_MS - quietFor)));
    }
  }

  // --- DeviceTransport -------------------------------------------------------------------------------------------

  onMessage(handler: DeviceMessageHandler): () => void {
    this.messageHandler = handler;
    return () => {
      if (this.messageHandler === handler) this.messageHandler = undefined;
    };
  }

  onConnection(_handler: DeviceConnectionHandler): () => void {
    return () => {};
  }

  publishToDevice(deviceId: string, kind: OutboundKind, payload: string | Buffer, qos: 0 | 1 = 0): void {
    const client = this.client;
    if (!client || this.stopping) return;
    const opts: IClientPublishOptions = { qos };
    client.publish(deviceTopic(this.deps.config.baseTopic, deviceId, kind), payload, opts, (err) => {
      if (err) this.deps.logger.debug({ err, deviceId, kind }, 'mqtt: publish to device failed');
    });
  }

  /** A device's session lives at the broker: disabling a device there is the broker's job (its auth backend). */
  disconnectDevice(_deviceId: string): void {}

  // --- receiving -------------------------------------------------------------------------------------------------

  /**
   * MQTT.js calls this per PUBLISH, one at a time, and sends the PUBACK when `done` is called without an error: a
   * QoS 1 event is acknowledged after the journal has it. MQTT.js 5.16 does nothing else with an error, so a
   * message left unacknowledged also drops the link (see notAcknowledged): the broker sends it again after the
   * reconnect (the event dedupe recognises it).
   */
  private receive(client: MqttClient, packet: IncomingPublish, done: (err?: Error) => void): void {
    this.lastArrival = Date.now();
    // after a forced reconnect, what was already read from the old link is not taken: it is not acknowledged (the
    // link is gone), so the broker sends it again
    if (this.resetting || !client.connected) {
      done(new Error('link closing; not acknowledged'));
      return;
    }
    const handler = this.messageHandler;
    const parsed = parseDeviceTopic(this.deps.config.baseTopic, packet.topic);
    // our own cmd / error publishes match `+/+` too; a shared subscription cannot use No Local. While stopping,
    // messages still arrive until the session is drained: they are processed like any other (ingest stops after
    // the broker).
    if (!handler) {
      this.notAcknowledged(client, done, 'attach', {}, 'mqtt: message before ingest is attached; not acknowledged');
      return;
    }
    const kind = parsed?.kind;
    if (!parsed || (kind !== 'telemetry' && kind !== 'event' && kind !== 'status')) {
      done();
      return;
    }
    const { deviceId } = parsed;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    if (kind !== 'event' || packet.qos === 0 || !this.journal) {
      handler(deviceId, kind, payload, false);
      done();
      return;
    }
    const link = this.link;
    const key = this.handedUnacked.size > 0 || packet.dup ? eventKey(deviceId, payload) : undefined;
    const handedBefore = key !== undefined && this.handedUnacked.has(key);
    const handOver = () => {
      if (!handedBefore) handler(deviceId, kind, payload, false);
    };
    const handedWithoutAck = () => {
      if (this.handedUnacked.size >= 10_000) this.handedUnacked.clear();
      this.handedUnacked.add(key ?? eventKey(deviceId, payload));
    };
    this.pendingWrites++;
    this.journal
      .append(deviceId, payload, Date.now())
      .then(
        () => {
          handOver();
          if (link !== this.link) {
            // the link it came on is gone: the broker sends it again on the new one
            handedWithoutAck();
            done(new Error('link closed; not acknowledged'));
            return;
          }
          if (key !== undefined) this.handedUnacked.delete(key);
          done();
        },
        (err: unknown) => {
          this.deps.metrics?.journalFailures.inc();
          // processed at once all the same (an emergency does not wait for Redis); the journal gets it on redelivery
          handOver();
          handedWithoutAck();
          this.notAcknowledged(
            client,
            done,
            'journal',
            { err, deviceId },
            'mqtt: event not journalled; processed but not acknowledged',
          );
        },
      )
      .finally(() => {
        this.pendingWrites--;
      });
  }

  /**
   * Leaves a message unacknowledged. MQTT.js only skips the PUBACK then; the broker would resend it only on a new
   * connection and meanwhile count it against our in-flight window (after enough of them it sends us nothing
   * more), so the link is dropped: MQTT.js reconnects (reconnectPeriod) and the persistent session gets it all
   * again. While stopping the link stays (the drain goes on) and the session is kept instead (see stop()).
   */
  private notAcknowledged(
    client: MqttClient,
    done: (err?: Error) => void,
    key: string,
    fields: Record<string, unknown>,
    msg: string,
  ): void {
    if (this.stopping) {
      this.unackedWhileStopping++;
      this.warnLimited(key, fields, msg);
      done(new Error(msg));
      return;
    }
    this.warnLimited(key, fields, `${msg}; reconnecting so that the broker sends it again`);
    if (!this.resetting && client.connected) {
      this.resetting = true;
      client.stream?.destroy();
    }
    done(new Error(msg));
  }

  /** At most one warn line per kind every 10 s; the rest at debug. */
  private warnLimited(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const last = this.lastWarn.get(key);
    if (last !== undefined && now - last < 10_000) {
      this.deps.logger.debug(fields, msg);
      return;
    }
    this.lastWarn.set(key, now);
    this.deps.logger.warn(fields, msg);
  }
}

/** Identifies an event for handedUnacked (the payload carries the event's id and time). */
function eventKey(deviceId: string, payload: Buffer): string {
  return createHash('sha256').update(deviceId).update('\0').update(payload).digest('base64');
}

/** The broker URL without a password in it, for logs. */
function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
