/**
 * The drill shapes the HTTP API and the console's live channel share (TypeBox: validation, types and OpenAPI from
 * one place). Times are ISO-8601; `t` / `…S` fields are seconds of drill time since the start (pauses excluded).
 */
import { type Static, Type } from 'typebox';
import { AlertSchema } from '../http/schemas.ts';

const Text = Type.Object({ zh: Type.String(), en: Type.String() });

export const DRILL_CHANGES = [
  'started',
  'paused',
  'resumed',
  'inject_fired',
  'task_done',
  'message',
  'alert',
  'note',
  'rating',
  'ended',
] as const;
export type DrillChange = (typeof DRILL_CHANGES)[number];

/** The drill as a list row and in every live `drill` message. */
export const DrillSummarySchema = Type.Object({
  id: Type.String(),
  scenarioId: Type.String(),
  name: Text,
  type: Type.String(),
  communityId: Type.String(),
  status: Type.Enum(['running', 'paused', 'ended']),
  startedAt: Type.String(),
  startedBy: Type.String({ description: 'staff id' }),
  endedAt: Type.Optional(Type.String()),
  endedBy: Type.Optional(Type.String()),
  clock: Type.Object({
    /** drill time: running time since the start, pauses excluded */
    elapsedS: Type.Number(),
    /** true while running: the console adds the seconds since `asOf` itself */
    running: Type.Boolean(),
    asOf: Type.String(),
  }),
  progress: Type.Object({
    injects: Type.Object({ total: Type.Integer(), fired: Type.Integer() }),
    tasks: Type.Object({ total: Type.Integer(), done: Type.Integer() }),
    alerts: Type.Integer({ description: 'drill alerts the drill caused' }),
  }),
  participants: Type.Integer(),
  gridIds: Type.Array(Type.String()),
});
export type DrillSummary = Static<typeof DrillSummarySchema>;

export const DrillDetailSchema = Type.Object({
  injectId: Type.Optional(Type.String()),
  taskId: Type.Optional(Type.String()),
  alertId: Type.Optional(Type.String()),
  objectiveId: Type.Optional(Type.String()),
  by: Type.Optional(Type.String({ description: 'staff id' })),
  text: Type.Optional(Text),
});
export type DrillDetail = Static<typeof DrillDetailSchema>;

export const ParticipantSchema = Type.Object({
  staffId: Type.String(),
  username: Type.String(),
  name: Type.String({ description: 'masked, e.g. 张*兰' }),
  roles: Type.Array(Type.String()),
  as: Type.Array(Type.String({ description: 'the scenario roles they take part as' })),
  named: Type.Boolean(),
});

export const InjectViewSchema = Type.Object({
  id: Type.String(),
  title: Text,
  kind: Type.Enum(['device_event', 'message', 'task']),
  trigger: Type.Object({
    at: Type.Optional(Type.Integer()),
    manual: Type.Optional(Type.Boolean()),
    after: Type.Optional(
      Type.Object({
        injectId: Type.Optional(Type.String()),
        taskId: Type.Optional(Type.String()),
        state: Type.String(),
        delaySeconds: Type.Optional(Type.Integer()),
      }),
    ),
  }),
  /** fired; scheduled (has a time: dueS); waiting (for another inject or task); manual (waits for a controller) */
  state: Type.Enum(['fired', 'scheduled', 'waiting', 'manual']),
  dueS: Type.Optional(Type.Number()),
  firedS: Type.Optional(Type.Number()),
  firedAt: Type.Optional(Type.String()),
  firedBy: Type.Optional(Type.String({ description: 'staff id, or `schedule`' })),
  error: Type.Optional(Type.String()),
  /** device events: the drill devices that publish it */
  devices: Type.Optional(Type.Array(Type.String())),
});

