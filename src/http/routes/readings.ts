import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { isBooleanField } from '../../contracts/canonical.ts';
import { AGGREGATES } from '../../timeseries/port.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, inScope, scopeOf } from '../app.ts';
import { ReadingPoint, responses } from '../schemas.ts';

const DAY = 86_400_000;
const MAX_RANGE = 400 * DAY;
/** Raw points across several series are sorted by time in the store; a month keeps that bounded. */
const MAX_RAW_RANGE = 31 * DAY;
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: DAY };

/** `1700000000000` or an ISO-8601 date-time → epoch ms; undefined when it is neither. */
export function parseTime(value: string): number | undefined {
  if (/^\d{1,16}$/.test(value)) return Number(value);
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/** `30s`, `5m`, `1h`, `1d` → ms */
export function parseWindow(value: string): number | undefined {
  const m = /^(\d{1,6})([smhd])$/.exec(value);
  if (!m) return undefined;
  const ms = Number(m[1]) * UNITS[m[2]!]!;
  return ms > 0 ? ms : undefined;
}

/**
 * Cuts a time-ordered result (fetched with limit + 1) into a page that ends on a whole timestamp, so that the next
 * page, starting at `nextCursor`, neither repeats nor skips points that share a millisecond.
 */
export function pageByTime<T extends { ts: number }>(points: T[], limit: number): { page: T[]; nextCursor?: string } {
  if (points.length <= limit) return { page: points };
  const boundary = points[limit]!.ts;
  let end = limit;
  while (end > 0 && points[end - 1]!.ts === boundary) end--;
  // a single millisecond holding more than a page: return it whole and continue after it
  if (end === 0) {
    const whole = points.filter((p) => p.ts === boundary);
    return { page: whole, nextCursor: String(boundary + 1) };
  }
  return { page: points.slice(0, end), nextCursor: String(boundary) };
}

export const readingRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.addHook('preHandler', app.authenticate);

  app.get(
    '/readings',
    {
      schema: {
        tags: ['readings'],
        summary: 'Stored readings of a device or a household: raw points, or aggregates per window',
        querystring: Type.Object(
          {
            deviceId: Type.Optional(Type.String({ minLength: 1 })),
            householdId: Type.Optional(Type.String({ minLength: 1 })),
            field: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            from: Type.Optional(Type.String({ description: 'ISO-8601 or epoch ms; default 24 h before `to`' })),
            to: Type.Optional(Type.String({ description: 'ISO-8601 or epoch ms; default now' })),
            every: Type.Optional(Type.String({ pattern: '^\\d{1,6}[smhd]$', description: 'window, e.g. 5m, 1h, 1d' })),
            agg: Type.Optional(Type.Enum([...AGGREGATES])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 })),
            cursor: Type.Optional(
              Type.String({ pattern: '^\\d{1,16}$', description: 'nextCursor of the previous page' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: responses({
          200: Type.Object({ items: Type.Array(ReadingPoint), nextCursor: Type.Optional(Type.String()) }),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      if (!q.deviceId && !q.householdId) throw new HttpError(400, 'bad_request', 'give deviceId or householdId');
      const to = q.to === undefined ? Date.now() : parseTime(q.to);
      if (to === undefined) throw new HttpError(400, 'bad_request', `to: "${q.to}" is neither ISO-8601 nor epoch ms`);
      const requestedFrom = q.from === undefined ? to - DAY : parseTime(q.from);
      // a cursor is the time the next page starts at (oldest first)
      const from =
        q.cursor === undefined || requestedFrom === undefined
          ? requestedFrom
          : Math.max(requestedFrom, Number(q.cursor));
      if (from === undefined)
        throw new HttpError(400, 'bad_request', `from: "${q.from}" is neither ISO-8601 nor epoch ms`);
      if (from >= to) throw new HttpError(400, 'bad_request', 'from must be before to');
      if (to - from > MAX_RANGE) throw new HttpError(400, 'bad_request', 'the range may span at most 400 days');
      if (!q.every && to - from > MAX_RAW_RANGE) {
        throw new HttpError(
          400,
          'bad_request',
          'raw points over more than 31 days: ask for aggregates (every and agg) instead',
        );
      }
      if ((q.every === undefined) !== (q.agg === undefined)) {
        throw new HttpError(400, 'bad_request', 'every and agg go together: e.g. every=5m&agg=mean');
      }

      // scope: the device's or household's grid must be one of the caller's
      const scope = scopeOf(req);
      if (q.deviceId) {
        const d = await deps.registry.getDevice(q.deviceId);
        if (!d) throw new HttpError(404, 'not_found', `no device ${q.deviceId}`);
        if (!inScope(scope, d.placement.gridId))
          throw new HttpError(403, 'forbidden', `device ${d.id} is outside your grids`);
      }
      if (q.householdId) {
        const h = await deps.registry.getHousehold(q.householdId);
        if (!h) throw new HttpError(404, 'not_found', `no household ${q.householdId}`);
        if (!inScope(scope, h.gridId)) throw new HttpError(403, 'forbidden', `household ${h.id} is outside your grids`);
      }

      const limit = q.limit ?? 1000;
      // one more than asked tells whether another page follows
      const range = { deviceId: q.deviceId, householdId: q.householdId, field: q.field, from, to, limit: limit + 1 };
      if (q.every && q.agg) {
        const every = parseWindow(q.every);
        if (!every)
          throw new HttpError(400, 'bad_request', `every: "${q.every}" is not a window such as 30s, 5m, 1h, 1d`);
        if ((to - from) / every > 100_000)
          throw new HttpError(400, 'bad_request', 'too many windows: use a larger every');
        const { page, nextCursor } = pageByTime(
          await deps.timeseries.aggregate({ ...range, every, agg: q.agg }),
          limit,
        );
        return {
          items: page.map((p) => ({
            deviceId: p.deviceId,
            field: p.field,
            ts: new Date(p.ts).toISOString(),
            value: p.value,
            agg: p.agg,
          })),
          nextCursor,
        };
      }
      const { page, nextCursor } = pageByTime(await deps.timeseries.query(range), limit);
      return {
        items: page.map((p) => ({
          deviceId: p.deviceId,
          field: p.field,
          ts: new Date(p.ts).toISOString(),
          value: isBooleanField(p.field) ? p.value !== 0 : p.value,
        })),
        nextCursor,
      };
    },
  );
};
