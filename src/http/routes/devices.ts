import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { DeviceInfo } from '../../registry/port.ts';
import type { InstallTarget } from '../../registry/types.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, inScope, scopeOf } from '../app.ts';
import { Device, DeviceStatusSchema, PageQuery, pageOf, ProvisionBody, responses } from '../schemas.ts';

export const deviceRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.addHook('preHandler', app.authenticate);

  /** Registry row + the live state the status tracker keeps (fresher than the persisted copy). */
  const view = (d: DeviceInfo, withReading: boolean) => {
    const live = deps.deviceState.get(d.id);
    const lastSeen = live?.lastSeen !== undefined ? new Date(live.lastSeen).toISOString() : d.lastSeen;
    const lastReading =
      withReading && live?.lastReading
        ? Object.fromEntries(
            Object.entries(live.lastReading).map(([f, r]) => [f, { value: r.value, ts: new Date(r.ts).toISOString() }]),
          )
        : undefined;
    return { ...d, kind: deps.models.get(d.model)?.kind, status: live?.status ?? d.status, lastSeen, lastReading };
  };

  app.get(
    '/devices',
    {
      schema: {
        tags: ['devices'],
        summary: 'Devices you may see, with status, last seen and last readings',
        querystring: Type.Object(
          {
            householdId: Type.Optional(Type.String()),
            buildingId: Type.Optional(Type.String()),
            gridId: Type.Optional(Type.String()),
            model: Type.Optional(Type.String()),
            status: Type.Optional(DeviceStatusSchema),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: pageOf(Device) }),
      },
    },
    async (req) => {
      const { limit = 100, cursor, ...filter } = req.query;
      const page = await deps.registry.listDevices(filter, scopeOf(req), { limit, cursor });
      // the filter uses the status saved every few seconds; the answer shows the live one
      const items = page.items.map((d) => view(d, true));
      return { items, nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/devices/:id',
    {
      schema: {
        tags: ['devices'],
        summary: 'One device',
        params: Type.Object({ id: Type.String() }),
        response: responses({ 200: Device }),
      },
    },
    async (req) => {
      const d = await deps.registry.getDevice(req.params.id);
      if (!d) throw new HttpError(404, 'not_found', `no device ${req.params.id}`);
      if (!inScope(scopeOf(req), d.placement.gridId))
        throw new HttpError(403, 'forbidden', `device ${d.id} is outside your grids`);
      return view(d, true);
    },
  );

  app.post(
    '/devices',
    {
      preHandler: app.requireRoles('admin'),
      schema: {
        tags: ['devices'],
        summary: 'Provision a device; the secret is shown this once',
        body: ProvisionBody,
        response: responses({ 201: Type.Object({ id: Type.String(), secret: Type.String() }) }),
      },
    },
    async (req, reply) => {
      const { id, model, drill, ...where } = req.body;
      const targets = Object.entries(where).filter(([, v]) => v !== undefined);
      if (targets.length !== 1) {
        throw new HttpError(
          400,
          'bad_request',
          'give exactly one of householdId, buildingId, unitId, areaId: where the device is installed',
        );
      }
      if (!deps.models.get(model))
        throw new HttpError(400, 'unknown_model', `no device model ${model}; see GET /api/v1/models`);
      const [key, target] = targets[0] as [string, string];
      const install = { kind: key.replace(/Id$/, ''), [key]: target } as InstallTarget;
      const created = await deps.registry.provisionDevice({ id, model, install, drill });
      return reply.code(201).send(created);
    },
  );
};