export const TaskViewSchema = Type.Object({
  id: Type.String(),
  title: Text,
  text: Text,
  assigneeRole: Type.Optional(Type.String()),
  status: Type.Enum(['pending', 'open', 'done'], { description: 'pending: not issued yet' }),
  issuedS: Type.Optional(Type.Number()),
  issuedAt: Type.Optional(Type.String()),
  doneS: Type.Optional(Type.Number()),
  doneAt: Type.Optional(Type.String()),
  doneBy: Type.Optional(Type.String()),
  note: Type.Optional(Type.String()),
  households: Type.Array(Type.Object({ id: Type.String(), address: Type.String(), colour: Type.String() })),
  places: Type.Array(Type.Object({ kind: Type.String(), id: Type.String(), name: Type.Optional(Type.String()) })),
});

export const TargetSchema = Type.Object({
  kind: Type.String(),
  seconds: Type.Integer(),
  alertTypes: Type.Optional(Type.Array(Type.String())),
  taskIds: Type.Optional(Type.Array(Type.String())),
  injectIds: Type.Optional(Type.Array(Type.String())),
  from: Type.Optional(Type.String()),
});

export const RatingSchema = Type.Object({
  rating: Type.Enum(['P', 'S', 'M', 'U']),
  note: Type.Optional(Type.String()),
  by: Type.String(),
  at: Type.String(),
});

export const NoteSchema = Type.Object({
  id: Type.String(),
  t: Type.Number(),
  at: Type.String(),
  by: Type.String(),
  byName: Type.Optional(Type.String()),
  text: Type.String(),
});

export const MessageSchema = Type.Object({
  injectId: Type.String(),
  t: Type.Number(),
  at: Type.String(),
  text: Text,
  sms: Type.Integer({ description: 'SMS sent for it' }),
});

/** GET /api/v1/drills/:id: everything the console's drill page shows. */
export const DrillViewSchema = Type.Object({
  ...DrillSummarySchema.properties,
  description: Text,
  scope: Type.Object({
    buildingIds: Type.Optional(Type.Array(Type.String())),
    gridIds: Type.Optional(Type.Array(Type.String())),
  }),
  objectives: Type.Array(
    Type.Object({ id: Type.String(), text: Text, target: TargetSchema, rating: Type.Optional(RatingSchema) }),
  ),
  injects: Type.Array(InjectViewSchema),
  tasks: Type.Array(TaskViewSchema),
  participants: Type.Array(ParticipantSchema),
  messages: Type.Array(MessageSchema),
  notes: Type.Array(NoteSchema),
  /** the drill's alerts (drill: true), with `t`: when they opened in drill time */
  alerts: Type.Array(
    Type.Object({ ...AlertSchema.properties, t: Type.Number(), injectId: Type.Optional(Type.String()) }),
  ),
  /** real alerts in the drill's grids while it ran: handled normally, shown apart */
  realAlerts: Type.Array(AlertSchema),
  /** the participants count in the summary; here the list */
  participantCount: Type.Integer(),
});

export const ScenarioViewSchema = Type.Object({
  id: Type.String(),
  name: Text,
  type: Type.String(),
  description: Text,
  durationMinutes: Type.Optional(Type.Integer()),
  file: Type.String(),
  communityId: Type.Optional(Type.String()),
  scope: Type.Object({
    buildingIds: Type.Optional(Type.Array(Type.String())),
    gridIds: Type.Optional(Type.Array(Type.String())),
  }),
  participants: Type.Object({
    roles: Type.Optional(Type.Array(Type.String())),
    staff: Type.Optional(Type.Array(Type.String())),
    emergencyContacts: Type.Optional(Type.Boolean()),
  }),
  objectives: Type.Array(Type.Object({ id: Type.String(), text: Text, target: TargetSchema })),
  injects: Type.Array(
    Type.Object({ id: Type.String(), title: Text, kind: Type.String(), trigger: InjectViewSchema.properties.trigger }),
  ),
  /** false when its places or staff are not in the registry (`problems` says which) */
  available: Type.Boolean(),
  problems: Type.Array(Type.String()),
  /** a drill of this scenario's community is running or paused */
  activeDrillId: Type.Optional(Type.String()),
});
