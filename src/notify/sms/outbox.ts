// The embedded default SMS transport: nothing leaves the machine. Every message is kept (bounded ring) so the
// console can show what would have been sent. `delivers` is false: nobody's phone rings.
import { randomBytes } from 'node:crypto';
import type { SendResult, SmsLookupResult, SmsMessage, SmsRecentQuery, SmsTransport } from './port.ts';

export interface OutboxEntry {
  readonly id: string;
  readonly to: string;
  readonly body: string;
  readonly notificationId: string;
  readonly template?: SmsMessage['template'];
  readonly validitySeconds?: number;
  readonly at: Date;
}

export interface OutboxOptions {
  /** How many messages to keep (oldest dropped first). Default 1000. */
  readonly capacity?: number;
  readonly now?: () => Date;
  /** Called for each recorded message (e.g. to push it to the console). */
  readonly onMessage?: (entry: OutboxEntry) => void;
}

export class OutboxTransport implements SmsTransport {
  readonly name = 'outbox';
  readonly delivers = false;
  readonly capacity: number;
  #ring: OutboxEntry[] = [];
  #byId = new Map<string, OutboxEntry>();
  #now: () => Date;
  #onMessage: ((entry: OutboxEntry) => void) | undefined;
  #total = 0;

  constructor(opts: OutboxOptions = {}) {
    this.capacity = Math.max(1, Math.floor(opts.capacity ?? 1000));
    this.#now = opts.now ?? (() => new Date());
    this.#onMessage = opts.onMessage;
  }

  async send(msg: SmsMessage): Promise<SendResult> {
    const entry: OutboxEntry = {
      id: 'OB' + randomBytes(16).toString('hex'),
      to: msg.to,
      body: msg.body,
      notificationId: msg.notificationId,
      at: this.#now(),
      ...(msg.template ? { template: msg.template } : {}),
      ...(msg.validitySeconds !== undefined ? { validitySeconds: msg.validitySeconds } : {}),
    };
    this.#ring.push(entry);
    this.#byId.set(entry.id, entry);
    this.#total++;
    while (this.#ring.length > this.capacity) {
      const dropped = this.#ring.shift();
      if (dropped) this.#byId.delete(dropped.id);
    }
    this.#onMessage?.(entry);
    return { ok: true, providerId: entry.id, status: 'accepted' };
  }

  async lookup(providerId: string): Promise<SmsLookupResult | undefined> {
    return this.#byId.has(providerId) ? { status: 'accepted', errorCode: null } : undefined;
  }

  async findRecent(q: SmsRecentQuery): Promise<({ providerId: string } & SmsLookupResult) | undefined> {
    for (let i = this.#ring.length - 1; i >= 0; i--) {
      const e = this.#ring[i]!;
      if (e.at < q.since) break;
      if (e.to === q.to && e.body === q.body) return { providerId: e.id, status: 'accepted', errorCode: null };
    }
    return undefined;
  }

  /** The recorded messages, oldest first (at most `capacity`). */
  messages(): readonly OutboxEntry[] {
    return [...this.#ring];
  }

  /** How many messages were recorded since start, including those the ring has dropped. */
  get total(): number {
    return this.#total;
  }

  clear(): void {
    this.#ring = [];
    this.#byId.clear();
  }
}
