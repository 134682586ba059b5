/** `GET /api/v1/access-log`: who was shown residents' personal details, when and from where (admins only, PIPL). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ACCESS_KINDS, type AccessLog } from '../../registry/access-log.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError } from '../app.ts';
import { PageQuery, pageOf, responses } from '../schemas.ts';
import { parseTime } from './readings.ts';

export const AccessLogEntrySchema = Type.Object({
  id: Type.String(),
  at: Type.String({ description: 'ISO-8601' }),
  staffId: Type.String({ description: 'who was shown the details' }),
  householdId: Type.String(),
  what: Type.Array(Type.Enum([...ACCESS_KINDS]), {
    description: 'residents: full names; emergency_contacts: names and phone numbers of relatives',
  }),
  ip: Type.Optional(Type.String({ description: 'the request’s address' })),
});

export const accessLogRoutes: FastifyPluginAsyncTypebox<{
  deps: HttpDeps;
  accessLog: Pick<AccessLog, 'list'>;
}> = async (app, { accessLog }) => {
  app.addHook('preHandler', app.authenticate);
  app.addHook('preHandler', app.requireRoles('admin'));

  app.get(
    '/access-log',
    {
      schema: {
        tags: ['access-log'],
        summary: 'Who was shown residents’ full names or emergency contacts, newest first (admins)',
        querystring: Type.Object(
          {
            staffId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            householdId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            since: Type.Optional(Type.String({ description: 'at or after: ISO-8601 or epoch ms' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: pageOf(AccessLogEntrySchema) }),
      },
    },
    async (req) => {
      const { staffId, householdId, limit = 100, cursor } = req.query;
      const since = req.query.since === undefined ? undefined : parseTime(req.query.since);
      if (req.query.since !== undefined && since === undefined) {
        throw new HttpError(400, 'bad_request', `since: "${req.query.since}" is neither ISO-8601 nor epoch ms`);
      }
      return accessLog.list({ staffId, householdId, since }, { limit, cursor });
    },
  );
};
