/**
 * The community statistics on both relational stores (SQLite and a real PostgreSQL): known alerts, devices and
 * households in, exact counts, medians and percentiles out, within the caller's scope, with days in the
 * community's time zone (also across a daylight-saving change).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../test/support/postgres.ts';
import { VirtualClock } from '../clock/clock.ts';
import { RegistryError, type Scope } from '../registry/port.ts';
import { createDatabase, type Database, type DeviceTable } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { AlertStatsService } from './stats.ts';

const ALL: Scope = { all: true, gridIds: [] };
const G2_ONLY: Scope = { all: false, gridIds: ['g2'] };
const NOBODY: Scope = { all: false, gridIds: [] };
const TZ = 'Asia/Shanghai';
const S = 1000;

/** Epoch ms of a local time in Shanghai (UTC+8, no daylight saving). */
const sh = (day: string, hhmm: string) => Date.parse(`2026-03-${day}T${hhmm}:00+08:00`);
// now: 10 March 2026, noon in Shanghai
const NOW = sh('10', '12:00');

interface A {
  id: string;
  type: string;
  severity?: 'critical' | 'major' | 'minor' | 'info';
  status: 'open' | 'acknowledged' | 'resolved' | 'cancelled';
  grid?: string;
  building?: string;
  firstSeen: number;
  ackAfterS?: number;
  outcome?: string;
  drill?: boolean;
}

const ALERTS: A[] = [
  {
    id: 'a1',
    type: 'sos',
    severity: 'critical',
    status: 'open',
    grid: 'g1',
    building: 'b1',
    firstSeen: sh('10', '08:00'),
  },
  // 23:50 local on the 9th
  {
    id: 'a2',
    type: 'fall',
    severity: 'major',
    status: 'acknowledged',
    grid: 'g1',
    building: 'b1',
    firstSeen: sh('09', '23:50'),
    ackAfterS: 60,
  },
  // 00:10 local on the 9th is still the 8th in UTC: counted on the 9th
  {
    id: 'a3',
    type: 'smoke',
    severity: 'critical',
    status: 'resolved',
    grid: 'g1',
    building: 'b2',
    firstSeen: sh('09', '00:10'),
    ackAfterS: 120,
    outcome: 'false_alarm_device',
  },
  // the first instant of the window
  {
    id: 'a4',
    type: 'sos',
    severity: 'critical',
    status: 'resolved',
    grid: 'g2',
    building: 'b3',
    firstSeen: sh('08', '00:00'),
    ackAfterS: 30,
    outcome: 'resident_fine',
  },
  // resolved by the rule itself: its outcome is the rule's reason
  {
    id: 'a5',
    type: 'inactivity',
    severity: 'minor',
    status: 'resolved',
    grid: 'g2',
    building: 'b3',
    firstSeen: sh('08', '12:00'),
    outcome: 'activity seen again',
  },
  {
    id: 'a6',
    type: 'fall',
    severity: 'major',
    status: 'cancelled',
    grid: 'g2',
    firstSeen: sh('10', '09:00'),
    outcome: 'cancelled by the wearer',
  },
  // a drill: left out of everything
  {
    id: 'a7',
    type: 'sos',
    severity: 'critical',
    status: 'open',
    grid: 'g1',
    building: 'b1',
    firstSeen: sh('10', '09:30'),
    ackAfterS: 5,
    drill: true,
  },
  // one second before the window
  {
    id: 'a8',
    type: 'sos',
    severity: 'critical',
    status: 'resolved',
    grid: 'g1',
    building: 'b1',
    firstSeen: sh('07', '23:59') + 59 * S,
    ackAfterS: 10,
    outcome: 'false_alarm_other',
  },
  // in a grid but no building
  { id: 'a9', type: 'water_low', severity: 'major', status: 'open', grid: 'g1', firstSeen: sh('10', '10:00') },
  // in no grid (a free-standing charging area): only community-wide roles count it
  { id: 'a10', type: 'charging_area_fire', severity: 'critical', status: 'open', firstSeen: sh('10', '11:00') },
  {
    id: 'a11',
    type: 'sos',
    severity: 'critical',
    status: 'acknowledged',
    grid: 'g2',
    building: 'b3',
    firstSeen: sh('09', '10:00'),
    ackAfterS: 90,
  },
];

