/**
 * Emergency supplies (issue 7): the three-level reserve (community – street – district), stock as lots, the
 * append-only ledger of movements, minimum levels by population, alerts, mutual aid between depots.
 *
 * - Depots are configuration (config/supplies/depots.yaml), synced into `supply_depot` at start so that lots and
 *   movements have something to belong to; the registry supplies the hierarchy and the population served.
 * - Every change is one write transaction (SupplyStore.write): validation first, then the lots locked and changed with
 *   conditional updates, then the movements appended. Bad input or too little stock throws before anything is
 *   written, or rolls the whole transaction back: there is never a partial change.
 * - After a change: the alerts of the items concerned are evaluated (below minimum; per lot expiring / expired /
 *   inspection overdue) and a live `stock` message goes to the consoles. Neither can undo the change. A Clock timer
 *   re-evaluates every depot daily (expiry and inspection move with the calendar, not with movements).
 * - Alerts go through the alerting engine with category `supplies`. Their key is per depot and item (below minimum)
 *   or per lot; they are keyed on the alert's `area` (`supplies/<depotId>/<itemId>[/<lotId>]`) because the alert
 *   model has no depot place; the subject's community is the depot's.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { AlertInput, Severity } from '../alerts/types.ts';
import type { Cancel, Clock } from '../clock/clock.ts';
import type { Module } from '../lifecycle/module.ts';
import { type Logger, maskName } from '../logger.ts';
import { type HierarchyNode, type Page, type PageOpts, RegistryError, type Staff } from '../registry/port.ts';
import { encodeCursor, isUniqueViolation, pageArgs } from '../registry/registry.ts';
import type { Role } from '../registry/types.ts';
import { generateSecret } from '../registry/secrets.ts';
import type { Database, DB } from '../store/db.ts';
import { type Agreement, type Item, type Level, quotaMinimum, type SupplyConfig } from './config.ts';
import { addDays, addMonths, dayOf, daysBetween, isDate, monthOf } from './dates.ts';
import type {
  DepotAlert,
  LotView,
  MovementView,
  OpResult,
  StockChange,
  StockEventBody,
  StockLevel,
  TransferLot,
  TransferView,
} from './schemas.ts';
import {
  CONDITIONS,
  type Condition,
  MOVEMENT_KINDS,
  type MovementKind,
  SupplyStore,
  type SupplyLotTable,
  type SupplyMovementTable,
  type SupplyQ,
  type SupplyTransferTable,
  TRANSFER_STATUSES,
  type TransferStatus,
} from './store.ts';

export const MAX_QUANTITY = 1_000_000;
export const MAX_TEXT = 500;
export const ISSUE_TO = ['drill', 'incident', 'person', 'other'] as const;
export type IssueTo = (typeof ISSUE_TO)[number];
export const DISPOSE_REASONS = ['expired', 'damaged', 'faulty', 'other'] as const;
export type DisposeReason = (typeof DISPOSE_REASONS)[number];

/** Alert types raised by the supply checks (category `supplies`). */
export const SUPPLY_ALERT_TYPES = {
  belowMinimum: 'supplies_below_minimum',
  expiring: 'supplies_expiring',
  expired: 'supplies_expired',
  inspectionOverdue: 'supplies_inspection_overdue',
} as const;

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, major: 1, minor: 2, info: 3 };

/** A depot as configured and resolved against the registry. */
export interface DepotInfo {
  id: string;
  name: { zh: string; en: string };
  level: Level;
  communityId?: string;
  communityName?: { zh: string; en: string };
  streetId?: string;
  districtId?: string;
  inRegistry: boolean;
  address: string;
  keeperUsername?: string;
  keeper?: { id: string; username: string; name: string };
  population: number;
  populationSource: 'config' | 'registry';
  agreements: Agreement[];
  /** the grids under the depot (its community's, street's or district's): whose consoles hear of its stock */
  gridIds: string[];
}

/** What the service needs of the registry. */
export interface SupplyRegistry {
  listNodes(level: HierarchyNode['level'], parentId?: string): Promise<HierarchyNode[]>;
  listStaff(page: PageOpts): Promise<Page<Staff>>;
  createStaff(input: {
    username: string;
    name: string;
    phone: string;
    roles: Role[];
    password: string;
  }): Promise<Staff>;
}

/** What the service needs of the alerting engine (AlertService). */
export interface SupplyAlertSink {
  raise(input: AlertInput): Promise<unknown>;
  clear(key: string, reason: string, ts: number): Promise<unknown>;
}

/** Where live stock changes go (the ConsoleHub). */
export interface StockLive {
  stockChanged(ev: StockEventBody, gridIds: readonly string[]): void;
}

export interface SupplySettings {
  /** how often every depot is re-checked (expiry, inspection); default daily */
  checkEveryMinutes: number;
  expiringInfoDays: number;
  expiringMinorDays: number;
  /** demo: create the sample keepers and give new depots their opening stock */
  sample: boolean;
}

export interface SupplyDeps {
  database: Database;
  registry: SupplyRegistry;
  alerts?: SupplyAlertSink;
  live?: StockLive;
  clock: Clock;
  logger: Logger;
  config: SupplyConfig;
  settings: SupplySettings;
  /** the community's time zone: days (received, expiry) are counted in it */
  timezone: string;
}

export interface ReceiveInput {
  depotId: string;
  itemId: string;
  quantity: number;
  /** default today */
  receivedOn?: string;
  /** default: receivedOn + the item's shelf life, when it has one */
  expiresOn?: string;
  condition?: Condition;
  lastInspectedOn?: string;
  /** where it came from: supplier, donation, … */
  source?: string;
  reason?: string;
}
export interface IssueInput {
  depotId: string;
  itemId: string;
  quantity: number;
  /** a lot to take from; default: the usable lots, first expiring first out */
  lotId?: string;
  to: { kind: IssueTo; ref: string };
  reason?: string;
}
export interface ReturnInput {
  depotId: string;
  /** the opId of the issue the units come back from */
  issueId: string;
  quantity: number;
  reason?: string;
}
export interface DisposeInput {
  depotId: string;
  lotId: string;
  /** default: the whole lot */
  quantity?: number;
  reason: DisposeReason;
  note?: string;
}
export interface InspectInput {
  depotId: string;
  lotId: string;
  result: 'pass' | 'fail';
  note?: string;
}
export interface AdjustInput {
  depotId: string;
  lotId: string;
  /** what the count found: the lot is set to this */
  countedQuantity: number;
  reason: string;
  /** the movement this corrects */
  corrects?: string;
}
export interface TransferRequestInput {
  fromDepotId: string;
  toDepotId: string;
  itemId: string;
  quantity: number;
  reason?: string;
}

export interface LedgerFilter {
  depotIds?: readonly string[];
  itemId?: string;
  lotId?: string;
  kind?: MovementKind;
  transferId?: string;
  opId?: string;
  since?: number;
  until?: number;
}

export interface MinimumView {
  itemId: string;
  minimum: number;
  source: 'override' | 'quota' | 'none';
  mode?: 'absolute' | 'per1000';
  value?: number;
  quota?: { absolute?: number; per1000?: number };
  setBy?: string;
  setAt?: string;
}

export interface MinimumChange {
  itemId: string;
  /** `quota`: remove the override, back to the level's quota */
  mode: 'absolute' | 'per1000' | 'quota';
  value?: number;
}

export interface SourceView {
  rank: number;
  kind: 'depot' | 'agreement';
  /** own: the depot's own supplier agreements */
  relation: 'own' | 'same_street' | 'street' | 'district' | 'other';
  depotId: string;
  depotName: { zh: string; en: string };
  level: Level;
  communityId?: string;
  communityName?: { zh: string; en: string };
  usable?: number;
  minimum?: number;
  /** what it can give without falling below its own minimum */
  spare?: number;
  nextExpiry?: string;
  keeper?: { id: string; username: string; name: string };
  agreementId?: string;
  supplier?: string;
  contact?: string;
  quantity?: number;
  withinHours?: number;
}

export interface ShortfallLine {
  itemId: string;
  minimum: number;
  available: number;
  incoming: number;
  shortfall: number;
}
export interface CommunityShortfall {
  communityId: string;
  name: { zh: string; en: string };
  inRegistry: boolean;
  streetId?: string;
  population: number;
  depotIds: string[];
  lines: ShortfallLine[];
  /** items below their minimum */
  short: number;
}

export interface CalendarLot {
  lotId: string;
  depotId: string;
  itemId: string;
  quantity: number;
  expiresOn: string;
}
export interface CalendarMonth {
  month: string;
  lots: CalendarLot[];
  totals: { itemId: string; quantity: number }[];
}

type LotRow = Selectable<SupplyLotTable>;
type MovementRow = Selectable<SupplyMovementTable>;
type TransferRow = Selectable<SupplyTransferTable>;
type Problem = { field: string; message: string };

function invalid(problems: Problem[]): RegistryError {
  return new RegistryError('invalid', problems.map((p) => `${p.field}: ${p.message}`).join('; '), problems);
}

let movementSeq = 0;
/**
 * Movement ids sort in the order they were written within a millisecond (the ledger pages on (ts, id)): the time,
 * a per-process sequence, and randomness so that two nodes never collide.
 */
function newMovementId(ts: number): string {
  movementSeq = (movementSeq + 1) % 36 ** 6;
  return `${ts.toString(36).padStart(9, '0')}-${movementSeq.toString(36).padStart(6, '0')}-${randomBytes(4).toString('hex')}`;
}

function newLotId(): string {
  return `lot-${randomBytes(6).toString('hex')}`;
}

function iso(ms: number | null | undefined): string | undefined {
  return ms === null || ms === undefined ? undefined : new Date(Number(ms)).toISOString();
}

function positiveQuantity(v: unknown, field: string, problems: Problem[]): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_QUANTITY) {
    problems.push({ field, message: `must be a whole number from 1 to ${MAX_QUANTITY}` });
  }
}

function text(v: unknown, field: string, problems: Problem[], required = false, max = MAX_TEXT): void {
  if (v === undefined && !required) return;
  if (typeof v !== 'string' || v.trim() === '' || v.length > max) {
    problems.push({ field, message: `must be text of 1 to ${max} characters` });
  }
}

/** A movement row as the API shows it. */
export function movementView(r: MovementRow): MovementView {
  const m: MovementView = {
    id: r.id,
    opId: r.op_id,
    ts: new Date(Number(r.ts)).toISOString(),
    depotId: r.depot_id,
    itemId: r.item_id,
    kind: r.kind,
    quantity: Number(r.quantity),
    by: r.by,
  };
  if (r.lot_id !== null) m.lotId = r.lot_id;
  if (r.balance_after !== null) m.balanceAfter = Number(r.balance_after);
  if (r.reason !== null) m.reason = r.reason;
  if (r.ref_kind !== null && r.ref_id !== null) m.ref = { kind: r.ref_kind, id: r.ref_id };
  if (r.transfer_id !== null) m.transferId = r.transfer_id;
  if (r.corrects !== null) m.corrects = r.corrects;
  if (r.data !== null) {
    try {
      m.data = JSON.parse(r.data) as Record<string, unknown>;
    } catch {
      // a row written by hand: shown without its data
    }
  }
  return m;
}

