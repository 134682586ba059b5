import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AccessKind } from '../../registry/access-log.ts';
import type { Staff } from '../../registry/port.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, inScope, scopeOf } from '../app.ts';
import { Colour, Household, PageQuery, pageOf, Resident, responses } from '../schemas.ts';

const Node = Type.Object({
  id: Type.String(),
  name: Type.String(),
  parentId: Type.Optional(Type.String()),
  level: Type.String(),
});

/**
 * Whether a staff member may see a household's residents' full names and emergency contacts (names and phone
 * numbers of relatives): those who visit the household and call its relatives in an emergency. A grid worker or
 * grid leader only for the households of the grids their own coverage reaches; a community director for their
 * communities (all of them when their coverage is empty); an admin everywhere. Everyone else (building and unit
 * leaders, committee members, volunteers, duty officers, evaluators, …) sees masked names and no contacts. Every
 * unmasked showing is written to the access log first (GET /api/v1/access-log).
 */
export function seesPersonalDetails(
  staff: Pick<Staff, 'roles' | 'coverage'>,
  household: { gridId: string },
  coveredGrids: readonly string[],
): boolean {
  if (staff.roles.includes('admin')) return true;
  // the street's duty officer is the last step of an unanswered emergency and must be able to call the family
  if (staff.roles.includes('street_duty_officer') && coveredGrids.includes(household.gridId)) return true;
  const covers = coveredGrids.includes(household.gridId);
  if (staff.roles.includes('community_director')) {
    const c = staff.coverage;
    if (covers || c.gridIds.length + c.communityIds.length + c.streetIds.length === 0) return true;
  }
  return covers && staff.roles.some((r) => r === 'grid_worker' || r === 'grid_leader');
}

const ResidentDetail = Type.Object({
  ...Resident.properties,
  fullName: Type.Optional(
    Type.String({ description: 'unmasked, only for the roles that need it; the showing is in the access log' }),
  ),
});

const HouseholdDetail = Type.Object({
  ...Household.properties,
  residents: Type.Array(ResidentDetail),
  personalDetails: Type.Enum(['shown', 'masked'], {
    description:
      'shown: full names and emergency contacts (this showing was written to the access log); masked: masked ' +
      'names and no contacts',
  }),
});

export const registryRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.addHook('preHandler', app.authenticate);

  app.get(
    '/households',
    {
      schema: {
        tags: ['registry'],
        summary: 'Households you may see (a grid worker: their grids), with the five-colour class',
        querystring: Type.Object(
          {
            gridId: Type.Optional(Type.String()),
            colour: Type.Optional(Colour),
            buildingId: Type.Optional(Type.String()),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: pageOf(Type.Omit(Household, ['emergencyContacts'])) }),
      },
    },
    async (req) => {
      const { limit = 100, cursor, ...filter } = req.query;
      const page = await deps.registry.listHouseholds(filter, scopeOf(req), { limit, cursor });
      return { ...page, items: page.items.map(({ emergencyContacts: _hidden, ...h }) => h) };
    },
  );

  app.get(
    '/households/:id',
    {
      schema: {
        tags: ['registry'],
        summary: 'One household: residents’ full names and emergency contacts for the roles that need them',
        description:
          'Full names and emergency contacts are shown to the household’s grid workers and grid leader, the ' +
          'community director and admins, and every such showing is written to the access log; everyone else ' +
          'in scope sees masked names and no contacts.',
        params: Type.Object({ id: Type.String() }),
        response: responses({ 200: HouseholdDetail }),
      },
    },
    async (req) => {
      const h = await deps.registry.getHousehold(req.params.id);
      if (!h) throw new HttpError(404, 'not_found', `no household ${req.params.id}`);
      if (!inScope(scopeOf(req), h.gridId))
        throw new HttpError(403, 'forbidden', `household ${h.id} is outside your grids`);
      const staff = req.staff!;
      const { emergencyContacts, ...rest } = h;
      const accessLog = deps.accessLog;
      if (!accessLog || !seesPersonalDetails(staff, h, deps.registry.coveredGrids(staff))) {
        req.log.info(
          { event: 'household_viewed', staffId: staff.id, householdId: h.id, personalDetails: 'masked' },
          'household details viewed',
        );
        return { ...rest, personalDetails: 'masked' as const };
      }
      const names = h.residents.length > 0 ? await deps.registry.residentNames(h.id) : new Map<string, string>();
      const what: AccessKind[] = [];
      if (h.residents.some((r) => names.has(r.id))) what.push('residents');
      if (emergencyContacts.length > 0) what.push('emergency_contacts');
      // written before anything is shown: a showing that cannot be logged does not happen
      if (what.length > 0) await accessLog.record({ staffId: staff.id, householdId: h.id, what, ip: req.ip });
      req.log.info(
        { event: 'household_viewed', staffId: staff.id, householdId: h.id, personalDetails: 'shown', what },
        'household details viewed',
      );
      return {
        ...rest,
        residents: h.residents.map((r) => {
          const fullName = names.get(r.id);
          return fullName === undefined ? r : { ...r, fullName };
        }),
        emergencyContacts,
        personalDetails: 'shown' as const,
      };
    },
  );

  app.get(
    '/hierarchy/:level',
    {
      schema: {
        tags: ['registry'],
        summary: 'Districts, streets, communities, grids, buildings, units or charging areas',
        params: Type.Object({
          level: Type.Enum(['district', 'street', 'community', 'grid', 'building', 'unit', 'area']),
        }),
        querystring: Type.Object({ parentId: Type.Optional(Type.String()) }, { additionalProperties: false }),
        response: responses({ 200: Type.Object({ items: Type.Array(Node) }) }),
      },
    },
    async (req) => ({ items: await deps.registry.listNodes(req.params.level, req.query.parentId) }),
  );

  app.get(
    '/models',
    {
      schema: {
        tags: ['devices'],
        summary: 'Device models this service can decode (devices/)',
        response: responses({ 200: Type.Object({ items: Type.Array(Type.Unknown()) }) }),
      },
    },
    async () => ({ items: deps.models.list() }),
  );
};
