/**
 * Drills (issue 6): scenarios, running drills, tasks, notes, ratings and the after-action report.
 *
 * Who: start, pause, resume, end and firing an inject — the community director, drill controllers and admins; a
 * task done — the drill's participants (and those who run it); notes — evaluators, controllers, directors, admins;
 * ratings — evaluators (and admins). Everyone signed in sees the scenarios; a drill is seen by the all-seeing roles,
 * its participants and the staff of its grids.
 */
import path from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import type { DrillRunner } from '../../drills/runner.ts';
import { buildReport, type ReportInput, reportCsv, reportHtml } from '../../drills/report.ts';
import { elapsedAt } from '../../drills/time.ts';
import { DrillSummarySchema, DrillViewSchema, ScenarioViewSchema } from '../../drills/schemas.ts';
import { DRILL_STATUSES, type DrillRecord, RATINGS } from '../../drills/store.ts';
import type { Staff } from '../../registry/port.ts';
import type { Role } from '../../registry/types.ts';
import type { HttpDeps } from '../app.ts';
import { HttpError } from '../app.ts';
import { PageQuery, pageOf, responses } from '../schemas.ts';
import { alertView } from './alerts.ts';

/** Start, pause, resume, end, fire an inject. */
export const DRILL_CONTROL_ROLES: readonly Role[] = ['community_director', 'drill_controller', 'admin'];
/** Evaluator notes. */
export const DRILL_NOTE_ROLES: readonly Role[] = ['evaluator', 'drill_controller', 'community_director', 'admin'];
/** HSEEP ratings per objective. */
export const DRILL_RATING_ROLES: readonly Role[] = ['evaluator', 'admin'];

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
const Lang = Type.Object({ lang: Type.Optional(Type.Enum(['zh', 'en'])) }, { additionalProperties: false });
const NoteText = Type.String({ minLength: 1, maxLength: 2000, pattern: '\\S' });

/** The report as JSON: its parts are described in src/drills/report.ts (DrillReport). */
const ReportSchema = Type.Object(
  {
    drill: Type.Unknown({ description: 'the drill summary, its description and scope' }),
    timezone: Type.String({ description: 'the community time zone of the wall times' }),
    generatedAt: Type.String(),
    final: Type.Boolean({ description: 'false while the drill runs: the figures may still change' }),
    durationS: Type.Number(),
    objectives: Type.Unknown({
      description: '[{id, text, target, targetS, measuredS?, result: met|missed|pending, statement {zh,en}, rating?}]',
    }),
    timeline: Type.Unknown({ description: '[{t (drill s), at, kind, ref?, by?, byName?, text {zh,en}}]' }),
    participants: Type.Unknown({
      description:
        '[{staffId, username, name, as, notifiedS?, acknowledgedS?, responseS?, firstTaskDoneS?, tasksDone, sms}]',
    }),
    alerts: Type.Unknown(),
    tasks: Type.Unknown(),
    notifications: Type.Unknown({ description: '{total, sent, delivered, failed, held}' }),
    failedNotifications: Type.Unknown(),
    notes: Type.Unknown(),
    realAlerts: Type.Unknown({ description: 'real alerts in the drill grids while it ran (handled normally)' }),
  },
  { additionalProperties: false },
);

type DrillView = Static<typeof DrillViewSchema>;

function staffOf(req: FastifyRequest): Staff {
  if (!req.staff) throw new HttpError(401, 'unauthorized', 'sign in first');
  return req.staff;
}

function hasRole(staff: Staff, roles: readonly Role[]): boolean {
  return staff.roles.some((r) => roles.includes(r));
}

