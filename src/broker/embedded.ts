/**
 * The embedded MQTT broker: aedes 1.x in-process on TCP, MQTT over WebSocket (`/mqtt`) and, with a certificate,
 * MQTT over TLS.
 *
 * - Authentication: username = device id, password = the device secret, checked against its scrypt hash. The
 *   MQTT client id must equal the device id (see authenticate()).
 * - ACL: a device publishes only to its own `<base>/<id>/telemetry|event|status` and subscribes only to its own
 *   `<base>/<id>/cmd|error` (or `<base>/<id>/#` / `+`). Anything else is refused.
 * - Ingest is fed in-process from aedes' `publish` event, which carries the authenticated client: no internal MQTT
 *   client, no second subscription match, no extra copy. The transport port it implements is in ingest/module.ts.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { Config } from '../config/schema.ts';
import { AuthThrottle } from './auth-throttle.ts';
import { type AuthRefusal, DeviceAuthenticator, deviceMaySubscribe, inboundKind } from './device-acl.ts';
import { deviceTopic, type InboundKind, type OutboundKind } from '../contracts/topics.ts';
import type { DeviceConnectionHandler, DeviceMessageHandler, DeviceTransport } from '../ingest/module.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { DeviceDirectory } from '../registry/types.ts';

/** CONNACK return codes of MQTT 3.1.1 (aedes declares them as an ambient const enum, unusable here). */
const CONNACK = { IDENTIFIER_REJECTED: 2, SERVER_UNAVAILABLE: 3, BAD_USERNAME_OR_PASSWORD: 4, NOT_AUTHORIZED: 5 };
/** The CONNACK each refusal gets: a disabled device learns it is not authorised, a mismatched id is rejected. */
const CONNACK_OF: Record<AuthRefusal, number> = {
  missing_credentials: CONNACK.BAD_USERNAME_OR_PASSWORD,
  client_id_mismatch: CONNACK.IDENTIFIER_REJECTED,
  unknown_device: CONNACK.BAD_USERNAME_OR_PASSWORD,
  bad_secret: CONNACK.BAD_USERNAME_OR_PASSWORD,
  disabled_device: CONNACK.NOT_AUTHORIZED,
};

export interface EmbeddedBrokerDeps {
  config: Config['mqtt'];
  directory: DeviceDirectory;
  /**
   * Checks a secret against a `scrypt$N$r$p$salt$hash` string. Pass `verifyDeviceSecret` from
   * src/registry/secrets.ts: it caches successes, so the reconnect storm after a restart does not cost a full
   * scrypt per device.
   */
  verifySecret: (secret: string, hash: string) => Promise<boolean>;
  logger: Logger;
  metrics?: Metrics;
  /** Upper bound for stop(); default 5 s. */
  stopTimeoutMs?: number;
  /**
   * Cluster mode (mqtt.cluster): the emitter and persistence every node shares (src/broker/cluster.ts). Without it
   * aedes keeps both in memory, for this node alone.
   */
  shared?: SharedBrokerState;
}

/** aedes' message bus (the mqemitter API); in cluster mode it reaches every node. */
export interface BrokerEmitter {
  on(topic: string, listener: (packet: { topic: string; payload: unknown }, done: () => void) => void): unknown;
  emit(packet: { topic: string; payload: Buffer }, done?: (err?: Error) => void): void;
  close(done: () => void): void;
}

/** aedes' session store; only destroy() is ours to call, aedes uses the rest. */
export interface BrokerPersistence {
  destroy(): Promise<void>;
}

/** New emitter and persistence for each start(); stop() closes them. */
export interface SharedBrokerState {
  createEmitter(opts: { concurrency: number }): BrokerEmitter;
  createPersistence(): BrokerPersistence;
}

/** Another node announces each session it accepts here (aedes' own takeover message, `$SYS/<broker id>/…`). */
const NEW_CLIENTS_TOPIC = '$SYS/+/new/clients';
/** Ours: end a device's session on whichever node holds it. Devices cannot reach `$SYS` (ACL). */
const DISCONNECT_TOPIC = '$SYS/gridwatch/disconnect';

/** Where QoS 1 events are made durable before their PUBACK (ingest/event-journal.ts). */
export interface EventJournalPort {
  append(deviceId: string, payload: Buffer, receivedAt: number): Promise<void>;
}

export interface BrokerPorts {
  tcp: number;
  ws?: number;
  tls?: number;
}

