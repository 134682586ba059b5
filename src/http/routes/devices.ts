/**
 * Devices: list, one device (the console's device page: status, last seen, battery, its commands), provisioning,
 * commands to a device and their answers, and the device's latest rejected messages.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { COMMAND_STATUSES, MAX_ARGS_JSON } from '../../commands/service.ts';
import { INBOUND_KINDS } from '../../contracts/topics.ts';
import { REJECT_REASONS } from '../../contracts/canonical.ts';
import type { DeviceInfo } from '../../registry/port.ts';
import type { InstallTarget, Role } from '../../registry/types.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, inScope, scopeOf } from '../app.ts';
import { Device, DeviceStatusSchema, PageQuery, pageOf, ProvisionBody, responses } from '../schemas.ts';

/**
 * Who may send commands to devices: admins, and the staff who look after the device's grid (grid workers and
 * leaders within their grids, the community director everywhere). Other roles see the commands but send none.
 */
export const COMMAND_ROLES: readonly Role[] = ['admin', 'grid_worker', 'grid_leader', 'community_director'];

/** How far back the device page looks for a battery reading when this node has none in memory. */
const BATTERY_LOOKBACK_MS = 30 * 86_400_000;

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

export const Battery = Type.Object({
  pct: Type.Number({ minimum: 0, maximum: 100, description: 'the latest battery_pct reading' }),
  ts: Type.String({ description: 'ISO-8601, when it was read' }),
});

export const DeviceDetail = Type.Object({
  ...Device.properties,
  battery: Type.Optional(Battery),
  commands: Type.Array(Type.String(), { description: 'the commands its model accepts (POST …/commands `name`)' }),
});

export const DeviceCommandSchema = Type.Object({
  id: Type.String(),
  deviceId: Type.String(),
  name: Type.String(),
  args: Type.Record(Type.String(), Type.Unknown()),
  by: Type.String({ description: 'staff id of who sent it' }),
  sentAt: Type.String({ description: 'ISO-8601' }),
  status: Type.Enum([...COMMAND_STATUSES], {
    description:
      'sent (waiting for the answer), acknowledged, failed (the device refused) or timeout (no answer within 60 s)',
  }),
  answer: Type.Optional(Type.String({ description: "the device's message" })),
  answeredAt: Type.Optional(Type.String({ description: 'ISO-8601' })),
});

export const CommandBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, description: "one of the device model's commands" }),
    args: Type.Optional(
      Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
        maxProperties: 32,
        description: `command arguments, a JSON object of at most ${MAX_ARGS_JSON} characters`,
      }),
    ),
  },
  { additionalProperties: false },
);

export const RejectSchema = Type.Object({
  ts: Type.String({ description: 'ISO-8601, when the message arrived' }),
  kind: Type.Optional(Type.Enum([...INBOUND_KINDS], { description: 'the topic it was published on' })),
  topic: Type.String(),
  reason: Type.Enum([...REJECT_REASONS]),
  message: Type.String({ description: 'what was wrong, as told to the device on its error topic' }),
});

