/**
 * The clustered embedded broker (mqtt.cluster, MQTT_CLUSTER=true): every node's aedes shares one Redis.
 *
 * - mqemitter-redis carries each publish to the nodes that have a matching subscription (Redis pub/sub), so a
 *   command published on node B reaches the device connected to node A. aedes emits its `publish` event only on the
 *   node where the message entered, so ingest still runs once per message.
 * - aedes-persistence-redis holds sessions and their subscriptions, retained messages, QoS 1 messages queued for an
 *   offline persistent session and the Last Wills, so a device that reconnects to another node finds them there.
 *
 * Both libraries are written against ioredis 5 and bring it along (GridWatch itself runs ioredis 6), so their
 * connections are made with their own copy from the node's Redis URL rather than handed a client of another major.
 * They are loaded only when clustering is on: a single node never loads them.
 */
import { createRequire } from 'node:module';
import type { RedisConnectionSpec } from '../lifecycle/redis.ts';
import type { Logger } from '../logger.ts';
import type { BrokerEmitter, BrokerPersistence, SharedBrokerState } from './embedded.ts';

/** Key prefix of the MQTT session state in the shared Redis (the rest of GridWatch uses `gw:`). */
export const MQTT_KEY_PREFIX = 'gw:mqtt:';

export interface RedisClusterOptions {
  /** The node's Redis (REDIS_URL, or the primary the sentinels name), shared by every node of the cluster. */
  connection: RedisConnectionSpec;
  /** How long a QoS 1 message waits for an offline persistent session (mqtt.cluster.offlineMessageTtlS). */
  offlineMessageTtlS: number;
  logger: Logger;
}

/** What the two libraries need of an ioredis 5 connection: built from a URL, an error listener, a name. */
interface Ioredis5Connection {
  on(event: 'error', listener: (err: Error) => void): unknown;
}
type Ioredis5 = new (
  ...args: [url: string, opts: Record<string, unknown>] | [opts: Record<string, unknown>]
) => Ioredis5Connection;
type EmitterFactory = (opts: Record<string, unknown>) => BrokerEmitter & {
  state: { on(event: 'error', listener: (err: Error) => void): unknown };
};
type PersistenceFactory = (opts: Record<string, unknown>) => BrokerPersistence;

const require = createRequire(import.meta.url);

/** The ioredis a package resolves to itself (its own nested ioredis 5), not the application's. */
function ioredisOf(pkg: string): Ioredis5 {
  return createRequire(require.resolve(pkg))('ioredis') as Ioredis5;
}

/** The emitter and persistence factories the embedded broker takes as `shared` in cluster mode. */
export function redisSharedBrokerState(opts: RedisClusterOptions): SharedBrokerState {
  const { logger } = opts;
  const target = opts.connection;
  const connection = (Redis: Ioredis5, name: string, extra: Record<string, unknown> = {}) => {
    const options = { connectionName: `gridwatch-mqtt-${name}`, ...extra };
    // with sentinels the connection follows a failover the same way as the node's main connection
    const conn = 'url' in target ? new Redis(target.url, options) : new Redis({ ...target, ...options });
    // the node's main connection already reports a Redis outage; these would repeat it per reconnect attempt
    conn.on('error', (err) => logger.debug({ err: err.message, conn: name }, 'mqtt cluster: redis connection error'));
    return conn;
  };
  return {
    createEmitter: ({ concurrency }) => {
      const mqemitterRedis = require('mqemitter-redis') as EmitterFactory;
      const Redis = ioredisOf('mqemitter-redis');
      const mq = mqemitterRedis({
        concurrency,
        // [MQTT-4.7.1-3], as aedes sets it on its default in-memory emitter
        matchEmptyLevels: true,
        // pipelining the publishes: one round trip carries many under load
        pubConn: connection(Redis, 'pub', { enableAutoPipelining: true }),
        subConn: connection(Redis, 'sub'),
      });
      // mqemitter-redis re-emits connection errors here; an 'error' event without a listener would end the process
      mq.state.on('error', (err) => logger.debug({ err: err.message }, 'mqtt cluster: emitter error'));
      return mq;
    },
    createPersistence: () => {
      const persistence = require('aedes-persistence-redis') as PersistenceFactory;
      const Redis = ioredisOf('aedes-persistence-redis');
      return persistence({
        conn: connection(Redis, 'persistence', { keyPrefix: MQTT_KEY_PREFIX }),
        // Redis runs with noeviction: a persistent session that never comes back must not fill it up
        packetTTL: () => opts.offlineMessageTtlS,
      });
    },
  };
}