/** Internals of mqtt-packet's parser that the size guard hooks (see guardPacketSize). */
interface ParserInternals {
  packet: { length: number };
  _parseLength(): boolean;
  _emitError(err: Error): void;
}

export class EmbeddedBroker implements Module, DeviceTransport {
  readonly name = 'mqtt-broker';
  private broker: Aedes | undefined;
  private readonly servers: net.Server[] = [];
  private wss: WebSocketServer | undefined;
  private readonly conns = new Set<Duplex>();
  private messageHandler: DeviceMessageHandler | undefined;
  private readonly connectionHandlers = new Set<DeviceConnectionHandler>();
  /** The live session per device, to tell a stale Last Will (session already taken over) from a real one. */
  private readonly sessions = new Map<string, Client>();
  /** The newest connection accepted per device; set at authentication, before a takeover closes the old one. */
  private readonly newest = new Map<string, Client>();
  /** Sessions another node took over (the device reconnected there): their end and Last Will are stale. */
  private readonly movedAway = new WeakSet<Client>();
  /** Last Wills recognised as stale in authorizePublish: published without retain, never ingested. */
  private readonly staleWills = new WeakSet<PublishPacket>();
  private emitter: BrokerEmitter | undefined;
  private persistence: BrokerPersistence | undefined;
  /** Per connection: did it register `offline` on its own status topic as Last Will? */
  private readonly statusWill = new WeakMap<Client, boolean>();
  private readonly lastWarn = new Map<string, number>();
  private stopping = false;
  private readonly addresses = new WeakMap<Duplex, string>();
  private readonly throttle: AuthThrottle;
  private readonly auth: DeviceAuthenticator;
  private journal: EventJournalPort | undefined;
  /** payloads of journalled events already handed to ingest: the `publish` event must not hand them again */
  private readonly journaled = new WeakSet<Buffer>();
  private guardWarned = false;
  private boundPorts: BrokerPorts | undefined;

  constructor(private readonly deps: EmbeddedBrokerDeps) {
    this.throttle = new AuthThrottle({ maxFailures: deps.config.authFailuresPerMinute, windowMs: 60_000 });
    this.auth = new DeviceAuthenticator({ directory: deps.directory, verifySecret: deps.verifySecret });
  }

  /** The ports actually bound (useful when configured as 0 = any free port for TCP). */
  get ports(): BrokerPorts {
    if (!this.boundPorts) throw new Error('broker not started');
    return this.boundPorts;
  }

  get ready(): boolean {
    return this.broker !== undefined && !this.broker.closed && !this.stopping;
  }