export const deviceRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.addHook('preHandler', app.authenticate);

  /** The device, if it exists and the caller may see it: 404 unknown, 403 outside the caller's grids. */
  const visible = async (req: FastifyRequest, id: string): Promise<DeviceInfo> => {
    const d = await deps.registry.getDevice(id);
    if (!d) throw new HttpError(404, 'not_found', `no device ${id}`);
    if (!inScope(scopeOf(req), d.placement.gridId))
      throw new HttpError(403, 'forbidden', `device ${d.id} is outside your grids`);
    return d;
  };

  /** The latest battery reading: this node's live state, else the time-series store (never fails the page). */
  const battery = async (
    d: DeviceInfo,
    live: { value: number | boolean; ts: number } | undefined,
  ): Promise<{ pct: number; ts: string } | undefined> => {
    if (live && typeof live.value === 'number') return { pct: live.value, ts: new Date(live.ts).toISOString() };
    try {
      const now = Date.now();
      const from = now - BATTERY_LOOKBACK_MS;
      // the last day with a reading, then its last reading: bounded however chatty the device is
      const days = await deps.timeseries.aggregate({
        deviceId: d.id,
        field: 'battery_pct',
        from,
        to: now + 60_000,
        every: 86_400_000,
        agg: 'last',
      });
      const lastDay = days[days.length - 1];
      if (!lastDay) return undefined;
      const points = await deps.timeseries.query({
        deviceId: d.id,
        field: 'battery_pct',
        from: Math.max(from, lastDay.ts),
        to: Math.min(now + 60_000, lastDay.ts + 86_400_000),
      });
      const last = points[points.length - 1];
      return last ? { pct: last.value, ts: new Date(last.ts).toISOString() } : undefined;
    } catch (err) {
      app.log.warn({ err, deviceId: d.id }, 'device page: no battery reading from the time-series store');
      return undefined;
    }
  };

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
        summary: 'One device: status, last seen, last readings, battery and the commands it accepts',
        params: Type.Object({ id: Type.String() }),
        response: responses({ 200: DeviceDetail }),
      },
    },
    async (req) => {
      const d = await visible(req, req.params.id);
      const live = deps.deviceState.get(d.id)?.lastReading?.battery_pct;
      const b = await battery(d, live);
      const out = { ...view(d, true), commands: [...(deps.commands?.commandsOf(d.model) ?? [])] };
      return b ? { ...out, battery: b } : out;
    },
  );

  const commands = deps.commands;
  if (commands) {
    app.post(
      '/devices/:id/commands',
      {
        preHandler: app.requireRoles(...COMMAND_ROLES),
        schema: {
          tags: ['devices'],
          summary:
            "Send a command to a device (one of its model's commands) on gridwatch/<id>/cmd; the device answers with a cmd_ack event",
          params: IdParams,
          body: CommandBody,
          response: responses({ 202: DeviceCommandSchema }),
        },
      },
      async (req, reply) => {
        const d = await visible(req, req.params.id);
        const { name, args } = req.body;
        const accepted = commands.commandsOf(d.model) ?? [];
        if (!accepted.includes(name)) {
          throw new HttpError(
            400,
            'unknown_command',
            accepted.length > 0
              ? `${d.model} accepts the commands ${accepted.join(', ')}, not ${name}`
              : `${d.model} accepts no commands`,
          );
        }
        if (args !== undefined && JSON.stringify(args).length > MAX_ARGS_JSON) {
          throw new HttpError(400, 'bad_request', `args: at most ${MAX_ARGS_JSON} characters of JSON`);
        }
        if (d.disabled) throw new HttpError(409, 'conflict', `device ${d.id} is disabled`);
        if (!req.staff) throw new HttpError(401, 'unauthorized', 'sign in first');
        const cmd = await commands.send({ deviceId: d.id, model: d.model, name, args, by: req.staff.id });
        return reply.code(202).send(cmd);
      },
    );

    app.get(
      '/devices/:id/commands',
      {
        schema: {
          tags: ['devices'],
          summary: 'Commands sent to a device and their answers, newest first',
          params: IdParams,
          querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
          response: responses({ 200: pageOf(DeviceCommandSchema) }),
        },
      },
      async (req) => {
        const d = await visible(req, req.params.id);
        const { limit = 100, cursor } = req.query;
        return commands.list(d.id, { limit, cursor });
      },
    );
  }

  const rejects = deps.deviceRejects;
  if (rejects) {
    app.get(
      '/devices/:id/rejects',
      {
        schema: {
          tags: ['devices'],
          summary:
            "The device's latest rejected messages (at most 20, newest first), as kept in memory by the node that answers",
          params: IdParams,
          response: responses({ 200: Type.Object({ items: Type.Array(RejectSchema) }) }),
        },
      },
      async (req) => {
        const d = await visible(req, req.params.id);
        const items = rejects.recent(d.id).map((r) => ({ ...r, ts: new Date(r.ts).toISOString() }));
        return { items };
      },
    );
  }

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
