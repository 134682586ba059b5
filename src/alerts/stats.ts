/**
 * Statistics for the community overview (the 接诉即办 KPIs of issue 5), over the relational store, for SQLite and
 * PostgreSQL alike, always within the caller's scope (a grid worker counts only their grids).
 *
 * - overview: per grid and per building, the active alerts (open + acknowledged) by severity, the devices and how
 *   many of them are offline, and the households. Grouped counts in SQL (one query per table).
 * - alerts over the last N local days (the community's time zone):
 *   - alerts opened per day and type: SQL groups by type and quarter hour (`first_seen / 900000`, integer division
 *     in both databases), code maps each quarter hour to its local day. Zone offsets only change on quarter-hour
 *     boundaries, so a quarter hour never straddles two local days, and the rows stay bounded (types × quarter
 *     hours that had alerts) however many alerts there were;
 *   - acknowledgement times per grid (median and 90th percentile, in seconds): acknowledged_at − first_seen of the
 *     alerts opened in the window that someone acknowledged, percentiles in code (SQLite has no percentile
 *     function), interpolated linearly between the closest ranks like PostgreSQL's percentile_cont;
 *   - how alerts were closed: staff outcomes (OUTCOMES), `auto_cleared` (resolved by the rule itself when the
 *     condition cleared) and `cancelled`, with the false alarms (outcomes starting with `false_alarm`) per type.
 *
 * Drill alerts are left out of every figure: they are exercises, not the community's record.
 */
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Clock } from '../clock/clock.ts';
import { RegistryError, type Scope } from '../registry/port.ts';
import { localTime, zoneOffset } from '../rules/time.ts';
import type { Database, DB } from '../store/db.ts';
import { OUTCOMES } from './service.ts';
import { SEVERITIES, type Severity } from './types.ts';

const DAY_MS = 86_400_000;
/** Quarter hours: the granularity of the per-day grouping in SQL (see above). */
const BUCKET_MS = 900_000;
export const MAX_STATS_DAYS = 366;

export type SeverityCounts = Record<Severity, number> & { total: number };

export interface PlaceFigures {
  households: number;
  /** devices in service (not disabled) */
  devices: number;
  offlineDevices: number;
  /** open and acknowledged alerts */
  openAlerts: SeverityCounts;
}

export interface BuildingOverview extends PlaceFigures {
  buildingId: string;
  name: string;
}

export interface GridOverview extends PlaceFigures {
  gridId: string;
  name: string;
  communityId: string;
  buildings: BuildingOverview[];
}

export interface OverviewStats {
  generatedAt: string;
  /** everything in scope, including what is placed in no grid (seen only by community-wide roles) */
  totals: PlaceFigures;
  grids: GridOverview[];
}

export interface Percentiles {
  /** how many acknowledged alerts */
  n: number;
  /** seconds; null when n is 0 */
  medianS: number | null;
  p90S: number | null;
}

export interface DayCounts {
  /** local calendar day, YYYY-MM-DD */
  date: string;
  total: number;
  /** alert type → alerts opened that day (types without alerts that day are absent) */
  byType: Record<string, number>;
}

export const CLOSED_KINDS = [...OUTCOMES, 'auto_cleared', 'cancelled'] as const;
export type ClosedKind = (typeof CLOSED_KINDS)[number];

export interface TypeOutcomes {
  type: string;
  /** resolved or cancelled */
  closed: number;
  /** resolved by staff with an outcome */
  resolvedByStaff: number;
  falseAlarms: number;
  /** falseAlarms / resolvedByStaff; null when nothing was resolved by staff */
  falseAlarmRate: number | null;
}

export interface AlertStats {
  timezone: string;
  days: number;
  /** start of the first local day (ISO-8601), inclusive */
  from: string;
  /** end of today, local (ISO-8601), exclusive */
  to: string;
  /** every alert type counted in perDay, sorted */
  types: string[];
  /** one entry per local day, oldest first, days without alerts included */
  perDay: DayCounts[];
  acknowledgement: {
    overall: Percentiles;
    byGrid: Array<Percentiles & { gridId: string; name: string }>;
  };
  outcomes: {
    closed: number;
    resolvedByStaff: number;
    falseAlarms: number;
    falseAlarmRate: number | null;
    byOutcome: Record<ClosedKind, number>;
    byType: TypeOutcomes[];
  };
}

