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
 *   calls back).
 * - Connection events: a broker does not tell its clients who connected; devices' status comes from their status
 *   topic (and Last Will) and from the silence timeouts.
 */
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
}

/** The packet as MQTT.js hands it to handleMessage (its type is not exported under a stable name). */
interface IncomingPublish {
  topic: string;
  payload: Buffer | string;
  qos: 0 | 1 | 2;
}

export class ExternalBroker implements Module, DeviceTransport {
  readonly name = 'mqtt-external';
  private client: MqttClient | undefined;
  private messageHandler: DeviceMessageHandler | undefined;
  private journal: EventJournalPort | undefined;
  private stopping = false;
  private subscribed = false;
  private lastWarn = 0;

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
    const client = mqtt.connect(cfg.url, {
      protocolVersion: 5,
      clientId: this.clientId,
      clean: false,
      properties: { sessionExpiryInterval: this.deps.sessionExpirySeconds ?? 86_400, receiveMaximum: 1000 },
      username: cfg.username,
      password: cfg.password,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      // resubscribing is ours to do (the session may have expired while we were away); see 'connect' below
      resubscribe: false,
      manualConnect: true,
    });
    this.client = client;
    client.handleMessage = (packet, callback) => this.receive(packet as unknown as IncomingPublish, callback);
    client.on('connect', (connack) => {
      this.deps.logger.info(
        { url: redact(cfg.url), sessionPresent: connack.sessionPresent, filter: this.filter },
        'mqtt: connected to the external broker',
      );
      // Subscribing again on a present session is harmless (same filter, same options) and covers a broker that
      // kept the session but lost the subscription (restart without persistence).
      client.subscribe(this.filter, { qos: 1 }, (err, granted) => {
        const refused = granted?.find((g) => g.qos > 2);
        if (err || refused) {
          this.subscribed = false;
          this.deps.logger.error(
            { err, reasonCode: refused?.qos, filter: this.filter },
            'mqtt: the external broker refused the shared subscription (check the ACL of the service account)',
          );
          return;
        }
        this.subscribed = true;
      });
    });
    client.on('close', () => {
      this.subscribed = false;
    });
    client.on('offline', () => {
      if (!this.stopping) this.deps.logger.warn({ url: redact(cfg.url) }, 'mqtt: external broker unreachable');
    });
    client.on('error', (err) => this.warnLimited({ err: err.message }, 'mqtt: external broker error'));
    await this.firstConnection(client);
  }

  private async firstConnection(client: MqttClient): Promise<void> {
    const limit = this.deps.connectTimeoutMs ?? 30_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.end(true);
        reject(new Error(`external MQTT broker ${redact(this.deps.config.url)} not reachable within ${limit} ms`));
      }, limit);
      const waitSubscribed = () => {
        if (this.subscribed) {
          clearTimeout(timer);
          resolve();
        } else if (client.connected) setTimeout(waitSubscribed, 20);
      };
      client.once('connect', () => setTimeout(waitSubscribed, 0));
      client.connect();
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const client = this.client;
    this.client = undefined;
    this.subscribed = false;
    if (!client) return;
    // Brokers hand a shared subscription's messages to offline members with a live session too (they queue for
    // it), so a node that stops on purpose leaves the group: unsubscribe first (nothing new is sent to us after the
    // UNSUBACK), let what is in flight be acknowledged, then end the session (expiry 0) so the others get it all.
    // A crashed node keeps its session: its share waits at the broker until it is back (docs/deployment.md).
    if (client.connected) {
      await client.unsubscribeAsync(this.filter).catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
      await client.endAsync(false, { properties: { sessionExpiryInterval: 0 } }).catch(() => client.end(true));
    } else client.end(true);
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
   * MQTT.js calls this per PUBLISH, one at a time, and sends the PUBACK when `done` is called: a QoS 1 event is
   * acknowledged after the journal has it. An error instead closes the connection without the PUBACK, so the
   * broker sends the message again after the reconnect (the event dedupe recognises it).
   */
  private receive(packet: IncomingPublish, done: (err?: Error) => void): void {
    const handler = this.messageHandler;
    const parsed = parseDeviceTopic(this.deps.config.baseTopic, packet.topic);
    // our own cmd / error publishes match `+/+` too; a shared subscription cannot use No Local. While stopping,
    // messages still arrive until the UNSUBACK: they are processed like any other (ingest stops after the broker).
    if (!handler) {
      done(new Error('ingest not attached; not acknowledged'));
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
    this.journal.append(deviceId, payload, Date.now()).then(
      () => {
        handler(deviceId, kind, payload, false);
        done();
      },
      (err: unknown) => {
        this.deps.metrics?.journalFailures.inc();
        this.warnLimited({ err, deviceId }, 'mqtt: event not journalled; processed but not acknowledged');
        handler(deviceId, kind, payload, false);
        done(new Error('event could not be stored; not acknowledged'));
      },
    );
  }

  private warnLimited(fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - this.lastWarn < 10_000) {
      this.deps.logger.debug(fields, msg);
      return;
    }
    this.lastWarn = now;
    this.deps.logger.warn(fields, msg);
  }
}

/** The broker URL without a password in it, for logs. */
function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
