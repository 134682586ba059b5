import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Role } from '../../registry/types.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, inScope, scopeOf } from '../app.ts';
import { Colour, Household, PageQuery, pageOf, responses } from '../schemas.ts';

const Node = Type.Object({
  id: Type.String(),
  name: Type.String(),
  parentId: Type.Optional(Type.String()),
  level: Type.String(),
});

/** Roles that call a resident's relatives in an emergency, and so may see their phone numbers. */
export const CONTACT_ROLES: readonly Role[] = [
  'grid_worker',
  'grid_leader',
  'community_director',
  'street_duty_officer',
  'admin',
];

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
        summary: 'One household with its residents (masked) and emergency contacts',
        params: Type.Object({ id: Type.String() }),
        response: responses({ 200: Household }),
      },
    },
    async (req) => {
      const h = await deps.registry.getHousehold(req.params.id);
      if (!h) throw new HttpError(404, 'not_found', `no household ${req.params.id}`);
      if (!inScope(scopeOf(req), h.gridId))
        throw new HttpError(403, 'forbidden', `household ${h.id} is outside your grids`);
      req.log.info(
        { event: 'household_viewed', staffId: req.staff?.id, householdId: h.id },
        'household details viewed',
      );
      // emergency contacts (names and phone numbers of relatives) only for those who would call them
      if (!req.staff?.roles.some((r) => CONTACT_ROLES.includes(r))) {
        const { emergencyContacts: _withheld, ...rest } = h;
        return rest;
      }
      return h;
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
