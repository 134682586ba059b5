/**
 * Per-device message rate limit (a token bucket per device). A device that floods — broken firmware in a reporting
 * loop, or someone publishing with a stolen secret — must not take the pipeline, the database or the SMS budget
 * from the others. Over the limit a message is rejected as `rate_limited` (counted, shown on the device page,
 * logged at most once per device per interval) instead of being processed.
 *
 * The bucket runs on the messages' own time (their `ts`, else their arrival), not on the wall clock: a backlog an
 * external broker kept for a device while GridWatch was away (hours of readings, delivered in a second) is within
 * the limit, as it was when the device sent it; a flood is not, whatever its timestamps, because `ts` may not run
 * ahead of the server's clock (ingest.maxFutureS) and a jump forward refills the bucket at most to its burst.
 *
 * The pipeline never refuses life-safety events (SOS, fall, smoke, gas, a door forced, …) for the rate: a resident
 * whose wristband floods must still be heard. They take a token like any message when one is there.
 *
 * Real devices send a reading a minute or a burst of door events; the default (20 msg/s sustained, a burst of 200)
 * is far above any of them. Benchmarks and tests that drive hundreds of messages a second through one client set
 * `ingest.rateLimit.perSecond: 0` (off).
 */
export interface RateLimitConfig {
  /** sustained messages per second per device; 0 turns the limit off */
  perSecond: number;
  /** messages a device may send at once on top of the sustained rate */
  burst: number;
}

interface Bucket {
  tokens: number;
  /** the newest message time (epoch ms) the bucket was refilled to */
  at: number;
  /** messages refused since the device was last reported */
  refused: number;
}

export class DeviceRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly cfg: RateLimitConfig,
    private readonly maxDevices = 200_000,
  ) {
    this.perMs = cfg.perSecond / 1000;
  }

  get enabled(): boolean {
    return this.cfg.perSecond > 0;
  }

  /** True when the device may send a message of time `at` (epoch ms), and takes a token. */
  take(deviceId: string, at: number): boolean {
    if (this.cfg.perSecond <= 0) return true;
    let b = this.buckets.get(deviceId);
    if (!b) {
      // only provisioned devices get here (the pipeline checks the registry first), so this is bounded by the
      // registry; the cap is a second line against a registry far larger than expected
      if (this.buckets.size >= this.maxDevices) this.buckets.clear();
      b = { tokens: this.cfg.burst, at, refused: 0 };
      this.buckets.set(deviceId, b);
    } else if (at > b.at) {
      // older messages (out of order, a back-fill) refill nothing
      b.tokens = Math.min(this.cfg.burst, b.tokens + (at - b.at) * this.perMs);
      b.at = at;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    b.refused++;
    return false;
  }

  /** Refused messages of a device since the last call (for the report), and resets its count. */
  takeRefused(deviceId: string): number {
    const b = this.buckets.get(deviceId);
    if (!b) return 0;
    const n = b.refused;
    b.refused = 0;
    return n;
  }
}