/** The drill's view for the console: state, clock, injects, tasks, participants, alerts. */
export function drillView(input: ReportInput, runner: DrillRunner): DrillView {
  const { rec } = input;
  const segs = rec.state.segments;
  const t = (ts: number) => Math.round(elapsedAt(segs, ts) / 100) / 10;
  const iso = (ms: number) => new Date(ms).toISOString();
  const injects = rec.scenario.injects.map((inj) => {
    const fired = rec.state.fired[inj.id];
    const due = rec.state.due[inj.id];
    const v: DrillView['injects'][number] = {
      id: inj.id,
      title: inj.title,
      kind: inj.action.kind,
      trigger: inj.trigger,
      state: fired
        ? 'fired'
        : due !== undefined || inj.trigger.at !== undefined
          ? 'scheduled'
          : inj.trigger.manual
            ? 'manual'
            : 'waiting',
    };
    if (!fired && due !== undefined) v.dueS = due / 1000;
    else if (!fired && inj.trigger.at !== undefined) v.dueS = inj.trigger.at;
    if (fired) {
      v.firedS = t(fired.at);
      v.firedAt = iso(fired.at);
      v.firedBy = fired.by;
      if (fired.error) v.error = fired.error;
    }
    if (inj.action.kind === 'device_event') v.devices = runner.targetsOf(inj).map((x) => x.deviceId);
    return v;
  });
  const tasks = rec.scenario.injects.flatMap((inj) => {
    if (inj.action.kind !== 'task') return [];
    const task = input.tasks.find((x) => x.taskId === inj.id);
    const v: DrillView['tasks'][number] = {
      id: inj.id,
      title: inj.title,
      text: inj.action.text,
      status: task ? task.status : 'pending',
      households: task?.targets.households ?? [],
      places: task?.targets.places ?? [],
    };
    if (inj.action.assigneeRole) v.assigneeRole = inj.action.assigneeRole;
    if (task) {
      v.issuedS = t(task.issuedAt);
      v.issuedAt = iso(task.issuedAt);
    }
    if (task?.doneAt !== undefined) {
      v.doneS = t(task.doneAt);
      v.doneAt = iso(task.doneAt);
    }
    if (task?.doneBy) v.doneBy = task.doneBy;
    if (task?.note) v.note = task.note;
    return [v];
  });
  const names = new Map<string, string>([
    ...rec.participants.map((p) => [p.staffId, p.name] as [string, string]),
    ...[...input.staff].map(([id, s]) => [id, s.name] as [string, string]),
  ]);
  const messages = input.events
    .filter((e) => e.kind === 'message' && e.ref)
    .map((e) => ({
      injectId: e.ref!,
      t: t(e.ts),
      at: iso(e.ts),
      text: (e.data?.text as { zh: string; en: string } | undefined) ?? { zh: '', en: '' },
      sms: input.notifications.filter((n) => n.alertId === `drill:${rec.id}:${e.ref}`).length,
    }));
  return {
    ...input.summary,
    description: rec.scenario.description,
    scope: rec.scenario.scope,
    objectives: rec.scenario.objectives.map((o) => {
      const r = input.ratings.find((x) => x.objectiveId === o.id);
      return {
        id: o.id,
        text: o.text,
        target: o.target,
        ...(r ? { rating: { rating: r.rating, note: r.note, by: r.by, at: iso(r.ts) } } : {}),
      };
    }),
    injects,
    tasks,
    participants: rec.participants,
    participantCount: rec.participants.length,
    messages,
    notes: input.notes.map((n) => ({
      id: n.id,
      t: t(n.ts),
      at: iso(n.ts),
      by: n.by,
      byName: names.get(n.by),
      text: n.text,
    })),
    alerts: input.alerts.map(({ alert, injectId }) => ({
      ...alertView(alert),
      t: t(Date.parse(alert.firstSeen)),
      ...(injectId ? { injectId } : {}),
    })),
    realAlerts: input.realAlerts.map(alertView),
  };
}

