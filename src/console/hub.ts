/**
 * The console's live fan-out (issue 5): every alert change and every SMS status change is appended to one Redis
 * stream (`gw:console:events`, trimmed to the newest `maxEvents`). Every node reads that stream with a blocking
 * XREAD and hands each event to its own WebSocket clients that may see it, so a change made on any node reaches
 * every console in the same order, within a round trip. The stream doubles as the catch-up log: a console that
 * reconnects with the seq of the last event it applied gets exactly the events after it (XRANGE with an exclusive
 * start), then the live ones, never one twice; when that seq is older than the stream keeps, it gets a fresh
 * snapshot instead.
 *
 * Authorisation is per client: the staff member's scope (their grids, or everything) decides which events it is
 * sent, and the session is re-checked periodically so a revoked session stops receiving at once.
 */
import type { Redis } from 'ioredis';
import type { StoredAlert } from '../alerts/service.ts';
import type { Alert } from '../alerts/types.ts';
import {
  type AlertEvent,
  CONSOLE_PROTOCOL_VERSION,
  type ConsoleAlertChange,
  type ConsoleNotification,
  type DrillLiveEvent,
  type NotificationEvent,
  type ServerMessage,
  type StockLiveEvent,
  seqAfter,
} from '../contracts/console.ts';
import { alertView } from '../http/routes/alerts.ts';
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import { maskPhone } from '../logger.ts';
import type { Notification } from '../notify/store.ts';
import type { Scope, Staff } from '../registry/port.ts';

/** What the stream carries besides the client message: where it belongs, for the scope filter. */
interface StreamEvent {
  gridId?: string;
  /** an event of several grids (a drill): seen by staff of any of them */
  gridIds?: string[];
  /** also seen by staff with any of these roles, whatever their grids (stock: depot keepers) */
  roles?: string[];
  msg:
    | Omit<AlertEvent, 'seq'>
    | Omit<NotificationEvent, 'seq'>
    | Omit<DrillLiveEvent, 'seq'>
    | Omit<StockLiveEvent, 'seq'>;
}

/** One connected console, whatever the socket library. */
export interface ConsoleClient {
  staff: Pick<Staff, 'id' | 'username' | 'roles'>;
  scope: Scope;
  send(msg: ServerMessage): void;
  /** the same message already serialised (one JSON.stringify per event, not per console) */
  sendText?(text: string): void;
  close(code: number, reason: string): void;
  /** bytes queued on the socket (a console that cannot keep up is dropped and catches up on reconnect) */
  buffered(): number;
}

interface ClientState {
  client: ConsoleClient;
  /** events that arrived while a snapshot or replay was being sent, delivered after it */
  pending?: { seq: string; ev: StreamEvent }[];
  lastSeq?: string;
}

export interface ConsoleHubDeps {
  redis: Redis;
  /** a new connection for the blocking reader; closed by stop() */
  connection: () => Redis;
  logger: Logger;
  /** open and acknowledged alerts the scope may see, for snapshots */
  openAlerts: (scope: Scope) => Promise<StoredAlert[]>;
  smsOutbox: () => boolean;
  timezone: string;
  /** default gw:console:events */
  streamKey?: string;
  /** events kept for catch-up; default 50,000 */
  maxEvents?: number;
  /** a console with more queued than this is disconnected; default 4 MiB */
  maxBufferedBytes?: number;
}

export class ConsoleHub implements Module {
  readonly name = 'console-hub';
  private readonly key: string;
  private readonly clients = new Set<ClientState>();
  private reader?: Redis;
  private running = false;
  private loop?: Promise<void>;
  private lastRead = '$';
  private readonly log: Logger;

  constructor(private readonly deps: ConsoleHubDeps) {
    this.key = deps.streamKey ?? 'gw:console:events';
    this.log = deps.logger;
  }