export function transferView(r: TransferRow, actions: TransferView['actions'] = []): TransferView {
  const t: TransferView = {
    id: r.id,
    itemId: r.item_id,
    quantity: Number(r.quantity),
    fromDepotId: r.from_depot_id,
    toDepotId: r.to_depot_id,
    status: r.status,
    requestedBy: r.requested_by,
    requestedAt: iso(r.requested_at)!,
    lots: r.lots ? (JSON.parse(r.lots) as TransferLot[]) : [],
    updatedAt: iso(r.updated_at)!,
    actions,
  };
  if (r.reason !== null) t.reason = r.reason;
  if (r.decided_by !== null) t.decidedBy = r.decided_by;
  if (r.decided_at !== null) t.decidedAt = iso(r.decided_at);
  if (r.decision_note !== null) t.decisionNote = r.decision_note;
  if (r.dispatched_by !== null) t.dispatchedBy = r.dispatched_by;
  if (r.dispatched_at !== null) t.dispatchedAt = iso(r.dispatched_at);
  if (r.received_by !== null) t.receivedBy = r.received_by;
  if (r.received_at !== null) t.receivedAt = iso(r.received_at);
  if (r.cancelled_by !== null) t.cancelledBy = r.cancelled_by;
  if (r.cancelled_at !== null) t.cancelledAt = iso(r.cancelled_at);
  if (r.cancel_note !== null) t.cancelNote = r.cancel_note;
  return t;
}

/** The alert `area` of a depot's item, or of one lot. */
export function alertArea(depotId: string, itemId: string, lotId?: string): string {
  return `supplies/${depotId}/${itemId}${lotId ? `/${lotId}` : ''}`;
}
function parseArea(area: string | undefined): { depotId: string; itemId: string; lotId?: string } | undefined {
  const m = /^supplies\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(area ?? '');
  return m ? { depotId: m[1]!, itemId: m[2]!, lotId: m[3] } : undefined;
}

interface Movement {
  lotId: string | null;
  kind: MovementKind;
  quantity: number;
  balanceAfter: number | null;
  reason?: string;
  refKind?: string;
  refId?: string;
  transferId?: string;
  corrects?: string;
  data?: Record<string, unknown>;
  depotId: string;
  itemId: string;
}

export class SupplyService implements Module {
  readonly name = 'supplies';
  readonly store: SupplyStore;
  private readonly log: Logger;
  private depotList: DepotInfo[] = [];
  private depotMap = new Map<string, DepotInfo>();
  /** depots with at least one movement: only those are checked against their minimums */
  private inService = new Set<string>();
  private timer?: Cancel;
  private checking: Promise<void> = Promise.resolve();
  /** keeper accounts this start created (demo), with their generated passwords */
  createdKeepers: { username: string; password: string }[] = [];
  /** what the registry could not resolve (a keeper or a community that does not exist), said once at start */
  warnings: string[] = [];

  constructor(private readonly deps: SupplyDeps) {
    this.store = new SupplyStore(deps.database);
    this.log = deps.logger;
  }

  private get db(): SupplyQ {
    return this.store.db;
  }

  /** the registry's and the alerts' tables (read only) */
  private get regDb(): Kysely<DB> {
    return this.deps.database.db;
  }

  private now(): number {
    return this.deps.clock.now();
  }

  /** Today in the community's time zone. */
  today(): string {
    return dayOf(this.now(), this.deps.timezone);
  }