export interface StatsFilter {
  /** only this grid (the caller checks it is in scope) */
  gridId?: string;
}

export interface AlertStatsOptions {
  clock: Clock;
  /** IANA zone of the community's calendar days */
  timezone: string | (() => string);
}

function emptySeverities(): SeverityCounts {
  return { critical: 0, major: 0, minor: 0, info: 0, total: 0 };
}

function emptyFigures(): PlaceFigures {
  return { households: 0, devices: 0, offlineDevices: 0, openAlerts: emptySeverities() };
}

/** Linear interpolation between the closest ranks (PostgreSQL's percentile_cont); `sorted` ascending, non-empty. */
export function percentile(sorted: readonly number[], p: number): number {
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { n: 0, medianS: null, p90S: null };
  values.sort((x, y) => x - y);
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return { n: values.length, medianS: r(percentile(values, 0.5)), p90S: r(percentile(values, 0.9)) };
}

function rate(part: number, whole: number): number | null {
  return whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000;
}

/**
 * The epoch ms at which local day `day` (days since 1970-01-01, local) begins, with the zone's offset AT that
 * midnight (on a daylight-saving day the offset at noon differs, see the New York test).
 */
export function startOfLocalDay(day: number, timeZone: string): number {
  const wall = day * DAY_MS;
  const guess = wall - zoneOffset(wall, timeZone);
  return wall - zoneOffset(guess, timeZone);
}

function isoDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

export class AlertStatsService {
  constructor(
    private readonly database: Database,
    private readonly opts: AlertStatsOptions,
  ) {}

  private get db(): Kysely<DB> {
    return this.database.db;
  }

  private get timezone(): string {
    const tz = this.opts.timezone;
    return typeof tz === 'function' ? tz() : tz;
  }

  /** The grid ids a query is limited to, or undefined for "every grid and what is in none". */
  private gridLimit(scope: Scope, filter: StatsFilter): readonly string[] | undefined {
    if (filter.gridId !== undefined) {
      return scope.all || scope.gridIds.includes(filter.gridId) ? [filter.gridId] : [];
    }
    return scope.all ? undefined : scope.gridIds;
  }

