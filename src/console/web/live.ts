/**
 * The live alert state over `WS /ws` (protocol: src/contracts/console.ts).
 *
 * - Sends `hello` with the protocol version and, when it holds state from before (this tab's sessionStorage, or
 *   memory after a drop), `since`: the seq of the last event it applied. It applies `snapshot`, `alert` and
 *   `notification` messages; an event whose seq is not after the last applied one is dropped (`seqAfter`), so a
 *   replay overlapping live events never applies one twice. `drill` messages (issue 6) go to `drills`: the drill
 *   pages refetch their drill on each. Anything else it does not understand is ignored.
 * - After a drop it reconnects with exponential backoff (1 s … 15 s, with jitter; at once when the browser says it
 *   is online again or the page becomes visible) and says so (`conn`: 'reconnecting'); it pings every 20 s and
 *   treats 50 s of silence, or the browser going offline, as a drop.
 * - Until the channel has delivered anything (or when the server has no /ws at all), the open alerts come from
 *   `GET /api/v1/alerts` every 15 s: the board paints at once and still works without the live channel.
 * - An action's answer (ack, resolve) is applied at once; an alert is never replaced by an older version of itself
 *   (`updatedAt`), and a closed alert never comes back from an older event.
 */
import {
  CLOSE_BAD_MESSAGE,
  CLOSE_ORIGIN,
  CLOSE_UNAUTHENTICATED,
  CONSOLE_PROTOCOL_VERSION,
  seqAfter,
} from '../../contracts/console.ts';
import { api } from './api.ts';
import { setTimezone, t } from './i18n.ts';
import { loadSession } from './session.ts';
import { Store } from './store.ts';
import type {
  Alert,
  ConsoleNotification,
  DrillLiveEvent,
  DrillSummary,
  Me,
  NotificationRecord,
  Page,
  ServerMessage,
  StockLiveEvent,
} from './types.ts';

export type ConnState = 'idle' | 'connecting' | 'live' | 'reconnecting';

export interface LiveState {
  conn: ConnState;
  /** the REST fallback is filling in while the live channel is not there */
  polling: boolean;
  /** open and acknowledged alerts */
  alerts: ReadonlyMap<string, Alert>;
  /** alerts closed while watching, newest first */
  closed: readonly Alert[];
  /** SMS of each alert, by alert id */
  notifications: ReadonlyMap<string, readonly ConsoleNotification[]>;
  /** the last event applied */
  seq?: string;
  smsOutbox?: boolean;
  /** when the next reconnect attempt starts (epoch ms) */
  retryAt?: number;
  /** a protocol-level problem worth showing */
  error?: string;
  /** the alert list holds real data (snapshot, replay, restored or REST) */
  synced: boolean;
}

const INITIAL: LiveState = {
  conn: 'idle',
  polling: false,
  alerts: new Map(),
  closed: [],
  notifications: new Map(),
  synced: false,
};

/** Drill changes seen on the live channel: the latest summary of each drill, and the last change. */
export interface LiveDrills {
  /** counts the `drill` messages applied */
  rev: number;
  byId: ReadonlyMap<string, DrillSummary>;
  last?: Pick<DrillLiveEvent, 'drillId' | 'change' | 'detail'>;
}

const NO_DRILLS: LiveDrills = { rev: 0, byId: new Map() };

/** Stock changes seen on the live channel (issue 7): the supply pages refetch the depots named. */
export interface LiveStock {
  /** counts the `stock` messages applied */
  rev: number;
  last?: Pick<StockLiveEvent, 'change' | 'depotIds' | 'itemId'>;
}

const STORAGE_KEY = 'gw.live';
const PING_MS = 20_000;
const SILENCE_MS = 50_000;
export const POLL_MS = 15_000;
const MAX_BACKOFF_MS = 15_000;
const MAX_CLOSED = 20;

const ts = (iso: string | undefined) => (iso ? Date.parse(iso) : 0);
const isActive = (a: Alert) => a.status === 'open' || a.status === 'acknowledged';

interface Persisted {
  v: 1;
  userId: string;
  seq: string;
  alerts: Alert[];
  notifications: ConsoleNotification[];
  smsOutbox?: boolean;
}

