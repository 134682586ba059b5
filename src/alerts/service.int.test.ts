/**
 * The alert service against both relational stores: SQLite (embedded default, a temp file) and a real PostgreSQL
 * (deployed). The same suite runs on both, including the proof of "one active alert per key" with two services on
 * two separate connections (two nodes) raising the same key at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { VirtualClock } from '../clock/clock.ts';
import { RegistryError, type Scope } from '../registry/port.ts';
import { isUniqueViolation } from '../registry/registry.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import type { Point } from '../timeseries/port.ts';
import { type AlertChange, AlertService, EVIDENCE_HEAD, EVIDENCE_TAIL, type StoredAlert } from './service.ts';
import type { AlertInput, Evidence } from './types.ts';

const ALL: Scope = { all: true, gridIds: [] };
const logger = pino({ level: 'silent' });

async function expectError(p: Promise<unknown>, code: RegistryError['code']): Promise<RegistryError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RegistryError);
  expect((e as RegistryError).code).toBe(code);
  return e as RegistryError;
}

function sos(householdId: string, ts: number, extra: Partial<AlertInput> = {}): AlertInput {
  return {
    type: 'sos',
    category: 'resident_safety',
    severity: 'critical',
    subject: { householdId, buildingId: 'b-1', gridId: 'g-1', communityId: 'c-1', deviceId: `btn-${householdId}` },
    keyOn: 'household',
    drill: false,
    ts,
    evidence: [{ ts, kind: 'event', deviceId: `btn-${householdId}`, eventType: 'sos' }],
    summary: 'SOS button pressed',
    ...extra,
  };
}

describe.each(['sqlite', 'postgres'] as const)('alert service on %s', (kind) => {
  const clock = new VirtualClock(Date.UTC(2026, 2, 1, 2, 0, 0));
  const points: Point[] = [];
  const changes: { id: string; change: AlertChange }[] = [];
  let dir: string;
  let pg: TestPostgres | undefined;
  let database: Database;
  let second: Database;
  let alerts: AlertService;
  let other: AlertService;
  const open = (cfg = { url: undefined as string | undefined }) =>
    createDatabase({ url: cfg.url, sqliteFile: 'alerts.sqlite' }, dir);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-alerts-'));
    pg = kind === 'postgres' ? await startTestPostgres() : undefined;
    database = await open({ url: pg?.url });
    expect(database.dialect).toBe(kind);
    expect(await migrateToLatest(database.db)).toContain('002_alerts');
    alerts = new AlertService(database, {
      clock,
      logger,
      timeseries: { write: (p) => points.push(...p) },
      onChange: (a, change) => changes.push({ id: a.id, change }),
    });
    // a second node: its own connection (pool), its own service, the same store
    second = await open({ url: pg?.url });
    other = new AlertService(second, { clock, logger });
  });

  afterAll(async () => {
    await second?.close();
    await database?.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function rowsOfKey(key: string): Promise<number> {
    const r = await database.db
      .selectFrom('alert')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('key', '=', key)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  it('raise opens an alert with its subject, evidence and an `opened` timeline entry', async () => {
    const ts = clock.now();
    const { alert, created } = await alerts.raise(sos('h-new', ts, { notBefore: ts + 1000 }));
    expect(created).toBe(true);
    expect(alert).toMatchObject({
      type: 'sos',
      category: 'resident_safety',
      severity: 'critical',
      status: 'open',
      key: 'sos|household:h-new',
      householdId: 'h-new',
      buildingId: 'b-1',
      gridId: 'g-1',
      communityId: 'c-1',
      deviceId: 'btn-h-new',
      count: 1,
      firstSeen: new Date(ts).toISOString(),
      lastSeen: new Date(ts).toISOString(),
      notBefore: new Date(ts + 1000).toISOString(),
      drill: false,
      summary: 'SOS button pressed',
    });
    expect(alert.evidence).toEqual([{ ts, kind: 'event', deviceId: 'btn-h-new', eventType: 'sos' }]);
    expect(alert.timeline).toEqual([{ ts, action: 'opened', by: 'rule:sos', via: 'rule', note: 'SOS button pressed' }]);
    expect(alert).not.toHaveProperty('unitId');
    expect(await alerts.get(alert.id)).toEqual(alert);
    expect(await alerts.active('sos|household:h-new')).toEqual(alert);
  });

  it('a repeat bumps count and last-seen, only escalates severity, and never opens a second alert', async () => {
    const t0 = clock.now();
    const first = await alerts.raise(sos('h-rep', t0, { type: 'water_low', category: 'supplies', severity: 'major' }));
    const second = await alerts.raise(
      sos('h-rep', t0 + 5000, { type: 'water_low', category: 'supplies', severity: 'critical' }),
    );
    // a late (back-filled) repeat, milder: counts, but moves neither last-seen back nor severity down
    const third = await alerts.raise(
      sos('h-rep', t0 + 1000, { type: 'water_low', category: 'supplies', severity: 'minor' }),
    );
    expect(second.created).toBe(false);
    expect(third.created).toBe(false);
    expect(third.alert.id).toBe(first.alert.id);
    expect(third.alert).toMatchObject({
      count: 3,
      severity: 'critical',
      firstSeen: new Date(t0).toISOString(),
      lastSeen: new Date(t0 + 5000).toISOString(),
    });
    expect(third.alert.timeline.map((e) => [e.action, e.note])).toEqual([
      ['opened', 'SOS button pressed'],
      ['repeated', 'severity major → critical'],
      ['repeated', 'count 3'],
    ]);
    expect(third.alert.evidence).toHaveLength(3);
    expect(await rowsOfKey('water_low|household:h-rep')).toBe(1);
  });

  it('50 concurrent raises of one key through two nodes make exactly one alert with count 50', async () => {
    const ts = clock.now();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 === 0 ? alerts : other).raise(
          sos('h-race', ts + (i % 3), { evidence: [{ ts, kind: 'event', note: `message ${i}` }] }),
        ),
      ),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.alert.id)).size).toBe(1);
    expect(await rowsOfKey('sos|household:h-race')).toBe(1);
    const alert = (await other.get(results[0]!.alert.id))!;
    expect(alert.count).toBe(50);
    expect(alert.lastSeen).toBe(new Date(ts + 2).toISOString());
    // the timeline keeps the opening and the first repeats (counts 2–10); the count itself is 50
    expect(alert.timeline).toHaveLength(10);
    expect(alert.timeline.filter((e) => e.action === 'opened')).toHaveLength(1);
    expect(alert.evidence).toHaveLength(EVIDENCE_HEAD + EVIDENCE_TAIL);
  });

  it('an event id counts once: a replay or a redelivery, even racing through two nodes, changes nothing', async () => {
    const ts = clock.now();
    const ev = (id: string): Evidence[] => [
      { ts, kind: 'event', deviceId: 'btn-h-once', eventType: 'sos', eventId: id },
    ];
    const first = await alerts.raise(sos('h-once', ts, { evidence: ev('e-1') }));
    expect(first.created).toBe(true);
    const before = changes.length;
    // the same event again from both nodes at once (a journal replay racing a device's redelivery), and a new one
    const again = await Promise.all([
      alerts.raise(sos('h-once', ts, { evidence: ev('e-1') })),
      other.raise(sos('h-once', ts, { evidence: ev('e-1') })),
      alerts.raise(sos('h-once', ts + 1, { evidence: ev('e-2') })),
    ]);
    expect(again.map((r) => r.alert.id)).toEqual([first.alert.id, first.alert.id, first.alert.id]);
    expect(again.filter((r) => r.replayed)).toHaveLength(2);
    const alert = (await alerts.get(first.alert.id))!;
    expect(alert.count).toBe(2);
    expect(changes.length - before).toBe(1); // only e-2 changed the alert
    const rows = await database.db
      .selectFrom('alert_event')
      .selectAll()
      .where('device_id', '=', 'btn-h-once')
      .execute();
    expect(rows.map((r) => r.event_id).sort()).toEqual(['e-1', 'e-2']);
    // one event may raise an alert of another key as well (the third cut-off: a repeat and `…_repeated`): that
    // one is not a replay
    const second = await alerts.raise(sos('h-once', ts, { evidence: ev('e-1'), type: 'fall' }));
    expect(second).toMatchObject({ created: true });
    expect(second.replayed).toBeUndefined();
    expect((await alerts.raise(sos('h-once', ts, { evidence: ev('e-1'), type: 'fall' }))).replayed).toBe(true);
    // pruning forgets the ids, not the alert
    expect(await alerts.pruneEventKeys(ts + 10)).toBeGreaterThanOrEqual(2);
    expect((await alerts.get(first.alert.id))!.count).toBe(2);
  });

  /** A raw alert row, as another node would write it. */
  const rawRow = (id: string, key: string) => ({
    id,
    type: 'sos',
    category: 'resident_safety',
    severity: 'critical',
    status: 'open',
    key,
    household_id: null,
    unit_id: null,
    building_id: null,
    area_id: null,
    grid_id: null,
    community_id: null,
    device_id: null,
    colour: null,
    summary: 'x',
    count: 1,
    first_seen: 1,
    last_seen: 1,
    not_before: null,
    drill: 0,
    evidence: '[]',
    resolved_at: null,
    outcome: null,
    acknowledged_at: null,
    acknowledged_by: null,
    updated_at: 1,
  });

  it('the store itself refuses a second active row for a key (the partial unique index)', async () => {
    const existing = (await alerts.active('sos|household:h-race'))!;
    const row = rawRow('a-duplicate', existing.key);
    const err = await second.db
      .insertInto('alert')
      .values(row)
      .execute()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isUniqueViolation(err)).toBe(true);
    // closed rows of the same key are history, any number of them
    await second.db
      .insertInto('alert')
      .values({ ...row, status: 'resolved' })
      .execute();
    await second.db
      .insertInto('alert')
      .values({ ...row, id: 'a-duplicate-2', status: 'cancelled' })
      .execute();
    expect(await rowsOfKey(existing.key)).toBe(3);
    await second.db.deleteFrom('alert').where('id', 'in', ['a-duplicate', 'a-duplicate-2']).execute();
  });

  // Deterministic version of the race above (PostgreSQL: SQLite has one writer, so its raises never overlap):
  // another node has inserted the key's row but not committed it when we look, so we see nothing and insert; our
  // insert waits on the unique index, fails when the other commits, and goes round to count a repeat onto its row.
  it.runIf(kind === 'postgres')('a raise that loses the insert race counts a repeat onto the winner', async () => {
    const key = 'sos|household:h-gap';
    let commit!: () => void;
    const gate = new Promise<void>((r) => {
      commit = r;
    });
    let inserted!: () => void;
    const ready = new Promise<void>((r) => {
      inserted = r;
    });
    const winner = second.db.transaction().execute(async (trx) => {
      await trx.insertInto('alert').values(rawRow('a-winner', key)).execute();
      inserted();
      await gate;
    });
    await ready;
    const retriesBefore = alerts.raceRetries;
    const raising = alerts.raise(sos('h-gap', clock.now()));
    // wait until our insert is blocked on the winner's uncommitted index entry
    for (let i = 0; ; i++) {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`.execute(second.db);
      if (rows[0]!.n > 0) break;
      if (i > 200) throw new Error('the raise never blocked on the unique index');
      await new Promise((r) => setTimeout(r, 10));
    }
    commit();
    await winner;
    const { alert, created } = await raising;
    expect(created).toBe(false);
    expect(alert.id).toBe('a-winner');
    expect(alert.count).toBe(2);
    expect(alerts.raceRetries).toBe(retriesBefore + 1);
    expect(await rowsOfKey(key)).toBe(1);
  });

  it('different keys make separate alerts', async () => {
    const ts = clock.now();
    const a = await alerts.raise(sos('h-k1', ts));
    const b = await alerts.raise(sos('h-k2', ts));
    const c = await alerts.raise(sos('h-k1', ts, { type: 'fall' }));
    const d = await alerts.raise(sos('h-k1', ts, { keyOn: 'device' }));
    expect(new Set([a, b, c, d].map((r) => r.alert.id)).size).toBe(4);
    expect([a, b, c, d].every((r) => r.created)).toBe(true);
    expect(d.alert.key).toBe('sos|device:btn-h-k1');
  });

  it('acknowledge and resolve by staff: timeline in order with who, when and how; closed alerts are final', async () => {
    const t0 = clock.now();
    const { alert } = await alerts.raise(sos('h-life', t0));
    clock.advance(90_000);
    const acked = await alerts.acknowledge(alert.id, 'st-wang', 'console', 'on my way');
    expect(acked).toMatchObject({
      status: 'acknowledged',
      acknowledgedBy: 'st-wang',
      acknowledgedAt: new Date(t0 + 90_000).toISOString(),
    });
    // idempotent: a second click (or the SMS reply after the click) changes nothing
    clock.advance(1000);
    const again = await alerts.acknowledge(alert.id, 'st-li', 'sms');
    expect(again).toEqual(acked);
    // still active: a repeat counts onto it
    expect((await alerts.raise(sos('h-life', clock.now()))).alert.id).toBe(alert.id);
    clock.advance(600_000);
    const resolved = await alerts.resolve(alert.id, 'st-wang', 'resident_fine', 'console', 'fell asleep');
    expect(resolved).toMatchObject({
      status: 'resolved',
      outcome: 'resident_fine',
      resolvedAt: new Date(t0 + 691_000).toISOString(),
    });
    expect(resolved.timeline).toEqual([
      { ts: t0, action: 'opened', by: 'rule:sos', via: 'rule', note: 'SOS button pressed' },
      { ts: t0 + 90_000, action: 'acknowledged', by: 'st-wang', via: 'console', note: 'on my way' },
      { ts: t0 + 91_000, action: 'repeated', by: 'rule:sos', via: 'rule', note: 'count 2' },
      { ts: t0 + 691_000, action: 'resolved', by: 'st-wang', via: 'console', note: 'resident_fine: fell asleep' },
    ]);
    await expectError(alerts.acknowledge(alert.id, 'st-li', 'console'), 'conflict');
    await expectError(alerts.resolve(alert.id, 'st-li', 'other', 'console'), 'conflict');
    // a follow-up note on a closed alert belongs to the same story
    clock.advance(1000);
    const noted = await alerts.addNote(alert.id, 'st-li', 'called the daughter', 'api');
    expect(noted.status).toBe('resolved');
    expect(noted.timeline.at(-1)).toEqual({
      ts: t0 + 692_000,
      action: 'note',
      by: 'st-li',
      via: 'api',
      note: 'called the daughter',
    });

    // every lifecycle change went to the time-series store, with response times in seconds since first seen
    const mine = points.filter((p) => p.deviceId === 'alert:sos|household:h-life');
    expect(mine.map((p) => [p.field, p.value])).toEqual([
      ['alert_opened', 1],
      ['alert_acknowledged', 90],
      ['alert_repeated', 2],
      ['alert_resolved', 691],
      ['alert_note', 1],
    ]);
    expect(mine[0]!.tags).toEqual({ buildingId: 'b-1', gridId: 'g-1', drill: false });
    expect(changes.filter((c) => c.id === alert.id).map((c) => c.change)).toEqual([
      'opened',
      'acknowledged',
      'repeated',
      'resolved',
      'note',
    ]);
  });

  it('clear resolves by itself with the reason; cancel marks who cancelled; the key can then open again', async () => {
    const t0 = clock.now();
    const water = await alerts.raise(sos('h-auto', t0, { type: 'water_low', category: 'supplies', severity: 'major' }));
    const cleared = await alerts.clear('water_low|household:h-auto', 'water use back to normal', t0 + 60_000);
    expect(cleared).toMatchObject({
      id: water.alert.id,
      status: 'resolved',
      outcome: 'water use back to normal',
      resolvedAt: new Date(t0 + 60_000).toISOString(),
    });
    expect(cleared!.timeline.at(-1)).toEqual({
      ts: t0 + 60_000,
      action: 'resolved',
      by: 'system',
      via: 'rule',
      note: 'water use back to normal',
    });
    expect(
      points.find((p) => p.deviceId === 'alert:water_low|household:h-auto' && p.field === 'alert_cleared'),
    ).toMatchObject({ value: 60, ts: t0 + 60_000 });
    // nothing active any more: clearing again does nothing, raising again opens a new alert
    expect(await alerts.clear('water_low|household:h-auto', 'again', t0 + 61_000)).toBeUndefined();
    const reopened = await alerts.raise(
      sos('h-auto', t0 + 120_000, { type: 'water_low', category: 'supplies', severity: 'major' }),
    );
    expect(reopened.created).toBe(true);
    expect(reopened.alert.id).not.toBe(water.alert.id);
    expect(reopened.alert.count).toBe(1);

    const fall = await alerts.raise(sos('h-auto', t0, { type: 'fall', notBefore: t0 + 120_000 }));
    const cancelled = await alerts.cancel(
      'fall|household:h-auto',
      'cancelled by the wearer',
      t0 + 30_000,
      'device:w-1',
    );
    expect(cancelled).toMatchObject({ id: fall.alert.id, status: 'cancelled', outcome: 'cancelled by the wearer' });
    expect(cancelled!.timeline.at(-1)).toMatchObject({ action: 'cancelled', by: 'device:w-1', via: 'device' });
    expect(await alerts.cancel('fall|household:h-auto', 'again', t0 + 31_000, 'device:w-1')).toBeUndefined();
    await expectError(alerts.acknowledge(fall.alert.id, 'st-wang', 'console'), 'conflict');
    expect((await alerts.raise(sos('h-auto', t0 + 200_000, { type: 'fall' }))).created).toBe(true);
  });

  it('unknown ids are not_found, bad input is invalid, and nothing changes', async () => {
    expect(await alerts.get('no-such-alert')).toBeUndefined();
    expect(await alerts.active('sos|household:nobody')).toBeUndefined();
    await expectError(alerts.acknowledge('no-such-alert', 'st-wang', 'console'), 'not_found');
    await expectError(alerts.resolve('no-such-alert', 'st-wang', 'resident_fine', 'console'), 'not_found');
    await expectError(alerts.addNote('no-such-alert', 'st-wang', 'hello', 'console'), 'not_found');
    const { alert } = await alerts.raise(sos('h-bad', clock.now()));
    // biome-ignore lint/suspicious/noExplicitAny: an outcome from outside the list, as a client might send
    await expectError(alerts.resolve(alert.id, 'st-wang', 'fixed_it' as any, 'console'), 'invalid');
    await expectError(alerts.addNote(alert.id, 'st-wang', '   ', 'console'), 'invalid');
    await expectError(alerts.addNote(alert.id, 'st-wang', 'x'.repeat(2001), 'console'), 'invalid');
    await expectError(alerts.raise(sos('h-bad', clock.now(), { subject: { gridId: 'g-1' } })), 'invalid');
    // biome-ignore lint/suspicious/noExplicitAny: a rule bug
    await expectError(alerts.raise(sos('h-bad', clock.now(), { severity: 'huge' as any })), 'invalid');
    expect(await alerts.get(alert.id)).toEqual(alert);
  });

  it('evidence stays bounded: the first items and the latest ones', async () => {
    const t0 = clock.now();
    const ev = (i: number): Evidence => ({ ts: t0 + i, kind: 'reading', field: 'water_total_l', value: i });
    await alerts.raise(sos('h-ev', t0, { type: 'water_low', evidence: [ev(0), ev(1), ev(2)] }));
    let last: StoredAlert | undefined;
    for (let i = 3; i < 40; i++) {
      last = (await alerts.raise(sos('h-ev', t0 + i, { type: 'water_low', evidence: [ev(i)] }))).alert;
    }
    const values = last!.evidence.map((e) => e.value);
    expect(values).toEqual([0, 1, 2, 3, 4, ...Array.from({ length: 15 }, (_, i) => 25 + i)]);
    // one raise with a long list is bounded too
    const big = await alerts.raise(sos('h-ev2', t0, { evidence: Array.from({ length: 100 }, (_, i) => ev(i)) }));
    expect(big.alert.evidence).toHaveLength(EVIDENCE_HEAD + EVIDENCE_TAIL);
  });

  it('lists by filter and scope, newest first, in pages without duplicates or gaps', async () => {
    const base = Date.UTC(2026, 5, 1);
    const grids = ['lg-1', 'lg-2'];
    const made: StoredAlert[] = [];
    for (let i = 0; i < 23; i++) {
      const gridId = grids[i % 2]!;
      // several alerts share a millisecond: the id breaks the tie, and pages must not cut through it badly
      const ts = base + Math.floor(i / 3) * 1000;
      const type = i % 3 === 0 ? 'fall' : 'sos';
      const { alert } = await alerts.raise({
        ...sos(`lh-${i}`, ts, { type }),
        subject: { householdId: `lh-${i}`, gridId, buildingId: `lb-${i % 4}` },
      });
      made.push(alert);
    }
    // one closed
    await alerts.resolve(made[4]!.id, 'st-wang', 'false_alarm_device', 'console');
    const scope: Scope = { all: false, gridIds: grids };

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await alerts.list({}, scope, { limit: 4, cursor });
      seen.push(...page.items.map((a) => a.id));
      cursor = page.nextCursor;
      pages++;
      expect(page.items.length).toBeLessThanOrEqual(4);
    } while (cursor);
    expect(pages).toBe(6);
    expect(seen).toHaveLength(23);
    expect(new Set(seen).size).toBe(23);
    const expected = [...made].sort((a, b) =>
      a.firstSeen === b.firstSeen ? (a.id < b.id ? 1 : -1) : a.firstSeen < b.firstSeen ? 1 : -1,
    );
    expect(seen).toEqual(expected.map((a) => a.id));

    const ids = async (filter: Parameters<AlertService['list']>[0], s: Scope = scope) =>
      (await alerts.list(filter, s, { limit: 1000 })).items.map((a) => a.id).sort();
    const sorted = (list: StoredAlert[]) => list.map((a) => a.id).sort();
    expect(await ids({}, { all: false, gridIds: ['lg-2'] })).toEqual(sorted(made.filter((a) => a.gridId === 'lg-2')));
    expect(await ids({}, { all: false, gridIds: [] })).toEqual([]);
    expect(await ids({ gridId: 'lg-1' })).toEqual(sorted(made.filter((a) => a.gridId === 'lg-1')));
    expect(await ids({ gridId: 'lg-1' }, { all: false, gridIds: ['lg-2'] })).toEqual([]);
    expect(await ids({ type: 'fall' })).toEqual(sorted(made.filter((a) => a.type === 'fall')));
    expect(await ids({ householdId: 'lh-7' })).toEqual([made[7]!.id]);
    expect(await ids({ status: 'resolved' })).toEqual([made[4]!.id]);
    expect(await ids({ status: 'open', type: 'sos', gridId: 'lg-2' })).toEqual(
      sorted(made.filter((a, i) => a.type === 'sos' && a.gridId === 'lg-2' && i !== 4)),
    );
    expect(await ids({ since: base + 6000 })).toEqual(sorted(made.slice(18)));
    expect((await alerts.list({ householdId: 'lh-7' }, ALL, { limit: 10 })).items[0]!.timeline).toHaveLength(1);

    // biome-ignore lint/suspicious/noExplicitAny: a status from outside the list
    await expectError(alerts.list({ status: 'closed' as any }, ALL, { limit: 10 }), 'invalid');
    await expectError(alerts.list({}, ALL, { limit: 10, cursor: 'bm90LWEtY3Vyc29y' }), 'invalid');
    await expectError(alerts.list({}, ALL, { limit: 10, cursor: '%%%' }), 'invalid');
    await expectError(alerts.list({}, ALL, { limit: 0 }), 'invalid');
  });

  it('a restarted service (new connection, same store) sees every alert once and keeps counting', async () => {
    const before = await alerts.list({}, ALL, { limit: 1000 });
    const restartedDb = await open({ url: pg?.url });
    try {
      const restarted = new AlertService(restartedDb, { clock, logger });
      const after = await restarted.list({}, ALL, { limit: 1000 });
      expect(after.items).toEqual(before.items);
      expect(new Set(after.items.map((a) => a.id)).size).toBe(after.items.length);
      const active = (await restarted.active('sos|household:h-race'))!;
      const { alert, created } = await restarted.raise(sos('h-race', clock.now()));
      expect(created).toBe(false);
      expect(alert.id).toBe(active.id);
      expect(alert.count).toBe(51);
      expect(await rowsOfKey('sos|household:h-race')).toBe(1);
    } finally {
      await restartedDb.close();
    }
  });
});
