/**
 * Statistics for the community overview (issue 5, the 接诉即办 KPIs), computed by src/alerts/stats.ts within the
 * caller's scope: a grid worker's figures cover their grids only. Asking for a grid outside them is a 403.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { CLOSED_KINDS, MAX_STATS_DAYS } from '../../alerts/stats.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError, inScope, scopeOf } from '../app.ts';
import { responses } from '../schemas.ts';

const Count = Type.Integer({ minimum: 0 });
const Seconds = Type.Union([Type.Number({ minimum: 0 }), Type.Null()]);
const Rate = Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()]);

const SeverityCounts = Type.Object({
  critical: Count,
  major: Count,
  minor: Count,
  info: Count,
  total: Count,
});

const figures = {
  households: Count,
  devices: Type.Integer({ minimum: 0, description: 'devices in service (not disabled)' }),
  offlineDevices: Count,
  // open and acknowledged alerts, drills left out
  openAlerts: SeverityCounts,
};

export const OverviewSchema = Type.Object({
  generatedAt: Type.String({ description: 'ISO-8601' }),
  totals: Type.Object(figures, {
    description: 'everything in scope, including what is placed in no grid (seen by community-wide roles only)',
  }),
  grids: Type.Array(
    Type.Object({
      gridId: Type.String(),
      name: Type.String(),
      communityId: Type.String(),
      ...figures,
      buildings: Type.Array(Type.Object({ buildingId: Type.String(), name: Type.String(), ...figures })),
    }),
  ),
});

const PercentilesProps = {
  n: Type.Integer({ minimum: 0, description: 'acknowledged alerts' }),
  medianS: Seconds,
  p90S: Seconds,
};

export const AlertStatsSchema = Type.Object({
  timezone: Type.String({ description: 'IANA zone of the days' }),
  days: Type.Integer(),
  from: Type.String({ description: 'ISO-8601, the start of the first local day' }),
  to: Type.String({ description: 'ISO-8601, the end of today (exclusive)' }),
  types: Type.Array(Type.String(), { description: 'every alert type in perDay, sorted' }),
  perDay: Type.Array(
    Type.Object({
      date: Type.String({ description: 'local day, YYYY-MM-DD' }),
      total: Count,
      byType: Type.Record(Type.String(), Count),
    }),
    { description: 'alerts opened per local day, oldest first, days without alerts included' },
  ),
  acknowledgement: Type.Object(
    {
      overall: Type.Object(PercentilesProps),
      byGrid: Type.Array(Type.Object({ gridId: Type.String(), name: Type.String(), ...PercentilesProps })),
    },
    {
      description: 'seconds from first seen to acknowledged, of the alerts opened in the window that were acknowledged',
    },
  ),
  outcomes: Type.Object(
    {
      closed: Count,
      resolvedByStaff: Count,
      falseAlarms: Type.Integer({ minimum: 0, description: 'outcomes starting with false_alarm' }),
      falseAlarmRate: Rate,
      byOutcome: Type.Object(Object.fromEntries(CLOSED_KINDS.map((k) => [k, Count]))),
      byType: Type.Array(
        Type.Object({
          type: Type.String(),
          closed: Count,
          resolvedByStaff: Count,
          falseAlarms: Count,
          falseAlarmRate: Rate,
        }),
      ),
    },
    {
      description:
        'how the alerts opened in the window were closed: staff outcomes, auto_cleared (the rule saw the condition clear), cancelled',
    },
  ),
});

const GridQuery = {
  gridId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'only this grid' })),
};

export const statsRoutes: FastifyPluginAsyncTypebox<{
  deps: HttpDeps;
  stats: NonNullable<HttpDeps['stats']>;
}> = async (app, { stats }) => {
  app.addHook('preHandler', app.authenticate);

  const checkGrid = (req: FastifyRequest, gridId: string | undefined) => {
    if (gridId !== undefined && !inScope(scopeOf(req), gridId)) {
      throw new HttpError(403, 'forbidden', `grid ${gridId} is outside your grids`);
    }
  };

  app.get(
    '/stats/overview',
    {
      schema: {
        tags: ['stats'],
        summary:
          'Community overview per grid and building: open alerts by severity, offline devices, households (your grids)',
        querystring: Type.Object(GridQuery, { additionalProperties: false }),
        response: responses({ 200: OverviewSchema }),
      },
    },
    async (req) => {
      checkGrid(req, req.query.gridId);
      return stats.overview(scopeOf(req), { gridId: req.query.gridId });
    },
  );

  app.get(
    '/stats/alerts',
    {
      schema: {
        tags: ['stats'],
        summary:
          'Alert KPIs over the last N local days: alerts per day and type, acknowledgement times per grid, outcomes and false alarms',
        querystring: Type.Object(
          {
            days: Type.Optional(
              Type.Integer({
                minimum: 1,
                maximum: MAX_STATS_DAYS,
                default: 30,
                description: 'local days, today included',
              }),
            ),
            ...GridQuery,
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: AlertStatsSchema }),
      },
    },
    async (req) => {
      const { days = 30, gridId } = req.query;
      checkGrid(req, gridId);
      return stats.alerts(scopeOf(req), { days, gridId });
    },
  );
};