  async start(): Promise<void> {
    const cfg = this.deps.config;
    this.stopping = false;
    const shared = this.sharedState(cfg.concurrency);
    const broker = await Aedes.createBroker({
      ...shared,
      concurrency: cfg.concurrency,
      // A frozen subscriber must not stall delivery for everyone (ARCHITECTURE.md section 5).
      drainTimeout: cfg.drainTimeoutMs,
      // Device ids are up to 64 characters; the 23-character limit only binds MQTT 3.1 clients anyway.
      maxClientsIdLength: 64,
      // A socket that never sends CONNECT holds a file descriptor for nothing.
      connectTimeout: 10_000,
      heartbeatInterval: 60_000,
      // Device topics have three levels under the base; nothing legitimate comes close to this.
      maxTopicLevels: 16,
      preConnect: (client, packet, done) => {
        const will = packet.will;
        // A Last Will on a topic this device may not publish to would be refused when due; in a cluster a refused
        // will of a dead node is never deleted and holds up the sweep of every will after it. Ignored at CONNECT.
        if (will && !this.inboundKind(will.topic, packet.clientId)) {
          this.warnLimited(
            `${packet.clientId}|will`,
            { deviceId: packet.clientId, topic: will.topic },
            'mqtt: Last Will on a topic the device may not publish to; ignored',
          );
          delete (packet as { will?: unknown }).will;
        }
        this.statusWill.set(
          client,
          will !== undefined &&
            will.topic === deviceTopic(cfg.baseTopic, packet.clientId, 'status') &&
            String(will.payload).trim() === 'offline',
        );
        done(null, true);
      },
      authenticate: (client, username, password, done) => {
        const address = this.addressOf(client);
        const attempt =
          address && this.throttle.blocked(address)
            ? Promise.resolve(this.refuse('throttled', client.id, CONNACK.SERVER_UNAVAILABLE))
            : this.authenticate(client.id, username, password);
        attempt.then(
          (code) => {
            if (address && code !== 0 && code !== CONNACK.SERVER_UNAVAILABLE) this.throttle.failed(address);
            if (code === 0) {
              // Remember the newest accepted connection per device before aedes takes the old session over, so
              // the old one's Last Will and disconnect can be recognised as stale (no offline/online flap).
              this.newest.set(client.id, client);
              return done(null, true);
            }
            const err = new Error('connection refused') as AuthenticateError;
            err.returnCode = code as AuthenticateError['returnCode'];
            done(err, null);
          },
          (err: unknown) => {
            this.deps.logger.error({ err, clientId: client.id }, 'mqtt: authentication failed with an error');
            const e = new Error('server unavailable') as AuthenticateError;
            e.returnCode = CONNACK.SERVER_UNAVAILABLE as AuthenticateError['returnCode'];
            done(e, null);
          },
        );
      },
      authorizePublish: (client, packet, done) => {
        const denied = this.authorizePublish(client, packet);
        if (denied || !this.journal || !client || client.closed || packet.qos !== 1 || this.staleWills.has(packet))
          return done(denied);
        if (this.inboundKind(packet.topic, client.id) !== 'event') return done(null);
        this.journalEvent(client, packet, done);
      },
      authorizeSubscribe: (client, sub, done) => done(null, this.authorizeSubscribe(client, sub)),
    }).catch(async (err: unknown) => {
      // e.g. the shared persistence could not read its sessions from Redis
      await this.closeShared(this.deps.stopTimeoutMs ?? 5000);
      throw err;
    });
    this.broker = broker;

    broker.on('publish', (packet, client) => {
      // A Last Will of a session since taken over on another node (see authorizePublish): not the device's word.
      if (this.stopping || this.staleWills.has(packet)) return;
      // No client: the server's own publishes ($SYS heartbeats, our cmd / error replies) and, in a cluster, the Last
      // Will of a device whose node died, which a surviving node publishes for it.
      if (!client) return this.orphanWill(packet);
      const handler = this.messageHandler;
      if (!handler) return;
      const kind = this.inboundKind(packet.topic, client.id);
      if (!kind) return;
      // A closed client publishing is aedes delivering its Last Will.
      const viaLastWill = client.closed;
      if (viaLastWill) {
        // The device already has a newer connection (it reconnected and took over): this will is stale.
        if (this.isSuperseded(client)) return;
      }
      // a journalled event was handed to ingest already, when it became durable (journalEvent)
      if (this.journaled.delete(packet.payload as Buffer)) return;
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      handler(client.id, kind, payload, viaLastWill);
    });
    broker.on('clientReady', (client) => {
      this.sessions.set(client.id, client);
      this.deps.metrics?.mqttClients.set(this.sessions.size);
      if (this.stopping) return;
      for (const h of this.connectionHandlers) h(client.id, true);
    });
    broker.on('clientDisconnect', (client) => {
      if (this.sessions.get(client.id) === client) this.sessions.delete(client.id);
      this.deps.metrics?.mqttClients.set(this.sessions.size);
      if (this.stopping) return;
      // A session taken over by a newer connection of the same device: the device never went away.
      if (this.isSuperseded(client)) return;
      if (this.newest.get(client.id) === client) this.newest.delete(client.id);
      // aedes marks a client that sent DISCONNECT with `_disconnected` (no public flag exists); without it we
      // treat the end as unclean, which at worst marks a sleepy device offline until its next message.
      const clean = (client as unknown as { _disconnected?: boolean })._disconnected === true;
      const info = { clean, statusWill: this.statusWill.get(client) === true };
      for (const h of this.connectionHandlers) h(client.id, false, info);
    });
    broker.on('clientError', (client, err) => {
      this.deps.logger.debug({ clientId: client.id, err: err.message }, 'mqtt: client error');
    });
    broker.on('connectionError', (_client, err) => {
      this.deps.logger.debug({ err: err.message }, 'mqtt: connection error');
    });
    // aedes emits 'error' for persistence failures; an unhandled 'error' event would crash the process.
    (broker as NodeJS.EventEmitter).on('error', (err: Error) => this.deps.logger.error({ err }, 'mqtt: broker error'));

    try {
      const tcp = net.createServer(this.handleConnection);
      const ports: BrokerPorts = { tcp: await this.listen(tcp, cfg.port, cfg.host) };
      if (cfg.wsPort > 0) ports.ws = await this.startWebSocket(cfg.wsPort, cfg.host);
      if (cfg.tlsCertFile && cfg.tlsKeyFile && cfg.tlsPort > 0) {
        const server = tls.createServer(
          { cert: readFileSync(cfg.tlsCertFile), key: readFileSync(cfg.tlsKeyFile) },
          this.handleConnection,
        );
        ports.tls = await this.listen(server, cfg.tlsPort, cfg.host);
      }
      this.boundPorts = ports;
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.deps.logger.info({ ports: this.boundPorts, baseTopic: cfg.baseTopic }, 'mqtt broker listening');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const timeoutMs = this.deps.stopTimeoutMs ?? 5000;
    // 1. stop accepting new connections
    const serversClosed = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    this.wss?.close();
    // 2. close every session (aedes disconnects its clients)
    const broker = this.broker;
    if (broker && !broker.closed)
      await bounded(new Promise<void>((resolve) => broker.close(() => resolve())), timeoutMs);
    // 3. whatever is still open (half-open sockets that never authenticated, slow TLS handshakes): destroy
    for (const conn of this.conns) conn.destroy();
    for (const ws of this.wss?.clients ?? []) ws.terminate();
    await bounded(Promise.all(serversClosed), timeoutMs);
    await this.closeShared(timeoutMs);
    this.servers.length = 0;
    this.conns.clear();
    this.sessions.clear();
    this.newest.clear();
    this.wss = undefined;
    this.broker = undefined;
  }

  // --- DeviceTransport -------------------------------------------------------------------------------------------

  onMessage(handler: DeviceMessageHandler): () => void {
    this.messageHandler = handler;
    return () => {
      if (this.messageHandler === handler) this.messageHandler = undefined;
    };
  }

  onConnection(handler: DeviceConnectionHandler): () => void {
    this.connectionHandlers.add(handler);
    return () => this.connectionHandlers.delete(handler);
  }

  /** Publishes on `<base>/<deviceId>/cmd|error` on behalf of the service (bypasses the ACL, as it should). */
  publishToDevice(deviceId: string, kind: OutboundKind, payload: string | Buffer, qos: 0 | 1 = 0): void {
    const broker = this.broker;
    if (!broker || this.stopping) return;
    const packet: PublishPacket = {
      cmd: 'publish',
      topic: deviceTopic(this.deps.config.baseTopic, deviceId, kind),
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos,
      retain: false,
      dup: false,
    };
    broker.publish(packet, (err) => {
      if (err) this.deps.logger.debug({ err, deviceId, kind }, 'mqtt: publish to device failed');
    });
  }

  /** Ends a device's session, e.g. after it was disabled or its secret rotated. */
  disconnectDevice(deviceId: string): void {
    this.sessions.get(deviceId)?.close();
    // in a cluster the session may be on another node: every node closes its own (this one's again is a no-op)
    this.emitter?.emit({ topic: DISCONNECT_TOPIC, payload: Buffer.from(deviceId) });
  }

  private isSuperseded(client: Client): boolean {
    if (this.movedAway.has(client)) return true;
    const newest = this.newest.get(client.id);
    return newest !== undefined && newest !== client;
  }

  // --- cluster (mqtt.cluster) ----------------------------------------------------------------------------------

  /** The shared emitter and persistence, with our listeners on the emitter registered before aedes' own. */
  private sharedState(concurrency: number): { mq?: BrokerEmitter; persistence?: BrokerPersistence } {
    const shared = this.deps.shared;
    if (!shared) return {};
    const mq = shared.createEmitter({ concurrency });
    this.emitter = mq;
    // The device connected to another node, which announces it; aedes' own listener for this message closes our
    // session of it right after this one ran. Marked first, so that its disconnect and Last Will are known as stale
    // (no offline on this node for a device that only moved).
    mq.on(NEW_CLIENTS_TOPIC, (packet, done) => {
      const broker = this.broker;
      const id = String(packet.payload);
      const clients = broker && (broker as unknown as { clients: Record<string, Client | undefined> }).clients;
      const local = clients && packet.topic.split('/')[1] !== broker.id ? clients[id] : undefined;
      if (local) {
        this.movedAway.add(local);
        if (this.newest.get(id) === local) this.newest.delete(id);
      }
      done();
    });
    mq.on(DISCONNECT_TOPIC, (packet, done) => {
      this.sessions.get(String(packet.payload))?.close();
      done();
    });
    this.persistence = shared.createPersistence();
    return { mq, persistence: this.persistence };
  }

  /** aedes closes the emitter with the broker (unless that timed out); the persistence is ours to close. */
  private async closeShared(timeoutMs: number): Promise<void> {
    const { emitter, persistence } = this;
    this.emitter = undefined;
    this.persistence = undefined;
    if (emitter) await bounded(new Promise<void>((resolve) => emitter.close(() => resolve())), timeoutMs);
    if (persistence)
      await bounded(
        persistence.destroy().catch((err: unknown) => this.deps.logger.warn({ err }, 'mqtt: persistence close failed')),
        timeoutMs,
      );
  }

  /**
   * A Last Will this node publishes for a device of another node that died (aedes sweeps the wills of nodes silent
   * for three heartbeats): the device is gone unless it reconnected, which authorizePublish has ruled out.
   */
  private orphanWill(packet: PublishPacket): void {
    const will = packet as PublishPacket & { brokerId?: string; clientId?: string };
    const handler = this.messageHandler;
    if (!handler || !will.brokerId || !will.clientId || will.brokerId === this.broker?.id) return;
    const kind = this.inboundKind(will.topic, will.clientId);
    if (!kind) return;
    handler(will.clientId, kind, typeof will.payload === 'string' ? Buffer.from(will.payload) : will.payload, true);
  }

  /**
   * The Last Will of a session that has been taken over: ours, by a connection to another node; or one of a dead
   * node, for a device that has reconnected here since. Only a will carries `brokerId` (the persistence adds it).
   */
  private isStaleWill(client: Client | null, packet: PublishPacket): boolean {
    if (!client) return false;
    if (client.closed) return this.movedAway.has(client);
    const brokerId = (packet as { brokerId?: string }).brokerId;
    return brokerId !== undefined && brokerId !== this.broker?.id;
  }

  /** Connected device ids (authenticated sessions). */
  connectedDevices(): IterableIterator<string> {
    return this.sessions.keys();
  }

  // --- connections -----------------------------------------------------------------------------------------------

  private readonly handleConnection = (conn: Duplex, req?: IncomingMessage): void => {
    const broker = this.broker;
    if (!broker || this.stopping) {
      conn.destroy();
      return;
    }
    this.conns.add(conn);
    conn.once('close', () => this.conns.delete(conn));
    // the peer's address for the login throttle: the socket's, or for MQTT over WebSocket the upgrade request's
    const address = (conn as Partial<net.Socket>).remoteAddress ?? req?.socket.remoteAddress;
    if (address) this.addresses.set(conn, address);
    const client = broker.handle(conn, req);
    this.guardPacketSize(client);
  };

  /**
   * aedes 1.x has no maximum packet size and mqtt-packet buffers a whole packet before parsing it, so a device could
   * make the broker hold up to 256 MB per connection. We hook the parser right after it has read the "remaining
   * length" of the fixed header and refuse the connection before any of the body is buffered. This touches parser
   * internals, so it is feature-detected; embedded.int.test.ts proves it still works after an upgrade. Ingest's own
   * `maxPayloadBytes` check stays as the second line.
   */
  private guardPacketSize(client: Client): void {
    const max = this.deps.config.maxPacketSize;
    const parser = (client as unknown as { _parser?: Partial<ParserInternals> })._parser;
    if (!parser || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function') {
      if (!this.guardWarned) {
        this.guardWarned = true;
        this.deps.logger.warn('mqtt: cannot enforce maxPacketSize on this aedes version (parser internals changed)');
      }
      return;
    }
    const parseLength = parser._parseLength;
    parser._parseLength = function (this: ParserInternals): boolean {
      const ok = parseLength.call(this);
      if (ok && this.packet.length > max) {
        this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds maxPacketSize ${max}`));
        return false;
      }
      return ok;
    };
  }

  private listen(server: net.Server, port: number, host: string): Promise<number> {
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.deps.logger.error({ err }, 'mqtt: listener error'));
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  private async startWebSocket(port: number, host: string): Promise<number> {
    const server = http.createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('MQTT over WebSocket is on /mqtt\n');
    });
    // maxPayload: a WebSocket frame larger than the largest MQTT packet is refused by ws itself (close 1009).
    const wss = new WebSocketServer({ server, path: '/mqtt', maxPayload: this.deps.config.maxPacketSize + 5 });
    wss.on('connection', (ws, req) => {
      const stream = createWebSocketStream(ws);
      // ws errors surface on the stream; aedes listens to the stream once it owns it
      stream.on('error', () => {});
      this.handleConnection(stream, req);
    });
    wss.on('error', (err) => this.deps.logger.error({ err }, 'mqtt: websocket server error'));
    this.wss = wss;
    return this.listen(server, port, host);
  }

  // --- authentication --------------------------------------------------------------------------------------------

  /** The source address of a client's connection (aedes keeps the stream as `conn`, untyped). */
  private addressOf(client: Client): string | undefined {
    return this.addresses.get((client as unknown as { conn: Duplex }).conn);
  }

  /** Resolves to a CONNACK return code: 0 accepted. The rules are in device-acl.ts. */
  private async authenticate(
    clientId: string,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<number> {
    const result = await this.auth.authenticate(clientId, username, password);
    if (result.ok) return 0;
    const named = result.reason === 'missing_credentials' || result.reason === 'client_id_mismatch';
    return this.refuse(result.reason, named || !username ? clientId : username, CONNACK_OF[result.reason]);
  }

  private refuse(reason: string, id: string, code: number): number {
    this.deps.metrics?.mqttAuthFailures.labels(reason).inc();
    this.warnLimited(`${id}|auth`, { deviceId: id, reason }, 'mqtt: connection refused');
    return code;
  }

  // --- durable events -------------------------------------------------------------------------------------------

  /**
   * QoS 1 events go to the ingest journal before the PUBACK (aedes writes the PUBACK right after authorizePublish,
   * before it publishes), and to ingest as soon as they are durable. Redis not answering: the event is still
   * processed (a late SOS is worse than a duplicate), but not acknowledged; aedes closes the connection and the
   * device sends it again, which the event dedupe recognises.
   */
  setEventJournal(journal: EventJournalPort | undefined): void {
    this.journal = journal;
  }

  private journalEvent(client: Client, packet: PublishPacket, done: (err: Error | null) => void): void {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    packet.payload = payload;
    const deviceId = client.id;
    const handOver = () => {
      const handler = this.messageHandler;
      if (!handler || this.stopping) return;
      this.journaled.add(payload);
      handler(deviceId, 'event', payload, false);
    };
    this.journal!.append(deviceId, payload, Date.now()).then(
      () => {
        handOver();
        done(null);
      },
      (err: unknown) => {
        this.deps.metrics?.journalFailures.inc();
        this.warnLimited('journal', { err, deviceId }, 'mqtt: event not journalled; processed but not acknowledged');
        handOver();
        done(new Error('event could not be stored; not acknowledged'));
      },
    );
  }

  // --- ACL -------------------------------------------------------------------------------------------------------

  private authorizePublish(client: Client | null, packet: PublishPacket): Error | null {
    // client is null only for a stale Last Will of another broker node; it belongs to the client id it names.
    const owner = client?.id ?? (packet as { clientId?: string }).clientId;
    const kind = owner ? this.inboundKind(packet.topic, owner) : undefined;
    if (!kind) {
      this.deps.metrics?.mqttDenied.labels('publish').inc();
      this.warnLimited(`${owner}|publish`, { deviceId: owner, topic: packet.topic }, 'mqtt: publish denied');
      // MQTT 3.1.1 has no negative PUBACK: aedes closes the connection, which is the right answer to a device
      // writing into another device's topics.
      return new Error(`publish to ${packet.topic} is not allowed`);
    }
    // Only status is meant to be retained; a retained reading or event would be replayed to later subscribers.
    if (kind !== 'status') packet.retain = false;
    // A stale Last Will (cluster): refusing it would keep it stored, as aedes deletes a will only once published;
    // so it goes out unretained (the live status stays retained) and is never ingested.
    if (this.isStaleWill(client, packet)) {
      packet.retain = false;
      this.staleWills.add(packet);
    }
    return null;
  }

  private authorizeSubscribe(client: Client, sub: Subscription): Subscription | null {
    if (deviceMaySubscribe(this.deps.config.baseTopic, sub.topic, client.id)) return sub;
    this.deps.metrics?.mqttDenied.labels('subscribe').inc();
    this.warnLimited(`${client.id}|subscribe`, { deviceId: client.id, topic: sub.topic }, 'mqtt: subscribe denied');
    return null; // SUBACK 128 for this filter; the connection stays up
  }

  private inboundKind(topic: string, deviceId: string): InboundKind | undefined {
    return inboundKind(this.deps.config.baseTopic, topic, deviceId);
  }

  private warnLimited(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const last = this.lastWarn.get(key);
    if (last !== undefined && now - last < 60_000) {
      this.deps.logger.debug(fields, msg);
      return;
    }
    if (this.lastWarn.size >= 10_000) this.lastWarn.clear();
    this.lastWarn.set(key, now);
    this.deps.logger.warn(fields, msg);
  }
}

async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
