import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { DutyRoster } from '../../notify/roster.ts';
import type { Role } from '../../registry/types.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, scopeOf } from '../app.ts';
import { PageQuery, pageOf, RoleSchema, responses } from '../schemas.ts';
import { parseTime } from './readings.ts';

/** What the routes use of the roster. */
export type RosterApi = Pick<DutyRoster, 'add' | 'remove' | 'get' | 'list'>;

/** May see every absence; everyone else sees the ones they are in (absent or standing in). */
export const ROSTER_READ_ROLES: readonly Role[] = ['admin', 'community_director', 'grid_leader', 'street_duty_officer'];
/** May add and remove absences; a grid leader only for staff working within their grids. */
export const ROSTER_WRITE_ROLES: readonly Role[] = ['admin', 'community_director', 'grid_leader'];

const Time = (description: string) => Type.String({ maxLength: 40, description });

const Absence = Type.Object({
  id: Type.String(),
  staffId: Type.String({ description: 'who is off duty' }),
  from: Type.String({ description: 'ISO-8601, inclusive' }),
  to: Type.String({ description: 'ISO-8601, exclusive' }),
  substituteId: Type.String({ description: 'who stands in' }),
  role: Type.Optional(RoleSchema),
  gridId: Type.Optional(Type.String()),
  note: Type.Optional(Type.String()),
  createdBy: Type.Optional(Type.String()),
  createdAt: Type.String(),
});

/** The duty roster: who is off duty when, and who stands in for them in escalations. */
export const rosterRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps; roster: RosterApi }> = async (
  app,
  { deps, roster },
) => {
  app.addHook('preHandler', app.authenticate);

  const time = (value: string | undefined, name: string) => {
    if (value === undefined) return undefined;
    const t = parseTime(value);
    if (t === undefined) {
      throw new HttpError(400, 'bad_request', `${name}: "${value}" is neither ISO-8601 nor epoch ms`);
    }
    return t;
  };

  /** A caller without an all-grids scope may only manage staff who work entirely within their grids. */
  const requireManageable = async (req: FastifyRequest, staffId: string, gridId?: string) => {
    const scope = scopeOf(req);
    if (scope.all) return;
    if (gridId !== undefined && !scope.gridIds.includes(gridId)) {
      throw new HttpError(403, 'forbidden', `grid ${gridId} is outside your grids`);
    }
    const target = await deps.registry.getStaff(staffId);
    if (!target) throw new HttpError(404, 'not_found', `no staff member ${staffId}`);
    const theirs = deps.registry.scopeOf(target);
    if (theirs.all || theirs.gridIds.length === 0 || !theirs.gridIds.every((g) => scope.gridIds.includes(g))) {
      throw new HttpError(403, 'forbidden', `staff member ${staffId} works outside your grids`);
    }
  };

  app.get(
    '/roster',
    {
      schema: {
        tags: ['roster'],
        summary:
          'Absences from duty with their substitutes, newest first (staff without a roster role see only their own)',
        querystring: Type.Object({
          staffId: Type.Optional(Type.String({ maxLength: 100 })),
          activeAt: Type.Optional(Time('only absences covering this moment (ISO-8601 or epoch ms)')),
          from: Type.Optional(Time('only absences overlapping [from, to) (ISO-8601 or epoch ms)')),
          to: Type.Optional(Time('see from')),
          ...PageQuery,
        }),
        response: responses({ 200: pageOf(Absence) }),
      },
    },
    async (req) => {
      const me = req.staff!;
      const q = req.query;
      const seesAll = me.roles.some((r) => ROSTER_READ_ROLES.includes(r));
      if (!seesAll && q.staffId !== undefined && q.staffId !== me.id) {
        throw new HttpError(403, 'forbidden', 'you may only see your own absences');
      }
      return roster.list(
        {
          staffId: q.staffId,
          involves: seesAll ? undefined : me.id,
          activeAt: time(q.activeAt, 'activeAt'),
          from: time(q.from, 'from'),
          to: time(q.to, 'to'),
        },
        { limit: q.limit ?? 100, cursor: q.cursor },
      );
    },
  );

  app.post(
    '/roster',
    {
      preHandler: app.requireRoles(...ROSTER_WRITE_ROLES),
      schema: {
        tags: ['roster'],
        summary: 'Mark a staff member off duty for a while, with a substitute who is told in their place',
        body: Type.Object(
          {
            staffId: Type.String({ minLength: 1, maxLength: 100 }),
            substituteId: Type.String({ minLength: 1, maxLength: 100 }),
            from: Type.Optional(Time('ISO-8601 or epoch ms; default now')),
            to: Time('ISO-8601 or epoch ms; at most 90 days after from'),
            role: Type.Optional(RoleSchema),
            gridId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            note: Type.Optional(Type.String({ maxLength: 500 })),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: Absence }),
      },
    },
    async (req, reply) => {
      const b = req.body;
      await requireManageable(req, b.staffId, b.gridId);
      const absence = await roster.add(
        {
          staffId: b.staffId,
          substituteId: b.substituteId,
          from: time(b.from, 'from'),
          to: time(b.to, 'to')!,
          role: b.role,
          gridId: b.gridId,
          note: b.note,
        },
        req.staff!.id,
      );
      req.log.info(
        {
          event: 'duty_absence_added',
          absenceId: absence.id,
          staffId: absence.staffId,
          substituteId: absence.substituteId,
          role: absence.role,
          gridId: absence.gridId,
          from: absence.from,
          to: absence.to,
          by: req.staff!.id,
        },
        'absence from duty recorded',
      );
      return reply.code(201).send(absence);
    },
  );

  app.delete(
    '/roster/:id',
    {
      preHandler: app.requireRoles(...ROSTER_WRITE_ROLES),
      schema: {
        tags: ['roster'],
        summary: 'Delete an absence: the staff member is on duty again',
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: responses({ 200: Absence }),
      },
    },
    async (req) => {
      const existing = await roster.get(req.params.id);
      if (!existing) throw new HttpError(404, 'not_found', `no absence ${req.params.id}`);
      await requireManageable(req, existing.staffId, existing.gridId);
      const removed = await roster.remove(req.params.id);
      req.log.info(
        { event: 'duty_absence_removed', absenceId: removed.id, staffId: removed.staffId, by: req.staff!.id },
        'absence from duty deleted',
      );
      return removed;
    },
  );
};
