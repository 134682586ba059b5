/**
 * Home visits (五色五访) and away periods. A household's colour class sets how often it must be visited; visits are
 * recorded by staff (or by resolving an alert on site), and staff can mark a household away for a while (visiting
 * family, in hospital) so that the home rules do not alarm on an empty flat. Both live in the relational store.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock/clock.ts';
import type { Database } from '../store/db.ts';
import { RegistryError } from '../registry/port.ts';
import type { Colour } from '../registry/types.ts';

export const VISIT_OUTCOMES = ['ok', 'needs_follow_up', 'not_home', 'referred', 'other'] as const;
export type VisitOutcome = (typeof VISIT_OUTCOMES)[number];

export interface VisitTable {
  id: string;
  household_id: string;
  staff_id: string;
  ts: number;
  outcome: string;
  notes: string | null;
  alert_id: string | null;
  created_at: number;
}

export interface AwayTable {
  id: string;
  household_id: string;
  from_ts: number;
  until_ts: number;
  reason: string;
  created_by: string;
  created_at: number;
  ended_at: number | null;
}

export interface VisitDB {
  visit: VisitTable;
  away_period: AwayTable;
  household: { id: string; colour: string; grid_id: string };
}

export interface Visit {
  id: string;
  householdId: string;
  staffId: string;
  /** ISO-8601 */
  ts: string;
  outcome: VisitOutcome;
  notes?: string;
  alertId?: string;
}

export interface AwayPeriod {
  id: string;
  householdId: string;
  from: string;
  until: string;
  reason: string;
  createdBy: string;
  ended?: string;
}

export interface OverdueHousehold {
  householdId: string;
  colour: Colour;
  gridId: string;
  lastVisit?: string;
  /** when the next visit was due, ISO-8601 */
  dueAt: string;
  overdueDays: number;
}

const DAY = 86_400_000;
/** Away periods are for days or weeks, not for ever: a forgotten one must not silence a home for good. */
const MAX_AWAY_MS = 90 * DAY;

export class VisitsService {
  private readonly db: Kysely<VisitDB>;

  constructor(
    database: Database,
    private readonly clock: Clock,
    private readonly onChange: (change: { kind: 'visit' | 'away'; householdId: string }) => void = () => {},
  ) {
    // the visit tables are declared here rather than in the shared DB type: only this module touches them
    this.db = database.db as unknown as Kysely<VisitDB>;
  }

  async recordVisit(
    householdId: string,
    staffId: string,
    input: { ts?: number; outcome: VisitOutcome; notes?: string; alertId?: string },
  ): Promise<Visit> {
    await this.requireHousehold(householdId);
    const now = this.clock.now();
    const ts = input.ts ?? now;
    if (ts > now + 5 * 60_000) throw new RegistryError('invalid', 'a visit cannot be in the future');
    const row: VisitTable = {
      id: randomUUID(),
      household_id: householdId,
      staff_id: staffId,
      ts,
      outcome: input.outcome,
      notes: input.notes ?? null,
      alert_id: input.alertId ?? null,
      created_at: now,
    };
    await this.db.insertInto('visit').values(row).execute();
    this.onChange({ kind: 'visit', householdId });
    return toVisit(row);
  }

  async visits(householdId: string, limit = 50): Promise<Visit[]> {
    const rows = await this.db
      .selectFrom('visit')
      .selectAll()
      .where('household_id', '=', householdId)
      .orderBy('ts', 'desc')
      .limit(limit)
      .execute();
    return rows.map(toVisit);
  }

  /** Households whose next visit by their colour's cadence is due before `now`, most overdue first. */
  async overdue(cadenceDays: Record<Colour, number>, gridIds?: readonly string[]): Promise<OverdueHousehold[]> {
    const now = this.clock.now();
    let q = this.db
      .selectFrom('household')
      .leftJoin('visit', 'visit.household_id', 'household.id')
      .select((eb) => [
        'household.id as id',
        'household.colour as colour',
        'household.grid_id as grid_id',
        eb.fn.max('visit.ts').as('last'),
      ])
      .groupBy(['household.id', 'household.colour', 'household.grid_id']);
    if (gridIds)
      q =
        gridIds.length === 0
          ? q.where('household.grid_id', '=', '\u0000none')
          : q.where('household.grid_id', 'in', gridIds);
    const rows = await q.execute();
    const out: OverdueHousehold[] = [];
    for (const r of rows) {
      const colour = r.colour as Colour;
      const last = r.last === null || r.last === undefined ? undefined : Number(r.last);
      // never visited (as far as the records go): a whole cadence overdue, so a red household nobody has recorded a
      // visit to is flagged at the first morning check rather than never
      const due = last === undefined ? now - cadenceDays[colour] * DAY : last + cadenceDays[colour] * DAY;
      if (due > now) continue;
      out.push({
        householdId: r.id,
        colour,
        gridId: r.grid_id,
        lastVisit: last === undefined ? undefined : new Date(last).toISOString(),
        dueAt: new Date(due).toISOString(),
        overdueDays: Math.round(((now - due) / DAY) * 10) / 10,
      });
    }
    return out.sort((a, b) => b.overdueDays - a.overdueDays);
  }