export class LiveClient {
  readonly state = new Store<LiveState>(INITIAL);
  readonly drills = new Store<LiveDrills>(NO_DRILLS);
  readonly stock = new Store<LiveStock>({ rev: 0 });
  private me?: Me;
  private ws?: WebSocket;
  private attempt = 0;
  private everWelcomed = false;
  /** `since` may be sent: the state in hand continues from `seq` */
  private canResume = false;
  private closedAt = new Map<string, number>();
  private notesLoaded = new Set<string>();
  private notesQueue: string[] = [];
  private notesInFlight = 0;
  private lastMessageAt = 0;
  private retryTimer?: number;
  private pingTimer?: number;
  private pollTimer?: number;
  private persistTimer?: number;
  private readonly onOnline = () => this.reconnectNow();
  /** the browser knows the network is gone: say so now rather than after 50 s of silence */
  private readonly onOffline = () => this.drop();
  private readonly onVisible = () => {
    if (document.visibilityState !== 'visible') return;
    if (this.ws?.readyState === WebSocket.OPEN) this.send({ type: 'ping' });
    else this.reconnectNow();
  };

  start(me: Me): void {
    if (this.me?.id === me.id) return;
    this.stop();
    this.me = me;
    this.restore(me.id);
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.pingTimer = window.setInterval(() => this.heartbeat(), PING_MS);
    if (!this.state.get().synced) void this.poll();
    this.connect();
  }