  async overview(scope: Scope, filter: StatsFilter = {}): Promise<OverviewStats> {
    const generatedAt = new Date(this.opts.clock.now()).toISOString();
    const limit = this.gridLimit(scope, filter);
    if (limit !== undefined && limit.length === 0) return { generatedAt, totals: emptyFigures(), grids: [] };
    const inGrids = limit === undefined ? undefined : [...limit];

    const [grids, buildings, households, devices, alerts] = await Promise.all([
      this.db
        .selectFrom('grid')
        .select(['id', 'name', 'community_id'])
        .$if(inGrids !== undefined, (q) => q.where('id', 'in', inGrids!))
        .orderBy('id')
        .execute(),
      this.db
        .selectFrom('building')
        .select(['id', 'name', 'grid_id'])
        .$if(inGrids !== undefined, (q) => q.where('grid_id', 'in', inGrids!))
        .orderBy('id')
        .execute(),
      this.db
        .selectFrom('household')
        .select((eb) => ['grid_id', 'building_id', eb.fn.countAll<number>().as('n')])
        .$if(inGrids !== undefined, (q) => q.where('grid_id', 'in', inGrids!))
        .groupBy(['grid_id', 'building_id'])
        .execute(),
      this.db
        .selectFrom('device')
        .select([
          'grid_id',
          'building_id',
          sql<number>`count(*)`.as('n'),
          sql<number>`sum(case when status = 'offline' then 1 else 0 end)`.as('offline'),
        ])
        .where('disabled', '=', 0)
        .$if(inGrids !== undefined, (q) => q.where('grid_id', 'in', inGrids!))
        .groupBy(['grid_id', 'building_id'])
        .execute(),
      this.db
        .selectFrom('alert')
        .select((eb) => ['grid_id', 'building_id', 'severity', eb.fn.countAll<number>().as('n')])
        .where('status', 'in', ['open', 'acknowledged'])
        .where('drill', '=', 0)
        .$if(inGrids !== undefined, (q) => q.where('grid_id', 'in', inGrids!))
        .groupBy(['grid_id', 'building_id', 'severity'])
        .execute(),
    ]);

    const totals = emptyFigures();
    const gridFigures = new Map<string, GridOverview>();
    for (const g of grids) {
      gridFigures.set(g.id, {
        gridId: g.id,
        name: g.name,
        communityId: g.community_id,
        ...emptyFigures(),
        buildings: [],
      });
    }
    const buildingFigures = new Map<string, BuildingOverview>();
    for (const b of buildings) {
      const f: BuildingOverview = { buildingId: b.id, name: b.name, ...emptyFigures() };
      buildingFigures.set(b.id, f);
      gridFigures.get(b.grid_id)?.buildings.push(f);
    }
    /** Adds to the totals, the grid and the building of a grouped row. */
    const add = (gridId: string | null, buildingId: string | null, fn: (f: PlaceFigures) => void) => {
      fn(totals);
      const g = gridId === null ? undefined : gridFigures.get(gridId);
      if (g) fn(g);
      const b = buildingId === null ? undefined : buildingFigures.get(buildingId);
      // a building counts only under its own grid (placement columns are copied, so they always agree)
      if (b && g) fn(b);
    };
    for (const r of households) {
      const n = Number(r.n);
      add(r.grid_id, r.building_id, (f) => {
        f.households += n;
      });
    }
    for (const r of devices) {
      const n = Number(r.n);
      const offline = Number(r.offline ?? 0);
      add(r.grid_id, r.building_id, (f) => {
        f.devices += n;
        f.offlineDevices += offline;
      });
    }
    for (const r of alerts) {
      const n = Number(r.n);
      const severity = r.severity as Severity;
      if (!SEVERITIES.includes(severity)) continue;
      add(r.grid_id, r.building_id, (f) => {
        f.openAlerts[severity] += n;
        f.openAlerts.total += n;
      });
    }
    return { generatedAt, totals, grids: [...gridFigures.values()] };
  }

