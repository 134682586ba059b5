/**
 * Drill devices (ARCHITECTURE.md section 2): devices provisioned with `drill: true` and bound to a real place, so
 * that everything they cause — readings, alerts, notifications, timelines — carries the drill flag through ingest,
 * and nothing from a real device ever does.
 *
 * - One device per place and model, with a deterministic id `drill-<place>-<model>` (a hash when that would be
 *   longer than 64 characters), provisioned through the registry the first time and re-used by later drills.
 * - A new random secret per run, kept in memory only: at the start of a run the stored hash is replaced and the
 *   device enabled; at the end (and when the node stops) it is disabled again, so a drill device can only ever
 *   publish while its drill runs, and a disabled device going silent raises no offline alert.
 * - Each device is a real MQTT client authenticated as itself on the embedded broker; injects publish with QoS 1 on
 *   its own topics, as a device in the field would. While the drill runs it says `online` on its status topic often
 *   enough that its model's last-seen timeout never marks it offline.
 */
import { createHash } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import type { DeviceModel } from '../../devices/index.ts';
import type { Cancel, Clock } from '../clock/clock.ts';
import { deviceTopic, isValidDeviceId } from '../contracts/topics.ts';
import type { Logger } from '../logger.ts';
import { RegistryError } from '../registry/port.ts';
import { installKey, type SqlRegistry } from '../registry/registry.ts';
import { generateSecret } from '../registry/secrets.ts';
import type { InstallTarget } from '../registry/types.ts';

/** What the drill devices need of the registry. */
export type DrillDeviceRegistry = Pick<
  SqlRegistry,
  'db' | 'devices' | 'getDevice' | 'provisionDevice' | 'hashDeviceSecrets'
>;

export interface DrillDevicesDeps {
  registry: DrillDeviceRegistry;
  /** mqtt://127.0.0.1:<port> of the embedded broker */
  url: () => string;
  baseTopic: string;
  clock: Clock;
  logger: Logger;
  getModel: (id: string) => DeviceModel | undefined;
  /** default 10 s */
  connectTimeoutMs?: number;
}

interface Conn {
  client: MqttClient;
  secret: string;
  heartbeat?: Cancel;
}

/** `drill-<place>-<model>`, or a hash of both when that does not fit a device id. */
export function drillDeviceId(install: InstallTarget, model: string): string {
  const place = installKey(install).split(':')[1]!;
  const id = `drill-${place}-${model}`;
  if (id.length <= 64 && isValidDeviceId(id)) return id;
  return `drill-${createHash('sha256').update(`${place}|${model}`).digest('hex').slice(0, 24)}`;
}

export class DrillDevices {
  private readonly conns = new Map<string, Conn>();
  private readonly log: Logger;

  constructor(private readonly deps: DrillDevicesDeps) {
    this.log = deps.logger;
  }

  /**
   * Makes sure the drill device exists, is enabled with a fresh secret and is connected. Throws a RegistryError
   * ('conflict') when a non-drill device (or one bound elsewhere) holds the id.
   */
  async ensure(deviceId: string, model: string, install: InstallTarget): Promise<void> {
    if (this.conns.get(deviceId)?.client.connected) return;
    const secret = await this.credentials(deviceId, model, install);
    await this.connect(deviceId, model, secret);
  }

