/**
 * Two processes on one SQLite file (the embedded store shared by the service and, say, a CLI) issue the last units
 * at once: SQLite's write lock (BEGIN IMMEDIATE) and the conditional decrement let exactly as many issues succeed as
 * there are units. (Two nodes on PostgreSQL: src/supplies/service.int.test.ts.)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../clock/clock.ts';
import { SqlRegistry } from '../registry/registry.ts';
import { seedIfEmpty } from '../registry/seed.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { loadSupplyConfig } from './config.ts';
import { SupplyService } from './service.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const CHILD = path.join(import.meta.dirname, 'issue-race.child.ts');

describe('the last units, two processes on one SQLite file', () => {
  let dir: string;
  let database: Database;
  let registry: SqlRegistry;
  let supplies: SupplyService;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-supplies-race-'));
    database = await createDatabase({ sqliteFile: 'race.sqlite' }, dir);
    await migrateToLatest(database.db);
    registry = new SqlRegistry(database, {
      knownModel: () => true,
      sessionSweepMs: 0,
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    await registry.start();
    await seedIfEmpty(registry, path.join(ROOT, 'config/sample-community.yaml'), { env: {} });
    supplies = new SupplyService({
      database,
      registry,
      clock: systemClock,
      logger: pino({ level: 'silent' }),
      config: loadSupplyConfig(
        path.join(ROOT, 'config/supplies/catalogue.yaml'),
        path.join(ROOT, 'config/supplies/depots.yaml'),
      ),
      settings: { checkEveryMinutes: 1440, expiringInfoDays: 90, expiringMinorDays: 30, sample: false },
      timezone: 'Asia/Shanghai',
    });
    await supplies.start();
  });

  afterAll(async () => {
    await supplies?.stop();
    await registry?.stop();
    await database?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('7 units, 2 processes × 15 attempts: exactly 7 issued, the lot at 0', async () => {
    const lot = (await supplies.receive({ depotId: 'dp-limin', itemId: 'stretcher', quantity: 7 }, 'test'))
      .movements[0]!.lotId!;
    const child = () =>
      run(process.execPath, ['--import', 'tsx', CHILD, dir, 'race.sqlite', 'dp-limin', 'stretcher', '15'], {
        cwd: ROOT,
        timeout: 60_000,
      }).then(
        ({ stdout }) =>
          JSON.parse(stdout.trim().split('\n').pop()!) as { won: number; lost: number; from: number; to: number },
      );
    const both = Promise.all([child(), child()]);
    // the start signal once both are loaded and ready
    const until = Date.now() + 50_000;
    while (readdirSync(dir).filter((f) => f.startsWith('ready-')).length < 2 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 10));
    }
    writeFileSync(path.join(dir, 'go'), '');
    const results = await both;
    // they really raced: both were issuing at the same time
    expect(Math.max(...results.map((r) => r.from))).toBeLessThan(Math.min(...results.map((r) => r.to)));
    expect(results.reduce((s, r) => s + r.won, 0)).toBe(7);
    expect(results.reduce((s, r) => s + r.lost, 0)).toBe(23);
    const [l] = await supplies.lots('dp-limin', { itemId: 'stretcher', includeEmpty: true });
    expect(l).toMatchObject({ id: lot, quantity: 0 });
    const issues = await supplies.ledger(
      { depotIds: ['dp-limin'], itemId: 'stretcher', kind: 'issue' },
      { limit: 100 },
    );
    expect(issues.items).toHaveLength(7);
    expect(issues.items.reduce((s, m) => s + m.quantity, 0)).toBe(-7);
  });
});