  async start(): Promise<void> {
    this.reader = this.deps.connection();
    // read from the newest event on: older ones are for catch-up only
    this.lastRead = (await this.head()) ?? '0-0';
    this.running = true;
    this.loop = this.readLoop();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const s of this.clients) s.client.close(1001, 'server stopping');
    this.clients.clear();
    // the blocking XREAD returns at once when its connection goes away
    this.reader?.disconnect();
    await this.loop?.catch(() => {});
  }

  get connected(): number {
    return this.clients.size;
  }

  // ------------------------------------------------------------------ publishing (any node)

  /** For AlertService.onChange: the alert as the API shows it. */
  alertChanged(alert: StoredAlert, change: string): void {
    const c = (['opened', 'repeated', 'acknowledged', 'note', 'resolved', 'cancelled'] as const).find(
      (x) => x === change,
    );
    void this.append({
      gridId: alert.gridId,
      msg: { type: 'alert', change: (c ?? 'updated') as ConsoleAlertChange, alert: alertView(alert) },
    });
  }

  /** For NotificationStore changes: who was told, number masked. */
  notificationChanged(n: Notification, alert?: Pick<Alert, 'gridId'>): void {
    const notification: ConsoleNotification = {
      id: n.id,
      alertId: n.alertId,
      step: n.step,
      role: n.role,
      staffId: n.staffId,
      recipient: maskPhone(n.recipient),
      status: n.status,
      transport: n.transport,
      drill: n.drill,
      updatedAt: n.updatedAt,
    };
    void this.append({ gridId: alert?.gridId, msg: { type: 'notification', notification } });
  }

  /** For the drill runner: a drill changed; its grids' staff and everyone with the `all` scope see it. */
  drillChanged(ev: Omit<DrillLiveEvent, 'seq' | 'type'>, gridIds: readonly string[]): void {
    void this.append({ gridIds: [...gridIds], msg: { type: 'drill', ...ev } });
  }

  /**
   * For the supplies: stock changed at some depots; staff of the grids they serve, depot keepers and everyone with the
   * `all` scope see it.
   */
  stockChanged(ev: Omit<StockLiveEvent, 'seq' | 'type'>, gridIds: readonly string[]): void {
    void this.append({ gridIds: [...gridIds], roles: ['depot_keeper'], msg: { type: 'stock', ...ev } });
  }

  private async append(ev: StreamEvent): Promise<void> {
    try {
      await this.deps.redis.xadd(
        this.key,
        // exact trimming: at console event rates the cost is nothing, and catch-up knows what it keeps
        'MAXLEN',
        String(this.deps.maxEvents ?? 50_000),
        '*',
        'd',
        JSON.stringify(ev),
      );
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'console event not published');
    }
  }

  // ------------------------------------------------------------------ clients

  /**
   * A console said hello: welcome, then the missed events (since) or a snapshot, then live events. Returns a
   * function that unregisters the client.
   */
  async connect(client: ConsoleClient, since?: string): Promise<() => void> {
    const state: ClientState = { client, pending: [] };
    this.clients.add(state);
    const remove = () => this.clients.delete(state);
    try {
      const head = (await this.head()) ?? '0-0';
      client.send({
        type: 'welcome',
        v: CONSOLE_PROTOCOL_VERSION,
        user: { id: client.staff.id, username: client.staff.username, roles: [...client.staff.roles] },
        seq: head,
        smsOutbox: this.deps.smsOutbox(),
        timezone: this.deps.timezone,
      });
      const first = await this.first();
      // replay only when every event after `since` is still kept (and `since` is one of this stream's: a Redis that
      // was wiped starts ids again, so a `since` after the head is a stranger)
      const replay =
        since !== undefined &&
        first !== undefined &&
        !seqAfter(since, head) &&
        (!seqAfter(first, since) || first === nextOf(since));
      if (replay && since) {
        // everything after `since` is still in the stream: replay it
        let from = since;
        let replayed = 0;
        for (;;) {
          const page = (await this.deps.redis.xrange(this.key, `(${from}`, '+', 'COUNT', 1000)) as [string, string[]][];
          for (const [seq, fields] of page) {
            const ev = parse(fields);
            if (ev && this.visible(state, ev)) {
              this.deliver(state, seq, ev);
              replayed++;
            }
            state.lastSeq = seq;
            from = seq;
          }
          if (page.length < 1000) break;
        }
        const seq = state.lastSeq ?? since;
        state.lastSeq = seq;
        client.send({ type: 'caught-up', seq, replayed });
      } else {
        // first connect, or the gap is older than the stream keeps: the whole current picture
        const alerts = await this.deps.openAlerts(client.scope);
        client.send({ type: 'snapshot', seq: head, alerts: alerts.map(alertView) });
        state.lastSeq = head;
      }
      // live events that arrived meanwhile, those after what was sent
      const pending = state.pending ?? [];
      state.pending = undefined;
      for (const p of pending) if (seqAfter(p.seq, state.lastSeq)) this.deliver(state, p.seq, p.ev);
    } catch (err) {
      remove();
      throw err;
    }
    return remove;
  }

  /**
   * Closes every console with "service restart" (1012): they reconnect and catch up from where they were. For a
   * node leaving a load balancer, and for tests of the catch-up.
   */
  dropAll(): void {
    for (const s of this.clients) s.client.close(1012, 'reconnect');
    this.clients.clear();
  }

  /** Closes every console of a staff member whose session ended (sign-out, revoked, account disabled). */
  disconnectStaff(staffId: string, reason = 'session ended'): void {
    for (const s of this.clients) if (s.client.staff.id === staffId) s.client.close(4401, reason);
  }

  private visible(state: ClientState, ev: StreamEvent): boolean {
    const { scope } = state.client;
    return (
      scope.all ||
      (ev.gridId !== undefined && scope.gridIds.includes(ev.gridId)) ||
      (ev.gridIds?.some((g) => scope.gridIds.includes(g)) ?? false) ||
      (ev.roles?.some((r) => (state.client.staff.roles as readonly string[]).includes(r)) ?? false)
    );
  }

  private deliver(state: ClientState, seq: string, ev: StreamEvent, text?: { value?: string }): void {
    if (!seqAfter(seq, state.lastSeq)) return;
    state.lastSeq = seq;
    if (state.client.buffered() > (this.deps.maxBufferedBytes ?? 4 * 1024 * 1024)) {
      this.clients.delete(state);
      state.client.close(4408, 'too slow: reconnect to catch up');
      return;
    }
    const msg = { ...ev.msg, seq } as ServerMessage;
    if (text && state.client.sendText) {
      text.value ??= JSON.stringify(msg);
      state.client.sendText(text.value);
    } else state.client.send(msg);
  }

  private dispatch(seq: string, ev: StreamEvent): void {
    const text: { value?: string } = {};
    for (const s of this.clients) {
      if (!this.visible(s, ev)) continue;
      if (s.pending) s.pending.push({ seq, ev });
      else this.deliver(s, seq, ev, text);
    }
  }

  private async readLoop(): Promise<void> {
    const reader = this.reader!;
    let backoff = 100;
    while (this.running) {
      try {
        const res = (await reader.xread('COUNT', 1000, 'BLOCK', 5000, 'STREAMS', this.key, this.lastRead)) as
          | [string, [string, string[]][]][]
          | null;
        backoff = 100;
        if (!res) continue;
        for (const [, entries] of res) {
          for (const [seq, fields] of entries) {
            this.lastRead = seq;
            const ev = parse(fields);
            if (ev) this.dispatch(seq, ev);
          }
        }
      } catch (err) {
        if (!this.running) return;
        this.log.warn({ err: (err as Error).message }, 'console stream read failed; retrying');
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(5000, backoff * 2);
      }
    }
  }

  private async head(): Promise<string | undefined> {
    const last = (await this.deps.redis.xrevrange(this.key, '+', '-', 'COUNT', 1)) as [string, string[]][];
    return last[0]?.[0];
  }

  private async first(): Promise<string | undefined> {
    const first = (await this.deps.redis.xrange(this.key, '-', '+', 'COUNT', 1)) as [string, string[]][];
    return first[0]?.[0];
  }
}

/** The smallest id after `seq` (`<ms>-<n+1>`): a stream whose first entry is exactly that lost nothing. */
function nextOf(seq: string): string {
  const [ms = '0', n = '0'] = seq.split('-');
  return `${ms}-${Number(n) + 1}`;
}

function parse(fields: string[]): StreamEvent | undefined {
  const i = fields.indexOf('d');
  if (i < 0) return undefined;
  try {
    return JSON.parse(fields[i + 1]!) as StreamEvent;
  } catch {
    return undefined;
  }
}
