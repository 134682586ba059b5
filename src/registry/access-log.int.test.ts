/**
 * Migration 007_console_sessions, sessions and the access log on both databases: sessions signed in before the
 * migration keep working and get a public id; desk sessions end on time, phone sessions slide, with at most one
 * write an hour; the access log pages newest first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Kysely, Migrator } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { VirtualClock } from '../clock/clock.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { MIGRATIONS } from '../store/migrations.ts';
import { AccessLog } from './access-log.ts';
import { SqlRegistry } from './registry.ts';
import { hashToken } from './secrets.ts';

// biome-ignore lint/suspicious/noExplicitAny: rows of tables the typed DB does not list
type Json = any;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe.each(['sqlite', 'postgres'] as const)('console sessions and access log on %s', (kind) => {
  const clock = new VirtualClock(Date.UTC(2026, 5, 1));
  let dir: string;
  let pg: TestPostgres | undefined;
  let database: Database;
  let registry: SqlRegistry;
  let raw: Kysely<Json>;
  const OLD_TOKEN = 'a-token-from-before-the-migration';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-console-sessions-'));
    pg = kind === 'postgres' ? await startTestPostgres() : undefined;
    database = await createDatabase({ url: pg?.url, sqliteFile: 'r.sqlite' }, dir);
    raw = database.db as unknown as Kysely<Json>;
    // the schema as it was before, with a signed-in session
    const migrator = new Migrator({
      db: raw,
      provider: { getMigrations: async () => ({ ...MIGRATIONS }) },
    });
    const before = await migrator.migrateTo('006_duty_roster');
    expect(before.error).toBeUndefined();
    await raw
      .insertInto('staff')
      .values({
        id: 'st-old',
        username: 'old',
        name: '老用户',
        phone: null,
        password_hash: 'x',
        disabled: 0,
        created_at: 1,
      })
      .execute();
    await raw
      .insertInto('session')
      .values({
        token_hash: hashToken(OLD_TOKEN),
        staff_id: 'st-old',
        expires_at: clock.now() + HOUR,
        created_at: clock.now() - HOUR,
      })
      .execute();
    expect(await migrateToLatest(database.db)).toContain('007_console_sessions');
    registry = new SqlRegistry(database, {
      knownModel: () => true,
      clock,
      sessionSweepMs: 0,
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    await registry.start();
  });

  afterAll(async () => {
    await registry?.stop();
    await database?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a session from before the migration keeps working, as a desk session with a public id', async () => {
    const found = await registry.authenticateSession(OLD_TOKEN);
    expect(found?.staff.id).toBe('st-old');
    expect(found?.session).toMatchObject({ device: 'desk', staffId: 'st-old' });
    expect(found?.session.id).toMatch(/^s-[0-9a-f]{20}$/);
    // last use = sign-in time, so this use (an hour later) was recorded; the expiry did not move
    expect(found?.session.lastUsedAt).toBe(new Date(clock.now()).toISOString());
    expect(found?.session.expiresAt).toBe(new Date(clock.now() + HOUR).toISOString());
    expect(found?.renewed).toBe(false);
    expect((await registry.listSessions('st-old')).map((s) => s.id)).toEqual([found?.session.id]);
  });

  it('desk sessions end on time; phone sessions slide while used, written at most once an hour', async () => {
    await registry.createStaff({
      username: 'gw.clock',
      name: '钟表',
      phone: '+8613800000077',
      roles: ['grid_worker'],
      password: 'a-long-password-1',
    });
    const desk = await registry.createSession('st-gw.clock', 10 * HOUR, { device: 'desk', userAgent: 'curl' });
    const phone = await registry.createSession('st-gw.clock', 90 * DAY, { device: 'phone', sliding: true });
    expect(desk.device).toBe('desk');
    expect(phone.expiresAt.getTime()).toBe(clock.now() + 90 * DAY);
    const row = async (token: string) =>
      raw.selectFrom('session').selectAll().where('token_hash', '=', hashToken(token)).executeTakeFirstOrThrow();

    clock.advance(10 * HOUR - 1);
    expect(await registry.resolveSession(desk.token)).toBeDefined();
    clock.advance(1);
    expect(await registry.resolveSession(desk.token)).toBeUndefined();

    let found = await registry.authenticateSession(phone.token);
    expect(found?.renewed).toBe(true);
    expect(Number((await row(phone.token)).expires_at)).toBe(clock.now() + 90 * DAY);
    const written = await row(phone.token);
    clock.advance(HOUR - 1);
    found = await registry.authenticateSession(phone.token);
    expect(found?.renewed).toBe(false);
    expect(await row(phone.token)).toEqual(written);
    clock.advance(89 * DAY);
    found = await registry.authenticateSession(phone.token);
    expect(found?.renewed).toBe(true);
    expect(found?.session.expiresAt).toBe(new Date(clock.now() + 90 * DAY).toISOString());
    clock.advance(90 * DAY);
    expect(await registry.authenticateSession(phone.token)).toBeUndefined();
    expect(await registry.listSessions('st-gw.clock')).toEqual([]);
  });

  it('revokes by public id and per account; a disabled account resolves to nothing', async () => {
    const a = await registry.createSession('st-gw.clock', HOUR, { device: 'desk' });
    const b = await registry.createSession('st-gw.clock', DAY, {
      device: 'phone',
      sliding: true,
      userAgent: 'x'.repeat(500),
    });
    const listed = await registry.listSessions('st-gw.clock');
    expect(new Set(listed.map((s) => s.id))).toEqual(new Set([a.id, b.id]));
    expect(listed.find((s) => s.id === b.id)?.userAgent?.length).toBe(100);
    expect((await registry.getSession(a.id))?.staffId).toBe('st-gw.clock');
    expect(await registry.revokeSessionById(a.id)).toBe(true);
    expect(await registry.revokeSessionById(a.id)).toBe(false);
    expect(await registry.getSession(a.id)).toBeUndefined();
    expect(await registry.resolveSession(a.token)).toBeUndefined();
    expect(await registry.resolveSession(b.token)).toBeDefined();
    expect(await registry.revokeStaffSessions('st-gw.clock')).toBe(1);
    expect(await registry.resolveSession(b.token)).toBeUndefined();

    const c = await registry.createSession('st-gw.clock', DAY);
    await registry.updateStaff('st-gw.clock', { disabled: true });
    expect(await registry.authenticateSession(c.token)).toBeUndefined();
    await expect(registry.createSession('st-gw.clock', DAY, { device: 'tablet' as 'desk' })).rejects.toThrow(/device/);
  });

  it('the access log: rows newest first, filters, keyset pages, bad input refused', async () => {
    const log = new AccessLog(database, clock);
    for (let i = 0; i < 5; i++) {
      await log.record({ staffId: `st-${i % 2}`, householdId: 'h-1', what: ['residents'], ip: '10.0.0.1' });
      if (i % 2 === 0) clock.advance(1000); // some rows share a millisecond
    }
    await log.record({ staffId: 'st-9', householdId: 'h-2', what: ['emergency_contacts', 'residents'] });
    const all = await log.list({}, { limit: 1000 });
    expect(all.items).toHaveLength(6);
    expect(all.nextCursor).toBeUndefined();
    expect(all.items[0]).toMatchObject({
      staffId: 'st-9',
      householdId: 'h-2',
      what: ['emergency_contacts', 'residents'],
    });
    expect(all.items[0]).not.toHaveProperty('ip');
    expect(all.items[1]).toMatchObject({ ip: '10.0.0.1' });
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await log.list({}, { limit: 2, cursor });
      paged.push(...page.items.map((x) => x.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all.items.map((x) => x.id));
    expect((await log.list({ staffId: 'st-1' }, { limit: 100 })).items).toHaveLength(2);
    expect((await log.list({ householdId: 'h-2' }, { limit: 100 })).items).toHaveLength(1);
    expect((await log.list({ since: clock.now() }, { limit: 100 })).items.length).toBeGreaterThanOrEqual(1);
    await expect(log.list({}, { limit: 10, cursor: 'bad!' })).rejects.toThrow(/cursor/);
    await expect(log.list({}, { limit: 10, cursor: Buffer.from('x|').toString('base64url') })).rejects.toThrow(
      /cursor/,
    );
    await expect(log.list({}, { limit: 0 })).rejects.toThrow(/limit/);
    await expect(log.record({ staffId: 'st-1', householdId: 'h-1', what: [] })).rejects.toThrow(/nothing/);
  });
});
