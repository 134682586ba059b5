/**
 * The roster API on the real Fastify app (buildHttpApp) over a real registry with the sample community (SQLite) and a
 * real DutyRoster; the parts of the app the roster does not use are stubs. Requests go through `inject`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getModel } from '../../../devices/index.ts';
import { ROOT } from '../../../test/support/system.ts';
import { systemClock } from '../../clock/clock.ts';
import { loadConfig } from '../../config/load.ts';
import { createLogger } from '../../logger.ts';
import { DutyRoster } from '../../notify/roster.ts';
import { SqlRegistry } from '../../registry/registry.ts';
import { seedIfEmpty } from '../../registry/seed.ts';
import { createDatabase, type Database } from '../../store/db.ts';
import { migrateToLatest } from '../../store/migrate.ts';
import { buildHttpApp, type HttpDeps } from '../app.ts';

const SAMPLE = path.resolve(ROOT, 'config/sample-community.yaml');
const DAY = 86_400_000;
const GW1 = 'st-gw.limin.01';
const GW2 = 'st-gw.limin.02';
const GL = 'st-gl.limin.1';
const DIR = 'st-dir.limin';

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON answers of many shapes; tests assert on them
type Json = any;

let dir: string;
let database: Database;
let registry: SqlRegistry;
let app: FastifyInstance;
const tokens: Record<string, string> = {};

/** A part of HttpDeps the roster routes never call. */
const unused = <T>(): T => ({}) as T;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'gw-roster-http-'));
  database = await createDatabase({ sqliteFile: 'r.sqlite' }, dir);
  await migrateToLatest(database.db);
  registry = new SqlRegistry(database, {
    knownModel: (m) => getModel(m) !== undefined,
    sessionSweepMs: 0,
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  await registry.start();
  await seedIfEmpty(registry, SAMPLE, { env: {} });
  await registry.ensureAdmin('admin-password-for-tests');
  // a grid leader of grid 01 only
  await registry.createStaff({
    username: 'gl.limin.01only',
    name: '林小红',
    phone: '+8613800000099',
    roles: ['grid_leader'],
    coverage: { gridIds: ['g-limin-01'] },
    password: 'a-long-password-1',
  });
  for (const id of ['st-admin', GW1, GW2, GL, DIR, 'st-gl.limin.01only', 'st-duty.heping']) {
    tokens[id] = (await registry.createSession(id, DAY)).token;
  }
  const config = loadConfig({ cwd: ROOT, env: { GRIDWATCH_DATA_DIR: dir, GRIDWATCH_DEMO: 'false' } });
  const deps: HttpDeps = {
    config,
    log: createLogger('silent'),
    registry,
    timeseries: unused(),
    deviceState: { get: () => undefined },
    metricsText: async () => ({ contentType: 'text/plain', body: '' }),
    readiness: [],
    warnings: () => [],
    models: { get: () => undefined, list: () => [] },
    alerts: unused(),
    rules: () => ({ timezone: config.timezone, rules: {} }),
    visits: unused(),
    cadenceDays: () => config.rules.visits.days,
    notifications: { list: async () => ({ items: [] }) },
    roster: new DutyRoster(database, systemClock, registry),
  };
  app = await buildHttpApp(deps);
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await registry?.stop();
  await database?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function api(method: 'GET' | 'POST' | 'DELETE', url: string, as?: string, body?: unknown) {
  const res = await app.inject({
    method,
    url,
    headers: as ? { authorization: `Bearer ${tokens[as]}` } : {},
    ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}),
  });
  return { status: res.statusCode, body: (res.body ? res.json() : undefined) as Json };
}

const to = () => new Date(Date.now() + DAY).toISOString();