  async setAway(
    householdId: string,
    staffId: string,
    input: { from?: number; until: number; reason: string },
  ): Promise<AwayPeriod> {
    await this.requireHousehold(householdId);
    const now = this.clock.now();
    const from = input.from ?? now;
    if (input.until <= from) throw new RegistryError('invalid', 'until must be after from');
    if (input.until - from > MAX_AWAY_MS) throw new RegistryError('invalid', 'an away period may last at most 90 days');
    if (input.until <= now) throw new RegistryError('invalid', 'the away period has already ended');
    const row: AwayTable = {
      id: randomUUID(),
      household_id: householdId,
      from_ts: from,
      until_ts: input.until,
      reason: input.reason,
      created_by: staffId,
      created_at: now,
      ended_at: null,
    };
    await this.db.insertInto('away_period').values(row).execute();
    this.onChange({ kind: 'away', householdId });
    return toAway(row);
  }

  async endAway(householdId: string, awayId: string): Promise<AwayPeriod> {
    const now = this.clock.now();
    const row = await this.db
      .selectFrom('away_period')
      .selectAll()
      .where('id', '=', awayId)
      .where('household_id', '=', householdId)
      .executeTakeFirst();
    if (!row) throw new RegistryError('not_found', `no away period ${awayId} for household ${householdId}`);
    if (row.ended_at === null) {
      await this.db.updateTable('away_period').set({ ended_at: now }).where('id', '=', awayId).execute();
      row.ended_at = now;
      this.onChange({ kind: 'away', householdId });
    }
    return toAway(row);
  }

  async awayPeriods(householdId: string): Promise<AwayPeriod[]> {
    const rows = await this.db
      .selectFrom('away_period')
      .selectAll()
      .where('household_id', '=', householdId)
      .orderBy('from_ts', 'desc')
      .limit(50)
      .execute();
    return rows.map(toAway);
  }

  /** Away periods in force now or later, per household: what the rules need. */
  async activeAway(): Promise<Map<string, { from: number; until: number }[]>> {
    const now = this.clock.now();
    const rows = await this.db
      .selectFrom('away_period')
      .select(['household_id', 'from_ts', 'until_ts'])
      .where('until_ts', '>', now)
      .where('ended_at', 'is', null)
      .execute();
    const out = new Map<string, { from: number; until: number }[]>();
    for (const r of rows) {
      const list = out.get(r.household_id) ?? [];
      list.push({ from: Number(r.from_ts), until: Number(r.until_ts) });
      out.set(r.household_id, list);
    }
    return out;
  }

  private async requireHousehold(id: string): Promise<void> {
    const h = await this.db.selectFrom('household').select('id').where('id', '=', id).executeTakeFirst();
    if (!h) throw new RegistryError('not_found', `no household ${id}`);
  }
}

function toVisit(r: VisitTable): Visit {
  return {
    id: r.id,
    householdId: r.household_id,
    staffId: r.staff_id,
    ts: new Date(Number(r.ts)).toISOString(),
    outcome: r.outcome as VisitOutcome,
    notes: r.notes ?? undefined,
    alertId: r.alert_id ?? undefined,
  };
}

function toAway(r: AwayTable): AwayPeriod {
  return {
    id: r.id,
    householdId: r.household_id,
    from: new Date(Number(r.from_ts)).toISOString(),
    until: new Date(Number(r.until_ts)).toISOString(),
    reason: r.reason,
    createdBy: r.created_by,
    ended: r.ended_at === null ? undefined : new Date(Number(r.ended_at)).toISOString(),
  };
}
