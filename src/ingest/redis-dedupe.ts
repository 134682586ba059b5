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
    /**
     * The connection queues commands while Redis is away (BullMQ needs that), so without a bound an SOS would wait
     * for Redis to come back. After this long the answer is an error and the pipeline processes the event: a
     * possible duplicate is better than a late or lost emergency.
     */
    private readonly timeoutMs = 500,
  ) {}

  seen(deviceId: string, id: string): Promise<boolean> {
    const set = this.redis.set(`${this.prefix}${deviceId}/${id}`, '1', 'PX', this.windowMs, 'NX');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`event dedupe: no answer from Redis in ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    return Promise.race([set, timeout]).then(
      (answer) => {
        clearTimeout(timer);
        return answer === null;
      },
      (err: unknown) => {
        clearTimeout(timer);
        throw err;
      },
    );
  }
}
