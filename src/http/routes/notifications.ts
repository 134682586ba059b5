import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { maskPhone } from '../../logger.ts';
import { NOTIFICATION_STATUSES, type Notification } from '../../notify/store.ts';
import type { Role } from '../../registry/types.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, inScope, scopeOf } from '../app.ts';
import { PageQuery, pageOf, responses } from '../schemas.ts';
import { parseTime } from './readings.ts';

const NotificationSchema = Type.Object({
  id: Type.String(),
  alertId: Type.String(),
  recipient: Type.String({ description: 'E.164; masked unless your role needs the number or it is yours' }),
  staffId: Type.Optional(Type.String()),
  role: Type.Optional(Type.String()),
  body: Type.String(),
  transport: Type.String(),
  providerId: Type.Optional(Type.String()),
  status: Type.String(),
  step: Type.Integer(),
  drill: Type.Boolean(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  errorCode: Type.Optional(Type.String()),
  statusHistory: Type.Array(
    Type.Object({ status: Type.String(), at: Type.String(), detail: Type.Optional(Type.String()) }),
  ),
  batchId: Type.Optional(
    Type.String({ description: 'a held message (bundle, digest) that went out inside this notification' }),
  ),
});

/** Roles that follow up on undelivered messages and so see full numbers. */
const NUMBER_ROLES: readonly Role[] = ['admin', 'community_director', 'street_duty_officer'];

/** Every SMS sent or attempted (ARCHITECTURE.md section 2). */
export const notificationRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.addHook('preHandler', app.authenticate);

  app.get(
    '/notifications',
    {
      schema: {
        tags: ['notifications'],
        summary: 'SMS sent or attempted: for an alert you can see, all (directors, duty officers, admins), or your own',
        querystring: Type.Object(
          {
            alertId: Type.Optional(Type.String()),
            status: Type.Optional(Type.Enum([...NOTIFICATION_STATUSES])),
            since: Type.Optional(Type.String({ description: 'ISO-8601 or epoch ms' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: pageOf(NotificationSchema) }),
      },
    },
    async (req) => {
      const { alertId, status, limit = 100, cursor } = req.query;
      const since = req.query.since === undefined ? undefined : parseTime(req.query.since);
      if (req.query.since !== undefined && since === undefined) {
        throw new HttpError(400, 'bad_request', `since: "${req.query.since}" is neither ISO-8601 nor epoch ms`);
      }
      const scope = scopeOf(req);
      const me = req.staff!;
      let staffId: string | undefined;
      if (alertId) {
        const alert = await deps.alerts.get(alertId);
        if (!alert) throw new HttpError(404, 'not_found', `no alert ${alertId}`);
        if (!inScope(scope, alert.gridId))
          throw new HttpError(403, 'forbidden', `alert ${alertId} is outside your grids`);
      } else if (!scope.all) {
        staffId = me.id; // without an alert: the messages sent to you
      }
      const page = await deps.notifications.list({ alertId, status, since, staffId }, { limit, cursor });
      const seesNumbers = me.roles.some((r) => NUMBER_ROLES.includes(r));
      const view = (n: Notification) =>
        seesNumbers || n.staffId === me.id ? n : { ...n, recipient: maskPhone(n.recipient) };
      return { items: page.items.map(view), nextCursor: page.nextCursor };
    },
  );
};
