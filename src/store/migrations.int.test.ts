/**
 * Migrations that reshape a table with rows in it, on both stores: migration 012 (alert_event keyed per alert key)
 * keeps the dedup records a replay after the upgrade still needs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Kysely, type MigrationProvider, Migrator, sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { createDatabase } from './db.ts';
import { migrateToLatest } from './migrate.ts';
import { MIGRATIONS } from './migrations.ts';

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

async function stores(): Promise<[string, Kysely<unknown>][]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gw-migrations-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const pg: TestPostgres = await startTestPostgres();
  cleanup.push(() => pg.stop());
  const out: [string, Kysely<unknown>][] = [];
  for (const [name, cfg] of [
    ['sqlite', { sqliteFile: 'relational.sqlite' }],
    ['postgres', { url: pg.url, sqliteFile: 'unused.sqlite' }],
  ] as const) {
    const db = await createDatabase(cfg, dir);
    cleanup.push(() => db.close());
    out.push([name, db.db as unknown as Kysely<unknown>]);
  }
  return out;
}

const upTo = (last: string): MigrationProvider => ({
  getMigrations: async () => Object.fromEntries(Object.entries(MIGRATIONS).filter(([name]) => name <= last)),
});

describe('migration 012_alert_event_keys', () => {
  it('keeps the alert_event rows, each with its alert’s key, on SQLite and PostgreSQL', async () => {
    for (const [name, db] of await stores()) {
      const before = await new Migrator({ db, provider: upTo('011_alert_events') }).migrateToLatest();
      expect(before.error, name).toBeUndefined();
      await sql`INSERT INTO alert (id, type, category, severity, status, key, summary, count, first_seen, last_seen,
          evidence, updated_at)
        VALUES ('a1', 'sos', 'resident_safety', 'critical', 'open', 'sos|household:h1', 'SOS', 1, 1, 1, '[]', 1)`.execute(
        db,
      );
      await sql`INSERT INTO alert_event (device_id, event_id, alert_id, ts) VALUES ('btn-1', 'e1', 'a1', 1)`.execute(
        db,
      );

      await migrateToLatest(db);
      const rows = await sql<{
        device_id: string;
        event_id: string;
        alert_key: string;
        alert_id: string;
      }>`SELECT device_id, event_id, alert_key, alert_id FROM alert_event`.execute(db);
      expect(rows.rows, name).toEqual([
        { device_id: 'btn-1', event_id: 'e1', alert_key: 'sos|household:h1', alert_id: 'a1' },
      ]);
      // the same event may now be counted into a second alert key, and only once into each
      await sql`INSERT INTO alert_event (device_id, event_id, alert_key, alert_id, ts)
        VALUES ('btn-1', 'e1', 'other|household:h1', 'a1', 1)`.execute(db);
      await expect(
        sql`INSERT INTO alert_event (device_id, event_id, alert_key, alert_id, ts)
          VALUES ('btn-1', 'e1', 'sos|household:h1', 'a1', 1)`.execute(db),
        name,
      ).rejects.toThrow();
    }
  }, 60_000);
});
