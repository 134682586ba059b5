/** Migration 009_drills and the drill store on both relational stores (SQLite, PostgreSQL). */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { createDatabase, type Database } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import type { Scenario } from './scenario.ts';
import { type DrillRecord, DrillStore } from './store.ts';

const scenario = {
  id: 'x',
  name: { zh: '测试', en: 'Test' },
  type: 'fire',
  description: { zh: '描述', en: 'Description' },
  scope: { buildingIds: ['b-1'] },
  participants: { roles: ['grid_worker'] },
  objectives: [],
  injects: [],
} as unknown as Scenario;

const drill = (id: string, startedAt: number, over: Partial<DrillRecord> = {}): DrillRecord => ({
  id,
  scenarioId: 'x',
  communityId: 'c-1',
  status: 'running',
  scenario,
  participants: [
    { staffId: 'st-a', username: 'a', name: 'A*', roles: ['grid_worker'], as: ['grid_worker'], named: false },
  ],
  gridIds: ['g-1'],
  state: {
    segments: [{ from: startedAt }],
    fired: {},
    due: { smoke: 60_000 },
    devices: ['drill-u-1-m'],
    lastInjectOf: {},
  },
  startedAt,
  startedBy: 'st-boss',
  updatedAt: startedAt,
  ...over,
});

describe.each(['sqlite', 'postgres'] as const)('DrillStore on %s', (kind) => {
  let dir: string;
  let pg: TestPostgres | undefined;
  let database: Database;
  let store: DrillStore;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-drills-'));
    pg = kind === 'postgres' ? await startTestPostgres() : undefined;
    database = await createDatabase({ url: pg?.url, sqliteFile: 'd.sqlite' }, dir);
    await migrateToLatest(database.db);
    store = new DrillStore(database);
  });
  afterAll(async () => {
    await database?.close();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a drill with its frozen scenario and run state; lists per community, newest first, in pages', async () => {
    await store.insert(drill('d1', 1000));
    await store.insert(drill('d2', 2000, { status: 'ended', endedAt: 3000, endedBy: 'st-boss' }));
    await store.insert(drill('d3', 3000, { communityId: 'c-2' }));
    const d1 = (await store.get('d1'))!;
    expect(d1).toMatchObject({ status: 'running', scenario: { id: 'x' }, state: { due: { smoke: 60_000 } } });
    d1.status = 'paused';
    d1.state.segments[0]!.to = 1500;
    await store.save(d1);
    expect((await store.get('d1'))!.state.segments).toEqual([{ from: 1000, to: 1500 }]);
    expect((await store.active()).map((x) => x.id).sort()).toEqual(['d1', 'd3']);
    const first = await store.list({ communityId: 'c-1' }, { limit: 1 });
    expect(first.items.map((x) => x.id)).toEqual(['d2']);
    const second = await store.list({ communityId: 'c-1' }, { limit: 1, cursor: first.nextCursor });
    expect(second.items.map((x) => x.id)).toEqual(['d1']);
    expect(second.nextCursor).toBeUndefined();
    expect((await store.list({ status: 'ended' }, {})).items.map((x) => x.id)).toEqual(['d2']);
  });

  it('an ordered event log, tasks done once, one rating per objective, alerts linked once', async () => {
    const seqs = await Promise.all([1, 2, 3, 4].map((i) => store.event('d1', { ts: i, kind: 'k', data: { i } })));
    expect(seqs.map((e) => e.seq).sort()).toEqual([1, 2, 3, 4]);
    expect((await store.events('d1')).map((e) => e.seq)).toEqual([1, 2, 3, 4]);

    await store.issueTask('d1', 't1', 10, { households: [{ id: 'h-1', address: 'x', colour: 'red' }], places: [] });
    await store.issueTask('d1', 't1', 99, { households: [], places: [] }); // a replay keeps the first
    expect(await store.taskDone('d1', 'nope', 20, 'st-a')).toBe(false);
    expect(await store.taskDone('d1', 't1', 20, 'st-a', 'ok')).toBe(true);
    expect(await store.taskDone('d1', 't1', 30, 'st-b')).toBe(false);
    expect(await store.tasks('d1')).toEqual([
      {
        taskId: 't1',
        status: 'done',
        issuedAt: 10,
        doneAt: 20,
        doneBy: 'st-a',
        note: 'ok',
        targets: { households: [{ id: 'h-1', address: 'x', colour: 'red' }], places: [] },
      },
    ]);

    await store.rate('d1', { objectiveId: 'o1', rating: 'M', by: 'st-e', ts: 1 });
    await store.rate('d1', { objectiveId: 'o1', rating: 'S', note: 'better', by: 'st-e', ts: 2 });
    expect(await store.ratings('d1')).toEqual([{ objectiveId: 'o1', rating: 'S', note: 'better', by: 'st-e', ts: 2 }]);

    expect(await store.linkAlert('d1', 'a1', 'smoke', 5)).toBe(true);
    expect(await store.linkAlert('d1', 'a1', 'smoke', 6)).toBe(false);
    expect(await store.alerts('d1')).toEqual([{ alertId: 'a1', injectId: 'smoke', linkedAt: 5 }]);

    await store.addNote('d1', 7, 'st-e', '备注');
    expect((await store.notes('d1')).map((n) => n.text)).toEqual(['备注']);
  });
});