export const drillRoutes: FastifyPluginAsyncTypebox<{ deps: HttpDeps; drills: DrillRunner }> = async (
  app,
  { drills },
) => {
  app.addHook('preHandler', app.authenticate);

  /** The drill, if the caller may see it. */
  const visible = async (req: FastifyRequest, id: string): Promise<DrillRecord> => {
    const rec = await drills.record(id);
    if (!drills.canSee(rec, staffOf(req), req.scope!)) {
      throw new HttpError(403, 'forbidden', `drill ${id} is outside your grids`);
    }
    return rec;
  };
  const view = async (id: string) => drillView(await drills.reportInput(id), drills);

  app.get(
    '/drills/scenarios',
    {
      schema: {
        tags: ['drills'],
        summary: 'Drill scenarios (config/drills), with whether they can run here',
        response: responses({ 200: Type.Object({ items: Type.Array(ScenarioViewSchema) }) }),
      },
    },
    async () => ({
      items: drills.scenarios().map((f) => ({
        id: f.scenario.id,
        name: f.scenario.name,
        type: f.scenario.type,
        description: f.scenario.description,
        durationMinutes: f.scenario.durationMinutes,
        file: path.relative(process.cwd(), f.file) || f.file,
        communityId: f.communityId,
        scope: f.scenario.scope,
        participants: f.scenario.participants,
        objectives: f.scenario.objectives,
        injects: f.scenario.injects.map((i) => ({ id: i.id, title: i.title, kind: i.action.kind, trigger: i.trigger })),
        available: f.available,
        problems: f.problems,
        activeDrillId: f.activeDrillId,
      })),
    }),
  );

  app.get(
    '/drills',
    {
      schema: {
        tags: ['drills'],
        summary: 'Drills, running and past, newest first (per community: compare quarter on quarter)',
        querystring: Type.Object(
          {
            communityId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            status: Type.Optional(Type.Enum([...DRILL_STATUSES])),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: pageOf(DrillSummarySchema) }),
      },
    },
    async (req) => {
      const { communityId, status, limit = 100, cursor } = req.query;
      const staff = staffOf(req);
      const page = await drills.store.list({ communityId, status }, { limit, cursor });
      const items = [];
      for (const rec of page.items) {
        if (drills.canSee(rec, staff, req.scope!)) items.push(await drills.summary(rec));
      }
      return { items, nextCursor: page.nextCursor };
    },
  );

  app.post(
    '/drills',
    {
      preHandler: app.requireRoles(...DRILL_CONTROL_ROLES),
      schema: {
        tags: ['drills'],
        summary: 'Start a drill of a scenario (director, drill controller)',
        body: Type.Object(
          { scenarioId: Type.String({ minLength: 1, maxLength: 100 }) },
          { additionalProperties: false },
        ),
        response: responses({ 201: DrillViewSchema }),
      },
    },
    async (req, reply) => {
      const staff = staffOf(req);
      const f = drills.scenarios().find((x) => x.scenario.id === req.body.scenarioId);
      if (!f) throw new HttpError(404, 'not_found', `no drill scenario ${req.body.scenarioId}`);
      // a director runs drills in their own community
      const own = staff.coverage.communityIds;
      if (!staff.roles.includes('admin') && f.communityId && own.length > 0 && !own.includes(f.communityId)) {
        throw new HttpError(403, 'forbidden', `community ${f.communityId} is not yours to run drills in`);
      }
      const rec = await drills.startDrill(req.body.scenarioId, staff);
      req.log.info(
        { event: 'drill_started', drillId: rec.id, scenarioId: rec.scenarioId, by: staff.id },
        'drill started',
      );
      return reply.code(201).send(await view(rec.id));
    },
  );

  app.get(
    '/drills/:id',
    {
      schema: {
        tags: ['drills'],
        summary: 'One drill: clock, injects, tasks, participants, messages, notes, its alerts and the real ones apart',
        params: IdParams,
        response: responses({ 200: DrillViewSchema }),
      },
    },
    async (req) => {
      await visible(req, req.params.id);
      return view(req.params.id);
    },
  );

  for (const action of ['pause', 'resume', 'end'] as const) {
    app.post(
      `/drills/:id/${action}`,
      {
        preHandler: app.requireRoles(...DRILL_CONTROL_ROLES),
        schema: {
          tags: ['drills'],
          summary: `${action[0]!.toUpperCase()}${action.slice(1)} a drill (director, drill controller)`,
          params: IdParams,
          response: responses({ 200: DrillViewSchema }),
        },
      },
      async (req) => {
        const staff = staffOf(req);
        await visible(req, req.params.id);
        await drills[action](req.params.id, staff);
        return view(req.params.id);
      },
    );
  }

  app.post(
    '/drills/:id/injects/:injectId/trigger',
    {
      preHandler: app.requireRoles(...DRILL_CONTROL_ROLES),
      schema: {
        tags: ['drills'],
        summary: 'Fire an inject now: a manual one, or a timed one early (director, drill controller)',
        params: Type.Object({ id: IdParams.properties.id, injectId: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: responses({ 200: DrillViewSchema }),
      },
    },
    async (req) => {
      await visible(req, req.params.id);
      await drills.trigger(req.params.id, req.params.injectId, staffOf(req));
      return view(req.params.id);
    },
  );

  app.post(
    '/drills/:id/tasks/:taskId/done',
    {
      preValidation: async (req) => {
        req.body ??= {};
      },
      schema: {
        tags: ['drills'],
        summary: 'Mark a task done (the drill’s participants)',
        params: Type.Object({ id: IdParams.properties.id, taskId: Type.String({ minLength: 1, maxLength: 64 }) }),
        body: Type.Object({ note: Type.Optional(NoteText) }, { additionalProperties: false }),
        response: responses({ 200: DrillViewSchema }),
      },
    },
    async (req) => {
      const staff = staffOf(req);
      const rec = await visible(req, req.params.id);
      if (!drills.isParticipant(rec, staff.id) && !hasRole(staff, DRILL_CONTROL_ROLES)) {
        throw new HttpError(403, 'forbidden', 'only the drill’s participants mark its tasks done');
      }
      await drills.taskDone(req.params.id, req.params.taskId, staff, req.body.note);
      return view(req.params.id);
    },
  );

  app.post(
    '/drills/:id/notes',
    {
      preHandler: app.requireRoles(...DRILL_NOTE_ROLES),
      schema: {
        tags: ['drills'],
        summary: 'An evaluator’s or controller’s note (also after the end)',
        params: IdParams,
        body: Type.Object({ text: NoteText }, { additionalProperties: false }),
        response: responses({ 201: DrillViewSchema }),
      },
    },
    async (req, reply) => {
      await visible(req, req.params.id);
      await drills.addNote(req.params.id, req.body.text, staffOf(req));
      return reply.code(201).send(await view(req.params.id));
    },
  );

  app.put(
    '/drills/:id/ratings/:objectiveId',
    {
      preHandler: app.requireRoles(...DRILL_RATING_ROLES),
      schema: {
        tags: ['drills'],
        summary:
          'Rate an objective on HSEEP’s scale: P performed, S with some challenges, M major challenges, U unable',
        params: Type.Object({ id: IdParams.properties.id, objectiveId: Type.String({ minLength: 1, maxLength: 64 }) }),
        body: Type.Object(
          { rating: Type.Enum([...RATINGS]), note: Type.Optional(NoteText) },
          { additionalProperties: false },
        ),
        response: responses({ 200: DrillViewSchema }),
      },
    },
    async (req) => {
      await visible(req, req.params.id);
      await drills.rate(req.params.id, req.params.objectiveId, req.body.rating, staffOf(req), req.body.note);
      return view(req.params.id);
    },
  );

  app.get(
    '/drills/:id/report',
    {
      schema: {
        tags: ['drills'],
        summary: 'The after-action report as JSON (provisional while the drill runs)',
        params: IdParams,
        response: responses({ 200: ReportSchema }),
      },
    },
    async (req) => {
      await visible(req, req.params.id);
      return buildReport(await drills.reportInput(req.params.id));
    },
  );

  app.get(
    '/drills/:id/report.csv',
    {
      schema: {
        tags: ['drills'],
        summary: 'The after-action report as CSV (UTF-8; ?lang=en for English texts)',
        params: IdParams,
        querystring: Lang,
      },
    },
    async (req, reply) => {
      await visible(req, req.params.id);
      const report = buildReport(await drills.reportInput(req.params.id));
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="drill-${req.params.id}.csv"`)
        .send(reportCsv(report, req.query.lang ?? 'zh'));
    },
  );

  app.get(
    '/drills/:id/report.html',
    {
      schema: {
        tags: ['drills'],
        summary: 'The after-action report as a printable page (Chinese; ?lang=en for English)',
        params: IdParams,
        querystring: Lang,
      },
    },
    async (req, reply) => {
      await visible(req, req.params.id);
      const report = buildReport(await drills.reportInput(req.params.id));
      return reply.type('text/html; charset=utf-8').send(reportHtml(report, req.query.lang ?? 'zh'));
    },
  );
};
