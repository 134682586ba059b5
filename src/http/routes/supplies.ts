/**
 * Emergency supplies (issue 7) under /api/v1/supplies: catalogue, depots and their stock, lots, the movement ledger,
 * minimum levels, shortfalls per community, mutual aid (sources, transfers), the expiry calendar, CSV import of a
 * stock count and the stock report (CSV, printable HTML).
 *
 * Who may do what:
 * - read: every signed-in staff member sees the depots over their own grids (their community's, its street's and
 *   district's). The all-seeing roles (admin, director, duty officer, committee member, drill controller,
 *   evaluator) and depot keepers see every depot — keepers need the neighbours' stock for mutual aid. Stock is not
 *   personal data; keepers' names are masked.
 * - record movements (receive, issue, return, dispose, inspect, adjust) and import: the depot's keeper, the
 *   director of the depot's community (their coverage) and admins.
 * - minimum levels: the director of the depot's community and admins (not the keeper: the bar they are measured by).
 * - transfers: requested and received by the destination's managers, approved / declined / dispatched by the
 *   source's managers; cancelled (before dispatch) by the destination's managers or an admin.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import type { Scope, Staff } from '../../registry/port.ts';
import { LEVELS } from '../../supplies/config.ts';
import { type ImportLine, parseStockCsv, reportCsv } from '../../supplies/csv.ts';
import { reportHtml } from '../../supplies/report.ts';
import {
  CatalogueViewSchema,
  DepotAlertSchema,
  type DepotView,
  DepotViewSchema,
  LotViewSchema,
  MovementViewSchema,
  OpResultSchema,
  type StockLevel,
  StockLevelSchema,
  TextSchema,
  type TransferView,
  TransferViewSchema,
} from '../../supplies/schemas.ts';
import { DISPOSE_REASONS, type DepotInfo, ISSUE_TO, type SupplyService } from '../../supplies/service.ts';
import { CONDITIONS, MOVEMENT_KINDS, TRANSFER_STATUSES } from '../../supplies/store.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError } from '../app.ts';
import { PageQuery, pageOf, responses } from '../schemas.ts';
import { parseTime } from './readings.ts';

/** Roles that read every depot. */
const READ_ALL_ROLES = [
  'admin',
  'community_director',
  'street_duty_officer',
  'committee_member',
  'drill_controller',
  'evaluator',
  'depot_keeper',
] as const;

const Id = Type.String({ minLength: 1, maxLength: 100 });
const Day = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'YYYY-MM-DD' });
const Reason = Type.String({ minLength: 1, maxLength: 500 });
const Lang = Type.Optional(Type.Enum(['zh', 'en']));
const IdParams = Type.Object({ id: Id });
const Quantity = (description: string) => Type.Integer({ description });

const DepotDetailSchema = Type.Object({
  ...DepotViewSchema.properties,
  levels: Type.Array(StockLevelSchema),
  alerts: Type.Array(DepotAlertSchema),
  /** transfers to or from it that are not finished */
  transfers: Type.Array(TransferViewSchema),
});

const MinimumSchema = Type.Object({
  itemId: Type.String(),
  minimum: Type.Integer({ description: 'the units it asks for now' }),
  source: Type.Enum(['override', 'quota', 'none']),
  mode: Type.Optional(Type.Enum(['absolute', 'per1000'])),
  value: Type.Optional(Type.Number()),
  quota: Type.Optional(Type.Object({ absolute: Type.Optional(Type.Integer()), per1000: Type.Optional(Type.Number()) })),
  setBy: Type.Optional(Type.String()),
  setAt: Type.Optional(Type.String()),
});
const MinimumsSchema = Type.Object({
  depotId: Type.String(),
  population: Type.Integer(),
  items: Type.Array(MinimumSchema),
});

const SourceSchema = Type.Object({
  rank: Type.Integer(),
  kind: Type.Enum(['depot', 'agreement']),
  relation: Type.Enum(['own', 'same_street', 'street', 'district', 'other']),
  depotId: Type.String(),
  depotName: TextSchema,
  level: Type.Enum([...LEVELS]),
  communityId: Type.Optional(Type.String()),
  communityName: Type.Optional(TextSchema),
  usable: Type.Optional(Type.Integer()),
  minimum: Type.Optional(Type.Integer()),
  spare: Type.Optional(Type.Integer({ description: 'what it can give and stay at its own minimum' })),
  nextExpiry: Type.Optional(Type.String()),
  keeper: Type.Optional(Type.Object({ id: Type.String(), username: Type.String(), name: Type.String() })),
  agreementId: Type.Optional(Type.String()),
  supplier: Type.Optional(Type.String()),
  contact: Type.Optional(Type.String()),
  quantity: Type.Optional(Type.Integer()),
  withinHours: Type.Optional(Type.Number()),
});

