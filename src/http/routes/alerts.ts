/**
 * Alerts (ARCHITECTURE.md section 2): list, one alert, acknowledge, resolve, notes; and the rule settings in force.
 * Scope: a grid worker sees and handles the alerts of their grids only; an alert outside them is a 403 (it exists,
 * but is not theirs), an unknown id a 404.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { MAX_NOTE, OUTCOMES, type StoredAlert } from '../../alerts/service.ts';
import { ALERT_STATUSES } from '../../alerts/types.ts';
import { ROLES, type Role } from '../../registry/types.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, inScope, scopeOf } from '../app.ts';
import { AlertSchema, PageQuery, pageOf, responses } from '../schemas.ts';
import { parseTime } from './readings.ts';

/**
 * Who may change an alert: everyone but evaluators, who watch drills and must not take part in them (an
 * evaluator's click would make a drill look handled).
 */
export const ALERT_ACTOR_ROLES: readonly Role[] = ROLES.filter((r) => r !== 'evaluator');

/** Outcomes that mean someone was at the home: they count as a visit. */
const ON_SITE_OUTCOMES: readonly string[] = ['resident_fine', 'sent_to_hospital', 'handled_on_site'];

/** The API view of an alert: times as ISO-8601 everywhere (the service keeps epoch ms inside). */
export function alertView(a: StoredAlert) {
  return {
    ...a,
    evidence: a.evidence.map((e) => ({ ...e, ts: new Date(e.ts).toISOString() })),
    timeline: a.timeline.map((e) => ({ ...e, ts: new Date(e.ts).toISOString() })),
  };
}

const Note = Type.String({ minLength: 1, maxLength: MAX_NOTE, pattern: '\\S' });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

/** How the change was made, for the timeline: the console signs in with its cookie, scripts with a bearer token. */
function viaOf(req: FastifyRequest): string {
  return req.headers.authorization?.startsWith('Bearer ') ? 'api' : 'console';
}

function staffIdOf(req: FastifyRequest): string {
  if (!req.staff) throw new HttpError(401, 'unauthorized', 'sign in first');
  return req.staff.id;
}

