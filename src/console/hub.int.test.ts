/**
 * The console hub against a real redis-server: two hubs stand for two nodes sharing Redis. Every console gets every
 * event it may see, in order, and nothing it may not; a reconnect with `since` gets exactly what it missed; a
 * `since` older than the stream keeps (or from a wiped Redis) gets a snapshot.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis } from '../../test/support/redis.ts';
import type { StoredAlert } from '../alerts/service.ts';
import type { ServerMessage } from '../contracts/console.ts';
import type { Notification } from '../notify/store.ts';
import type { Scope } from '../registry/port.ts';
import { type ConsoleClient, ConsoleHub } from './hub.ts';

const logger = pino({ level: 'silent' });

function alert(id: string, gridId: string, status: StoredAlert['status'] = 'open'): StoredAlert {
  const now = new Date(0).toISOString();
  return {
    id,
    type: 'sos',
    category: 'resident_safety',
    severity: 'critical',
    status,
    key: `sos|${id}`,
    gridId,
    summary: 'SOS',
    count: 1,
    firstSeen: now,
    lastSeen: now,
    drill: false,
    evidence: [{ ts: 0, kind: 'event', eventType: 'sos' }],
    timeline: [{ ts: 0, action: 'opened', by: 'rule:sos', via: 'rule' }],
    updatedAt: now,
  } as StoredAlert;
}

class FakeClient implements ConsoleClient {
  readonly got: ServerMessage[] = [];
  closed?: number;
  constructor(
    readonly staff: ConsoleClient['staff'],
    readonly scope: Scope,
  ) {}
  send(msg: ServerMessage): void {
    // what the socket would carry: JSON
    this.got.push(JSON.parse(JSON.stringify(msg)) as ServerMessage);
  }
  close(code: number): void {
    this.closed = code;
  }
  buffered(): number {
    return 0;
  }
  alertIds(): string[] {
    return this.got.flatMap((m) => (m.type === 'alert' ? [m.alert.id] : []));
  }
  lastSeq(): string | undefined {
    return [...this.got].reverse().find((m) => 'seq' in m && m.type !== 'welcome')?.seq as string | undefined;
  }
}

async function until(fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('console hub', () => {
  let url: string;
  let stopRedis: () => Promise<void>;
  const conns: Redis[] = [];
  const hubs: ConsoleHub[] = [];
  let open: StoredAlert[] = [];

  const conn = () => {
    const c = new Redis(url, { maxRetriesPerRequest: null });
    conns.push(c);
    return c;
  };
  async function hub(key = 'gw:console:test', maxEvents = 1000): Promise<ConsoleHub> {
    const h = new ConsoleHub({
      redis: conn(),
      connection: conn,
      logger,
      openAlerts: async (scope) => open.filter((a) => scope.all || scope.gridIds.includes(a.gridId!)),
      smsOutbox: () => true,
      timezone: 'Asia/Shanghai',
      streamKey: key,
      maxEvents,
    });
    await h.start();
    hubs.push(h);
    return h;
  }
  const worker = (grid: string) =>
    new FakeClient(
      { id: `gw-${grid}`, username: `gw.${grid}`, roles: ['grid_worker'] },
      { all: false, gridIds: [grid] },
    );
  const director = () =>
    new FakeClient({ id: 'dir', username: 'dir', roles: ['community_director'] }, { all: true, gridIds: [] });

  beforeAll(async () => {
    const r = await startTestRedis();
    url = r.url;
    stopRedis = r.stop;
  });
  afterAll(async () => {
    for (const h of hubs) await h.stop();
    for (const c of conns) c.disconnect();
    await stopRedis?.();
  });

  it('fans out across nodes in order, each console only what its scope may see', async () => {
    const [a, b] = [await hub('gw:console:fan'), await hub('gw:console:fan')];
    const g1 = worker('g1');
    const g2 = worker('g2');
    const all = director();
    await a.connect(g1);
    await b.connect(g2);
    await b.connect(all);
    // welcome + snapshot first
    expect(g1.got.map((m) => m.type)).toEqual(['welcome', 'snapshot']);
    expect(all.got[0]).toMatchObject({ type: 'welcome', smsOutbox: true, timezone: 'Asia/Shanghai' });
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      const grid = i % 2 === 0 ? 'g1' : 'g2';
      const id = `a${i}`;
      ids.push(id);
      // published on either node
      (i % 3 === 0 ? a : b).alertChanged(alert(id, grid), 'opened');
    }
    await until(() => all.alertIds().length === 200);
    await until(() => g1.alertIds().length === 100 && g2.alertIds().length === 100);
    // the director: everything, in publish order per publisher; both hubs see one stream, so one global order
    const seqs = all.got.flatMap((m) => (m.type === 'alert' ? [m.seq] : []));
    expect([...seqs].sort((x, y) => (x === y ? 0 : seqCmp(x, y)))).toEqual(seqs);
    expect(new Set(all.alertIds()).size).toBe(200);
    expect(g1.alertIds().every((id) => Number(id.slice(1)) % 2 === 0)).toBe(true);
    expect(g2.alertIds().every((id) => Number(id.slice(1)) % 2 === 1)).toBe(true);
    // notifications follow the alert's grid; numbers masked
    a.notificationChanged(
      {
        id: 'n1',
        alertId: 'a0',
        recipient: '+8613800000001',
        status: 'queued',
        step: 0,
        transport: 'outbox',
        drill: false,
        body: 'x',
        createdAt: '',
        updatedAt: '',
        statusHistory: [],
      } as Notification,
      { gridId: 'g1' },
    );
    await until(() => g1.got.some((m) => m.type === 'notification'));
    const n = g1.got.find((m) => m.type === 'notification');
    expect(n?.type === 'notification' && n.notification.recipient).toBe('+86138****0001');
    await new Promise((r) => setTimeout(r, 100));
    expect(g2.got.some((m) => m.type === 'notification')).toBe(false);
  });

  it('a reconnect with `since` gets exactly what it missed, then live events, never one twice', async () => {
    const h = await hub('gw:console:catchup');
    const first = worker('g1');
    await h.connect(first);
    h.alertChanged(alert('c1', 'g1'), 'opened');
    h.alertChanged(alert('c2', 'g2'), 'opened');
    await until(() => first.alertIds().length === 1);
    const since = first.lastSeq()!;
    // offline: three more events (one not visible)
    h.alertChanged(alert('c3', 'g1'), 'opened');
    h.alertChanged(alert('c4', 'g2'), 'opened');
    h.alertChanged(alert('c1', 'g1', 'acknowledged'), 'acknowledged');
    await new Promise((r) => setTimeout(r, 100));
    const again = worker('g1');
    const connecting = h.connect(again, since);
    h.alertChanged(alert('c5', 'g1'), 'opened'); // live while catching up
    await connecting;
    await until(() => again.alertIds().includes('c5'));
    expect(again.got.map((m) => m.type)).toContain('caught-up');
    expect(again.got.some((m) => m.type === 'snapshot')).toBe(false);
    expect(again.alertIds()).toEqual(['c3', 'c1', 'c5']);
    const caught = again.got.find((m) => m.type === 'caught-up');
    // c5 may land in the replay or in the live tail: either way once
    expect(caught?.type === 'caught-up' && caught.replayed).toBeGreaterThanOrEqual(2);
  });

  it('a `since` older than the stream keeps, or from a wiped Redis, gets a snapshot instead', async () => {
    const h = await hub('gw:console:trim', 5);
    const c = worker('g1');
    await h.connect(c);
    h.alertChanged(alert('t0', 'g1'), 'opened');
    await until(() => c.alertIds().length === 1);
    const since = c.lastSeq()!;
    // one at a time: the live reader reads each before the tiny stream trims it
    for (let i = 1; i <= 10; i++) {
      h.alertChanged(alert(`t${i}`, 'g1'), 'opened');
      await until(() => c.alertIds().length === i + 1);
    }
    open = [alert('t9', 'g1'), alert('t10', 'g1'), alert('other', 'g2')];
    const late = worker('g1');
    await h.connect(late, since);
    const snap = late.got.find((m) => m.type === 'snapshot');
    expect(snap?.type === 'snapshot' && snap.alerts.map((a) => a.id)).toEqual(['t9', 't10']);
    const stranger = worker('g1');
    await h.connect(stranger, '99999999999999-0');
    expect(stranger.got.map((m) => m.type)).toEqual(['welcome', 'snapshot']);
    open = [];
  });
});

function seqCmp(a: string, b: string): number {
  const [am, an] = a.split('-').map(Number) as [number, number];
  const [bm, bn] = b.split('-').map(Number) as [number, number];
  return am - bm || an - bn;
}
