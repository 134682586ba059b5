/**
 * Throttles wrong device credentials per source address, not per device id: knowing an SOS button's id must not
 * let anyone lock the real button out. After `maxFailures` failed logins from one address within `windowMs`, that
 * address is refused (without a secret check, which also spares the CPU an scrypt per guess) until `windowMs` has
 * passed since its first failure of the window. Bounded: past `maxAddresses` tracked addresses it starts afresh.
 */
export interface AuthThrottleOptions {
  maxFailures: number;
  windowMs: number;
  maxAddresses?: number;
}

export class AuthThrottle {
  private readonly failures = new Map<string, { since: number; count: number }>();

  constructor(private readonly opts: AuthThrottleOptions) {}

  /** True when this address has failed too often lately. */
  blocked(address: string, now = Date.now()): boolean {
    const f = this.failures.get(address);
    if (!f) return false;
    if (now - f.since >= this.opts.windowMs) {
      this.failures.delete(address);
      return false;
    }
    return f.count >= this.opts.maxFailures;
  }

  failed(address: string, now = Date.now()): void {
    const f = this.failures.get(address);
    if (f && now - f.since < this.opts.windowMs) {
      f.count++;
      return;
    }
    if (this.failures.size >= (this.opts.maxAddresses ?? 100_000)) this.failures.clear();
    this.failures.set(address, { since: now, count: 1 });
  }
}
