/**
 * The supply service against both relational stores (SQLite, a real PostgreSQL), with the real registry (the sample
 * community) and the real alert service on a VirtualClock: ledger arithmetic, no negative stock, the last units
 * issued concurrently from two stores on separate connections, transfers, alerts firing and clearing, population
 * minimums, bad input with no partial change, the ledger surviving a reopened store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getModel } from '../../devices/index.ts';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { AlertService } from '../alerts/service.ts';
import { VirtualClock } from '../clock/clock.ts';
import { RegistryError } from '../registry/port.ts';
import { SqlRegistry } from '../registry/registry.ts';
import { seedIfEmpty } from '../registry/seed.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { loadSupplyConfig } from './config.ts';
import { addDays } from './dates.ts';
import type { StockEventBody } from './schemas.ts';
import { SUPPLY_ALERT_TYPES, type SupplyAlertSink, SupplyService } from './service.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SAMPLE = path.join(ROOT, 'config/sample-community.yaml');
const CONFIG = loadSupplyConfig(
  path.join(ROOT, 'config/supplies/catalogue.yaml'),
  path.join(ROOT, 'config/supplies/depots.yaml'),
);
const logger = pino({ level: 'silent' });
const KEEPER = 'st-depot.limin';
const DAY = 86_400_000;

async function expectError(p: Promise<unknown>, code: RegistryError['code']): Promise<RegistryError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RegistryError);
  expect((e as RegistryError).code).toBe(code);
  return e as RegistryError;
}

describe.each(['sqlite', 'postgres'] as const)('supplies on %s', (kind) => {
  // 02:00 UTC = 10:00 in Asia/Shanghai: the day is the same in both
  const clock = new VirtualClock(Date.UTC(2026, 2, 1, 2, 0, 0));
  const events: StockEventBody[] = [];
  let dir: string;
  let pg: TestPostgres | undefined;
  let database: Database;
  let registry: SqlRegistry;
  let alerts: AlertService;
  let supplies: SupplyService;
  const open = () => createDatabase({ url: pg?.url, sqliteFile: 'supplies.sqlite' }, dir);
  const service = (db: Database, reg: SqlRegistry, sink?: SupplyAlertSink) =>
    new SupplyService({
      database: db,
      registry: reg,
      alerts: sink,
      live: { stockChanged: (ev) => events.push(ev) },
      clock,
      logger,
      config: CONFIG,
      settings: { checkEveryMinutes: 1440, expiringInfoDays: 90, expiringMinorDays: 30, sample: false },
      timezone: 'Asia/Shanghai',
    });
  const today = () => supplies.today();
  const lotsOf = async (depotId: string, itemId: string) =>
    (await supplies.lots(depotId, { itemId, includeEmpty: true })).map((l) => [l.id, l.quantity] as const);
  const usable = async (depotId: string, itemId: string) => (await supplies.levels([depotId], [itemId]))[0]!.usable;
  const active = async (type: string, area: string) => alerts.active(`${type}|area:${area}`);
  const countRows = async (table: 'supply_movement' | 'supply_lot' | 'supply_transfer') =>
    Number(
      (
        await supplies.store.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-supplies-'));
    pg = kind === 'postgres' ? await startTestPostgres() : undefined;
    database = await open();
    expect(await migrateToLatest(database.db)).toContain('010_supplies');
    registry = new SqlRegistry(database, {
      knownModel: (m) => getModel(m) !== undefined,
      clock,
      sessionSweepMs: 0,
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    await registry.start();
    await seedIfEmpty(registry, SAMPLE, { env: {} });
    alerts = new AlertService(database, { clock, logger });
    supplies = service(database, registry, alerts);
    await supplies.start();
  });

  afterAll(async () => {
    await supplies?.stop();
    await registry?.stop();
    await database?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resolves the depots against the registry: hierarchy, keeper, population served', () => {
    const limin = supplies.depot('dp-limin');
    expect(limin).toMatchObject({
      level: 'community',
      communityId: 'c-limin',
      streetId: 's-heping',
      districtId: 'd-xincheng',
      inRegistry: true,
      population: 330, // the residents of the sample community
      populationSource: 'registry',
      keeper: { id: KEEPER, username: 'depot.limin', name: '崔*' },
    });
    expect(limin.gridIds).toEqual(['g-limin-01', 'g-limin-02']);
    // a neighbour that is only a label; its keeper account does not exist without the demo sample
    expect(supplies.depot('dp-xingfu')).toMatchObject({ inRegistry: false, population: 4800, streetId: 's-heping' });
    expect(supplies.depot('dp-xingfu').keeper).toBeUndefined();
    expect(supplies.depot('dp-heping')).toMatchObject({ level: 'street', population: 62000, districtId: 'd-xincheng' });
    expect(supplies.warnings.some((w) => w.includes('depot.xingfu'))).toBe(true);
  });

  it('minimums follow the population: per 1,000 residents rounded up, absolute, overrides, back to the quota', async () => {
    const m = async (depotId: string, itemId: string) =>
      (await supplies.minimums([depotId])).get(depotId)!.get(itemId)!;
    // sandbags: 100 per 1,000 → 330 residents ask for 33; first-aid kits 10 per 1,000 → 3.3 → 4
    expect(await m('dp-limin', 'sandbag')).toMatchObject({ minimum: 33, source: 'quota' });
    expect((await m('dp-limin', 'first_aid_kit')).minimum).toBe(4);
    expect((await m('dp-limin', 'generator')).minimum).toBe(1);
    expect((await m('dp-limin', 'tent')).source).toBe('none');
    // the street depot serves 62,000: 50 per 1,000
    expect((await m('dp-heping', 'sandbag')).minimum).toBe(3100);
    // district tents: 0.2 per 1,000 of 480,000 → 96
    expect((await m('dp-xincheng', 'tent')).minimum).toBe(96);

    await supplies.setMinimums('dp-limin', [{ itemId: 'sandbag', mode: 'per1000', value: 200 }], 'st-dir.limin');
    expect(await m('dp-limin', 'sandbag')).toMatchObject({ minimum: 66, source: 'override', mode: 'per1000' });
    await supplies.setMinimums('dp-limin', [{ itemId: 'sandbag', mode: 'absolute', value: 5 }], 'st-dir.limin');
    expect((await m('dp-limin', 'sandbag')).minimum).toBe(5);
    await supplies.setMinimums('dp-limin', [{ itemId: 'sandbag', mode: 'quota' }], 'st-dir.limin');
    expect(await m('dp-limin', 'sandbag')).toMatchObject({ minimum: 33, source: 'quota' });
    await expectError(
      supplies.setMinimums('dp-limin', [{ itemId: 'nope', mode: 'absolute', value: -1 }], 'st-dir.limin'),
      'invalid',
    );
  });

  it('ledger arithmetic: every lot equals the sum of its movements, first expiring first out', async () => {
    const t = today();
    const a = await supplies.receive(
      { depotId: 'dp-limin', itemId: 'raincoat', quantity: 50, expiresOn: addDays(t, 400), source: 'supplier' },
      KEEPER,
    );
    const b = await supplies.receive(
      { depotId: 'dp-limin', itemId: 'raincoat', quantity: 30, expiresOn: addDays(t, 200) },
      KEEPER,
    );
    const lotA = a.movements[0]!.lotId!;
    const lotB = b.movements[0]!.lotId!;
    expect(a.levels[0]).toMatchObject({ itemId: 'raincoat', total: 50, usable: 50 });
    // 60 out: the 30 expiring sooner first, then 30 of the other
    const issued = await supplies.issue(
      { depotId: 'dp-limin', itemId: 'raincoat', quantity: 60, to: { kind: 'incident', ref: 'alert-123' } },
      KEEPER,
    );
    expect(issued.movements.map((m) => [m.lotId, m.quantity, m.balanceAfter]).sort()).toEqual(
      [
        [lotA, -30, 20],
        [lotB, -30, 0],
      ].sort(),
    );
    expect(issued.movements.every((m) => m.ref?.kind === 'incident' && m.ref.id === 'alert-123')).toBe(true);
    // 10 come back into the lots they left; no more than went out
    await supplies.returnIssued({ depotId: 'dp-limin', issueId: issued.opId, quantity: 10 }, KEEPER);
    await expectError(
      supplies.returnIssued({ depotId: 'dp-limin', issueId: issued.opId, quantity: 51 }, KEEPER),
      'conflict',
    );
    await supplies.dispose({ depotId: 'dp-limin', lotId: lotA, quantity: 5, reason: 'damaged', note: 'torn' }, KEEPER);
    const counted = await supplies.adjust(
      { depotId: 'dp-limin', lotId: lotA, countedQuantity: 12, reason: 'count: 3 missing', corrects: issued.opId },
      KEEPER,
    );
    expect(counted.movements[0]).toMatchObject({ kind: 'adjust', corrects: issued.opId, reason: 'count: 3 missing' });
    await supplies.inspect({ depotId: 'dp-limin', lotId: lotA, result: 'pass' }, KEEPER);

    const ledger = await supplies.ledger({ depotIds: ['dp-limin'], itemId: 'raincoat' }, { limit: 1000 });
    const byLot = new Map<string, number>();
    for (const m of ledger.items) byLot.set(m.lotId!, (byLot.get(m.lotId!) ?? 0) + m.quantity);
    for (const [lotId, q] of await lotsOf('dp-limin', 'raincoat')) expect(byLot.get(lotId)).toBe(q);
    // A: 50 − 30 − 5, counted 12; B: 30 − 30 + the 10 returned (it went out first, it comes back first)
    expect(new Map(await lotsOf('dp-limin', 'raincoat'))).toEqual(
      new Map([
        [lotA, 12],
        [lotB, 10],
      ]),
    );
    expect([...byLot.values()].reduce((s, q) => s + q, 0)).toBe(50 + 30 - 60 + 10 - 5 - 3);
    expect((await supplies.levels(['dp-limin'], ['raincoat']))[0]).toMatchObject({ total: 22, usable: 22, lots: 2 });
    // every movement records who and why; the newest comes first, in the order written within a millisecond
    expect(ledger.items.map((m) => m.kind)).toEqual([
      'inspect',
      'adjust',
      'dispose',
      'return',
      'issue',
      'issue',
      'receive',
      'receive',
    ]);
    expect(ledger.items.every((m) => m.by === KEEPER && m.reason)).toBe(true);
    // paging: keyset, no repeats
    const p1 = await supplies.ledger({ depotIds: ['dp-limin'], itemId: 'raincoat' }, { limit: 3 });
    const p2 = await supplies.ledger(
      { depotIds: ['dp-limin'], itemId: 'raincoat' },
      { limit: 100, cursor: p1.nextCursor },
    );
    expect([...p1.items, ...p2.items].map((m) => m.id)).toEqual(ledger.items.map((m) => m.id));
    const onlyIssues = await supplies.ledger({ depotIds: ['dp-limin'], kind: 'issue' }, { limit: 100 });
    expect(onlyIssues.items.every((m) => m.kind === 'issue')).toBe(true);
  });

  it('never goes negative: too few usable units is a conflict and nothing moves; the store refuses it too', async () => {
    const t = today();
    const ok = await supplies.receive({ depotId: 'dp-limin', itemId: 'rain_boots', quantity: 4 }, KEEPER);
    const lot = ok.movements[0]!.lotId!;
    const expiredLot = (
      await supplies.receive(
        {
          depotId: 'dp-limin',
          itemId: 'rain_boots',
          quantity: 6,
          receivedOn: addDays(t, -30),
          expiresOn: addDays(t, -1),
        },
        KEEPER,
      )
    ).movements[0]!.lotId!;
    const before = await countRows('supply_movement');
    const e = await expectError(
      supplies.issue(
        { depotId: 'dp-limin', itemId: 'rain_boots', quantity: 5, to: { kind: 'drill', ref: 'd-1' } },
        KEEPER,
      ),
      'conflict',
    );
    expect(e.message).toContain('only 4 usable');
    expect(e.message).toContain('6 more are expired');
    // an expired lot cannot be issued, even by name
    await expectError(
      supplies.issue(
        {
          depotId: 'dp-limin',
          itemId: 'rain_boots',
          quantity: 1,
          lotId: expiredLot,
          to: { kind: 'drill', ref: 'd-1' },
        },
        KEEPER,
      ),
      'conflict',
    );
    await expectError(
      supplies.dispose({ depotId: 'dp-limin', lotId: lot, quantity: 5, reason: 'damaged' }, KEEPER),
      'conflict',
    );
    expect(await countRows('supply_movement')).toBe(before);
    expect(await lotsOf('dp-limin', 'rain_boots')).toEqual(
      expect.arrayContaining([
        [lot, 4],
        [expiredLot, 6],
      ]),
    );
    // a bug or a hand-written UPDATE cannot make stock negative either, nor edit or delete the ledger
    await expect(sql`update supply_lot set quantity = -1 where id = ${lot}`.execute(database.db)).rejects.toThrow();
    await expect(
      sql`update supply_movement set quantity = 99 where lot_id = ${lot}`.execute(database.db),
    ).rejects.toThrow(/append-only/);
    await expect(sql`delete from supply_movement where lot_id = ${lot}`.execute(database.db)).rejects.toThrow(
      /append-only/,
    );
  });

  it('bad input is refused with every problem named, and nothing is written', async () => {
    const t = today();
    const rows = { m: await countRows('supply_movement'), l: await countRows('supply_lot') };
    const e1 = await expectError(
      supplies.receive(
        { depotId: 'dp-nowhere', itemId: 'unobtainium', quantity: -3, receivedOn: t, expiresOn: addDays(t, -2) },
        KEEPER,
      ),
      'invalid',
    );
    expect((e1.details as { field: string }[]).map((d) => d.field).sort()).toEqual(
      ['depotId', 'expiresOn', 'itemId', 'quantity'].sort(),
    );
    expect(e1.message).toContain('expiresOn: must not be before the receipt');
    const e2 = await expectError(
      supplies.receive({ depotId: 'dp-limin', itemId: 'sandbag', quantity: 0 }, KEEPER),
      'invalid',
    );
    expect(e2.message).toContain('quantity: must be a whole number from 1');
    await expectError(supplies.receive({ depotId: 'dp-limin', itemId: 'sandbag', quantity: 1.5 }, KEEPER), 'invalid');
    await expectError(
      supplies.receive({ depotId: 'dp-limin', itemId: 'sandbag', quantity: 1, receivedOn: addDays(t, 3) }, KEEPER),
      'invalid',
    );
    await expectError(
      supplies.receive({ depotId: 'dp-limin', itemId: 'sandbag', quantity: 1, receivedOn: '2026-02-30' }, KEEPER),
      'invalid',
    );
    const e3 = await expectError(
      supplies.dispose({ depotId: 'dp-limin', lotId: 'lot-nope', reason: 'expired' }, KEEPER),
      'invalid',
    );
    expect(e3.message).toContain('lotId: no lot lot-nope at depot dp-limin');
    await expectError(supplies.inspect({ depotId: 'dp-limin', lotId: 'lot-nope', result: 'pass' }, KEEPER), 'invalid');
    await expectError(
      supplies.adjust({ depotId: 'dp-limin', lotId: 'lot-nope', countedQuantity: -1, reason: '' }, KEEPER),
      'invalid',
    );
    await expectError(
      supplies.issue({ depotId: 'dp-limin', itemId: 'sandbag', quantity: 1, to: { kind: 'drill', ref: '' } }, KEEPER),
      'invalid',
    );
    await expectError(
      supplies.requestTransfer(
        { fromDepotId: 'dp-limin', toDepotId: 'dp-limin', itemId: 'sandbag', quantity: 1 },
        KEEPER,
      ),
      'invalid',
    );
    expect({ m: await countRows('supply_movement'), l: await countRows('supply_lot') }).toEqual(rows);
  });

  it('the last units issued at once from two stores on separate connections: only as many succeed as there are', async () => {
    // a second node: its own connection, registry and service, on the same store (no alerts: see the SQLite note)
    const db2 = await open();
    const reg2 = new SqlRegistry(db2, { knownModel: () => true, clock, sessionSweepMs: 0 });
    await reg2.start();
    const other = service(db2, reg2);
    await other.refresh();
    const mine = service(database, registry);
    await mine.refresh();
    try {
      const lot = (await supplies.receive({ depotId: 'dp-limin', itemId: 'loudhailer', quantity: 5 }, KEEPER))
        .movements[0]!.lotId!;
      const attempts = Array.from({ length: 24 }, (_, i) =>
        (i % 2 === 0 ? mine : other).issue(
          { depotId: 'dp-limin', itemId: 'loudhailer', quantity: 1, to: { kind: 'drill', ref: `race-${i}` } },
          KEEPER,
        ),
      );
      const results = await Promise.allSettled(attempts);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(5);
      for (const r of lost) expect(((r as PromiseRejectedResult).reason as RegistryError).code).toBe('conflict');
      expect(await lotsOf('dp-limin', 'loudhailer')).toEqual([[lot, 0]]);
      const issues = await supplies.ledger(
        { depotIds: ['dp-limin'], itemId: 'loudhailer', kind: 'issue' },
        { limit: 100 },
      );
      expect(issues.items).toHaveLength(5);

      // the very last units: two issues of 2 out of 3, one from each node
      await supplies.receive({ depotId: 'dp-limin', itemId: 'loudhailer', quantity: 3 }, KEEPER);
      const pair = await Promise.allSettled([
        mine.issue({ depotId: 'dp-limin', itemId: 'loudhailer', quantity: 2, to: { kind: 'drill', ref: 'a' } }, KEEPER),
        other.issue(
          { depotId: 'dp-limin', itemId: 'loudhailer', quantity: 2, to: { kind: 'drill', ref: 'b' } },
          KEEPER,
        ),
      ]);
      expect(pair.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(await usable('dp-limin', 'loudhailer')).toBe(1);
    } finally {
      await reg2.stop();
      await db2.close();
    }
  });

  it('transfers: requested → approved → in transit → received, with the lots and their dates; wrong steps refused', async () => {
    const t = today();
    await supplies.receive(
      { depotId: 'dp-xingfu', itemId: 'blanket', quantity: 20, receivedOn: addDays(t, -10) },
      'st-admin',
    );
    const req = await supplies.requestTransfer(
      { fromDepotId: 'dp-xingfu', toDepotId: 'dp-limin', itemId: 'blanket', quantity: 8, reason: 'flood shelter' },
      KEEPER,
    );
    expect(req).toMatchObject({ status: 'requested', requestedBy: KEEPER, quantity: 8, lots: [] });
    await expectError(supplies.dispatchTransfer(req.id, 'st-admin'), 'conflict');
    await expectError(supplies.receiveTransfer(req.id, KEEPER), 'conflict');
    const approved = await supplies.approveTransfer(req.id, 'st-admin', 'ok');
    expect(approved).toMatchObject({ status: 'approved', decidedBy: 'st-admin', decisionNote: 'ok' });
    await expectError(supplies.approveTransfer(req.id, 'st-admin'), 'conflict');
    const before = await usable('dp-limin', 'blanket');
    const sent = await supplies.dispatchTransfer(req.id, 'st-admin');
    expect(sent.status).toBe('in_transit');
    expect(sent.lots.reduce((s, l) => s + l.quantity, 0)).toBe(8);
    expect(await usable('dp-xingfu', 'blanket')).toBe(12);
    expect((await supplies.levels(['dp-limin'], ['blanket']))[0]!.incoming).toBe(8);
    await expectError(supplies.cancelTransfer(req.id, KEEPER), 'conflict');
    const got = await supplies.receiveTransfer(req.id, KEEPER, 'all there');
    expect(got).toMatchObject({ status: 'received', receivedBy: KEEPER });
    expect(got.lots[0]!.receivedLotId).toMatch(/^lot-/);
    expect(await usable('dp-limin', 'blanket')).toBe(before + 8);
    const arrived = (await supplies.lots('dp-limin', { itemId: 'blanket' })).find(
      (l) => l.id === got.lots[0]!.receivedLotId,
    )!;
    expect(arrived).toMatchObject({ receivedOn: addDays(t, -10), origin: `transfer:${req.id}` });
    const moves = await supplies.ledger({ transferId: req.id }, { limit: 10 });
    expect(moves.items.map((m) => [m.kind, m.depotId, m.quantity]).sort()).toEqual(
      [
        ['transfer_in', 'dp-limin', 8],
        ['transfer_out', 'dp-xingfu', -8],
      ].sort(),
    );

    // declined and cancelled requests move nothing
    const no = await supplies.requestTransfer(
      { fromDepotId: 'dp-xingfu', toDepotId: 'dp-limin', itemId: 'blanket', quantity: 1 },
      KEEPER,
    );
    await expectError(supplies.declineTransfer(no.id, 'st-admin', ''), 'invalid');
    expect((await supplies.declineTransfer(no.id, 'st-admin', 'we need them')).status).toBe('declined');
    const cancel = await supplies.requestTransfer(
      { fromDepotId: 'dp-xingfu', toDepotId: 'dp-limin', itemId: 'blanket', quantity: 1 },
      KEEPER,
    );
    expect((await supplies.cancelTransfer(cancel.id, KEEPER)).status).toBe('cancelled');
    // more than the source holds: approved, but the dispatch fails and nothing moves
    const big = await supplies.requestTransfer(
      { fromDepotId: 'dp-xingfu', toDepotId: 'dp-limin', itemId: 'blanket', quantity: 500 },
      KEEPER,
    );
    await supplies.approveTransfer(big.id, 'st-admin');
    await expectError(supplies.dispatchTransfer(big.id, 'st-admin'), 'conflict');
    expect((await supplies.transfer(big.id)).status).toBe('approved');
    expect(await usable('dp-xingfu', 'blanket')).toBe(12);
    const list = await supplies.transfers({ depotIds: ['dp-limin'] }, { limit: 2 });
    expect(list.items).toHaveLength(2);
    expect(list.nextCursor).toBeDefined();
    // the live channel heard of it
    expect(events.some((e) => e.change === 'transfer_in' && e.transfer?.id === req.id)).toBe(true);
  });

  it('mutual aid: same-street communities first, then the street, the district, then supplier agreements', async () => {
    for (const depotId of ['dp-xingfu', 'dp-heping', 'dp-xincheng']) {
      await supplies.receive({ depotId, itemId: 'bottled_water', quantity: 2000 }, 'st-admin');
    }
    const sources = await supplies.sources('dp-limin', 'bottled_water');
    expect(sources.map((s) => [s.kind, s.relation, s.depotId])).toEqual([
      ['depot', 'same_street', 'dp-xingfu'],
      ['depot', 'street', 'dp-heping'],
      ['depot', 'district', 'dp-xincheng'],
      ['agreement', 'own', 'dp-limin'],
      ['agreement', 'street', 'dp-heping'],
    ]);
    expect(sources[0]).toMatchObject({ rank: 1, usable: 2000, minimum: 72, spare: 1928 });
    expect(sources[3]).toMatchObject({ supplier: '利民便民超市', quantity: 100, withinHours: 4 });
  });

  it('alerts: below minimum opens on an issue and clears when a transfer restocks it', async () => {
    // dp-limin serves 330 residents: 100 sandbags per 1,000 → 33
    await supplies.receive({ depotId: 'dp-limin', itemId: 'sandbag', quantity: 40 }, KEEPER);
    const area = 'supplies/dp-limin/sandbag';
    expect(await active(SUPPLY_ALERT_TYPES.belowMinimum, area)).toBeUndefined();
    await supplies.issueToDrill({ depotId: 'dp-limin', itemId: 'sandbag', quantity: 10, drillId: 'drill-1' }, KEEPER);
    const open = await active(SUPPLY_ALERT_TYPES.belowMinimum, area);
    expect(open).toMatchObject({
      category: 'supplies',
      severity: 'major',
      communityId: 'c-limin',
      areaId: area,
      drill: false,
    });
    expect(open!.summary).toContain('30 of 33');
    expect(supplies.keepersFor(open!)).toEqual([KEEPER]);
    expect((await supplies.depotAlerts(['dp-limin'])).some((a) => a.id === open!.id && a.itemId === 'sandbag')).toBe(
      true,
    );
    // a second movement that leaves it short does not repeat it
    await supplies.issueToDrill({ depotId: 'dp-limin', itemId: 'sandbag', quantity: 1, drillId: 'drill-1' }, KEEPER);
    expect((await alerts.get(open!.id))!.count).toBe(1);

    await supplies.receive({ depotId: 'dp-xingfu', itemId: 'sandbag', quantity: 600 }, 'st-admin');
    const tr = await supplies.requestTransfer(
      { fromDepotId: 'dp-xingfu', toDepotId: 'dp-limin', itemId: 'sandbag', quantity: 10 },
      KEEPER,
    );
    await supplies.approveTransfer(tr.id, 'st-admin');
    await supplies.dispatchTransfer(tr.id, 'st-admin');
    expect(await active(SUPPLY_ALERT_TYPES.belowMinimum, area)).toBeDefined();
    await supplies.receiveTransfer(tr.id, KEEPER);
    expect(await active(SUPPLY_ALERT_TYPES.belowMinimum, area)).toBeUndefined();
    const cleared = await alerts.get(open!.id);
    expect(cleared).toMatchObject({ status: 'resolved', outcome: 'restocked: at or above the minimum' });
  });

  it('alerts: expiring (info, then minor), expired (major) and inspection overdue follow the calendar', async () => {
    const t = today();
    const kit = (
      await supplies.receive(
        { depotId: 'dp-limin', itemId: 'first_aid_kit', quantity: 10, expiresOn: addDays(t, 100) },
        KEEPER,
      )
    ).movements[0]!.lotId!;
    const gen = (
      await supplies.receive({ depotId: 'dp-limin', itemId: 'generator', quantity: 1, lastInspectedOn: t }, KEEPER)
    ).movements[0]!.lotId!;
    const kitArea = `supplies/dp-limin/first_aid_kit/${kit}`;
    const genArea = `supplies/dp-limin/generator/${gen}`;
    expect(await active(SUPPLY_ALERT_TYPES.expiring, kitArea)).toBeUndefined();

    const days = async (n: number) => {
      clock.advance(n * DAY);
      await supplies.idle();
    };
    await days(15); // 85 days left: info
    expect((await active(SUPPLY_ALERT_TYPES.expiring, kitArea))?.severity).toBe('info');
    expect(await active(SUPPLY_ALERT_TYPES.inspectionOverdue, genArea)).toBeUndefined();
    await days(20); // 65 left; the generator's monthly test run is overdue
    const overdue = await active(SUPPLY_ALERT_TYPES.inspectionOverdue, genArea);
    expect(overdue?.severity).toBe('minor');
    await supplies.inspect({ depotId: 'dp-limin', lotId: gen, result: 'pass', note: 'ran 20 min' }, KEEPER);
    expect(await active(SUPPLY_ALERT_TYPES.inspectionOverdue, genArea)).toBeUndefined();
    expect((await alerts.get(overdue!.id))!.outcome).toBe('inspected');
    await days(40); // 25 left: the same alert, now minor
    const minor = await active(SUPPLY_ALERT_TYPES.expiring, kitArea);
    expect(minor?.severity).toBe('minor');
    await days(26); // expired
    expect(await active(SUPPLY_ALERT_TYPES.expiring, kitArea)).toBeUndefined();
    const expired = await active(SUPPLY_ALERT_TYPES.expired, kitArea);
    expect(expired?.severity).toBe('major');
    // expired units are not usable: the kits are also short of their minimum now
    expect(await usable('dp-limin', 'first_aid_kit')).toBe(0);
    expect(await active(SUPPLY_ALERT_TYPES.belowMinimum, 'supplies/dp-limin/first_aid_kit')).toBeDefined();
    await supplies.dispose({ depotId: 'dp-limin', lotId: kit, reason: 'expired' }, KEEPER);
    expect(await active(SUPPLY_ALERT_TYPES.expired, kitArea)).toBeUndefined();
    await supplies.receive({ depotId: 'dp-limin', itemId: 'first_aid_kit', quantity: 4 }, KEEPER);
    expect(await active(SUPPLY_ALERT_TYPES.belowMinimum, 'supplies/dp-limin/first_aid_kit')).toBeUndefined();
  });

  it('shortfalls per community and the expiry calendar', async () => {
    const short = await supplies.shortfalls();
    const limin = short.find((c) => c.communityId === 'c-limin')!;
    expect(limin).toMatchObject({ inRegistry: true, population: 330, depotIds: ['dp-limin'] });
    expect(limin.lines.find((l) => l.itemId === 'sandbag')).toMatchObject({ minimum: 33 });
    const xingfu = short.find((c) => c.communityId === 'c-xingfu')!;
    expect(xingfu).toMatchObject({ inRegistry: false, population: 4800, name: { zh: '幸福社区' } });
    expect(xingfu.lines.find((l) => l.itemId === 'tent')).toBeUndefined();

    const t = today();
    await supplies.receive(
      { depotId: 'dp-limin', itemId: 'instant_food', quantity: 7, expiresOn: addDays(t, 45) },
      KEEPER,
    );
    const cal = await supplies.expiryCalendar(['dp-limin']);
    expect(cal.months).toHaveLength(12);
    expect(cal.months[0]!.month).toBe(t.slice(0, 7));
    const month = cal.months.find((m) => m.month === addDays(t, 45).slice(0, 7))!;
    expect(month.totals.find((x) => x.itemId === 'instant_food')?.quantity).toBeGreaterThanOrEqual(7);
  });

  it('every movement survives closing and reopening the store', async () => {
    const before = await supplies.ledger({}, { limit: 1000 });
    const lotsBefore = await supplies.lots('dp-limin', { includeEmpty: true });
    await supplies.stop();
    await registry.stop();
    await database.close();
    database = await open();
    expect(await migrateToLatest(database.db)).toEqual([]);
    registry = new SqlRegistry(database, { knownModel: () => true, clock, sessionSweepMs: 0 });
    await registry.start();
    alerts = new AlertService(database, { clock, logger });
    supplies = service(database, registry, alerts);
    await supplies.start();
    const after = await supplies.ledger({}, { limit: 1000 });
    expect(after.items).toEqual(before.items);
    expect(await supplies.lots('dp-limin', { includeEmpty: true })).toEqual(lotsBefore);
    expect(after.items.length).toBeGreaterThan(30);
  });
});