export const alertRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.addHook('preHandler', app.authenticate);

  /** The alert, if it exists and the caller may see it. */
  const visible = async (req: FastifyRequest, id: string): Promise<StoredAlert> => {
    const alert = await deps.alerts.get(id);
    if (!alert) throw new HttpError(404, 'not_found', `no alert ${id}`);
    if (!inScope(scopeOf(req), alert.gridId))
      throw new HttpError(403, 'forbidden', `alert ${id} is outside your grids`);
    return alert;
  };

  app.get(
    '/alerts',
    {
      schema: {
        tags: ['alerts'],
        summary: 'Alerts you may see, newest first',
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Enum([...ALERT_STATUSES])),
            type: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })),
            householdId: Type.Optional(Type.String({ minLength: 1 })),
            gridId: Type.Optional(Type.String({ minLength: 1 })),
            since: Type.Optional(Type.String({ description: 'first seen at or after: ISO-8601 or epoch ms' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: pageOf(AlertSchema) }),
      },
    },
    async (req) => {
      const { limit = 100, cursor, since: sinceText, ...filter } = req.query;
      const scope = scopeOf(req);
      const since = sinceText === undefined ? undefined : parseTime(sinceText);
      if (sinceText !== undefined && since === undefined) {
        throw new HttpError(400, 'bad_request', `since: "${sinceText}" is neither ISO-8601 nor epoch ms`);
      }
      // asking for someone else's grid or household is refused, not answered with an empty list that would
      // look like "no alerts there"
      if (filter.gridId !== undefined && !inScope(scope, filter.gridId)) {
        throw new HttpError(403, 'forbidden', `grid ${filter.gridId} is outside your grids`);
      }
      if (filter.householdId !== undefined && !scope.all) {
        const h = await deps.registry.getHousehold(filter.householdId);
        if (h && !inScope(scope, h.gridId)) {
          throw new HttpError(403, 'forbidden', `household ${h.id} is outside your grids`);
        }
      }
      const page = await deps.alerts.list({ ...filter, since }, scope, { limit, cursor });
      return { items: page.items.map(alertView), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/alerts/:id',
    {
      schema: {
        tags: ['alerts'],
        summary: 'One alert with its evidence and timeline',
        params: IdParams,
        response: responses({ 200: AlertSchema }),
      },
    },
    async (req) => alertView(await visible(req, req.params.id)),
  );

  app.post(
    '/alerts/:id/ack',
    {
      preHandler: app.requireRoles(...ALERT_ACTOR_ROLES),
      // an ack needs nothing but the click: a POST without a body is an ack without a note
      preValidation: async (req) => {
        req.body ??= {};
      },
      schema: {
        tags: ['alerts'],
        summary: 'Acknowledge an open alert ("I am on it"); acknowledging again changes nothing',
        params: IdParams,
        body: Type.Object({ note: Type.Optional(Note) }, { additionalProperties: false }),
        response: responses({ 200: AlertSchema }),
      },
    },
    async (req) => {
      await visible(req, req.params.id);
      const alert = await deps.alerts.acknowledge(req.params.id, staffIdOf(req), viaOf(req), req.body.note);
      req.log.info({ event: 'alert_acknowledged', alertId: alert.id, by: req.staff?.id }, 'alert acknowledged');
      return alertView(alert);
    },
  );

  app.post(
    '/alerts/:id/resolve',
    {
      preHandler: app.requireRoles(...ALERT_ACTOR_ROLES),
      schema: {
        tags: ['alerts'],
        summary: 'Resolve an open or acknowledged alert with its outcome',
        params: IdParams,
        body: Type.Object(
          {
            outcome: Type.Enum([...OUTCOMES], { description: 'what it turned out to be' }),
            note: Type.Optional(Note),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: AlertSchema }),
      },
    },
    async (req) => {
      await visible(req, req.params.id);
      const { outcome, note } = req.body;
      const alert = await deps.alerts.resolve(req.params.id, staffIdOf(req), outcome, viaOf(req), note);
      req.log.info({ event: 'alert_resolved', alertId: alert.id, outcome, by: req.staff?.id }, 'alert resolved');
      // an alert resolved at the resident's door counts as a home visit (五色五访)
      if (alert.householdId && ON_SITE_OUTCOMES.includes(outcome)) {
        await deps.visits.recordVisit(alert.householdId, staffIdOf(req), {
          outcome: outcome === 'sent_to_hospital' ? 'referred' : 'ok',
          notes: `alert ${alert.type} resolved on site`,
          alertId: alert.id,
        });
      }
      return alertView(alert);
    },
  );

  app.post(
    '/alerts/:id/notes',
    {
      preHandler: app.requireRoles(...ALERT_ACTOR_ROLES),
      schema: {
        tags: ['alerts'],
        summary: 'Add a note to the timeline of an alert (also after it was resolved)',
        params: IdParams,
        body: Type.Object({ note: Note }, { additionalProperties: false }),
        response: responses({ 201: AlertSchema }),
      },
    },
    async (req, reply) => {
      await visible(req, req.params.id);
      const alert = await deps.alerts.addNote(req.params.id, staffIdOf(req), req.body.note, viaOf(req));
      return reply.code(201).send(alertView(alert));
    },
  );

  app.get(
    '/rules',
    {
      schema: {
        tags: ['alerts'],
        summary: 'The alert rules with their current settings: defaults, overrides per colour class and household',
        response: responses({
          200: Type.Object({
            timezone: Type.String({ description: 'IANA time zone of rule windows such as 07:00–22:00' }),
            rules: Type.Unknown(),
          }),
        }),
      },
    },
    async () => deps.rules(),
  );
};