  async alerts(scope: Scope, opts: StatsFilter & { days: number }): Promise<AlertStats> {
    const { days } = opts;
    if (!Number.isInteger(days) || days < 1 || days > MAX_STATS_DAYS) {
      throw new RegistryError('invalid', `days: must be an integer from 1 to ${MAX_STATS_DAYS}`, [
        { field: 'days', message: `must be an integer from 1 to ${MAX_STATS_DAYS}` },
      ]);
    }
    const tz = this.timezone;
    const now = this.opts.clock.now();
    const today = localTime(now, tz);
    const firstDay = today.day - (days - 1);
    const from = startOfLocalDay(firstDay, tz);
    // the end of today (exclusive): the window is exactly the listed local days
    const until = startOfLocalDay(today.day + 1, tz);

    const perDay: DayCounts[] = [];
    for (let d = firstDay; d <= today.day; d++) perDay.push({ date: isoDay(d), total: 0, byType: {} });
    const limit = this.gridLimit(scope, opts);
    const gridRows =
      limit !== undefined && limit.length === 0
        ? []
        : await this.db
            .selectFrom('grid')
            .select(['id', 'name'])
            .$if(limit !== undefined, (q) => q.where('id', 'in', [...limit!]))
            .orderBy('id')
            .execute();
    const result: AlertStats = {
      timezone: tz,
      days,
      from: new Date(from).toISOString(),
      to: new Date(until).toISOString(),
      types: [],
      perDay,
      acknowledgement: { overall: percentiles([]), byGrid: [] },
      outcomes: {
        closed: 0,
        resolvedByStaff: 0,
        falseAlarms: 0,
        falseAlarmRate: null,
        byOutcome: Object.fromEntries(CLOSED_KINDS.map((k) => [k, 0])) as Record<ClosedKind, number>,
        byType: [],
      },
    };
    if (limit !== undefined && limit.length === 0) return result;
    const inGrids = limit === undefined ? undefined : [...limit];

    // the alerts of the window, in scope, drills left out
    const base = () =>
      this.db
        .selectFrom('alert')
        .where('first_seen', '>=', from)
        .where('first_seen', '<', until)
        .where('drill', '=', 0)
        .$if(inGrids !== undefined, (q) => q.where('grid_id', 'in', inGrids!));

    const [opened, acked, closed] = await Promise.all([
      base()
        // literal divisor (no bind parameter), so that the select and GROUP BY expressions are the same text
        .select(['type', sql<number>`first_seen / 900000`.as('bucket'), sql<number>`count(*)`.as('n')])
        .groupBy(['type', sql`first_seen / 900000`])
        .execute(),
      base().select(['grid_id', 'first_seen', 'acknowledged_at']).where('acknowledged_at', 'is not', null).execute(),
      base()
        .select(['type', 'status', 'outcome', sql<number>`count(*)`.as('n')])
        .where('status', 'in', ['resolved', 'cancelled'])
        .groupBy(['type', 'status', 'outcome'])
        .execute(),
    ]);

    // per day and type
    const types = new Set<string>();
    for (const r of opened) {
      const day = localTime(Number(r.bucket) * BUCKET_MS, tz).day;
      const entry = perDay[day - firstDay];
      if (!entry) continue; // cannot happen: the window is exactly these days
      const n = Number(r.n);
      entry.total += n;
      entry.byType[r.type] = (entry.byType[r.type] ?? 0) + n;
      types.add(r.type);
    }
    result.types = [...types].sort();

    // acknowledgement times
    const all: number[] = [];
    const byGrid = new Map<string, number[]>(gridRows.map((g) => [g.id, []]));
    for (const r of acked) {
      const s = Math.max(0, (Number(r.acknowledged_at) - Number(r.first_seen)) / 1000);
      all.push(s);
      if (r.grid_id !== null) byGrid.get(r.grid_id)?.push(s);
    }
    result.acknowledgement = {
      overall: percentiles(all),
      byGrid: gridRows.map((g) => ({ gridId: g.id, name: g.name, ...percentiles(byGrid.get(g.id) ?? []) })),
    };

    // outcomes
    const perType = new Map<string, TypeOutcomes>();
    const o = result.outcomes;
    for (const r of closed) {
      const n = Number(r.n);
      const kind: ClosedKind =
        r.status === 'cancelled'
          ? 'cancelled'
          : r.outcome !== null && (OUTCOMES as readonly string[]).includes(r.outcome)
            ? (r.outcome as ClosedKind)
            : 'auto_cleared';
      const byStaff = kind !== 'cancelled' && kind !== 'auto_cleared';
      const falseAlarm = kind.startsWith('false_alarm');
      let t = perType.get(r.type);
      if (!t) {
        t = { type: r.type, closed: 0, resolvedByStaff: 0, falseAlarms: 0, falseAlarmRate: null };
        perType.set(r.type, t);
      }
      o.byOutcome[kind] += n;
      o.closed += n;
      t.closed += n;
      if (byStaff) {
        o.resolvedByStaff += n;
        t.resolvedByStaff += n;
      }
      if (falseAlarm) {
        o.falseAlarms += n;
        t.falseAlarms += n;
      }
    }
    o.falseAlarmRate = rate(o.falseAlarms, o.resolvedByStaff);
    o.byType = [...perType.values()]
      .map((t) => ({ ...t, falseAlarmRate: rate(t.falseAlarms, t.resolvedByStaff) }))
      .sort((a, b) => a.type.localeCompare(b.type));
    return result;
  }
}