const ShortfallSchema = Type.Object({
  communityId: Type.String(),
  name: TextSchema,
  inRegistry: Type.Boolean(),
  streetId: Type.Optional(Type.String()),
  population: Type.Integer(),
  depotIds: Type.Array(Type.String()),
  lines: Type.Array(
    Type.Object({
      itemId: Type.String(),
      minimum: Type.Integer(),
      available: Type.Integer(),
      incoming: Type.Integer(),
      shortfall: Type.Integer(),
    }),
  ),
  short: Type.Integer({ description: 'items below their minimum' }),
});

const CalendarMonthSchema = Type.Object({
  month: Type.String({ description: 'YYYY-MM, or `expired`' }),
  lots: Type.Array(
    Type.Object({
      lotId: Type.String(),
      depotId: Type.String(),
      itemId: Type.String(),
      quantity: Type.Integer(),
      expiresOn: Type.String(),
    }),
  ),
  totals: Type.Array(Type.Object({ itemId: Type.String(), quantity: Type.Integer() })),
});

const ScopeQuery = {
  depotId: Type.Optional(Id),
  communityId: Type.Optional(Id),
};

type DepotDetail = Static<typeof DepotDetailSchema>;

function staffOf(req: FastifyRequest): Staff {
  if (!req.staff) throw new HttpError(401, 'unauthorized', 'sign in first');
  return req.staff;
}