describe('roster API', () => {
  it('needs a session', async () => {
    expect((await api('GET', '/api/v1/roster')).status).toBe(401);
  });

  it('lets an admin record an absence, lists it and deletes it', async () => {
    const created = await api('POST', '/api/v1/roster', 'st-admin', {
      staffId: GW1,
      substituteId: GW2,
      to: to(),
      role: 'grid_worker',
      note: '年假',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ staffId: GW1, substituteId: GW2, role: 'grid_worker', createdBy: 'st-admin' });
    const id = created.body.id as string;

    const active = await api('GET', `/api/v1/roster?activeAt=${Date.now()}`, GL);
    expect(active.status).toBe(200);
    expect(active.body.items.map((x: Json) => x.id)).toEqual([id]);
    const byStaff = await api('GET', `/api/v1/roster?staffId=${GW2}`, DIR);
    expect(byStaff.body.items).toEqual([]);

    const removed = await api('DELETE', `/api/v1/roster/${id}`, 'st-admin');
    expect(removed.status).toBe(200);
    expect(removed.body.id).toBe(id);
    expect((await api('DELETE', `/api/v1/roster/${id}`, 'st-admin')).status).toBe(404);
  });

  it('answers 400 for bad input and 404 for unknown staff, writing nothing', async () => {
    const before = (await api('GET', '/api/v1/roster', 'st-admin')).body.items.length;
    const bad = [
      { staffId: GW1, substituteId: GW1, to: to() },
      { staffId: GW1, substituteId: GW2, to: new Date(Date.now() + 100 * DAY).toISOString() },
      { staffId: GW1, substituteId: GW2, from: to(), to: new Date().toISOString() },
      { staffId: GW1, substituteId: GW2, to: 'soon' },
      { staffId: GW1, substituteId: GW2, to: to(), role: 'janitor' },
      { staffId: GW1, substituteId: GW2, to: to(), extra: 1 },
      { staffId: GW1, substituteId: 'st-admin', to: to() }, // no phone
    ];
    for (const body of bad) {
      const r = await api('POST', '/api/v1/roster', 'st-admin', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toBeTypeOf('string');
    }
    expect(
      (await api('POST', '/api/v1/roster', 'st-admin', { staffId: 'st-x', substituteId: GW2, to: to() })).status,
    ).toBe(404);
    expect((await api('GET', '/api/v1/roster', 'st-admin')).body.items).toHaveLength(before);
  });

  it('lets a grid leader manage only staff working within their grids', async () => {
    const narrow = 'st-gl.limin.01only';
    // GW2 works in grid 02: not theirs
    const r1 = await api('POST', '/api/v1/roster', narrow, { staffId: GW2, substituteId: GW1, to: to() });
    expect(r1.status).toBe(403);
    // the director covers the whole community: not theirs either
    expect((await api('POST', '/api/v1/roster', narrow, { staffId: DIR, substituteId: GW1, to: to() })).status).toBe(
      403,
    );
    // a grid outside theirs
    const r2 = await api('POST', '/api/v1/roster', narrow, {
      staffId: GW1,
      substituteId: GW2,
      to: to(),
      gridId: 'g-limin-02',
    });
    expect(r2.status).toBe(403);
    const ok = await api('POST', '/api/v1/roster', narrow, { staffId: GW1, substituteId: GW2, to: to() });
    expect(ok.status).toBe(201);

    // the leader of both grids may manage GW2; the narrow one may not delete an absence of GW2
    const wide = await api('POST', '/api/v1/roster', GL, { staffId: GW2, substituteId: GW1, to: to() });
    expect(wide.status).toBe(201);
    expect((await api('DELETE', `/api/v1/roster/${wide.body.id}`, narrow)).status).toBe(403);
    expect((await api('DELETE', `/api/v1/roster/${ok.body.id}`, narrow)).status).toBe(200);
    expect((await api('DELETE', `/api/v1/roster/${wide.body.id}`, DIR)).status).toBe(200);
  });

  it('shows other staff only the absences they are in, and lets them change nothing', async () => {
    const a = await api('POST', '/api/v1/roster', DIR, { staffId: GW1, substituteId: GL, to: to() });
    const b = await api('POST', '/api/v1/roster', DIR, { staffId: GL, substituteId: DIR, to: to() });
    expect([a.status, b.status]).toEqual([201, 201]);

    const mine = await api('GET', '/api/v1/roster', GW1);
    expect(mine.status).toBe(200);
    expect(mine.body.items.map((x: Json) => x.id)).toEqual([a.body.id]);
    expect((await api('GET', `/api/v1/roster?staffId=${GL}`, GW1)).status).toBe(403);
    expect((await api('GET', `/api/v1/roster?staffId=${GW1}`, GW1)).body.items).toHaveLength(1);
    expect((await api('GET', '/api/v1/roster', GW2)).body.items).toEqual([]);
    // the street duty officer sees everything
    const duty = await api('GET', '/api/v1/roster', 'st-duty.heping');
    expect(duty.body.items.map((x: Json) => x.id)).toEqual(expect.arrayContaining([a.body.id, b.body.id]));

    expect((await api('POST', '/api/v1/roster', GW1, { staffId: GW1, substituteId: GW2, to: to() })).status).toBe(403);
    expect((await api('DELETE', `/api/v1/roster/${a.body.id}`, GW1)).status).toBe(403);
    expect((await api('DELETE', `/api/v1/roster/${a.body.id}`, 'st-duty.heping')).status).toBe(403);
    expect((await api('GET', '/api/v1/roster?activeAt=tomorrow', DIR)).status).toBe(400);
  });

  it('appears in the OpenAPI document under the roster tag', async () => {
    const res = await app.inject({ method: 'GET', url: '/docs/json' });
    const doc = res.json() as Json;
    expect(doc.paths['/api/v1/roster'].get.tags).toEqual(['roster']);
    expect(doc.paths['/api/v1/roster'].post.tags).toEqual(['roster']);
    expect(doc.paths['/api/v1/roster/{id}'].delete.tags).toEqual(['roster']);
  });
});