describe.each(['sqlite', 'postgres'] as const)('alert statistics on %s', (kind) => {
  const clock = new VirtualClock(NOW);
  let dir: string;
  let pg: TestPostgres | undefined;
  let database: Database;
  let stats: AlertStatsService;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gw-stats-'));
    pg = kind === 'postgres' ? await startTestPostgres() : undefined;
    database = await createDatabase({ url: pg?.url, sqliteFile: 'stats.sqlite' }, dir);
    expect(database.dialect).toBe(kind);
    await migrateToLatest(database.db);
    const db = database.db;
    await db.insertInto('district').values({ id: 'd1', name: 'D' }).execute();
    await db.insertInto('street').values({ id: 's1', district_id: 'd1', name: 'S' }).execute();
    await db.insertInto('community').values({ id: 'c1', street_id: 's1', name: 'C' }).execute();
    await db
      .insertInto('grid')
      .values([
        { id: 'g1', community_id: 'c1', name: '第一网格' },
        { id: 'g2', community_id: 'c1', name: '第二网格' },
      ])
      .execute();
    await db
      .insertInto('building')
      .values([
        { id: 'b1', grid_id: 'g1', community_id: 'c1', name: '1号楼' },
        { id: 'b2', grid_id: 'g1', community_id: 'c1', name: '2号楼' },
        { id: 'b3', grid_id: 'g2', community_id: 'c1', name: '3号楼' },
      ])
      .execute();
    await db
      .insertInto('unit')
      .values([
        { id: 'u1', building_id: 'b1', name: '1单元' },
        { id: 'u2', building_id: 'b2', name: '1单元' },
        { id: 'u3', building_id: 'b3', name: '1单元' },
      ])
      .execute();
    await db
      .insertInto('charging_area')
      .values({ id: 'ca1', community_id: 'c1', building_id: null, name: '充电区' })
      .execute();
    const household = (id: string, unit: string, building: string, grid: string, room: string) => ({
      id,
      unit_id: unit,
      building_id: building,
      grid_id: grid,
      community_id: 'c1',
      room,
      address: `${building}-${room}`,
      colour: 'green' as const,
      lone_elderly: 0,
      at_risk: 0,
      created_at: 0,
    });
    await db
      .insertInto('household')
      .values([
        household('h1', 'u1', 'b1', 'g1', '101'),
        household('h2', 'u1', 'b1', 'g1', '102'),
        household('h3', 'u2', 'b2', 'g1', '101'),
        household('h4', 'u3', 'b3', 'g2', '101'),
      ])
      .execute();
    const device = (
      id: string,
      status: DeviceTable['status'],
      where: { household?: string; building?: string; grid?: string; area?: string },
      disabled = 0,
    ): DeviceTable => ({
      id,
      model: 'native-motion',
      install_kind: where.area ? 'area' : 'household',
      install_id: where.area ?? where.household ?? '',
      household_id: where.household ?? null,
      unit_id: null,
      building_id: where.building ?? null,
      area_id: where.area ?? null,
      grid_id: where.grid ?? null,
      community_id: 'c1',
      drill: 0,
      disabled,
      secret_hash: 'x',
      mosquitto_hash: null,
      status,
      last_seen: null,
      created_at: 0,
    });
    await db
      .insertInto('device')
      .values([
        device('d1', 'online', { household: 'h1', building: 'b1', grid: 'g1' }),
        device('d2', 'offline', { household: 'h2', building: 'b1', grid: 'g1' }),
        device('d3', 'offline', { household: 'h3', building: 'b2', grid: 'g1' }),
        device('d4', 'offline', { household: 'h3', building: 'b2', grid: 'g1' }, 1), // disabled: not counted
        device('d5', 'unknown', { household: 'h4', building: 'b3', grid: 'g2' }),
        device('d6', 'offline', { area: 'ca1' }),
      ])
      .execute();
    await insertAlerts(ALERTS);
    stats = new AlertStatsService(database, { clock, timezone: TZ });
  });

  afterAll(async () => {
    await database?.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function insertAlerts(list: A[]): Promise<void> {
    await database.db
      .insertInto('alert')
      .values(
        list.map((a) => ({
          id: a.id,
          type: a.type,
          category: 'resident_safety',
          severity: a.severity ?? 'major',
          status: a.status,
          key: `${a.type}|x:${a.id}`,
          household_id: null,
          unit_id: null,
          building_id: a.building ?? null,
          area_id: null,
          grid_id: a.grid ?? null,
          community_id: 'c1',
          device_id: null,
          colour: null,
          summary: 's',
          count: 1,
          first_seen: a.firstSeen,
          last_seen: a.firstSeen,
          not_before: null,
          drill: a.drill ? 1 : 0,
          evidence: '[]',
          resolved_at: a.status === 'resolved' || a.status === 'cancelled' ? a.firstSeen + 600 * S : null,
          outcome: a.outcome ?? null,
          acknowledged_at: a.ackAfterS === undefined ? null : a.firstSeen + a.ackAfterS * S,
          acknowledged_by: a.ackAfterS === undefined ? null : 'st-x',
          updated_at: a.firstSeen,
        })),
      )
      .execute();
  }

  const sev = (critical: number, major: number, minor = 0, info = 0) => ({
    critical,
    major,
    minor,
    info,
    total: critical + major + minor + info,
  });

  it('overview: per grid and building, open and acknowledged alerts by severity, devices, offline, households', async () => {
    const o = await stats.overview(ALL);
    expect(o.generatedAt).toBe(new Date(NOW).toISOString());
    expect(o.grids).toEqual([
      {
        gridId: 'g1',
        name: '第一网格',
        communityId: 'c1',
        households: 3,
        devices: 3,
        offlineDevices: 2,
        // a1, a2 and a9 (no building: counted for the grid only); the drill a7 and the resolved a3, a8 are not
        openAlerts: sev(1, 2),
        buildings: [
          { buildingId: 'b1', name: '1号楼', households: 2, devices: 2, offlineDevices: 1, openAlerts: sev(1, 1) },
          { buildingId: 'b2', name: '2号楼', households: 1, devices: 1, offlineDevices: 1, openAlerts: sev(0, 0) },
        ],
      },
      {
        gridId: 'g2',
        name: '第二网格',
        communityId: 'c1',
        households: 1,
        devices: 1,
        offlineDevices: 0,
        openAlerts: sev(1, 0),
        buildings: [
          { buildingId: 'b3', name: '3号楼', households: 1, devices: 1, offlineDevices: 0, openAlerts: sev(1, 0) },
        ],
      },
    ]);
    // the charging area's device and alert (no grid) count in the totals of a community-wide role
    expect(o.totals).toEqual({ households: 4, devices: 5, offlineDevices: 3, openAlerts: sev(3, 2) });
  });

  it('overview within a grid worker’s scope, for one grid, and for nobody', async () => {
    const g2 = await stats.overview(G2_ONLY);
    expect(g2.grids.map((g) => g.gridId)).toEqual(['g2']);
    expect(g2.totals).toEqual({ households: 1, devices: 1, offlineDevices: 0, openAlerts: sev(1, 0) });
    const onlyG1 = await stats.overview(ALL, { gridId: 'g1' });
    expect(onlyG1.grids.map((g) => g.gridId)).toEqual(['g1']);
    expect(onlyG1.totals).toEqual({ households: 3, devices: 3, offlineDevices: 2, openAlerts: sev(1, 2) });
    // a grid outside the scope gives nothing (the HTTP layer answers 403 before asking)
    expect((await stats.overview(G2_ONLY, { gridId: 'g1' })).grids).toEqual([]);
    const none = await stats.overview(NOBODY);
    expect(none.grids).toEqual([]);
    expect(none.totals.households).toBe(0);
  });

  it('alerts per local day and type, acknowledgement percentiles per grid, outcomes and false alarms', async () => {
    const s = await stats.alerts(ALL, { days: 3 });
    expect(s.timezone).toBe(TZ);
    expect(s.from).toBe('2026-03-07T16:00:00.000Z');
    expect(s.to).toBe('2026-03-10T16:00:00.000Z');
    expect(s.perDay).toEqual([
      { date: '2026-03-08', total: 2, byType: { sos: 1, inactivity: 1 } },
      { date: '2026-03-09', total: 3, byType: { smoke: 1, sos: 1, fall: 1 } },
      { date: '2026-03-10', total: 4, byType: { sos: 1, fall: 1, water_low: 1, charging_area_fire: 1 } },
    ]);
    expect(s.types).toEqual(['charging_area_fire', 'fall', 'inactivity', 'smoke', 'sos', 'water_low']);
    // g1: 60 s (a2), 120 s (a3); g2: 30 s (a4), 90 s (a11); the drill a7 and a8 before the window are left out
    expect(s.acknowledgement).toEqual({
      overall: { n: 4, medianS: 75, p90S: 111 },
      byGrid: [
        { gridId: 'g1', name: '第一网格', n: 2, medianS: 90, p90S: 114 },
        { gridId: 'g2', name: '第二网格', n: 2, medianS: 60, p90S: 84 },
      ],
    });
    expect(s.outcomes).toEqual({
      closed: 4,
      resolvedByStaff: 2,
      falseAlarms: 1,
      falseAlarmRate: 0.5,
      byOutcome: {
        resident_fine: 1,
        sent_to_hospital: 0,
        false_alarm_away: 0,
        false_alarm_device: 1,
        false_alarm_other: 0,
        handled_on_site: 0,
        other: 0,
        auto_cleared: 1,
        cancelled: 1,
      },
      byType: [
        { type: 'fall', closed: 1, resolvedByStaff: 0, falseAlarms: 0, falseAlarmRate: null },
        { type: 'inactivity', closed: 1, resolvedByStaff: 0, falseAlarms: 0, falseAlarmRate: null },
        { type: 'smoke', closed: 1, resolvedByStaff: 1, falseAlarms: 1, falseAlarmRate: 1 },
        { type: 'sos', closed: 1, resolvedByStaff: 1, falseAlarms: 0, falseAlarmRate: 0 },
      ],
    });
  });

  it('a longer window takes in the alert before it; one day is today only', async () => {
    const week = await stats.alerts(ALL, { days: 7 });
    expect(week.perDay.map((d) => d.date)).toEqual([
      '2026-03-04',
      '2026-03-05',
      '2026-03-06',
      '2026-03-07',
      '2026-03-08',
      '2026-03-09',
      '2026-03-10',
    ]);
    expect(week.perDay[3]).toEqual({ date: '2026-03-07', total: 1, byType: { sos: 1 } });
    expect(week.acknowledgement.overall).toEqual({ n: 5, medianS: 60, p90S: 108 });
    expect(week.outcomes.falseAlarms).toBe(2);
    const today = await stats.alerts(ALL, { days: 1 });
    expect(today.perDay).toEqual([
      { date: '2026-03-10', total: 4, byType: { sos: 1, fall: 1, water_low: 1, charging_area_fire: 1 } },
    ]);
    expect(today.acknowledgement.overall).toEqual({ n: 0, medianS: null, p90S: null });
  });

  it('alert statistics within a grid worker’s scope', async () => {
    const s = await stats.alerts(G2_ONLY, { days: 3 });
    expect(s.perDay.map((d) => d.total)).toEqual([2, 1, 1]);
    expect(s.acknowledgement).toEqual({
      overall: { n: 2, medianS: 60, p90S: 84 },
      byGrid: [{ gridId: 'g2', name: '第二网格', n: 2, medianS: 60, p90S: 84 }],
    });
    expect(s.outcomes).toMatchObject({ closed: 3, resolvedByStaff: 1, falseAlarms: 0, falseAlarmRate: 0 });
    const none = await stats.alerts(NOBODY, { days: 3 });
    expect(none.perDay.map((d) => d.total)).toEqual([0, 0, 0]);
    expect(none.acknowledgement.byGrid).toEqual([]);
  });

  it('refuses a window outside 1–366 days', async () => {
    for (const days of [0, 367, 1.5]) {
      await expect(stats.alerts(ALL, { days })).rejects.toBeInstanceOf(RegistryError);
    }
  });

  it('counts local days across a daylight-saving change (New York, 2 November 2025)', async () => {
    const ny = new AlertStatsService(database, {
      clock: new VirtualClock(Date.parse('2025-11-03T12:00:00-05:00')),
      timezone: 'America/New_York',
    });
    await insertAlerts([
      // 1 November 23:59 EDT: before the window
      { id: 'n1', type: 'sos', status: 'resolved', grid: 'g1', firstSeen: Date.parse('2025-11-01T23:59:00-04:00') },
      // 2 November 00:00 EDT: the first instant of the window
      { id: 'n2', type: 'sos', status: 'resolved', grid: 'g1', firstSeen: Date.parse('2025-11-02T00:00:00-04:00') },
      // 2 November 23:30 EST, already the 3rd in UTC
      { id: 'n3', type: 'fall', status: 'resolved', grid: 'g1', firstSeen: Date.parse('2025-11-02T23:30:00-05:00') },
      { id: 'n4', type: 'fall', status: 'resolved', grid: 'g1', firstSeen: Date.parse('2025-11-03T00:30:00-05:00') },
    ]);
    const s = await ny.alerts(ALL, { days: 2 });
    expect(s.from).toBe('2025-11-02T04:00:00.000Z');
    expect(s.to).toBe('2025-11-04T05:00:00.000Z');
    expect(s.perDay).toEqual([
      { date: '2025-11-02', total: 2, byType: { sos: 1, fall: 1 } },
      { date: '2025-11-03', total: 1, byType: { fall: 1 } },
    ]);
  });
});