  // ------------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    if (this.deps.settings.sample) await this.createSampleKeepers();
    await this.refresh();
    const created = await this.syncDepots();
    if (this.deps.settings.sample) {
      for (const depotId of created) await this.seedSampleStock(depotId);
    }
    const rows = await this.db.selectFrom('supply_movement').select('depot_id').distinct().execute();
    for (const r of rows) this.inService.add(r.depot_id);
    for (const w of this.warnings) this.log.warn({ event: 'supplies_config' }, w);
    await this.checkAll();
    const every = Math.max(1, this.deps.settings.checkEveryMinutes) * 60_000;
    this.timer = this.deps.clock.setInterval(() => {
      this.checking = this.checking.then(() => this.checkAll());
    }, every);
  }

  async stop(): Promise<void> {
    this.timer?.();
    this.timer = undefined;
    await this.checking.catch(() => {});
  }

  /** Waits for a running periodic check (tests). */
  async idle(): Promise<void> {
    await this.checking;
  }

  /** Re-reads the registry: hierarchy, keepers, population served. */
  async refresh(): Promise<void> {
    const { registry } = this.deps;
    const [districts, streets, communities, grids] = await Promise.all(
      (['district', 'street', 'community', 'grid'] as const).map((l) => registry.listNodes(l)),
    );
    const streetOf = new Map(communities!.map((c) => [c.id, c.parentId]));
    const districtOf = new Map(streets!.map((s) => [s.id, s.parentId]));
    const districtIds = new Set(districts!.map((d) => d.id));
    const gridsOf = new Map<string, string[]>();
    for (const g of grids!) {
      if (!g.parentId) continue;
      const l = gridsOf.get(g.parentId) ?? [];
      l.push(g.id);
      gridsOf.set(g.parentId, l);
    }
    const residents = new Map<string, number>();
    const counts = await this.regDb
      .selectFrom('resident')
      .innerJoin('household', 'household.id', 'resident.household_id')
      .select(['household.community_id as communityId', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('household.community_id')
      .execute();
    for (const r of counts) residents.set(r.communityId, Number(r.n));
    const staff = new Map<string, Staff>();
    let cursor: string | undefined;
    do {
      const page = await registry.listStaff({ limit: 1000, cursor });
      for (const s of page.items) staff.set(s.username, s);
      cursor = page.nextCursor;
    } while (cursor);

    const warnings: string[] = [];
    const cfgs = this.deps.config.depots.depots;
    // label communities (neighbours outside this registry) count towards their street's and district's population
    const labels = cfgs.filter((d) => d.level === 'community' && d.communityName && d.communityId);
    const communitiesOfStreet = (streetId: string) => communities!.filter((c) => c.parentId === streetId);
    const list: DepotInfo[] = [];
    for (const d of cfgs) {
      const info: DepotInfo = {
        id: d.id,
        name: d.name,
        level: d.level,
        inRegistry: true,
        address: d.address,
        population: 0,
        populationSource: d.population !== undefined ? 'config' : 'registry',
        agreements: d.agreements ?? [],
        gridIds: [],
      };
      if (d.keeper !== undefined) info.keeperUsername = d.keeper;
      let served: string[] = [];
      if (d.level === 'community') {
        info.communityId = d.communityId;
        const known = streetOf.has(d.communityId!);
        info.inRegistry = known;
        if (d.communityName) info.communityName = d.communityName;
        info.streetId = known ? streetOf.get(d.communityId!) : d.streetId;
        if (!known && !d.communityName) {
          warnings.push(`supplies: depot ${d.id}: community ${d.communityId} is not in the registry (no population)`);
        }
        served = known ? [d.communityId!] : [];
      } else if (d.level === 'street') {
        info.streetId = d.streetId;
        info.inRegistry = districtOf.has(d.streetId!);
        served = communitiesOfStreet(d.streetId!).map((c) => c.id);
      } else {
        info.districtId = d.districtId;
        info.inRegistry = districtIds.has(d.districtId!);
        const streetIds = streets!.filter((s) => s.parentId === d.districtId).map((s) => s.id);
        served = communities!.filter((c) => c.parentId && streetIds.includes(c.parentId)).map((c) => c.id);
      }
      info.districtId ??= info.streetId ? (districtOf.get(info.streetId) ?? d.districtId) : d.districtId;
      info.gridIds = served.flatMap((c) => gridsOf.get(c) ?? []).sort();
      if (d.population !== undefined) info.population = d.population;
      else {
        let n = served.reduce((sum, c) => sum + (residents.get(c) ?? 0), 0);
        // neighbours known only as labels: their configured population
        for (const l of labels) {
          if (l.id === d.id || streetOf.has(l.communityId!)) continue;
          const inStreet = l.streetId === info.streetId;
          const inDistrict = districtOf.get(l.streetId!) === info.districtId;
          if ((d.level === 'street' && inStreet) || (d.level === 'district' && inDistrict)) n += l.population ?? 0;
        }
        info.population = n;
      }
      if (d.keeper) {
        const s = staff.get(d.keeper);
        if (s && !s.disabled) info.keeper = { id: s.id, username: s.username, name: maskName(s.name) };
        else warnings.push(`supplies: depot ${d.id}: keeper ${d.keeper} is not an active staff account (no keeper)`);
      }
      list.push(info);
    }
    this.depotList = list;
    this.depotMap = new Map(list.map((d) => [d.id, d]));
    this.warnings = warnings;
  }

  /** Inserts new depots, updates changed ones, retires those no longer configured. Returns the ids created. */
  private async syncDepots(): Promise<string[]> {
    const now = this.now();
    const rows = await this.db.selectFrom('supply_depot').selectAll().execute();
    const existing = new Map(rows.map((r) => [r.id, r]));
    const created: string[] = [];
    for (const d of this.deps.config.depots.depots) {
      const info = this.depotMap.get(d.id)!;
      const values = {
        level: d.level,
        community_id: info.communityId ?? null,
        street_id: info.streetId ?? null,
        district_id: info.districtId ?? null,
        name: JSON.stringify(d.name),
        config: JSON.stringify(d),
        active: 1,
      };
      const row = existing.get(d.id);
      if (!row) {
        try {
          await this.db
            .insertInto('supply_depot')
            .values({ id: d.id, ...values, created_at: now, updated_at: now })
            .execute();
          created.push(d.id);
        } catch (e) {
          // another node inserted it first
          if (!isUniqueViolation(e)) throw e;
        }
      } else if (
        row.config !== values.config ||
        Number(row.active) !== 1 ||
        row.community_id !== values.community_id ||
        row.street_id !== values.street_id ||
        row.district_id !== values.district_id
      ) {
        await this.db
          .updateTable('supply_depot')
          .set({ ...values, updated_at: now })
          .where('id', '=', d.id)
          .execute();
      }
    }
    const configured = new Set(this.deps.config.depots.depots.map((d) => d.id));
    const retired = rows.filter((r) => !configured.has(r.id) && Number(r.active) === 1).map((r) => r.id);
    if (retired.length > 0) {
      await this.db
        .updateTable('supply_depot')
        .set({ active: 0, updated_at: now })
        .where('id', 'in', retired)
        .execute();
      this.log.info({ depots: retired }, 'supplies: depots no longer configured are retired (their ledger is kept)');
    }
    return created;
  }

  /** Demo: the sample keepers' accounts, created when missing (their passwords are handed to the caller). */
  private async createSampleKeepers(): Promise<void> {
    const keepers = this.deps.config.depots.sample?.keepers ?? [];
    if (keepers.length === 0) return;
    const existing = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await this.deps.registry.listStaff({ limit: 1000, cursor });
      for (const s of page.items) existing.add(s.username);
      cursor = page.nextCursor;
    } while (cursor);
    for (const k of keepers) {
      if (existing.has(k.username)) continue;
      const password = generateSecret();
      try {
        await this.deps.registry.createStaff({ ...k, roles: ['depot_keeper'], password });
        this.createdKeepers.push({ username: k.username, password });
        this.log.info({ username: k.username }, 'supplies: sample depot keeper account created');
      } catch (e) {
        if (!(e instanceof RegistryError && e.code === 'conflict')) throw e;
      }
    }
  }

  /** Demo: the opening stock of a depot created on this data dir, dated relative to today. */
  private async seedSampleStock(depotId: string): Promise<void> {
    const lots = this.deps.config.depots.sample?.stock?.[depotId] ?? [];
    if (lots.length === 0) return;
    const today = this.today();
    const now = this.now();
    const opId = randomUUID();
    await this.store.write(async (q) => {
      for (const l of lots) {
        const item = this.item(l.itemId);
        const receivedOn = addDays(today, -l.receivedDaysAgo);
        const expiresOn =
          l.expiresInDays !== undefined
            ? addDays(today, l.expiresInDays)
            : item.shelfLifeDays
              ? addDays(receivedOn, item.shelfLifeDays)
              : null;
        const lotId = newLotId();
        const lastInspectedAt = l.lastInspectedDaysAgo !== undefined ? now - l.lastInspectedDaysAgo * 86_400_000 : null;
        await q
          .insertInto('supply_lot')
          .values({
            id: lotId,
            depot_id: depotId,
            item_id: l.itemId,
            quantity: l.quantity,
            received_on: receivedOn,
            expires_on: expiresOn,
            condition: 'good',
            last_inspected_at: lastInspectedAt,
            origin: 'sample',
            created_at: now,
            updated_at: now,
          })
          .execute();
        await this.append(q, opId, 'system:sample', now, {
          depotId,
          itemId: l.itemId,
          lotId,
          kind: 'receive',
          quantity: l.quantity,
          balanceAfter: l.quantity,
          reason: 'opening stock (sample)',
          refKind: 'sample',
          refId: depotId,
          data: { receivedOn, ...(expiresOn ? { expiresOn } : {}) },
        });
      }
    });
    this.inService.add(depotId);
    this.log.info({ depotId, lots: lots.length }, 'supplies: sample opening stock received');
  }

  // ------------------------------------------------------------------ catalogue and depots

  catalogue(): SupplyConfig['catalogue'] {
    return this.deps.config.catalogue;
  }

  settings(): SupplySettings {
    return this.deps.settings;
  }

  item(itemId: string): Item {
    const item = this.deps.config.catalogue.byId.get(itemId);
    if (!item) throw invalid([{ field: 'itemId', message: `unknown item "${itemId}"` }]);
    return item;
  }

  depots(): readonly DepotInfo[] {
    return this.depotList;
  }

  depot(id: string): DepotInfo {
    const d = this.depotMap.get(id);
    if (!d) throw new RegistryError('not_found', `no depot ${id}`);
    return d;
  }

  /** Staff ids of the keepers of the depot a supplies alert is about (for the escalation's `depot_keeper`). */
  keepersFor(alert: { areaId?: string; communityId?: string }): string[] {
    const area = parseArea(alert.areaId);
    if (area) {
      const keeper = this.depotMap.get(area.depotId)?.keeper;
      return keeper ? [keeper.id] : [];
    }
    // any other alert about a community: the keepers of that community's depots
    if (!alert.communityId) return [];
    return this.depotList.filter((d) => d.communityId === alert.communityId && d.keeper).map((d) => d.keeper!.id);
  }

  // ------------------------------------------------------------------ stock

  /** Minimums per item for depots: overrides, else the level's quota for the depot's population. */
  async minimums(depotIds: readonly string[]): Promise<Map<string, Map<string, MinimumView>>> {
    const overrides =
      depotIds.length === 0
        ? []
        : await this.db
            .selectFrom('supply_minimum')
            .selectAll()
            .where('depot_id', 'in', [...depotIds])
            .execute();
    const out = new Map<string, Map<string, MinimumView>>();
    for (const depotId of depotIds) {
      const d = this.depot(depotId);
      const quotas = this.deps.config.catalogue.quotas[d.level];
      const m = new Map<string, MinimumView>();
      for (const item of this.deps.config.catalogue.items) {
        const q = quotas[item.id];
        const v: MinimumView = {
          itemId: item.id,
          minimum: quotaMinimum(q, d.population),
          source: q ? 'quota' : 'none',
        };
        if (q) v.quota = { ...q };
        m.set(item.id, v);
      }
      out.set(depotId, m);
    }
    for (const o of overrides) {
      const m = out.get(o.depot_id)?.get(o.item_id);
      if (!m) continue; // an item no longer in the catalogue
      const d = this.depot(o.depot_id);
      const value = Number(o.value_milli) / 1000;
      m.source = 'override';
      m.mode = o.mode;
      m.value = value;
      m.minimum = o.mode === 'absolute' ? Math.round(value) : quotaMinimum({ per1000: value }, d.population);
      m.setBy = o.set_by;
      m.setAt = iso(o.set_at);
    }
    return out;
  }

  async setMinimums(depotId: string, changes: readonly MinimumChange[], by: string): Promise<MinimumView[]> {
    this.activeDepot(depotId);
    const problems: Problem[] = [];
    const seen = new Set<string>();
    changes.forEach((c, i) => {
      if (!this.deps.config.catalogue.byId.has(c.itemId)) {
        problems.push({ field: `items.${i}.itemId`, message: `unknown item "${c.itemId}"` });
      }
      if (seen.has(c.itemId)) problems.push({ field: `items.${i}.itemId`, message: 'listed twice' });
      seen.add(c.itemId);
      if (c.mode === 'absolute' && (!Number.isInteger(c.value) || c.value! < 0 || c.value! > MAX_QUANTITY)) {
        problems.push({
          field: `items.${i}.value`,
          message: `an absolute minimum is a whole number 0–${MAX_QUANTITY}`,
        });
      }
      if (
        c.mode === 'per1000' &&
        (typeof c.value !== 'number' ||
          !(c.value >= 0) ||
          c.value > 100_000 ||
          Math.abs(Math.round(c.value * 1000) - c.value * 1000) > 1e-6)
      ) {
        problems.push({ field: `items.${i}.value`, message: 'per1000 is a number 0–100000 with at most 3 decimals' });
      }
    });
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    await this.store.write(async (q) => {
      for (const c of changes) {
        await q.deleteFrom('supply_minimum').where('depot_id', '=', depotId).where('item_id', '=', c.itemId).execute();
        if (c.mode === 'quota') continue;
        await q
          .insertInto('supply_minimum')
          .values({
            depot_id: depotId,
            item_id: c.itemId,
            mode: c.mode,
            value_milli: Math.round(c.value! * 1000),
            set_by: by,
            set_at: now,
          })
          .execute();
      }
    });
    this.log.info({ event: 'supplies_minimums_set', depotId, items: changes.length, by }, 'minimum levels changed');
    const itemIds = changes.map((c) => c.itemId);
    await this.afterChange('minimums', [depotId], itemIds, by);
    return [...(await this.minimums([depotId])).get(depotId)!.values()];
  }

  /** Lots of a depot (by default those holding stock), soonest expiry first. */
  async lots(depotId: string, opts: { itemId?: string; includeEmpty?: boolean } = {}): Promise<LotView[]> {
    this.depot(depotId);
    let q = this.db.selectFrom('supply_lot').selectAll().where('depot_id', '=', depotId);
    if (opts.itemId) q = q.where('item_id', '=', opts.itemId);
    if (!opts.includeEmpty) q = q.where('quantity', '>', 0);
    const rows = await q.execute();
    return rows.map((r) => this.lotView(r)).sort(byExpiry);
  }

  async lot(lotId: string): Promise<LotView | undefined> {
    const r = await this.db.selectFrom('supply_lot').selectAll().where('id', '=', lotId).executeTakeFirst();
    return r ? this.lotView(r) : undefined;
  }

  private lotView(r: LotRow, today = this.today()): LotView {
    const item = this.deps.config.catalogue.byId.get(r.item_id);
    const v: LotView = {
      id: r.id,
      depotId: r.depot_id,
      itemId: r.item_id,
      quantity: Number(r.quantity),
      receivedOn: r.received_on,
      expiry: 'none',
      condition: r.condition,
      inspectionOverdue: false,
      createdAt: iso(r.created_at)!,
    };
    if (r.expires_on) {
      v.expiresOn = r.expires_on;
      const days = daysBetween(today, r.expires_on);
      v.daysToExpiry = days;
      const s = this.deps.settings;
      v.expiry =
        days < 0 ? 'expired' : days <= s.expiringMinorDays ? 'minor' : days <= s.expiringInfoDays ? 'info' : 'ok';
    }
    if (r.last_inspected_at !== null) v.lastInspectedAt = iso(r.last_inspected_at);
    if (item?.inspectionEveryDays && r.condition !== 'damaged') {
      const base =
        r.last_inspected_at !== null ? dayOf(Number(r.last_inspected_at), this.deps.timezone) : r.received_on;
      v.inspectionDueOn = addDays(base, item.inspectionEveryDays);
      v.inspectionOverdue = today > v.inspectionDueOn;
    }
    if (r.origin !== null) v.origin = r.origin;
    return v;
  }

  /** Stock per depot and item: every catalogue item of the depots, or only `itemIds`. */
  async levels(depotIds: readonly string[], itemIds?: readonly string[]): Promise<StockLevel[]> {
    if (depotIds.length === 0) return [];
    let q = this.db
      .selectFrom('supply_lot')
      .selectAll()
      .where('depot_id', 'in', [...depotIds])
      .where('quantity', '>', 0);
    if (itemIds) q = q.where('item_id', 'in', itemIds.length > 0 ? [...itemIds] : ['']);
    const lots = await q.execute();
    let tq = this.db
      .selectFrom('supply_transfer')
      .select(['to_depot_id', 'item_id', (eb) => eb.fn.sum<number>('quantity').as('n')])
      .where('status', '=', 'in_transit')
      .where('to_depot_id', 'in', [...depotIds])
      .groupBy(['to_depot_id', 'item_id']);
    if (itemIds) tq = tq.where('item_id', 'in', itemIds.length > 0 ? [...itemIds] : ['']);
    const incoming = new Map((await tq.execute()).map((r) => [`${r.to_depot_id}|${r.item_id}`, Number(r.n)]));
    const mins = await this.minimums(depotIds);
    const today = this.today();
    const out: StockLevel[] = [];
    const items = itemIds ?? this.deps.config.catalogue.items.map((i) => i.id);
    for (const depotId of depotIds) {
      for (const itemId of items) {
        const mine = lots
          .filter((l) => l.depot_id === depotId && l.item_id === itemId)
          .map((l) => this.lotView(l, today));
        const usableLots = mine.filter((l) => l.condition === 'good' && l.expiry !== 'expired');
        const sum = (ls: LotView[]) => ls.reduce((s, l) => s + l.quantity, 0);
        const usable = sum(usableLots);
        const m = mins.get(depotId)?.get(itemId);
        const minimum = m?.minimum ?? 0;
        const level: StockLevel = {
          depotId,
          itemId,
          total: sum(mine),
          usable,
          expired: sum(mine.filter((l) => l.expiry === 'expired')),
          unusable: sum(mine.filter((l) => l.condition !== 'good')),
          minimum,
          minimumSource: m?.source ?? 'none',
          shortfall: Math.max(0, minimum - usable),
          belowMinimum: usable < minimum,
          expiringMinor: sum(usableLots.filter((l) => l.expiry === 'minor')),
          expiringInfo: sum(usableLots.filter((l) => l.expiry === 'minor' || l.expiry === 'info')),
          inspectionOverdue: mine.filter((l) => l.inspectionOverdue).length,
          incoming: incoming.get(`${depotId}|${itemId}`) ?? 0,
          lots: mine.length,
        };
        const next = usableLots.find((l) => l.expiresOn)?.expiresOn;
        if (next) level.nextExpiry = next;
        out.push(level);
      }
    }
    return out;
  }

  /** Active supplies alerts of depots. */
  async depotAlerts(depotIds?: readonly string[]): Promise<DepotAlert[]> {
    const rows = await this.regDb
      .selectFrom('alert')
      .select(['id', 'type', 'severity', 'status', 'area_id', 'summary', 'first_seen'])
      .where('category', '=', 'supplies')
      .where('status', 'in', ['open', 'acknowledged'])
      .where('area_id', 'like', 'supplies/%')
      .orderBy('first_seen', 'desc')
      .execute();
    const want = depotIds ? new Set(depotIds) : undefined;
    const out: DepotAlert[] = [];
    for (const r of rows) {
      const area = parseArea(r.area_id ?? undefined);
      if (!area || (want && !want.has(area.depotId))) continue;
      const a: DepotAlert = {
        id: r.id,
        type: r.type,
        severity: r.severity,
        status: r.status,
        itemId: area.itemId,
        summary: r.summary,
        firstSeen: iso(r.first_seen)!,
      };
      if (area.lotId) a.lotId = area.lotId;
      out.push(a);
    }
    return out;
  }

  /** Per depot: how many alerts and open transfers (for the depot list). */
  async depotCounts(): Promise<Map<string, { alerts: number; transfers: number }>> {
    const out = new Map<string, { alerts: number; transfers: number }>();
    const get = (id: string) => {
      let c = out.get(id);
      if (!c) {
        c = { alerts: 0, transfers: 0 };
        out.set(id, c);
      }
      return c;
    };
    const rows = await this.regDb
      .selectFrom('alert')
      .select('area_id')
      .where('category', '=', 'supplies')
      .where('status', 'in', ['open', 'acknowledged'])
      .where('area_id', 'like', 'supplies/%')
      .execute();
    for (const r of rows) {
      const a = parseArea(r.area_id ?? undefined);
      if (a) get(a.depotId).alerts++;
    }
    const open = await this.db
      .selectFrom('supply_transfer')
      .select(['from_depot_id', 'to_depot_id'])
      .where('status', 'in', ['requested', 'approved', 'in_transit'])
      .execute();
    for (const t of open) {
      get(t.from_depot_id).transfers++;
      get(t.to_depot_id).transfers++;
    }
    return out;
  }

  // ------------------------------------------------------------------ movements

  private checkDepot(depotId: unknown, problems: Problem[], field = 'depotId'): void {
    if (typeof depotId !== 'string' || !this.depotMap.has(depotId)) {
      problems.push({ field, message: `unknown depot ${JSON.stringify(depotId)}` });
    }
  }

  /** A depot named in a request body: unknown is bad input (400), like an unknown item. */
  private activeDepot(depotId: string, field = 'depotId'): DepotInfo {
    const d = typeof depotId === 'string' ? this.depotMap.get(depotId) : undefined;
    if (!d) throw invalid([{ field, message: `unknown depot "${depotId}"` }]);
    return d;
  }

  /** Receives a delivery as a new lot. */
  async receive(input: ReceiveInput, by: string): Promise<OpResult> {
    const problems: Problem[] = [];
    this.checkDepot(input.depotId, problems);
    const item = this.deps.config.catalogue.byId.get(input.itemId);
    if (!item) problems.push({ field: 'itemId', message: `unknown item "${input.itemId}"` });
    positiveQuantity(input.quantity, 'quantity', problems);
    const today = this.today();
    const receivedOn = input.receivedOn ?? today;
    if (!isDate(receivedOn)) problems.push({ field: 'receivedOn', message: 'must be a date YYYY-MM-DD' });
    else if (receivedOn > today) problems.push({ field: 'receivedOn', message: 'must not be in the future' });
    let expiresOn = input.expiresOn;
    if (expiresOn !== undefined) {
      if (!isDate(expiresOn)) problems.push({ field: 'expiresOn', message: 'must be a date YYYY-MM-DD' });
      else if (isDate(receivedOn) && expiresOn < receivedOn) {
        problems.push({ field: 'expiresOn', message: `must not be before the receipt (${receivedOn})` });
      }
    } else if (item?.shelfLifeDays && isDate(receivedOn)) {
      expiresOn = addDays(receivedOn, item.shelfLifeDays);
    }
    const condition = input.condition ?? 'good';
    if (!CONDITIONS.includes(condition)) {
      problems.push({ field: 'condition', message: `must be one of ${CONDITIONS.join(', ')}` });
    }
    let lastInspectedAt: number | null = null;
    if (input.lastInspectedOn !== undefined) {
      if (!isDate(input.lastInspectedOn))
        problems.push({ field: 'lastInspectedOn', message: 'must be a date YYYY-MM-DD' });
      else if (input.lastInspectedOn > today) {
        problems.push({ field: 'lastInspectedOn', message: 'must not be in the future' });
      } else lastInspectedAt = noonOf(input.lastInspectedOn, this.deps.timezone);
    }
    text(input.source, 'source', problems, false, 100);
    text(input.reason, 'reason', problems);
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    const opId = randomUUID();
    const lotId = newLotId();
    await this.store.write(async (q) => {
      await q
        .insertInto('supply_lot')
        .values({
          id: lotId,
          depot_id: input.depotId,
          item_id: input.itemId,
          quantity: input.quantity,
          received_on: receivedOn,
          expires_on: expiresOn ?? null,
          condition,
          last_inspected_at: lastInspectedAt,
          origin: input.source ?? 'delivery',
          created_at: now,
          updated_at: now,
        })
        .execute();
      await this.append(q, opId, by, now, {
        depotId: input.depotId,
        itemId: input.itemId,
        lotId,
        kind: 'receive',
        quantity: input.quantity,
        balanceAfter: input.quantity,
        reason: input.reason ?? 'received',
        refKind: 'source',
        refId: input.source,
        data: { receivedOn, ...(expiresOn ? { expiresOn } : {}), condition },
      });
    });
    return this.finish('receive', opId, input.depotId, [input.itemId], by);
  }

  /**
   * Issues units to a drill, an incident or a person: from one lot, or from the usable lots first expiring first
   * out. Too few usable units: a conflict, nothing issued.
   */
  async issue(input: IssueInput, by: string): Promise<OpResult> {
    const problems: Problem[] = [];
    this.checkDepot(input.depotId, problems);
    if (!this.deps.config.catalogue.byId.has(input.itemId)) {
      problems.push({ field: 'itemId', message: `unknown item "${input.itemId}"` });
    }
    positiveQuantity(input.quantity, 'quantity', problems);
    if (!input.to || !ISSUE_TO.includes(input.to.kind)) {
      problems.push({ field: 'to.kind', message: `must be one of ${ISSUE_TO.join(', ')}` });
    }
    text(input.to?.ref, 'to.ref', problems, true, 100);
    text(input.reason, 'reason', problems);
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    const today = this.today();
    const opId = randomUUID();
    await this.store.write(async (q) => {
      const taken = await this.take(q, input.depotId, input.itemId, input.quantity, today, input.lotId);
      for (const t of taken) {
        await this.append(q, opId, by, now, {
          depotId: input.depotId,
          itemId: input.itemId,
          lotId: t.lotId,
          kind: 'issue',
          quantity: -t.quantity,
          balanceAfter: t.balanceAfter,
          reason: input.reason ?? `issued to ${input.to.kind}`,
          refKind: input.to.kind,
          refId: input.to.ref,
        });
      }
    });
    return this.finish('issue', opId, input.depotId, [input.itemId], by);
  }

  /** For the drills: issues supplies to a drill (`to: drill <drillId>`). */
  issueToDrill(
    input: { depotId: string; itemId: string; quantity: number; drillId: string; reason?: string },
    by: string,
  ): Promise<OpResult> {
    return this.issue(
      {
        depotId: input.depotId,
        itemId: input.itemId,
        quantity: input.quantity,
        to: { kind: 'drill', ref: input.drillId },
        reason: input.reason ?? 'issued to a drill',
      },
      by,
    );
  }

  /** Units coming back from an issue go back into the lots they left, never more than left them. */
  async returnIssued(input: ReturnInput, by: string): Promise<OpResult> {
    const problems: Problem[] = [];
    this.checkDepot(input.depotId, problems);
    text(input.issueId, 'issueId', problems, true, 100);
    positiveQuantity(input.quantity, 'quantity', problems);
    text(input.reason, 'reason', problems);
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    const opId = randomUUID();
    let itemId = '';
    await this.store.write(async (q) => {
      // back into the lots in the order they were issued from (first expiring first)
      const issued = await q
        .selectFrom('supply_movement')
        .innerJoin('supply_lot', 'supply_lot.id', 'supply_movement.lot_id')
        .select([
          'supply_movement.lot_id as lot_id',
          'supply_movement.item_id as item_id',
          'supply_movement.quantity as quantity',
          'supply_lot.expires_on as expires_on',
          'supply_lot.received_on as received_on',
        ])
        .where('supply_movement.op_id', '=', input.issueId)
        .where('supply_movement.kind', '=', 'issue')
        .where('supply_movement.depot_id', '=', input.depotId)
        .execute();
      issued.sort(
        (a, b) =>
          (a.expires_on ?? '9999-12-31').localeCompare(b.expires_on ?? '9999-12-31') ||
          a.received_on.localeCompare(b.received_on) ||
          (a.lot_id ?? '').localeCompare(b.lot_id ?? ''),
      );
      if (issued.length === 0) {
        throw invalid([{ field: 'issueId', message: `no issue ${input.issueId} at depot ${input.depotId}` }]);
      }
      itemId = issued[0]!.item_id;
      const returned = await q
        .selectFrom('supply_movement')
        .select(['lot_id', (eb) => eb.fn.sum<number>('quantity').as('n')])
        .where('kind', '=', 'return')
        .where('ref_kind', '=', 'issue')
        .where('ref_id', '=', input.issueId)
        .groupBy('lot_id')
        .execute();
      const back = new Map(returned.map((r) => [r.lot_id, Number(r.n)]));
      let left = input.quantity;
      const plan: { lotId: string; quantity: number }[] = [];
      // an issue has one row per lot: what is still out of each lot can come back into it
      for (const m of issued) {
        if (left === 0) break;
        const open = -Number(m.quantity) - (back.get(m.lot_id) ?? 0);
        if (open <= 0) continue;
        const n = Math.min(open, left);
        plan.push({ lotId: m.lot_id!, quantity: n });
        left -= n;
      }
      if (left > 0) {
        throw new RegistryError(
          'conflict',
          `only ${input.quantity - left} of issue ${input.issueId} can still come back`,
          [{ field: 'quantity', message: `at most ${input.quantity - left}` }],
        );
      }
      for (const p of plan) {
        await this.lockLots(q, [p.lotId]);
        await q
          .updateTable('supply_lot')
          .set((eb) => ({ quantity: eb('quantity', '+', p.quantity), updated_at: now }))
          .where('id', '=', p.lotId)
          .execute();
        const balance = await this.balance(q, p.lotId);
        await this.append(q, opId, by, now, {
          depotId: input.depotId,
          itemId,
          lotId: p.lotId,
          kind: 'return',
          quantity: p.quantity,
          balanceAfter: balance,
          reason: input.reason ?? 'returned',
          refKind: 'issue',
          refId: input.issueId,
        });
      }
    });
    return this.finish('return', opId, input.depotId, [itemId], by);
  }

  /** Disposes of a lot, or part of it: expired, damaged, faulty. */
  async dispose(input: DisposeInput, by: string): Promise<OpResult> {
    const problems: Problem[] = [];
    this.checkDepot(input.depotId, problems);
    text(input.lotId, 'lotId', problems, true, 100);
    if (input.quantity !== undefined) positiveQuantity(input.quantity, 'quantity', problems);
    if (!DISPOSE_REASONS.includes(input.reason)) {
      problems.push({ field: 'reason', message: `must be one of ${DISPOSE_REASONS.join(', ')}` });
    }
    text(input.note, 'note', problems);
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    const opId = randomUUID();
    let itemId = '';
    await this.store.write(async (q) => {
      const lot = await this.lockedLot(q, input.depotId, input.lotId);
      itemId = lot.item_id;
      const n = input.quantity ?? Number(lot.quantity);
      if (n < 1) throw new RegistryError('conflict', `lot ${lot.id} is empty: nothing to dispose of`);
      const balance = await this.decrement(q, lot.id, n, now);
      await this.append(q, opId, by, now, {
        depotId: input.depotId,
        itemId,
        lotId: lot.id,
        kind: 'dispose',
        quantity: -n,
        balanceAfter: balance,
        reason: input.note ? `${input.reason}: ${input.note}` : input.reason,
        refKind: 'disposal',
        refId: input.reason,
        data: { reason: input.reason },
      });
    });
    return this.finish('dispose', opId, input.depotId, [itemId], by);
  }

  /** Records an inspection (pressure check, test run): pass keeps or restores `good`, fail marks the lot faulty. */
  async inspect(input: InspectInput, by: string): Promise<OpResult> {
    const problems: Problem[] = [];
    this.checkDepot(input.depotId, problems);
    text(input.lotId, 'lotId', problems, true, 100);
    if (input.result !== 'pass' && input.result !== 'fail') {
      problems.push({ field: 'result', message: 'must be pass or fail' });
    }
    text(input.note, 'note', problems);
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    const opId = randomUUID();
    let itemId = '';
    await this.store.write(async (q) => {
      const lot = await this.lockedLot(q, input.depotId, input.lotId);
      itemId = lot.item_id;
      if (Number(lot.quantity) < 1) throw new RegistryError('conflict', `lot ${lot.id} is empty: nothing to inspect`);
      if (lot.condition === 'damaged') {
        throw new RegistryError('conflict', `lot ${lot.id} is damaged: dispose of it rather than inspect it`);
      }
      const condition: Condition = input.result === 'pass' ? 'good' : 'faulty';
      await q
        .updateTable('supply_lot')
        .set({ condition, last_inspected_at: now, updated_at: now })
        .where('id', '=', lot.id)
        .execute();
      await this.append(q, opId, by, now, {
        depotId: input.depotId,
        itemId,
        lotId: lot.id,
        kind: 'inspect',
        quantity: 0,
        balanceAfter: Number(lot.quantity),
        reason: input.note ? `${input.result}: ${input.note}` : input.result,
        data: { result: input.result, before: lot.condition, after: condition },
      });
    });
    return this.finish('inspect', opId, input.depotId, [itemId], by);
  }

  /** A count: the lot is set to what was counted; the difference is recorded with its reason. */
  async adjust(input: AdjustInput, by: string): Promise<OpResult> {
    const problems: Problem[] = [];
    this.checkDepot(input.depotId, problems);
    text(input.lotId, 'lotId', problems, true, 100);
    if (!Number.isInteger(input.countedQuantity) || input.countedQuantity < 0 || input.countedQuantity > MAX_QUANTITY) {
      problems.push({ field: 'countedQuantity', message: `must be a whole number from 0 to ${MAX_QUANTITY}` });
    }
    text(input.reason, 'reason', problems, true);
    text(input.corrects, 'corrects', problems, false, 100);
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    const opId = randomUUID();
    let itemId = '';
    await this.store.write(async (q) => {
      const lot = await this.lockedLot(q, input.depotId, input.lotId);
      itemId = lot.item_id;
      if (input.corrects) {
        const m = await q
          .selectFrom('supply_movement')
          .select(['id', 'lot_id'])
          .where((eb) => eb.or([eb('id', '=', input.corrects!), eb('op_id', '=', input.corrects!)]))
          .executeTakeFirst();
        if (!m) throw invalid([{ field: 'corrects', message: `no movement ${input.corrects}` }]);
      }
      const before = Number(lot.quantity);
      const delta = input.countedQuantity - before;
      // the lot must still hold what we read: another change in between makes the count stale
      const r = await q
        .updateTable('supply_lot')
        .set({ quantity: input.countedQuantity, updated_at: now })
        .where('id', '=', lot.id)
        .where('quantity', '=', before)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) {
        throw new RegistryError('conflict', `lot ${lot.id} changed while it was counted; count again`);
      }
      await this.append(q, opId, by, now, {
        depotId: input.depotId,
        itemId,
        lotId: lot.id,
        kind: 'adjust',
        quantity: delta,
        balanceAfter: input.countedQuantity,
        reason: input.reason,
        corrects: input.corrects,
        data: { before, counted: input.countedQuantity },
      });
    });
    return this.finish('adjust', opId, input.depotId, [itemId], by);
  }

  /**
   * Receives a stock count in one transaction (the CSV import): every line becomes a lot with a `receive` movement,
   * all or nothing. The lines are validated by the caller (src/supplies/csv.ts).
   */
  async receiveMany(
    lines: readonly (ReceiveInput & { line: number })[],
    by: string,
    reason = 'initial stock count (CSV import)',
  ): Promise<{ opId: string; lots: number; depotIds: string[] }> {
    const now = this.now();
    const opId = randomUUID();
    const depotIds = [...new Set(lines.map((l) => l.depotId))];
    await this.store.write(async (q) => {
      for (const l of lines) {
        const lotId = newLotId();
        await q
          .insertInto('supply_lot')
          .values({
            id: lotId,
            depot_id: l.depotId,
            item_id: l.itemId,
            quantity: l.quantity,
            received_on: l.receivedOn!,
            expires_on: l.expiresOn ?? null,
            condition: l.condition ?? 'good',
            last_inspected_at: l.lastInspectedOn ? noonOf(l.lastInspectedOn, this.deps.timezone) : null,
            origin: 'import',
            created_at: now,
            updated_at: now,
          })
          .execute();
        await this.append(q, opId, by, now, {
          depotId: l.depotId,
          itemId: l.itemId,
          lotId,
          kind: 'receive',
          quantity: l.quantity,
          balanceAfter: l.quantity,
          reason: l.reason ?? reason,
          refKind: 'import',
          refId: `line ${l.line}`,
          data: {
            receivedOn: l.receivedOn,
            ...(l.expiresOn ? { expiresOn: l.expiresOn } : {}),
            condition: l.condition ?? 'good',
          },
        });
      }
    });
    for (const depotId of depotIds) {
      const itemIds = [...new Set(lines.filter((l) => l.depotId === depotId).map((l) => l.itemId))];
      await this.afterChange('import', [depotId], itemIds, by, opId);
    }
    this.log.info(
      { event: 'supplies_import', opId, lots: lines.length, depots: depotIds.length, by },
      'stock imported',
    );
    return { opId, lots: lines.length, depotIds };
  }

  // ------------------------------------------------------------------ ledger

  /** Movements, newest first, keyset-paged on (ts, id). */
  async ledger(filter: LedgerFilter, page: Partial<PageOpts>): Promise<Page<MovementView>> {
    const { limit, after } = pageArgs(page);
    if (filter.kind !== undefined && !MOVEMENT_KINDS.includes(filter.kind)) {
      throw invalid([{ field: 'kind', message: `must be one of ${MOVEMENT_KINDS.join(', ')}` }]);
    }
    if (filter.depotIds && filter.depotIds.length === 0) return { items: [] };
    let q = this.db
      .selectFrom('supply_movement')
      .selectAll()
      .orderBy('ts', 'desc')
      .orderBy('id', 'desc')
      .limit(limit + 1);
    if (filter.depotIds) q = q.where('depot_id', 'in', [...filter.depotIds]);
    if (filter.itemId) q = q.where('item_id', '=', filter.itemId);
    if (filter.lotId) q = q.where('lot_id', '=', filter.lotId);
    if (filter.kind) q = q.where('kind', '=', filter.kind);
    if (filter.transferId) q = q.where('transfer_id', '=', filter.transferId);
    if (filter.opId) q = q.where('op_id', '=', filter.opId);
    if (filter.since !== undefined) q = q.where('ts', '>=', Math.trunc(filter.since));
    if (filter.until !== undefined) q = q.where('ts', '<', Math.trunc(filter.until));
    if (after !== undefined) {
      const m = /^(\d{1,16}):(.{1,200})$/.exec(after);
      if (!m) throw invalid([{ field: 'cursor', message: 'is not a valid cursor' }]);
      const ts = Number(m[1]);
      const id = m[2]!;
      q = q.where((eb) => eb.or([eb('ts', '<', ts), eb.and([eb('ts', '=', ts), eb('id', '<', id)])]));
    }
    const rows = await q.execute();
    const items = rows.slice(0, limit).map(movementView);
    if (rows.length <= limit) return { items };
    const last = rows[limit - 1]!;
    return { items, nextCursor: encodeCursor(`${Number(last.ts)}:${last.id}`) };
  }

  // ------------------------------------------------------------------ transfers (mutual aid)

  async requestTransfer(input: TransferRequestInput, by: string): Promise<TransferView> {
    const problems: Problem[] = [];
    if (!this.depotMap.has(input.fromDepotId)) problems.push({ field: 'fromDepotId', message: 'unknown depot' });
    if (!this.depotMap.has(input.toDepotId)) problems.push({ field: 'toDepotId', message: 'unknown depot' });
    if (input.fromDepotId === input.toDepotId) {
      problems.push({ field: 'toDepotId', message: 'must differ from fromDepotId' });
    }
    if (!this.deps.config.catalogue.byId.has(input.itemId)) {
      problems.push({ field: 'itemId', message: `unknown item "${input.itemId}"` });
    }
    positiveQuantity(input.quantity, 'quantity', problems);
    text(input.reason, 'reason', problems);
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    const id = `tr-${randomBytes(6).toString('hex')}`;
    await this.store.write(async (q) => {
      await q
        .insertInto('supply_transfer')
        .values({
          id,
          item_id: input.itemId,
          quantity: input.quantity,
          from_depot_id: input.fromDepotId,
          to_depot_id: input.toDepotId,
          status: 'requested',
          reason: input.reason ?? null,
          requested_by: by,
          requested_at: now,
          decided_by: null,
          decided_at: null,
          decision_note: null,
          dispatched_by: null,
          dispatched_at: null,
          received_by: null,
          received_at: null,
          cancelled_by: null,
          cancelled_at: null,
          cancel_note: null,
          lots: null,
          updated_at: now,
        })
        .execute();
    });
    const t = await this.transfer(id);
    this.log.info(
      {
        event: 'supplies_transfer',
        transferId: id,
        status: 'requested',
        from: input.fromDepotId,
        to: input.toDepotId,
        by,
      },
      'transfer requested',
    );
    this.publishTransfer(t, by);
    return t;
  }

  async transfer(id: string): Promise<TransferView> {
    const r = await this.db.selectFrom('supply_transfer').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw new RegistryError('not_found', `no transfer ${id}`);
    return transferView(r);
  }

  /** Transfers touching any of `depotIds` (all when not given), newest first, keyset-paged on (requested_at, id). */
  async transfers(
    filter: { depotIds?: readonly string[]; status?: TransferStatus; itemId?: string },
    page: Partial<PageOpts>,
  ): Promise<Page<TransferView>> {
    const { limit, after } = pageArgs(page);
    if (filter.status !== undefined && !TRANSFER_STATUSES.includes(filter.status)) {
      throw invalid([{ field: 'status', message: `must be one of ${TRANSFER_STATUSES.join(', ')}` }]);
    }
    if (filter.depotIds && filter.depotIds.length === 0) return { items: [] };
    let q = this.db
      .selectFrom('supply_transfer')
      .selectAll()
      .orderBy('requested_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit + 1);
    if (filter.depotIds) {
      const ids = [...filter.depotIds];
      q = q.where((eb) => eb.or([eb('from_depot_id', 'in', ids), eb('to_depot_id', 'in', ids)]));
    }
    if (filter.status) q = q.where('status', '=', filter.status);
    if (filter.itemId) q = q.where('item_id', '=', filter.itemId);
    if (after !== undefined) {
      const m = /^(\d{1,16}):(.{1,200})$/.exec(after);
      if (!m) throw invalid([{ field: 'cursor', message: 'is not a valid cursor' }]);
      const ts = Number(m[1]);
      const id = m[2]!;
      q = q.where((eb) =>
        eb.or([eb('requested_at', '<', ts), eb.and([eb('requested_at', '=', ts), eb('id', '<', id)])]),
      );
    }
    const rows = await q.execute();
    const items = rows.slice(0, limit).map((r) => transferView(r));
    if (rows.length <= limit) return { items };
    const last = rows[limit - 1]!;
    return { items, nextCursor: encodeCursor(`${Number(last.requested_at)}:${last.id}`) };
  }

  /** requested → approved (the source depot's keeper). */
  approveTransfer(id: string, by: string, note?: string): Promise<TransferView> {
    return this.decide(id, 'approved', by, note);
  }

  /** requested → declined (the source depot's keeper), with a reason. */
  async declineTransfer(id: string, by: string, note: string): Promise<TransferView> {
    const problems: Problem[] = [];
    text(note, 'note', problems, true);
    if (problems.length > 0) throw invalid(problems);
    return this.decide(id, 'declined', by, note);
  }

  private async decide(id: string, status: 'approved' | 'declined', by: string, note?: string): Promise<TransferView> {
    const problems: Problem[] = [];
    text(note, 'note', problems);
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    await this.store.write(async (q) => {
      const r = await q
        .updateTable('supply_transfer')
        .set({ status, decided_by: by, decided_at: now, decision_note: note ?? null, updated_at: now })
        .where('id', '=', id)
        .where('status', '=', 'requested')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) await this.transitionFailed(q, id, status);
    });
    const t = await this.transfer(id);
    this.log.info({ event: 'supplies_transfer', transferId: id, status, by }, `transfer ${status}`);
    this.publishTransfer(t, by);
    return t;
  }

  /** requested or approved → cancelled (the requesting side, or an admin). */
  async cancelTransfer(id: string, by: string, note?: string): Promise<TransferView> {
    const problems: Problem[] = [];
    text(note, 'note', problems);
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    await this.store.write(async (q) => {
      const r = await q
        .updateTable('supply_transfer')
        .set({ status: 'cancelled', cancelled_by: by, cancelled_at: now, cancel_note: note ?? null, updated_at: now })
        .where('id', '=', id)
        .where('status', 'in', ['requested', 'approved'])
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) await this.transitionFailed(q, id, 'cancelled');
    });
    const t = await this.transfer(id);
    this.log.info({ event: 'supplies_transfer', transferId: id, status: 'cancelled', by }, 'transfer cancelled');
    this.publishTransfer(t, by);
    return t;
  }

  /** approved → in transit: the units leave the source depot (usable lots, first expiring first out). */
  async dispatchTransfer(id: string, by: string): Promise<TransferView> {
    const now = this.now();
    const today = this.today();
    const opId = randomUUID();
    const row = await this.store.write(async (q) => {
      const row = await this.lockTransfer(q, id);
      if (row.status !== 'approved') await this.transitionFailed(q, id, 'in_transit');
      this.activeDepot(row.from_depot_id, 'fromDepotId');
      const taken = await this.take(q, row.from_depot_id, row.item_id, Number(row.quantity), today);
      const lots: TransferLot[] = [];
      for (const t of taken) {
        await this.append(q, opId, by, now, {
          depotId: row.from_depot_id,
          itemId: row.item_id,
          lotId: t.lotId,
          kind: 'transfer_out',
          quantity: -t.quantity,
          balanceAfter: t.balanceAfter,
          reason: `transfer to ${row.to_depot_id}`,
          refKind: 'depot',
          refId: row.to_depot_id,
          transferId: id,
        });
        const l: TransferLot = { lotId: t.lotId, quantity: t.quantity, receivedOn: t.receivedOn };
        if (t.expiresOn) l.expiresOn = t.expiresOn;
        lots.push(l);
      }
      const r = await q
        .updateTable('supply_transfer')
        .set({
          status: 'in_transit',
          dispatched_by: by,
          dispatched_at: now,
          lots: JSON.stringify(lots),
          updated_at: now,
        })
        .where('id', '=', id)
        .where('status', '=', 'approved')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) await this.transitionFailed(q, id, 'in_transit');
      return row;
    });
    this.log.info({ event: 'supplies_transfer', transferId: id, status: 'in_transit', by }, 'transfer dispatched');
    const t = await this.transfer(id);
    await this.afterChange('transfer_out', [row.from_depot_id, row.to_depot_id], [row.item_id], by, opId, {
      transfer: t,
    });
    return t;
  }

  /** in transit → received: the units arrive as lots at the destination, with their original dates. */
  async receiveTransfer(id: string, by: string, note?: string): Promise<TransferView> {
    const problems: Problem[] = [];
    text(note, 'note', problems);
    if (problems.length > 0) throw invalid(problems);
    const now = this.now();
    const opId = randomUUID();
    const row = await this.store.write(async (q) => {
      const row = await this.lockTransfer(q, id);
      if (row.status !== 'in_transit') await this.transitionFailed(q, id, 'received');
      this.activeDepot(row.to_depot_id, 'toDepotId');
      const sent = row.lots ? (JSON.parse(row.lots) as TransferLot[]) : [];
      const sources = sent.length
        ? await q
            .selectFrom('supply_lot')
            .select(['id', 'condition', 'last_inspected_at'])
            .where(
              'id',
              'in',
              sent.map((l) => l.lotId),
            )
            .execute()
        : [];
      const sourceOf = new Map(sources.map((s) => [s.id, s]));
      for (const l of sent) {
        const lotId = newLotId();
        l.receivedLotId = lotId;
        await q
          .insertInto('supply_lot')
          .values({
            id: lotId,
            depot_id: row.to_depot_id,
            item_id: row.item_id,
            quantity: l.quantity,
            received_on: l.receivedOn,
            expires_on: l.expiresOn ?? null,
            condition: 'good',
            last_inspected_at: sourceOf.get(l.lotId)?.last_inspected_at ?? null,
            origin: `transfer:${id}`,
            created_at: now,
            updated_at: now,
          })
          .execute();
        await this.append(q, opId, by, now, {
          depotId: row.to_depot_id,
          itemId: row.item_id,
          lotId,
          kind: 'transfer_in',
          quantity: l.quantity,
          balanceAfter: l.quantity,
          reason: note ? `transfer from ${row.from_depot_id}: ${note}` : `transfer from ${row.from_depot_id}`,
          refKind: 'depot',
          refId: row.from_depot_id,
          transferId: id,
          data: { fromLotId: l.lotId },
        });
      }
      const r = await q
        .updateTable('supply_transfer')
        .set({ status: 'received', received_by: by, received_at: now, lots: JSON.stringify(sent), updated_at: now })
        .where('id', '=', id)
        .where('status', '=', 'in_transit')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) await this.transitionFailed(q, id, 'received');
      return row;
    });
    this.log.info({ event: 'supplies_transfer', transferId: id, status: 'received', by }, 'transfer received');
    const t = await this.transfer(id);
    await this.afterChange('transfer_in', [row.to_depot_id, row.from_depot_id], [row.item_id], by, opId, {
      transfer: t,
    });
    return t;
  }

  private async lockTransfer(q: SupplyQ, id: string): Promise<TransferRow> {
    const row = await q
      .selectFrom('supply_transfer')
      .selectAll()
      .where('id', '=', id)
      .$if(this.store.postgres, (b) => b.forUpdate())
      .executeTakeFirst();
    if (!row) throw new RegistryError('not_found', `no transfer ${id}`);
    return row;
  }

  private async transitionFailed(q: SupplyQ, id: string, to: TransferStatus): Promise<never> {
    const row = await q.selectFrom('supply_transfer').select('status').where('id', '=', id).executeTakeFirst();
    if (!row) throw new RegistryError('not_found', `no transfer ${id}`);
    throw new RegistryError('conflict', `transfer ${id} is ${row.status}: it cannot become ${to}`);
  }

  // ------------------------------------------------------------------ mutual aid, shortfalls, calendar

  /**
   * Where an item is in stock near a depot: other community depots of the same street first, then the street's
   * depot, then the district's, then supplier agreements (the depot's own first). Depots with usable stock only,
   * most to spare first.
   */
  async sources(depotId: string, itemId: string): Promise<SourceView[]> {
    const here = this.depot(depotId);
    this.item(itemId);
    const others = this.depotList.filter((d) => d.id !== depotId);
    const levels = await this.levels(
      others.map((d) => d.id),
      [itemId],
    );
    const levelOf = new Map(levels.map((l) => [l.depotId, l]));
    const relation = (d: DepotInfo): SourceView['relation'] => {
      if (d.level === 'community' && here.streetId && d.streetId === here.streetId) return 'same_street';
      if (d.level === 'street' && here.streetId && d.streetId === here.streetId) return 'street';
      if (d.level === 'district' && here.districtId && d.districtId === here.districtId) return 'district';
      return 'other';
    };
    const ORDER: Record<SourceView['relation'], number> = { own: 0, same_street: 1, street: 2, district: 3, other: 4 };
    const depots: SourceView[] = others
      .map((d) => ({ d, l: levelOf.get(d.id)! }))
      .filter(({ l }) => l && l.usable > 0)
      .map(({ d, l }) => {
        const v: SourceView = {
          rank: 0,
          kind: 'depot',
          relation: relation(d),
          depotId: d.id,
          depotName: d.name,
          level: d.level,
          usable: l.usable,
          minimum: l.minimum,
          spare: Math.max(0, l.usable - l.minimum),
        };
        if (d.communityId) v.communityId = d.communityId;
        if (d.communityName) v.communityName = d.communityName;
        if (l.nextExpiry) v.nextExpiry = l.nextExpiry;
        if (d.keeper) v.keeper = d.keeper;
        return v;
      })
      .sort(
        (a, b) => ORDER[a.relation] - ORDER[b.relation] || b.spare! - a.spare! || a.depotId.localeCompare(b.depotId),
      );
    const today = this.today();
    const agreementDepots = [here, ...[...others].sort((a, b) => ORDER[relation(a)] - ORDER[relation(b)])];
    const agreements: SourceView[] = [];
    for (const d of agreementDepots) {
      const rel = d.id === here.id ? 'own' : relation(d);
      if (rel === 'other') continue;
      for (const a of d.agreements) {
        if (a.validUntil && a.validUntil < today) continue;
        for (const x of a.items) {
          if (x.itemId !== itemId) continue;
          const v: SourceView = {
            rank: 0,
            kind: 'agreement',
            relation: rel,
            depotId: d.id,
            depotName: d.name,
            level: d.level,
            agreementId: a.id,
            supplier: a.supplier,
            quantity: x.quantity,
            withinHours: x.withinHours,
          };
          if (a.contact) v.contact = a.contact;
          agreements.push(v);
        }
      }
    }
    const out = [...depots, ...agreements];
    out.forEach((s, i) => {
      s.rank = i + 1;
    });
    return out;
  }

  /**
   * Per community: its population and, per item with a minimum, the minimum against what its depots hold (usable)
   * and what is on its way. A community without a depot shows what its quota would ask for.
   */
  async shortfalls(communityId?: string): Promise<CommunityShortfall[]> {
    const communities = await this.deps.registry.listNodes('community');
    const registryIds = new Set(communities.map((c) => c.id));
    const entries = new Map<string, CommunityShortfall>();
    const residents = await this.regDb
      .selectFrom('resident')
      .innerJoin('household', 'household.id', 'resident.household_id')
      .select(['household.community_id as communityId', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('household.community_id')
      .execute();
    const popOf = new Map(residents.map((r) => [r.communityId, Number(r.n)]));
    for (const c of communities) {
      const e: CommunityShortfall = {
        communityId: c.id,
        name: { zh: c.name, en: c.name },
        inRegistry: true,
        population: popOf.get(c.id) ?? 0,
        depotIds: [],
        lines: [],
        short: 0,
      };
      if (c.parentId) e.streetId = c.parentId;
      entries.set(c.id, e);
    }
    for (const d of this.depotList) {
      if (d.level !== 'community' || !d.communityId) continue;
      let e = entries.get(d.communityId);
      if (!e) {
        e = {
          communityId: d.communityId,
          name: d.communityName ?? { zh: d.communityId, en: d.communityId },
          inRegistry: registryIds.has(d.communityId),
          population: d.population,
          depotIds: [],
          lines: [],
          short: 0,
        };
        if (d.streetId) e.streetId = d.streetId;
        entries.set(d.communityId, e);
      } else if (d.communityName) e.name = d.communityName;
      e.depotIds.push(d.id);
      // the depot's population is the community's unless configured otherwise
      if (d.populationSource === 'config') e.population = d.population;
    }
    const wanted = [...entries.values()].filter((e) => !communityId || e.communityId === communityId);
    const allDepots = wanted.flatMap((e) => e.depotIds);
    const levels = await this.levels(allDepots);
    const quotas = this.deps.config.catalogue.quotas.community;
    for (const e of wanted) {
      for (const item of this.deps.config.catalogue.items) {
        const mine = levels.filter((l) => l.itemId === item.id && e.depotIds.includes(l.depotId));
        const minimum =
          mine.length > 0 ? mine.reduce((s, l) => s + l.minimum, 0) : quotaMinimum(quotas[item.id], e.population);
        if (minimum <= 0) continue;
        const available = mine.reduce((s, l) => s + l.usable, 0);
        const incoming = mine.reduce((s, l) => s + l.incoming, 0);
        const line = { itemId: item.id, minimum, available, incoming, shortfall: Math.max(0, minimum - available) };
        e.lines.push(line);
        if (line.shortfall > 0) e.short++;
      }
    }
    return wanted.sort((a, b) => a.communityId.localeCompare(b.communityId));
  }

  /** Lots and quantities expiring per month, for `months` months from this one; lots already expired apart. */
  async expiryCalendar(
    depotIds: readonly string[],
    months = 12,
  ): Promise<{ from: string; months: CalendarMonth[]; expired: CalendarMonth }> {
    const today = this.today();
    const from = monthOf(today);
    const end = addMonths(from, months);
    const rows =
      depotIds.length === 0
        ? []
        : await this.db
            .selectFrom('supply_lot')
            .select(['id', 'depot_id', 'item_id', 'quantity', 'expires_on'])
            .where('depot_id', 'in', [...depotIds])
            .where('quantity', '>', 0)
            .where('expires_on', 'is not', null)
            .where('expires_on', '<', `${end}-01`)
            .orderBy('expires_on')
            .orderBy('id')
            .execute();
    const bucket = (month: string): CalendarMonth => ({ month, lots: [], totals: [] });
    const out = Array.from({ length: months }, (_, i) => bucket(addMonths(from, i)));
    const expired = bucket('expired');
    for (const r of rows) {
      const lot: CalendarLot = {
        lotId: r.id,
        depotId: r.depot_id,
        itemId: r.item_id,
        quantity: Number(r.quantity),
        expiresOn: r.expires_on!,
      };
      const b = lot.expiresOn < today ? expired : out.find((m) => m.month === monthOf(lot.expiresOn));
      b?.lots.push(lot);
    }
    for (const b of [...out, expired]) {
      const totals = new Map<string, number>();
      for (const l of b.lots) totals.set(l.itemId, (totals.get(l.itemId) ?? 0) + l.quantity);
      b.totals = [...totals].map(([itemId, quantity]) => ({ itemId, quantity }));
    }
    return { from, months: out, expired };
  }

  // ------------------------------------------------------------------ alerts

  /** Re-checks every depot (the daily timer; at start). Never throws. */
  async checkAll(): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      this.log.warn({ err }, 'supplies: registry refresh failed; checking with what was known');
    }
    for (const d of this.depotList) {
      try {
        await this.evaluate(d.id);
      } catch (err) {
        this.log.error({ err, depotId: d.id }, 'supplies: depot check failed');
      }
    }
  }

  /**
   * Raises and clears the supply alerts of a depot (or of some of its items): below minimum per item; expiring,
   * expired and inspection overdue per lot. A depot that never had a movement is not yet in service: nothing.
   */
  async evaluate(depotId: string, itemIds?: readonly string[]): Promise<void> {
    const sink = this.deps.alerts;
    if (!sink || !this.inService.has(depotId)) return;
    const depot = this.depot(depotId);
    const items = itemIds ?? this.deps.config.catalogue.items.map((i) => i.id);
    const levels = await this.levels([depotId], items);
    const lots = await this.db
      .selectFrom('supply_lot')
      .selectAll()
      .where('depot_id', '=', depotId)
      .where('item_id', 'in', items.length > 0 ? [...items] : [''])
      .where('quantity', '>', 0)
      .execute();
    const today = this.today();
    const now = this.now();
    const desired = new Map<string, AlertInput>();
    const subject = (area: string) => {
      const s: AlertInput['subject'] = { areaId: area };
      if (depot.communityId) s.communityId = depot.communityId;
      return s;
    };
    const put = (type: string, severity: Severity, area: string, summary: string, note: string) => {
      const input: AlertInput = {
        type,
        category: 'supplies',
        severity,
        subject: subject(area),
        keyOn: 'area',
        drill: false,
        ts: now,
        evidence: [{ ts: now, kind: 'rule', note }],
        summary,
      };
      desired.set(`${type}|area:${area}`, input);
    };
    const where = depot.name.en;
    for (const l of levels) {
      if (!l.belowMinimum) continue;
      const item = this.item(l.itemId);
      put(
        SUPPLY_ALERT_TYPES.belowMinimum,
        'major',
        alertArea(depotId, l.itemId),
        `${item.name.en} below minimum at ${where}: ${l.usable} of ${l.minimum} ${item.unit.en}`,
        `usable ${l.usable} < minimum ${l.minimum}`,
      );
    }
    const s = this.deps.settings;
    for (const r of lots) {
      const lot = this.lotView(r, today);
      const item = this.item(r.item_id);
      const area = alertArea(depotId, r.item_id, r.id);
      if (lot.expiry === 'expired') {
        put(
          SUPPLY_ALERT_TYPES.expired,
          'major',
          area,
          `${item.name.en} expired at ${where}: ${lot.quantity} ${item.unit.en}, lot ${r.id} (${lot.expiresOn})`,
          `expired on ${lot.expiresOn}`,
        );
      } else if (lot.expiry === 'minor' || lot.expiry === 'info') {
        put(
          SUPPLY_ALERT_TYPES.expiring,
          lot.expiry,
          area,
          `${item.name.en} expiring at ${where}: ${lot.quantity} ${item.unit.en}, lot ${r.id} on ${lot.expiresOn}`,
          `expires in ${lot.daysToExpiry} days (alert at ${lot.expiry === 'minor' ? s.expiringMinorDays : s.expiringInfoDays})`,
        );
      }
      if (lot.inspectionOverdue) {
        put(
          SUPPLY_ALERT_TYPES.inspectionOverdue,
          'minor',
          area,
          `${item.name.en} inspection overdue at ${where}: lot ${r.id} (due ${lot.inspectionDueOn})`,
          `inspection due ${lot.inspectionDueOn}`,
        );
      }
    }
    // what is open now, within the items looked at
    const itemSet = new Set(items);
    const active = await this.regDb
      .selectFrom('alert')
      .select(['key', 'severity', 'area_id', 'type'])
      .where('category', '=', 'supplies')
      .where('status', 'in', ['open', 'acknowledged'])
      .where('area_id', 'like', `supplies/${depotId}/%`)
      .execute();
    const open = new Map<string, { severity: Severity; type: string }>();
    for (const a of active) {
      const area = parseArea(a.area_id ?? undefined);
      if (area && area.depotId === depotId && itemSet.has(area.itemId)) {
        open.set(a.key, { severity: a.severity as Severity, type: a.type });
      }
    }
    for (const [key, input] of desired) {
      const cur = open.get(key);
      // already open at least as severe: nothing new to say (a repeat each day would only add noise)
      if (cur && SEVERITY_RANK[cur.severity] <= SEVERITY_RANK[input.severity]) continue;
      await sink.raise(input);
    }
    for (const [key, cur] of open) {
      if (desired.has(key)) continue;
      const reason =
        cur.type === SUPPLY_ALERT_TYPES.belowMinimum
          ? 'restocked: at or above the minimum'
          : cur.type === SUPPLY_ALERT_TYPES.inspectionOverdue
            ? 'inspected'
            : cur.type === SUPPLY_ALERT_TYPES.expiring
              ? 'no longer expiring soon (issued, disposed of, moved or expired)'
              : 'expired stock no longer held';
      await sink.clear(key, reason, now);
    }
  }

  // ------------------------------------------------------------------ internals

  private async lockLots(q: SupplyQ, ids: readonly string[]): Promise<void> {
    if (!this.store.postgres || ids.length === 0) return;
    await q
      .selectFrom('supply_lot')
      .select('id')
      .where('id', 'in', [...ids])
      .orderBy('id')
      .forUpdate()
      .execute();
  }

  /** A lot of the depot, locked for the transaction; not found when it is another depot's. */
  private async lockedLot(q: SupplyQ, depotId: string, lotId: string): Promise<LotRow> {
    const lot = await q
      .selectFrom('supply_lot')
      .selectAll()
      .where('id', '=', lotId)
      .$if(this.store.postgres, (b) => b.forUpdate())
      .executeTakeFirst();
    if (!lot || lot.depot_id !== depotId) {
      throw invalid([{ field: 'lotId', message: `no lot ${lotId} at depot ${depotId}` }]);
    }
    return lot;
  }

  private async balance(q: SupplyQ, lotId: string): Promise<number> {
    const r = await q.selectFrom('supply_lot').select('quantity').where('id', '=', lotId).executeTakeFirstOrThrow();
    return Number(r.quantity);
  }

  /**
   * Takes `n` units off a lot: a conditional update that only succeeds while the lot still holds them (the loser of
   * a race for the last units finds the condition false and its whole transaction rolls back).
   */
  private async decrement(q: SupplyQ, lotId: string, n: number, now: number): Promise<number> {
    const r = await q
      .updateTable('supply_lot')
      .set((eb) => ({ quantity: eb('quantity', '-', n), updated_at: now }))
      .where('id', '=', lotId)
      .where('quantity', '>=', n)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) {
      const have = await this.balance(q, lotId);
      throw new RegistryError('conflict', `lot ${lotId} holds only ${have}`, [
        { field: 'quantity', message: `at most ${have}` },
      ]);
    }
    return this.balance(q, lotId);
  }

  /** Takes `quantity` usable units (good, not expired): from one lot, or first expiring first out. */
  private async take(
    q: SupplyQ,
    depotId: string,
    itemId: string,
    quantity: number,
    today: string,
    lotId?: string,
  ): Promise<{ lotId: string; quantity: number; balanceAfter: number; receivedOn: string; expiresOn?: string }[]> {
    let query = q
      .selectFrom('supply_lot')
      .selectAll()
      .where('depot_id', '=', depotId)
      .where('item_id', '=', itemId)
      .where('quantity', '>', 0)
      .orderBy('id')
      .$if(this.store.postgres, (b) => b.forUpdate());
    if (lotId !== undefined) query = query.where('id', '=', lotId);
    const rows = await query.execute();
    if (lotId !== undefined && rows.length === 0) {
      const exists = await q
        .selectFrom('supply_lot')
        .select(['id', 'depot_id', 'item_id'])
        .where('id', '=', lotId)
        .executeTakeFirst();
      if (!exists || exists.depot_id !== depotId || exists.item_id !== itemId) {
        throw invalid([{ field: 'lotId', message: `no lot ${lotId} of ${itemId} at depot ${depotId}` }]);
      }
    }
    const usable = rows
      .filter((r) => r.condition === 'good' && (r.expires_on === null || r.expires_on >= today))
      .sort(
        (a, b) =>
          (a.expires_on ?? '9999-12-31').localeCompare(b.expires_on ?? '9999-12-31') ||
          a.received_on.localeCompare(b.received_on) ||
          a.id.localeCompare(b.id),
      );
    const have = usable.reduce((s, r) => s + Number(r.quantity), 0);
    if (have < quantity) {
      const held = rows.reduce((s, r) => s + Number(r.quantity), 0);
      const why = held > have ? ` (${held - have} more are expired, damaged or faulty)` : '';
      throw new RegistryError(
        'conflict',
        `only ${have} usable ${itemId} at depot ${depotId}${lotId ? ` in lot ${lotId}` : ''}${why}: nothing was issued`,
        [{ field: 'quantity', message: `at most ${have}`, available: have }],
      );
    }
    const now = this.now();
    const out: { lotId: string; quantity: number; balanceAfter: number; receivedOn: string; expiresOn?: string }[] = [];
    let left = quantity;
    for (const r of usable) {
      if (left === 0) break;
      const n = Math.min(left, Number(r.quantity));
      const balanceAfter = await this.decrement(q, r.id, n, now);
      const t: (typeof out)[number] = { lotId: r.id, quantity: n, balanceAfter, receivedOn: r.received_on };
      if (r.expires_on) t.expiresOn = r.expires_on;
      out.push(t);
      left -= n;
    }
    return out;
  }

  /** Appends one movement (never updated afterwards). */
  private async append(
    q: SupplyQ,
    opId: string,
    by: string,
    ts: number,
    m: Omit<Movement, 'lotId'> & { lotId?: string | null },
  ): Promise<void> {
    await q
      .insertInto('supply_movement')
      .values({
        id: newMovementId(ts),
        op_id: opId,
        ts,
        depot_id: m.depotId,
        item_id: m.itemId,
        lot_id: m.lotId ?? null,
        kind: m.kind,
        quantity: m.quantity,
        balance_after: m.balanceAfter,
        by,
        reason: m.reason ?? null,
        ref_kind: m.refId !== undefined ? (m.refKind ?? null) : null,
        ref_id: m.refId ?? null,
        transfer_id: m.transferId ?? null,
        corrects: m.corrects ?? null,
        data: m.data ? JSON.stringify(m.data) : null,
      })
      .execute();
  }

  /** After a committed operation: log, alerts, live message; returns the operation's movements and levels. */
  private async finish(
    kind: MovementKind,
    opId: string,
    depotId: string,
    itemIds: string[],
    by: string,
  ): Promise<OpResult> {
    const movements = await this.db
      .selectFrom('supply_movement')
      .selectAll()
      .where('op_id', '=', opId)
      .orderBy('id')
      .execute();
    const quantity = movements.reduce((s, m) => s + Number(m.quantity), 0);
    this.log.info({ event: 'supplies_movement', kind, opId, depotId, itemIds, quantity, by }, `stock ${kind}`);
    const levels = await this.afterChange(kind, [depotId], itemIds, by, opId);
    return { opId, movements: movements.map(movementView), levels: levels.filter((l) => l.depotId === depotId) };
  }

  /**
   * Alerts of the items concerned, then the live message. Errors are logged: the change is already committed.
   */
  private async afterChange(
    change: StockChange,
    depotIds: string[],
    itemIds: string[],
    by: string,
    opId?: string,
    opts: { transfer?: TransferView } = {},
  ): Promise<StockLevel[]> {
    // a depot is in service (checked against its minimums) from its first movement or transfer on
    if (change !== 'minimums') for (const d of depotIds) this.inService.add(d);
    for (const d of depotIds) {
      try {
        await this.evaluate(d, itemIds);
      } catch (err) {
        this.log.error({ err, depotId: d }, 'supplies: alert evaluation failed (the change is stored)');
      }
    }
    const levels = await this.levels(depotIds, itemIds);
    this.publish(change, depotIds, itemIds.length === 1 ? itemIds[0] : undefined, levels, by, opId, opts.transfer);
    return levels;
  }

  private publishTransfer(t: TransferView, by: string): void {
    void this.levels([t.fromDepotId, t.toDepotId], [t.itemId])
      .then((levels) => this.publish('transfer', [t.fromDepotId, t.toDepotId], t.itemId, levels, by, undefined, t))
      .catch((err: unknown) => this.log.warn({ err }, 'supplies: live transfer message not sent'));
  }

  private publish(
    change: StockChange,
    depotIds: string[],
    itemId: string | undefined,
    levels: StockLevel[],
    by: string,
    opId?: string,
    transfer?: TransferView,
  ): void {
    const live = this.deps.live;
    if (!live) return;
    const ev: StockEventBody = { change, depotIds, levels, by, at: new Date(this.now()).toISOString() };
    if (itemId) ev.itemId = itemId;
    if (opId) ev.opId = opId;
    if (transfer) {
      const { actions: _actions, ...rest } = transfer;
      ev.transfer = rest;
    }
    const grids = new Set<string>();
    for (const d of depotIds) for (const g of this.depotMap.get(d)?.gridIds ?? []) grids.add(g);
    try {
      live.stockChanged(ev, [...grids]);
    } catch (err) {
      this.log.warn({ err }, 'supplies: live stock message not sent');
    }
  }
}

/** Noon of a day in a time zone, as epoch ms (an inspection date without a time). */
function noonOf(day: string, tz: string): number {
  const guess = Date.parse(`${day}T12:00:00Z`);
  // shift by the zone's offset at that moment (whole hours are enough for noon to stay on the same day)
  const local = dayOf(guess, tz);
  return local === day ? guess : guess + (local > day ? -1 : 1) * 12 * 3_600_000;
}

function byExpiry(a: LotView, b: LotView): number {
  return (
    (a.expiresOn ?? '9999-12-31').localeCompare(b.expiresOn ?? '9999-12-31') ||
    a.itemId.localeCompare(b.itemId) ||
    a.receivedOn.localeCompare(b.receivedOn) ||
    a.id.localeCompare(b.id)
  );
}
