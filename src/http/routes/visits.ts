import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { OverdueHousehold, VisitsService } from '../../visits/service.ts';
import { VISIT_OUTCOMES } from '../../visits/service.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, inScope, scopeOf } from '../app.ts';
import { responses } from '../schemas.ts';
import { ALERT_ACTOR_ROLES } from './alerts.ts';
import { parseTime } from './readings.ts';

const Visit = Type.Object({
  id: Type.String(),
  householdId: Type.String(),
  staffId: Type.String(),
  ts: Type.String(),
  outcome: Type.String(),
  notes: Type.Optional(Type.String()),
  alertId: Type.Optional(Type.String()),
});
const Away = Type.Object({
  id: Type.String(),
  householdId: Type.String(),
  from: Type.String(),
  until: Type.String(),
  reason: Type.String(),
  createdBy: Type.String(),
  ended: Type.Optional(Type.String()),
});
const Overdue = Type.Object({
  householdId: Type.String(),
  colour: Type.String(),
  gridId: Type.String(),
  lastVisit: Type.Optional(Type.String()),
  dueAt: Type.String(),
  overdueDays: Type.Number(),
});
const HouseholdParams = Type.Object({ id: Type.String() });

export interface VisitDeps {
  visits: VisitsService;
  /** cadence per colour class from the rules config */
  cadenceDays: () => Record<OverdueHousehold['colour'], number>;
}

/** Visits (五色五访) and away periods of households, for the staff who look after them. */
export const visitRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.addHook('preHandler', app.authenticate);

  /** The household must exist and be in the caller's grids. */
  const inScopeHousehold = async (req: Parameters<typeof scopeOf>[0], id: string) => {
    const h = await deps.registry.getHousehold(id);
    if (!h) throw new HttpError(404, 'not_found', `no household ${id}`);
    if (!inScope(scopeOf(req), h.gridId))
      throw new HttpError(403, 'forbidden', `household ${id} is outside your grids`);
    return h;
  };
  const time = (value: string | undefined, name: string) => {
    if (value === undefined) return undefined;
    const t = parseTime(value);
    if (t === undefined)
      throw new HttpError(400, 'bad_request', `${name}: "${value}" is neither ISO-8601 nor epoch ms`);
    return t;
  };

  app.post(
    '/households/:id/visits',
    {
      // evaluators watch, they do not act: an away period silences a home's rules
      preHandler: app.requireRoles(...ALERT_ACTOR_ROLES),
      schema: {
        tags: ['visits'],
        summary: 'Record a home visit',
        params: HouseholdParams,
        body: Type.Object(
          {
            outcome: Type.Enum([...VISIT_OUTCOMES]),
            notes: Type.Optional(Type.String({ maxLength: 2000 })),
            ts: Type.Optional(Type.String({ description: 'when it happened (ISO-8601 or epoch ms); default now' })),
            alertId: Type.Optional(Type.String()),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: Visit }),
      },
    },
    async (req, reply) => {
      await inScopeHousehold(req, req.params.id);
      const visit = await deps.visits.recordVisit(req.params.id, req.staff!.id, {
        outcome: req.body.outcome,
        notes: req.body.notes,
        alertId: req.body.alertId,
        ts: time(req.body.ts, 'ts'),
      });
      return reply.code(201).send(visit);
    },
  );

  app.get(
    '/households/:id/visits',
    {
      schema: {
        tags: ['visits'],
        summary: 'Recent visits of a household',
        params: HouseholdParams,
        response: responses({ 200: Type.Object({ items: Type.Array(Visit) }) }),
      },
    },
    async (req) => {
      await inScopeHousehold(req, req.params.id);
      return { items: await deps.visits.visits(req.params.id) };
    },
  );

  app.get(
    '/visits/overdue',
    {
      schema: {
        tags: ['visits'],
        summary:
          'Households overdue for a visit by their colour class (red daily … green quarterly), most overdue first',
        response: responses({ 200: Type.Object({ items: Type.Array(Overdue) }) }),
      },
    },
    async (req) => {
      const scope = scopeOf(req);
      return { items: await deps.visits.overdue(deps.cadenceDays(), scope.all ? undefined : scope.gridIds) };
    },
  );

  app.post(
    '/households/:id/away',
    {
      // evaluators watch, they do not act: an away period silences a home's rules
      preHandler: app.requireRoles(...ALERT_ACTOR_ROLES),
      schema: {
        tags: ['visits'],
        summary: 'Mark a household away (family visit, hospital): home rules stay quiet until it ends',
        params: HouseholdParams,
        body: Type.Object(
          {
            until: Type.String({ description: 'ISO-8601 or epoch ms; at most 90 days' }),
            from: Type.Optional(Type.String()),
            reason: Type.String({ minLength: 1, maxLength: 200 }),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: Away }),
      },
    },
    async (req, reply) => {
      await inScopeHousehold(req, req.params.id);
      const until = time(req.body.until, 'until')!;
      const away = await deps.visits.setAway(req.params.id, req.staff!.id, {
        until,
        from: time(req.body.from, 'from'),
        reason: req.body.reason,
      });
      return reply.code(201).send(away);
    },
  );

  app.get(
    '/households/:id/away',
    {
      schema: {
        tags: ['visits'],
        summary: 'Away periods of a household',
        params: HouseholdParams,
        response: responses({ 200: Type.Object({ items: Type.Array(Away) }) }),
      },
    },
    async (req) => {
      await inScopeHousehold(req, req.params.id);
      return { items: await deps.visits.awayPeriods(req.params.id) };
    },
  );

  app.delete(
    '/households/:id/away/:awayId',
    {
      // evaluators watch, they do not act: an away period silences a home's rules
      preHandler: app.requireRoles(...ALERT_ACTOR_ROLES),
      schema: {
        tags: ['visits'],
        summary: 'End an away period now (the resident is back)',
        params: Type.Object({ id: Type.String(), awayId: Type.String() }),
        response: responses({ 200: Away }),
      },
    },
    async (req) => {
      await inScopeHousehold(req, req.params.id);
      return deps.visits.endAway(req.params.id, req.params.awayId);
    },
  );
};