export const supplyRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps; supplies: SupplyService }> = async (
  app,
  { supplies },
) => {
  app.addHook('preHandler', app.authenticate);
  // a stock count arrives as CSV (or as JSON {csv})
  app.addContentTypeParser(
    ['text/csv', 'text/plain'],
    { parseAs: 'string', bodyLimit: 5_242_880 },
    (_req, body, done) => done(null, body),
  );

  const canRead = (staff: Staff, scope: Scope, d: DepotInfo): boolean =>
    scope.all ||
    staff.roles.some((r) => (READ_ALL_ROLES as readonly string[]).includes(r)) ||
    d.gridIds.some((g) => scope.gridIds.includes(g));

  const canManage = (staff: Staff, d: DepotInfo): boolean =>
    staff.roles.includes('admin') ||
    (d.keeper !== undefined && d.keeper.id === staff.id && staff.roles.includes('depot_keeper')) ||
    (staff.roles.includes('community_director') &&
      d.communityId !== undefined &&
      staff.coverage.communityIds.includes(d.communityId));

  const canSetMinimums = (staff: Staff, d: DepotInfo): boolean =>
    staff.roles.includes('admin') ||
    (staff.roles.includes('community_director') &&
      d.communityId !== undefined &&
      staff.coverage.communityIds.includes(d.communityId));

  /** A depot named in the path, if the caller may see it. */
  const readable = (req: FastifyRequest, id: string): DepotInfo => {
    const d = supplies.depots().find((x) => x.id === id);
    if (!d) throw new HttpError(404, 'not_found', `no depot ${id}`);
    if (!canRead(staffOf(req), req.scope!, d))
      throw new HttpError(403, 'forbidden', `depot ${id} is outside your area`);
    return d;
  };

  /** A depot the caller records movements at (403 when they may not; unknown ids are the service's 400). */
  const managed = (req: FastifyRequest, id: string): void => {
    const d = supplies.depots().find((x) => x.id === id);
    if (!d) return;
    if (!canManage(staffOf(req), d)) {
      throw new HttpError(
        403,
        'forbidden',
        `only the keeper of ${id}, its community's director or an admin may do this`,
      );
    }
  };

  /** The depots the caller may read, narrowed by ?depotId / ?communityId. */
  const readableDepots = (req: FastifyRequest, q: { depotId?: string; communityId?: string }): DepotInfo[] => {
    if (q.depotId) return [readable(req, q.depotId)];
    const staff = staffOf(req);
    return supplies
      .depots()
      .filter((d) => canRead(staff, req.scope!, d))
      .filter((d) => !q.communityId || d.communityId === q.communityId);
  };

  const depotView = (
    staff: Staff,
    d: DepotInfo,
    levels: StockLevel[],
    counts: Map<string, { alerts: number; transfers: number }>,
  ): DepotView => {
    const mine = levels.filter((l) => l.depotId === d.id);
    const v: DepotView = {
      id: d.id,
      name: d.name,
      level: d.level,
      inRegistry: d.inRegistry,
      address: d.address,
      population: d.population,
      populationSource: d.populationSource,
      agreements: d.agreements,
      canManage: canManage(staff, d),
      summary: {
        items: mine.filter((l) => l.total > 0).length,
        belowMinimum: mine.filter((l) => l.belowMinimum).length,
        expiringMinor: mine.filter((l) => l.expiringMinor > 0).length,
        expired: mine.filter((l) => l.expired > 0).length,
        inspectionOverdue: mine.filter((l) => l.inspectionOverdue > 0).length,
        openAlerts: counts.get(d.id)?.alerts ?? 0,
        openTransfers: counts.get(d.id)?.transfers ?? 0,
      },
    };
    if (d.communityId) v.communityId = d.communityId;
    if (d.communityName) v.communityName = d.communityName;
    if (d.streetId) v.streetId = d.streetId;
    if (d.districtId) v.districtId = d.districtId;
    if (d.keeper) v.keeper = d.keeper;
    return v;
  };

  const actionsOf = (staff: Staff, t: TransferView): TransferView['actions'] => {
    const from = supplies.depots().find((d) => d.id === t.fromDepotId);
    const to = supplies.depots().find((d) => d.id === t.toDepotId);
    const src = from !== undefined && canManage(staff, from);
    const dst = to !== undefined && canManage(staff, to);
    const out: TransferView['actions'] = [];
    if (t.status === 'requested' && src) out.push('approve', 'decline');
    if (t.status === 'approved' && src) out.push('dispatch');
    if (t.status === 'in_transit' && dst) out.push('receive');
    if ((t.status === 'requested' || t.status === 'approved') && (dst || staff.roles.includes('admin'))) {
      out.push('cancel');
    }
    return out;
  };
  const withActions = (req: FastifyRequest, t: TransferView): TransferView => ({
    ...t,
    actions: actionsOf(staffOf(req), t),
  });

  // ---------------------------------------------------------------- catalogue, depots, lots

  app.get(
    '/supplies/catalogue',
    {
      schema: {
        tags: ['supplies'],
        summary: 'The supply catalogue (config/supplies/catalogue.yaml) and the quotas per reserve level',
        response: responses({ 200: CatalogueViewSchema }),
      },
    },
    async () => {
      const c = supplies.catalogue();
      const s = supplies.settings();
      const quotas = (level: (typeof LEVELS)[number]) =>
        Object.entries(c.quotas[level]).map(([itemId, q]) => ({ itemId, ...q }));
      return {
        items: c.items,
        quotas: { community: quotas('community'), street: quotas('street'), district: quotas('district') },
        expiring: { infoDays: s.expiringInfoDays, minorDays: s.expiringMinorDays },
      };
    },
  );

  app.get(
    '/supplies/depots',
    {
      schema: {
        tags: ['supplies'],
        summary: 'Depots you may see, with a stock summary',
        querystring: Type.Object(
          {
            level: Type.Optional(Type.Enum([...LEVELS])),
            communityId: Type.Optional(Id),
            streetId: Type.Optional(Id),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Object({ items: Type.Array(DepotViewSchema) }) }),
      },
    },
    async (req) => {
      const staff = staffOf(req);
      const { level, communityId, streetId } = req.query;
      const depots = supplies
        .depots()
        .filter((d) => canRead(staff, req.scope!, d))
        .filter((d) => (!level || d.level === level) && (!communityId || d.communityId === communityId))
        .filter((d) => !streetId || d.streetId === streetId);
      const levels = await supplies.levels(depots.map((d) => d.id));
      const counts = await supplies.depotCounts();
      return { items: depots.map((d) => depotView(staff, d, levels, counts)) };
    },
  );

  app.get(
    '/supplies/depots/:id',
    {
      schema: {
        tags: ['supplies'],
        summary: 'One depot: every catalogue item against its minimum, open alerts, unfinished transfers',
        params: IdParams,
        response: responses({ 200: DepotDetailSchema }),
      },
    },
    async (req): Promise<DepotDetail> => {
      const d = readable(req, req.params.id);
      const staff = staffOf(req);
      const levels = await supplies.levels([d.id]);
      const counts = await supplies.depotCounts();
      const alerts = await supplies.depotAlerts([d.id]);
      const transfers = (
        await Promise.all(
          (['requested', 'approved', 'in_transit'] as const).map((status) =>
            supplies.transfers({ depotIds: [d.id], status }, { limit: 200 }),
          ),
        )
      ).flatMap((p) => p.items.map((t) => withActions(req, t)));
      return { ...depotView(staff, d, levels, counts), levels, alerts, transfers };
    },
  );

  app.get(
    '/supplies/depots/:id/lots',
    {
      schema: {
        tags: ['supplies'],
        summary: 'The lots of a depot, soonest expiry first, with expiry colour and inspection due',
        params: IdParams,
        querystring: Type.Object(
          { itemId: Type.Optional(Id), includeEmpty: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Object({ items: Type.Array(LotViewSchema) }) }),
      },
    },
    async (req) => {
      const d = readable(req, req.params.id);
      return { items: await supplies.lots(d.id, req.query) };
    },
  );

  // ---------------------------------------------------------------- minimums

  app.get(
    '/supplies/depots/:id/minimums',
    {
      schema: {
        tags: ['supplies'],
        summary: 'Minimum levels of a depot: overrides, else the level’s quota for the population it serves',
        params: IdParams,
        response: responses({ 200: MinimumsSchema }),
      },
    },
    async (req) => {
      const d = readable(req, req.params.id);
      const m = (await supplies.minimums([d.id])).get(d.id)!;
      return { depotId: d.id, population: d.population, items: [...m.values()] };
    },
  );

  app.put(
    '/supplies/depots/:id/minimums',
    {
      schema: {
        tags: ['supplies'],
        summary:
          'Override minimum levels (director of the community, admin): absolute units, per 1,000 residents, or back to the quota',
        params: IdParams,
        body: Type.Object(
          {
            items: Type.Array(
              Type.Object(
                {
                  itemId: Id,
                  mode: Type.Enum(['absolute', 'per1000', 'quota']),
                  value: Type.Optional(Type.Number({ description: 'units (absolute) or units per 1,000 residents' })),
                },
                { additionalProperties: false },
              ),
              { minItems: 1, maxItems: 500 },
            ),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: MinimumsSchema }),
      },
    },
    async (req) => {
      const d = readable(req, req.params.id);
      const staff = staffOf(req);
      if (!canSetMinimums(staff, d)) {
        throw new HttpError(403, 'forbidden', 'minimum levels are set by the community’s director or an admin');
      }
      const items = await supplies.setMinimums(d.id, req.body.items, staff.id);
      return { depotId: d.id, population: d.population, items };
    },
  );

  // ---------------------------------------------------------------- movements

  app.post(
    '/supplies/movements/receive',
    {
      schema: {
        tags: ['supplies'],
        summary: 'Receive a delivery as a new lot (keeper, director, admin)',
        body: Type.Object(
          {
            depotId: Id,
            itemId: Id,
            quantity: Quantity('units, 1–1000000'),
            receivedOn: Type.Optional(Day),
            expiresOn: Type.Optional({ ...Day, description: 'default: receivedOn + the item’s shelf life' }),
            condition: Type.Optional(Type.Enum([...CONDITIONS])),
            lastInspectedOn: Type.Optional(Day),
            source: Type.Optional(Type.String({ maxLength: 100, description: 'supplier, donation, purchase …' })),
            reason: Type.Optional(Reason),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: OpResultSchema }),
      },
    },
    async (req, reply) => {
      managed(req, req.body.depotId);
      return reply.code(201).send(await supplies.receive(req.body, staffOf(req).id));
    },
  );

  app.post(
    '/supplies/movements/issue',
    {
      schema: {
        tags: ['supplies'],
        summary:
          'Issue units to a drill, an incident or a person (a reference, not a name): first expiring first out, or from one lot',
        body: Type.Object(
          {
            depotId: Id,
            itemId: Id,
            quantity: Quantity('units, 1–1000000'),
            lotId: Type.Optional(Id),
            to: Type.Object(
              {
                kind: Type.Enum([...ISSUE_TO]),
                ref: Type.String({
                  minLength: 1,
                  maxLength: 100,
                  description: 'the drill id, incident / alert id, or an id for the person (household, staff)',
                }),
              },
              { additionalProperties: false },
            ),
            reason: Type.Optional(Reason),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: OpResultSchema }),
      },
    },
    async (req, reply) => {
      managed(req, req.body.depotId);
      return reply.code(201).send(await supplies.issue(req.body, staffOf(req).id));
    },
  );

  app.post(
    '/supplies/movements/return',
    {
      schema: {
        tags: ['supplies'],
        summary: 'Units coming back from an issue (its opId), into the lots they left',
        body: Type.Object(
          {
            depotId: Id,
            issueId: Id,
            quantity: Quantity('units, at most what is still out'),
            reason: Type.Optional(Reason),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: OpResultSchema }),
      },
    },
    async (req, reply) => {
      managed(req, req.body.depotId);
      return reply.code(201).send(await supplies.returnIssued(req.body, staffOf(req).id));
    },
  );

  app.post(
    '/supplies/movements/dispose',
    {
      schema: {
        tags: ['supplies'],
        summary: 'Dispose of a lot or part of it: expired, damaged, faulty',
        body: Type.Object(
          {
            depotId: Id,
            lotId: Id,
            quantity: Type.Optional(Quantity('default: the whole lot')),
            reason: Type.Enum([...DISPOSE_REASONS]),
            note: Type.Optional(Reason),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: OpResultSchema }),
      },
    },
    async (req, reply) => {
      managed(req, req.body.depotId);
      return reply.code(201).send(await supplies.dispose(req.body, staffOf(req).id));
    },
  );

  app.post(
    '/supplies/movements/inspect',
    {
      schema: {
        tags: ['supplies'],
        summary: 'Record an inspection (pressure check, test run): pass, or fail (the lot becomes faulty)',
        body: Type.Object(
          { depotId: Id, lotId: Id, result: Type.Enum(['pass', 'fail']), note: Type.Optional(Reason) },
          { additionalProperties: false },
        ),
        response: responses({ 201: OpResultSchema }),
      },
    },
    async (req, reply) => {
      managed(req, req.body.depotId);
      return reply.code(201).send(await supplies.inspect(req.body, staffOf(req).id));
    },
  );

  app.post(
    '/supplies/movements/adjust',
    {
      schema: {
        tags: ['supplies'],
        summary: 'A count: the lot is set to what was counted, the difference recorded with the reason',
        body: Type.Object(
          {
            depotId: Id,
            lotId: Id,
            countedQuantity: Quantity('what the count found, 0–1000000'),
            reason: Reason,
            corrects: Type.Optional({ ...Id, description: 'the movement (id or opId) this corrects' }),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: OpResultSchema }),
      },
    },
    async (req, reply) => {
      managed(req, req.body.depotId);
      return reply.code(201).send(await supplies.adjust(req.body, staffOf(req).id));
    },
  );

  app.get(
    '/supplies/movements',
    {
      schema: {
        tags: ['supplies'],
        summary: 'The ledger, newest first (keyset-paged): filters depot, item, lot, kind, transfer, since/until',
        querystring: Type.Object(
          {
            depotId: Type.Optional(Id),
            communityId: Type.Optional(Id),
            itemId: Type.Optional(Id),
            lotId: Type.Optional(Id),
            kind: Type.Optional(Type.Enum([...MOVEMENT_KINDS])),
            transferId: Type.Optional(Id),
            opId: Type.Optional(Id),
            since: Type.Optional(Type.String({ description: 'ISO-8601 or epoch ms' })),
            until: Type.Optional(Type.String({ description: 'ISO-8601 or epoch ms (exclusive)' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: pageOf(MovementViewSchema) }),
      },
    },
    async (req) => {
      const { since, until, limit = 100, cursor, depotId, communityId, ...filter } = req.query;
      const times: { since?: number; until?: number } = {};
      for (const [k, v] of [
        ['since', since],
        ['until', until],
      ] as const) {
        if (v === undefined) continue;
        const t = parseTime(v);
        if (t === undefined) throw new HttpError(400, 'bad_request', `${k}: not a time (ISO-8601 or epoch ms)`);
        times[k] = t;
      }
      const depotIds = readableDepots(req, { depotId, communityId }).map((d) => d.id);
      return supplies.ledger({ ...filter, ...times, depotIds }, { limit, cursor });
    },
  );

  // ---------------------------------------------------------------- shortfalls, sources, calendar

  app.get(
    '/supplies/shortfalls',
    {
      schema: {
        tags: ['supplies'],
        summary: 'Per community: the population-based minimums against what its depots hold',
        querystring: Type.Object({ communityId: Type.Optional(Id) }, { additionalProperties: false }),
        response: responses({ 200: Type.Object({ items: Type.Array(ShortfallSchema) }) }),
      },
    },
    async (req) => {
      const staff = staffOf(req);
      const all = await supplies.shortfalls(req.query.communityId);
      const wide = req.scope!.all || staff.roles.some((r) => (READ_ALL_ROLES as readonly string[]).includes(r));
      if (wide) return { items: all };
      // everyone else: the communities over their grids
      const mine = new Set(
        supplies
          .depots()
          .filter((d) => d.level === 'community' && d.gridIds.some((g) => req.scope!.gridIds.includes(g)))
          .map((d) => d.communityId),
      );
      return { items: all.filter((c) => mine.has(c.communityId)) };
    },
  );

  app.get(
    '/supplies/depots/:id/sources',
    {
      schema: {
        tags: ['supplies'],
        summary:
          'Mutual aid: where an item is in stock near a depot — same-street communities, the street, the district, then supplier agreements',
        params: IdParams,
        querystring: Type.Object({ itemId: Id }, { additionalProperties: false }),
        response: responses({
          200: Type.Object({
            depotId: Type.String(),
            itemId: Type.String(),
            level: StockLevelSchema,
            sources: Type.Array(SourceSchema),
          }),
        }),
      },
    },
    async (req) => {
      const d = readable(req, req.params.id);
      const [level] = await supplies.levels([d.id], [supplies.item(req.query.itemId).id]);
      return {
        depotId: d.id,
        itemId: req.query.itemId,
        level: level!,
        sources: await supplies.sources(d.id, req.query.itemId),
      };
    },
  );

  app.get(
    '/supplies/expiry-calendar',
    {
      schema: {
        tags: ['supplies'],
        summary: 'Lots and quantities expiring per month for the next months (12 by default); expired lots apart',
        querystring: Type.Object(
          { ...ScopeQuery, months: Type.Optional(Type.Integer({ minimum: 1, maximum: 36 })) },
          { additionalProperties: false },
        ),
        response: responses({
          200: Type.Object({
            from: Type.String(),
            months: Type.Array(CalendarMonthSchema),
            expired: CalendarMonthSchema,
          }),
        }),
      },
    },
    async (req) => {
      const depots = readableDepots(req, req.query);
      return supplies.expiryCalendar(
        depots.map((d) => d.id),
        req.query.months ?? 12,
      );
    },
  );

  // ---------------------------------------------------------------- transfers

  app.post(
    '/supplies/transfers',
    {
      schema: {
        tags: ['supplies'],
        summary: 'Request a transfer from another depot (the destination’s keeper, director, admin)',
        body: Type.Object(
          {
            fromDepotId: Id,
            toDepotId: Id,
            itemId: Id,
            quantity: Quantity('units, 1–1000000'),
            reason: Type.Optional(Reason),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: TransferViewSchema }),
      },
    },
    async (req, reply) => {
      const to = supplies.depots().find((d) => d.id === req.body.toDepotId);
      if (to && !canManage(staffOf(req), to)) {
        throw new HttpError(403, 'forbidden', `only the managers of ${to.id} request transfers to it`);
      }
      const t = await supplies.requestTransfer(req.body, staffOf(req).id);
      return reply.code(201).send(withActions(req, t));
    },
  );

  app.get(
    '/supplies/transfers',
    {
      schema: {
        tags: ['supplies'],
        summary: 'Transfers to or from depots you may see, newest first (keyset-paged)',
        querystring: Type.Object(
          {
            ...ScopeQuery,
            status: Type.Optional(Type.Enum([...TRANSFER_STATUSES])),
            itemId: Type.Optional(Id),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: pageOf(TransferViewSchema) }),
      },
    },
    async (req) => {
      const { depotId, communityId, status, itemId, limit = 100, cursor } = req.query;
      const depotIds = readableDepots(req, { depotId, communityId }).map((d) => d.id);
      const page = await supplies.transfers({ depotIds, status, itemId }, { limit, cursor });
      return { ...page, items: page.items.map((t) => withActions(req, t)) };
    },
  );

  /** The transfer, if the caller may see one of its depots. */
  const visibleTransfer = async (req: FastifyRequest, id: string): Promise<TransferView> => {
    const t = await supplies.transfer(id);
    const staff = staffOf(req);
    const ok = [t.fromDepotId, t.toDepotId].some((dId) => {
      const d = supplies.depots().find((x) => x.id === dId);
      return d !== undefined && canRead(staff, req.scope!, d);
    });
    if (!ok) throw new HttpError(403, 'forbidden', `transfer ${id} is outside your area`);
    return t;
  };

  app.get(
    '/supplies/transfers/:id',
    {
      schema: {
        tags: ['supplies'],
        summary: 'One transfer with its states and the lots that moved',
        params: IdParams,
        response: responses({ 200: TransferViewSchema }),
      },
    },
    async (req) => withActions(req, await visibleTransfer(req, req.params.id)),
  );

  const ACTIONS = {
    approve: {
      summary: 'Approve a request (the source depot’s keeper, director, admin); {dispatch: true} sends it at once',
      side: 'from',
    },
    decline: { summary: 'Decline a request, with the reason (the source depot’s managers)', side: 'from' },
    dispatch: { summary: 'Send it: the units leave the source depot and are in transit', side: 'from' },
    receive: { summary: 'It arrived: the units become lots at the destination', side: 'to' },
    cancel: { summary: 'Cancel before it is sent (the destination’s managers, admin)', side: 'to' },
  } as const;

  for (const [action, spec] of Object.entries(ACTIONS) as [
    keyof typeof ACTIONS,
    (typeof ACTIONS)[keyof typeof ACTIONS],
  ][]) {
    app.post(
      `/supplies/transfers/:id/${action}`,
      {
        preValidation: async (req) => {
          // no body at all is an empty one (the note is optional, but for a decline)
          (req as { body: unknown }).body ??= {};
        },
        schema: {
          tags: ['supplies'],
          summary: spec.summary,
          params: IdParams,
          body: Type.Object(
            {
              note: action === 'decline' ? Reason : Type.Optional(Reason),
              ...(action === 'approve' ? { dispatch: Type.Optional(Type.Boolean()) } : {}),
            },
            { additionalProperties: false },
          ),
          response: responses({ 200: TransferViewSchema }),
        },
      },
      async (req) => {
        const staff = staffOf(req);
        const t = await visibleTransfer(req, req.params.id);
        const body = req.body as { note?: string; dispatch?: boolean };
        const depot = supplies.depots().find((d) => d.id === (spec.side === 'from' ? t.fromDepotId : t.toDepotId));
        const allowed =
          (depot !== undefined && canManage(staff, depot)) || (action === 'cancel' && staff.roles.includes('admin'));
        if (!allowed) {
          const who = spec.side === 'from' ? 'the source depot’s' : 'the destination’s';
          throw new HttpError(
            403,
            'forbidden',
            `only ${who} keeper, its community's director or an admin may ${action} it`,
          );
        }
        let out: TransferView;
        if (action === 'approve') {
          if (body.dispatch && t.status === 'requested') {
            // approve-and-send: refuse both rather than approve what cannot leave
            const [level] = await supplies.levels([t.fromDepotId], [t.itemId]);
            if ((level?.usable ?? 0) < t.quantity) {
              throw new HttpError(
                409,
                'conflict',
                `only ${level?.usable ?? 0} usable ${t.itemId} at depot ${t.fromDepotId}: not approved`,
              );
            }
          }
          out = await supplies.approveTransfer(t.id, staff.id, body.note);
          if (body.dispatch) out = await supplies.dispatchTransfer(t.id, staff.id);
        } else if (action === 'decline') out = await supplies.declineTransfer(t.id, staff.id, body.note ?? '');
        else if (action === 'dispatch') out = await supplies.dispatchTransfer(t.id, staff.id);
        else if (action === 'receive') out = await supplies.receiveTransfer(t.id, staff.id, body.note);
        else out = await supplies.cancelTransfer(t.id, staff.id, body.note);
        return withActions(req, out);
      },
    );
  }

  // ---------------------------------------------------------------- import, report

  app.post(
    '/supplies/import',
    {
      schema: {
        tags: ['supplies'],
        summary:
          'Import a stock count (text/csv, or JSON {csv}): depot_id, item_id, quantity, received_on, expires_on, condition, last_inspected_on, note. All or nothing; ?dryRun=true only checks',
        querystring: Type.Object({ dryRun: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: responses({
          200: Type.Object({ dryRun: Type.Literal(true), lines: Type.Integer(), depotIds: Type.Array(Type.String()) }),
          201: Type.Object({
            opId: Type.String(),
            lots: Type.Integer(),
            depotIds: Type.Array(Type.String()),
          }),
        }),
      },
    },
    async (req, reply) => {
      const staff = staffOf(req);
      const body = req.body as unknown;
      const csv =
        typeof body === 'string'
          ? body
          : body && typeof body === 'object' && typeof (body as { csv?: unknown }).csv === 'string'
            ? (body as { csv: string }).csv
            : undefined;
      if (csv === undefined) {
        throw new HttpError(400, 'bad_request', 'send the CSV as text/csv, or as JSON {"csv": "…"}');
      }
      const parsed = parseStockCsv(csv, {
        catalogue: supplies.catalogue(),
        today: supplies.today(),
        depotOk: (id) => {
          const d = supplies.depots().find((x) => x.id === id);
          if (!d) return `unknown depot "${id}"`;
          return canManage(staff, d) ? undefined : `you may not stock depot ${id}`;
        },
      });
      if ('errors' in parsed) {
        const n = parsed.errors.length;
        throw new HttpError(
          400,
          'invalid',
          `${n} problem${n === 1 ? '' : 's'} in the file; nothing was imported (first: line ${parsed.errors[0]!.line}${parsed.errors[0]!.column ? `, ${parsed.errors[0]!.column}` : ''}: ${parsed.errors[0]!.message})`,
          parsed.errors,
        );
      }
      const lines: ImportLine[] = parsed.lines;
      const depotIds = [...new Set(lines.map((l) => l.depotId))];
      if (req.query.dryRun) return reply.code(200).send({ dryRun: true as const, lines: lines.length, depotIds });
      return reply.code(201).send(await supplies.receiveMany(lines, staff.id));
    },
  );

  const reportData = async (req: FastifyRequest, q: { depotId?: string; communityId?: string }) => {
    const staff = staffOf(req);
    const depots = readableDepots(req, q);
    const ids = depots.map((d) => d.id);
    const levels = await supplies.levels(ids);
    const counts = await supplies.depotCounts();
    const lots = (await Promise.all(ids.map((id) => supplies.lots(id)))).flat();
    return {
      depots: depots.map((d) => depotView(staff, d, levels, counts)),
      levels,
      lots,
      catalogue: supplies.catalogue(),
      today: supplies.today(),
      generatedAt: new Date().toISOString(),
    };
  };

  app.get(
    '/supplies/report.csv',
    {
      schema: {
        tags: ['supplies'],
        summary: 'The stock report as CSV (UTF-8 with BOM): one row per depot and item, or ?detail=lots one per lot',
        querystring: Type.Object(
          { ...ScopeQuery, detail: Type.Optional(Type.Enum(['items', 'lots'])), lang: Lang },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const data = await reportData(req, req.query);
      const detail = req.query.detail ?? 'items';
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="stock-${detail}-${data.today}.csv"`)
        .send(reportCsv(data, detail, req.query.lang ?? 'zh'));
    },
  );

  app.get(
    '/supplies/report.html',
    {
      schema: {
        tags: ['supplies'],
        summary: 'The stock report as a printable page (Chinese; ?lang=en for English)',
        querystring: Type.Object({ ...ScopeQuery, lang: Lang }, { additionalProperties: false }),
      },
    },
    async (req, reply) => {
      const data = await reportData(req, req.query);
      return reply.type('text/html; charset=utf-8').send(reportHtml(data, req.query.lang ?? 'zh'));
    },
  );
};
