import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { HttpDeps } from '../app.ts';
import { HttpError } from '../app.ts';
import { PageQuery, pageOf, RoleSchema, responses, Staff } from '../schemas.ts';
import { SessionSchema, sessionView } from './auth.ts';

const CoverageInput = Type.Object(
  {
    gridIds: Type.Optional(Type.Array(Type.String())),
    communityIds: Type.Optional(Type.Array(Type.String())),
    streetIds: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
);
const Phone = Type.String({ pattern: '^\\+[1-9]\\d{7,14}$', description: 'E.164, e.g. +8613812345678' });
const Password = Type.String({ minLength: 10, maxLength: 256 });
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

/** Staff accounts: admins only. */
export const staffRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.addHook('preHandler', app.authenticate);
  app.addHook('preHandler', app.requireRoles('admin'));

  app.get(
    '/staff',
    {
      schema: {
        tags: ['staff'],
        summary: 'Staff accounts',
        querystring: Type.Object(PageQuery),
        response: responses({ 200: pageOf(Staff) }),
      },
    },
    async (req) => deps.registry.listStaff({ limit: req.query.limit ?? 100, cursor: req.query.cursor }),
  );

  app.get(
    '/staff/:id',
    {
      schema: {
        tags: ['staff'],
        summary: 'One staff account',
        params: IdParams,
        response: responses({ 200: Staff }),
      },
    },
    async (req) => {
      const staff = await deps.registry.getStaff(req.params.id);
      if (!staff) throw new HttpError(404, 'not_found', `no staff account ${req.params.id}`);
      return staff;
    },
  );

  app.post(
    '/staff',
    {
      schema: {
        tags: ['staff'],
        summary: 'Create a staff account',
        body: Type.Object(
          {
            username: Type.String({ pattern: '^[a-z0-9_.-]{3,32}$' }),
            name: Type.String({ minLength: 1, maxLength: 64 }),
            phone: Phone,
            roles: Type.Array(RoleSchema, { minItems: 1, uniqueItems: true }),
            coverage: Type.Optional(CoverageInput),
            password: Password,
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: Staff }),
      },
    },
    async (req, reply) => {
      const staff = await deps.registry.createStaff(req.body);
      req.log.info({ event: 'staff_created', staffId: staff.id, by: req.staff?.id }, 'staff account created');
      return reply.code(201).send(staff);
    },
  );

  app.patch(
    '/staff/:id',
    {
      schema: {
        tags: ['staff'],
        summary: 'Change roles, coverage, name or phone; disable (ends every session at once) or enable',
        params: IdParams,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            phone: Type.Optional(Phone),
            roles: Type.Optional(Type.Array(RoleSchema, { minItems: 1, uniqueItems: true })),
            coverage: Type.Optional(CoverageInput),
            disabled: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: responses({ 200: Staff }),
      },
    },
    async (req) => {
      if (req.params.id === req.staff?.id && req.body.disabled) {
        throw new HttpError(400, 'bad_request', 'you cannot disable your own account');
      }
      if (req.params.id === req.staff?.id && req.body.roles && !req.body.roles.includes('admin')) {
        // another admin can do it; nobody locks themselves out of administration by mistake
        throw new HttpError(400, 'bad_request', 'you cannot take the admin role from your own account');
      }
      const staff = await deps.registry.updateStaff(req.params.id, req.body);
      req.log.info(
        {
          event: 'staff_updated',
          staffId: staff.id,
          by: req.staff?.id,
          fields: Object.keys(req.body),
          // disabling ends every session of the account at once (in the same transaction)
          ...(req.body.disabled === true ? { sessionsRevoked: true } : {}),
        },
        'staff account changed',
      );
      return staff;
    },
  );

  app.post(
    '/staff/:id/password',
    {
      schema: {
        tags: ['staff'],
        summary: 'Reset a password (also signs the account out everywhere)',
        params: IdParams,
        body: Type.Object({ password: Password }, { additionalProperties: false }),
        response: responses({ 204: Type.Null() }),
      },
    },
    async (req, reply) => {
      await deps.registry.setPassword(req.params.id, req.body.password);
      req.log.info({ event: 'password_reset', staffId: req.params.id, by: req.staff?.id }, 'password reset');
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/staff/:id/sessions',
    {
      schema: {
        tags: ['staff'],
        summary: 'A staff member’s sessions that have not ended, newest first (never their tokens)',
        params: IdParams,
        response: responses({ 200: Type.Object({ items: Type.Array(SessionSchema) }) }),
      },
    },
    async (req) => {
      if (!(await deps.registry.getStaff(req.params.id))) {
        throw new HttpError(404, 'not_found', `no staff account ${req.params.id}`);
      }
      const items = await deps.registry.listSessions(req.params.id);
      return { items: items.map((s) => sessionView(s, req.authSession?.id)) };
    },
  );

  app.delete(
    '/staff/:id/sessions',
    {
      schema: {
        tags: ['staff'],
        summary: 'Sign a staff member out everywhere (e.g. a lost phone); the account stays enabled',
        params: IdParams,
        response: responses({ 200: Type.Object({ revoked: Type.Integer({ description: 'sessions ended' }) }) }),
      },
    },
    async (req) => {
      if (!(await deps.registry.getStaff(req.params.id))) {
        throw new HttpError(404, 'not_found', `no staff account ${req.params.id}`);
      }
      const revoked = await deps.registry.revokeStaffSessions(req.params.id);
      req.log.info(
        { event: 'sessions_revoked', staffId: req.params.id, by: req.staff?.id, revoked },
        'staff signed out everywhere',
      );
      return { revoked };
    },
  );
};
