/**
 * Event dedupe in Redis: `SET gw:evt:<deviceId>/<id> 1 NX PX <window>`. Shared by every ingest node and kept across
 * restarts (the private Redis has AOF on), so an event a device re-sends after a reconnect — QoS 1 redelivery, or
 * the device's own retry — is processed once even when the first copy reached another node or a previous process.
 * Only events pay the round trip; telemetry never consults it.
 */
import type { Redis } from 'ioredis';
import type { EventDedupe } from './pipeline.ts';

export class RedisEventDedupe implements EventDedupe {
  constructor(
    private readonly redis: Redis,
    private readonly windowMs: number,
    private readonly prefix = 'gw:evt:',
  ) {}

  async seen(deviceId: string, id: string): Promise<boolean> {
    const set = await this.redis.set(`${this.prefix}${deviceId}/${id}`, '1', 'PX', this.windowMs, 'NX');
    return set === null;
  }
}