  stop(): void {
    this.me = undefined;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    document.removeEventListener('visibilitychange', this.onVisible);
    for (const timer of [this.retryTimer, this.pollTimer, this.persistTimer]) window.clearTimeout(timer);
    window.clearInterval(this.pingTimer);
    this.retryTimer = this.pollTimer = this.persistTimer = this.pingTimer = undefined;
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
      ws.close(1000, 'signed out');
    }
    this.attempt = 0;
    this.everWelcomed = false;
    this.canResume = false;
    this.closedAt.clear();
    this.notesLoaded.clear();
    this.notesQueue = [];
    this.state.set(INITIAL);
    this.drills.set(NO_DRILLS);
  }

  /** Try now instead of waiting for the backoff. */
  reconnectNow(): void {
    if (!this.me || this.ws) return;
    window.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.connect();
  }

  /** An alert as an action answered it (acknowledge, resolve, note). */
  applyLocal(alert: Alert): void {
    if (this.applyAlert(alert)) this.persistSoon();
  }

  /** Loads the SMS of an alert once (four requests at a time); later ones arrive as `notification` events. */
  loadNotifications(alertId: string, force = false): void {
    if (this.notesLoaded.has(alertId) && !force) return;
    this.notesLoaded.add(alertId);
    this.notesQueue.push(alertId);
    this.pumpNotes();
  }

  private pumpNotes(): void {
    while (this.notesInFlight < 4 && this.notesQueue.length > 0) {
      const alertId = this.notesQueue.shift()!;
      const me = this.me;
      this.notesInFlight++;
      api<Page<NotificationRecord>>('notifications', { query: { alertId, limit: 200 } })
        .then(
          (page) => {
            if (this.me !== me) return;
            for (const n of page.items) this.upsertNotification(n);
            this.persistSoon();
          },
          () => this.notesLoaded.delete(alertId),
        )
        .finally(() => {
          this.notesInFlight--;
          this.pumpNotes();
        });
    }
  }

  // ------------------------------------------------------------------ connection

  private connect(): void {
    if (!this.me) return;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    this.patch({ conn: this.everWelcomed ? 'reconnecting' : 'connecting', retryAt: undefined });
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch {
      this.closed(1006);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.lastMessageAt = Date.now();
      const since = this.canResume ? this.state.get().seq : undefined;
      this.send(
        since ? { type: 'hello', v: CONSOLE_PROTOCOL_VERSION, since } : { type: 'hello', v: CONSOLE_PROTOCOL_VERSION },
      );
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws) return;
      this.lastMessageAt = Date.now();
      let msg: ServerMessage;
      try {
        msg = JSON.parse(String(ev.data)) as ServerMessage;
      } catch {
        return; // not ours to answer
      }
      this.handle(msg);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.closed(ev.code);
    };
  }

  private send(msg: { type: 'hello'; v: number; since?: string } | { type: 'ping' }): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private heartbeat(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    // a dead link (phone asleep, NAT dropped): do not wait for TCP to notice
    if (Date.now() - this.lastMessageAt > SILENCE_MS) this.drop();
    else this.send({ type: 'ping' });
  }

  /** Gives up the current connection and goes the reconnect way. */
  private drop(): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = undefined;
    ws.onclose = ws.onmessage = ws.onopen = null;
    ws.close();
    this.closed(1006);
  }

  private closed(code: number): void {
    if (!this.me) return;
    let error: string | undefined;
    let minDelay = 0;
    if (code === CLOSE_UNAUTHENTICATED) {
      // the session ended: /auth/me answers 401 and the login page shows; otherwise try again
      void loadSession().catch(() => undefined);
    } else if (code === CLOSE_ORIGIN) {
      error = t('ws_error_origin');
      minDelay = 30_000;
    } else if (code === CLOSE_BAD_MESSAGE) {
      error = t('ws_error_version');
      this.canResume = false; // start over with a snapshot
      minDelay = 10_000;
    }
    const delay = Math.max(minDelay, Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5));
    this.attempt++;
    this.patch({ conn: 'reconnecting', retryAt: Date.now() + delay, ...(error ? { error } : {}) });
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
    if (!this.everWelcomed && !this.pollTimer && !this.state.get().polling) this.schedulePoll(0);
  }

  // ------------------------------------------------------------------ messages

  private handle(msg: ServerMessage): void {
    switch (msg.type) {
      case 'welcome': {
        if (msg.v !== CONSOLE_PROTOCOL_VERSION) {
          this.patch({ error: t('ws_error_version') });
          return;
        }
        this.attempt = 0;
        this.everWelcomed = true;
        window.clearTimeout(this.pollTimer);
        this.pollTimer = undefined;
        setTimezone(msg.timezone);
        this.patch({ conn: 'live', polling: false, smsOutbox: msg.smsOutbox, error: undefined, retryAt: undefined });
        if (this.me && msg.user.id !== this.me.id) void loadSession().catch(() => undefined);
        return;
      }
      case 'snapshot': {
        const alerts = new Map(msg.alerts.filter(isActive).map((a) => [a.id, a]));
        const notifications = new Map([...this.state.get().notifications].filter(([id]) => alerts.has(id)));
        this.canResume = true;
        this.patch({ alerts, notifications, seq: msg.seq, synced: true });
        this.persistSoon();
        return;
      }
      case 'alert': {
        if (!seqAfter(msg.seq, this.state.get().seq)) return;
        this.applyAlert(msg.alert);
        this.patch({ seq: msg.seq });
        this.persistSoon();
        return;
      }
      case 'notification': {
        if (!seqAfter(msg.seq, this.state.get().seq)) return;
        this.upsertNotification(msg.notification);
        this.patch({ seq: msg.seq });
        this.persistSoon();
        return;
      }
      case 'drill': {
        if (!seqAfter(msg.seq, this.state.get().seq)) return;
        this.patch({ seq: msg.seq });
        this.persistSoon();
        this.drills.update((d) => ({
          rev: d.rev + 1,
          byId: new Map(d.byId).set(msg.drillId, msg.drill),
          last: { drillId: msg.drillId, change: msg.change, detail: msg.detail },
        }));
        return;
      }
      case 'stock': {
        if (!seqAfter(msg.seq, this.state.get().seq)) return;
        this.patch({ seq: msg.seq });
        this.persistSoon();
        this.stock.update((x) => ({
          rev: x.rev + 1,
          last: { change: msg.change, depotIds: msg.depotIds, itemId: msg.itemId },
        }));
        return;
      }
      case 'caught-up': {
        this.canResume = true;
        const seq = seqAfter(msg.seq, this.state.get().seq) ? msg.seq : this.state.get().seq;
        this.patch({ seq, synced: true });
        this.persistSoon();
        return;
      }
      case 'error':
        this.patch({ error: msg.message });
        return;
      default:
        return; // pong, and whatever a newer server sends that this console does not know
    }
  }

  private applyAlert(a: Alert): boolean {
    const s = this.state.get();
    const cur = s.alerts.get(a.id);
    if (cur && ts(cur.updatedAt) > ts(a.updatedAt)) return false;
    const closedAt = this.closedAt.get(a.id);
    if (isActive(a) && closedAt !== undefined && closedAt >= ts(a.updatedAt)) return false;
    const alerts = new Map(s.alerts);
    let closed = s.closed;
    let notifications = s.notifications;
    if (isActive(a)) {
      alerts.set(a.id, a);
    } else {
      alerts.delete(a.id);
      this.closedAt.set(a.id, ts(a.updatedAt));
      closed = [a, ...s.closed.filter((x) => x.id !== a.id)].slice(0, MAX_CLOSED);
      // a closed alert's SMS are not shown any more: the day's traffic does not pile up in memory
      if (notifications.has(a.id)) {
        const rest = new Map(notifications);
        rest.delete(a.id);
        notifications = rest;
      }
    }
    this.patch({ alerts, closed, notifications });
    return true;
  }

  private upsertNotification(n: ConsoleNotification): void {
    const s = this.state.get();
    const list = s.notifications.get(n.alertId) ?? [];
    const cur = list.find((x) => x.id === n.id);
    if (cur && ts(cur.updatedAt) > ts(n.updatedAt)) return;
    const slim: ConsoleNotification = {
      id: n.id,
      alertId: n.alertId,
      step: n.step,
      role: n.role,
      staffId: n.staffId,
      recipient: n.recipient,
      status: n.status,
      transport: n.transport,
      drill: n.drill,
      updatedAt: n.updatedAt,
    };
    const next = cur ? list.map((x) => (x.id === n.id ? slim : x)) : [...list, slim];
    next.sort((a, b) => a.step - b.step || a.id.localeCompare(b.id));
    const notifications = new Map(s.notifications);
    notifications.set(n.alertId, next);
    this.patch({ notifications });
  }

  // ------------------------------------------------------------------ REST fallback

  private schedulePoll(delay: number): void {
    window.clearTimeout(this.pollTimer);
    this.pollTimer = window.setTimeout(() => void this.poll(), delay);
  }

  /** The open alerts from the HTTP API, while the live channel has delivered nothing. */
  private async poll(): Promise<void> {
    this.pollTimer = undefined;
    const me = this.me;
    if (!me || this.state.get().seq !== undefined) return;
    try {
      const [open, acked] = await Promise.all(
        (['open', 'acknowledged'] as const).map((status) =>
          api<Page<Alert>>('alerts', { query: { status, limit: 1000 } }),
        ),
      );
      if (this.me !== me || this.state.get().seq !== undefined) return;
      const alerts = new Map([...open!.items, ...acked!.items].map((a) => [a.id, a]));
      // "not live" only once a connection attempt has failed, not while the first one is still under way
      this.patch({ alerts, synced: true, polling: !this.everWelcomed && this.attempt > 0 });
      if (this.state.get().smsOutbox === undefined) void this.readOutboxWarning();
    } catch {
      // shown by the connection state; tried again below
    }
    if (this.me === me && !this.everWelcomed) this.schedulePoll(POLL_MS);
  }

  /** Without the live channel's `welcome`, /readyz says whether SMS go to the outbox. */
  private async readOutboxWarning(): Promise<void> {
    try {
      const res = await fetch('/readyz', { credentials: 'same-origin' });
      const body = (await res.json()) as { warnings?: string[] };
      const outbox = (body.warnings ?? []).some((w) => /outbox/i.test(w));
      if (this.state.get().smsOutbox === undefined) this.patch({ smsOutbox: outbox });
    } catch {
      // unknown stays unknown
    }
  }

  // ------------------------------------------------------------------ persistence (this tab)

  private restore(userId: string): void {
    try {
      const raw = sessionStorage.getItem(STORAGE_KEY);
      if (!raw) return;
      const p = JSON.parse(raw) as Persisted;
      if (p.v !== 1 || p.userId !== userId || !p.seq) return;
      const notifications = new Map<string, ConsoleNotification[]>();
      for (const n of p.notifications) notifications.set(n.alertId, [...(notifications.get(n.alertId) ?? []), n]);
      this.canResume = true;
      this.state.set({
        ...INITIAL,
        alerts: new Map(p.alerts.map((a) => [a.id, a])),
        notifications,
        seq: p.seq,
        smsOutbox: p.smsOutbox,
        synced: true,
      });
    } catch {
      // nothing usable: start with a snapshot
    }
  }

  private persistSoon(): void {
    if (this.persistTimer !== undefined) return;
    this.persistTimer = window.setTimeout(() => {
      this.persistTimer = undefined;
      const s = this.state.get();
      if (!this.me || !s.seq || !this.canResume) return;
      const p: Persisted = {
        v: 1,
        userId: this.me.id,
        seq: s.seq,
        alerts: [...s.alerts.values()],
        notifications: [...s.notifications.values()].flat(),
        smsOutbox: s.smsOutbox,
      };
      try {
        sessionStorage.setItem(STORAGE_KEY, JSON.stringify(p));
      } catch {
        // full or disabled: a reload takes a snapshot instead
      }
    }, 300);
  }

  private patch(p: Partial<LiveState>): void {
    this.state.update((s) => ({ ...s, ...p }));
  }
}

export const live = new LiveClient();
