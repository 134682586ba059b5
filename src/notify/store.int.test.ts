import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { VirtualClock } from '../clock/clock.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { NotificationStore } from './store.ts';

describe.each(['sqlite', 'postgres'] as const)('NotificationStore on %s', (kind) => {
  let dir: string;
  let pg: TestPostgres | undefined;
  let database: Database;
  let store: NotificationStore;
  const clock = new VirtualClock(Date.UTC(2026, 2, 2));

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-notify-'));
    pg = kind === 'postgres' ? await startTestPostgres() : undefined;
    database = await createDatabase({ url: pg?.url, sqliteFile: 'n.sqlite' }, dir);
    await migrateToLatest(database.db);
    store = new NotificationStore(database, clock);
  });
  afterAll(async () => {
    await database?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const base = {
    alertId: 'a-1',
    step: 0,
    recipient: '+8613800000001',
    role: 'grid_worker',
    body: '【GridWatch】SOS',
    transport: 'outbox',
    drill: false,
  };

  it('writes the record before sending, once per alert + step + recipient, also when two workers race', async () => {
    const [a, b] = await Promise.all([store.createPending(base), store.createPending(base)]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a.notification.id).toBe(b.notification.id);
    expect(a.notification).toMatchObject({ status: 'pending', step: 0, drill: false });
    const other = await store.createPending({ ...base, step: 1 });
    expect(other.created).toBe(true);
  });

  it('keeps the provider id and never moves a status backwards', async () => {
    const { notification } = await store.createPending({ ...base, alertId: 'a-2' });
    clock.advance(1000);
    await store.accepted(notification.id, 'SM0001', 'queued');
    clock.advance(1000);
    await store.statusFromProvider('SM0001', 'delivered');
    // a late, retried "sent" callback arrives after "delivered"
    const late = await store.statusFromProvider('SM0001', 'sent');
    expect(late?.status).toBe('delivered');
    expect(late?.statusHistory.map((h) => h.status)).toEqual(['pending', 'queued', 'delivered']);
    expect(late?.providerId).toBe('SM0001');
    expect(await store.statusFromProvider('SM-unknown', 'delivered')).toBeUndefined();
  });

  it('records failures with their code, and lists newest first with filters and pages', async () => {
    const { notification } = await store.createPending({ ...base, alertId: 'a-3' });
    const f = await store.failed(notification.id, '21211', 'invalid number');
    expect(f).toMatchObject({ status: 'failed', errorCode: '21211' });
    const page1 = await store.list({}, { limit: 2 });
    expect(page1.items).toHaveLength(2);
    const page2 = await store.list({}, { limit: 2, cursor: page1.nextCursor });
    const ids = [...page1.items, ...page2.items].map((n) => n.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect((await store.list({ alertId: 'a-3' }, { limit: 10 })).items).toHaveLength(1);
    expect((await store.list({ status: 'failed' }, { limit: 10 })).items.map((n) => n.alertId)).toEqual(['a-3']);
  });
});