  private async credentials(deviceId: string, model: string, install: InstallTarget): Promise<string> {
    const { registry } = this.deps;
    for (let attempt = 0; attempt < 2; attempt++) {
      const existing = await registry.getDevice(deviceId);
      if (!existing) {
        try {
          const { secret } = await registry.provisionDevice({ id: deviceId, model, install, drill: true });
          return secret;
        } catch (err) {
          if (err instanceof RegistryError && err.code === 'conflict') continue; // provisioned meanwhile
          throw err;
        }
      }
      if (!existing.drill) {
        throw new RegistryError('conflict', `device ${deviceId} exists and is not a drill device`);
      }
      if (existing.model !== model || installKey(existing.install) !== installKey(install)) {
        throw new RegistryError('conflict', `drill device ${deviceId} exists with another model or place`);
      }
      const secret = generateSecret();
      const hashes = await registry.hashDeviceSecrets(secret);
      await registry.db
        .updateTable('device')
        .set({ ...hashes, disabled: 0 })
        .where('id', '=', deviceId)
        .where('drill', '=', 1)
        .execute();
      await registry.devices.refresh(deviceId);
      return secret;
    }
    throw new RegistryError('conflict', `drill device ${deviceId} could not be provisioned`);
  }

  private async connect(deviceId: string, model: string, secret: string): Promise<void> {
    const old = this.conns.get(deviceId);
    if (old) await this.close(deviceId, old);
    const client = await mqtt.connectAsync(this.deps.url(), {
      clientId: deviceId,
      username: deviceId,
      password: secret,
      reconnectPeriod: 0,
      connectTimeout: this.deps.connectTimeoutMs ?? 10_000,
      clean: true,
    });
    client.on('error', (err) => this.log.warn({ deviceId, err: err.message }, 'drill device: mqtt error'));
    const conn: Conn = { client, secret };
    this.conns.set(deviceId, conn);
    await this.publishStatus(deviceId, conn);
    // often enough that the model's last-seen timeout never calls it offline while the drill runs
    const timeoutS = this.deps.getModel(model)?.lastSeenTimeoutS ?? 3600;
    const everyMs = Math.max(30_000, Math.min(600_000, (timeoutS * 1000) / 3));
    conn.heartbeat = this.deps.clock.setInterval(() => {
      this.publishStatus(deviceId, conn).catch((err: unknown) =>
        this.log.warn({ deviceId, err: (err as Error).message }, 'drill device: heartbeat failed'),
      );
    }, everyMs);
  }

  private async publishStatus(deviceId: string, conn: Conn): Promise<void> {
    if (!conn.client.connected) return;
    await conn.client.publishAsync(deviceTopic(this.deps.baseTopic, deviceId, 'status'), 'online', { qos: 1 });
  }

  /** Publishes one telemetry or event payload as the device (QoS 1), reconnecting once if the session dropped. */
  async publish(deviceId: string, kind: 'telemetry' | 'event', payload: object): Promise<void> {
    let conn = this.conns.get(deviceId);
    if (!conn) throw new Error(`drill device ${deviceId} is not connected`);
    if (!conn.client.connected) {
      const record = this.deps.registry.devices.get(deviceId);
      await this.connect(deviceId, record?.model ?? '', conn.secret);
      conn = this.conns.get(deviceId)!;
    }
    await conn.client.publishAsync(deviceTopic(this.deps.baseTopic, deviceId, kind), JSON.stringify(payload), {
      qos: 1,
    });
  }

  /** Disables the devices (their secrets are forgotten) and closes their connections. */
  async release(deviceIds: readonly string[]): Promise<void> {
    if (deviceIds.length > 0) {
      await this.deps.registry.db
        .updateTable('device')
        .set({ disabled: 1 })
        .where('id', 'in', [...deviceIds])
        .where('drill', '=', 1)
        .execute();
      for (const id of deviceIds) await this.deps.registry.devices.refresh(id);
    }
    await Promise.allSettled(
      deviceIds.map((id) => {
        const c = this.conns.get(id);
        return c ? this.close(id, c) : Promise.resolve();
      }),
    );
  }

  private async close(deviceId: string, conn: Conn): Promise<void> {
    conn.heartbeat?.();
    if (this.conns.get(deviceId) === conn) this.conns.delete(deviceId);
    await conn.client.endAsync().catch(() => conn.client.end(true));
  }

  get connected(): number {
    return [...this.conns.values()].filter((c) => c.client.connected).length;
  }
}
