/**
 * The console's live channel, `WS /ws` (versioned: `v`). JSON text frames, one message each.
 *
 * 1. The browser connects with its session cookie (same origin only: the Origin header must match the console's
 *    own address; scripts may send `Authorization: Bearer <token>` instead, and no Origin).
 * 2. It sends `hello` with the protocol version and, after a reconnect, `since`: the `seq` of the last event it
 *    applied. The server answers `welcome`, then either the missed events (each once, in order) followed by
 *    `caught-up`, or — first connect, or `since` too old to replay — a `snapshot` of every open alert it may see.
 * 3. Then live `alert` / `notification` / `drill` events, in the order they happened on every node, only those the
 *    signed-in person may see (their grids; the director their community; the duty officer and admins everything).
 *
 * `seq` is opaque and increasing (Redis stream ids compare as `<ms>-<n>`; compare with `seqAfter`). A client drops an
 * event whose seq is not after the last one applied, so a replay overlapping live events never applies one twice.
 * Actions (acknowledge, note, resolve) go through the HTTP API, which checks scope and records the timeline.
 *
 * Close codes: 4400 bad message or unsupported version, 4401 not signed in / session ended, 4403 origin refused.
 */
import { type Static, Type } from 'typebox';
import { DRILL_CHANGES, DrillDetailSchema, DrillSummarySchema } from '../drills/schemas.ts';
import { AlertSchema } from '../http/schemas.ts';
import { StockEventBodySchema } from '../supplies/schemas.ts';

export const CONSOLE_PROTOCOL_VERSION = 1;

export const CLOSE_BAD_MESSAGE = 4400;
export const CLOSE_UNAUTHENTICATED = 4401;
export const CLOSE_ORIGIN = 4403;

const Seq = Type.String({ pattern: '^\\d+-\\d+$', description: 'event sequence: <ms>-<n>' });

export const AlertChangeSchema = Type.Enum([
  'opened',
  'repeated',
  'acknowledged',
  'note',
  'resolved',
  'cancelled',
  'updated',
]);
export type ConsoleAlertChange = Static<typeof AlertChangeSchema>;

/** One SMS of an alert: who was told (number masked), by which step, and how far it got. */
export const ConsoleNotificationSchema = Type.Object({
  id: Type.String(),
  alertId: Type.String(),
  step: Type.Integer(),
  role: Type.Optional(Type.String()),
  staffId: Type.Optional(Type.String()),
  /** masked: +86138****0001 */
  recipient: Type.String(),
  status: Type.String(),
  transport: Type.String(),
  drill: Type.Boolean(),
  updatedAt: Type.String(),
});
export type ConsoleNotification = Static<typeof ConsoleNotificationSchema>;

// ------------------------------------------------------------------ client → server

export const HelloSchema = Type.Object(
  {
    type: Type.Literal('hello'),
    v: Type.Integer({ minimum: 1 }),
    since: Type.Optional(Seq),
  },
  { additionalProperties: false },
);

export const PingSchema = Type.Object({ type: Type.Literal('ping') }, { additionalProperties: false });

export const ClientMessageSchema = Type.Union([HelloSchema, PingSchema]);
export type ClientMessage = Static<typeof ClientMessageSchema>;

// ------------------------------------------------------------------ server → client

export const WelcomeSchema = Type.Object({
  type: Type.Literal('welcome'),
  v: Type.Integer(),
  user: Type.Object({ id: Type.String(), username: Type.String(), roles: Type.Array(Type.String()) }),
  /** the newest event now: a client that takes a snapshot continues from here */
  seq: Seq,
  /** SMS go to the outbox: nobody's phone rings (the console shows it loudly) */
  smsOutbox: Type.Boolean(),
  timezone: Type.String(),
});

export const SnapshotSchema = Type.Object({
  type: Type.Literal('snapshot'),
  seq: Seq,
  /** every open or acknowledged alert the user may see */
  alerts: Type.Array(AlertSchema),
});

export const AlertEventSchema = Type.Object({
  type: Type.Literal('alert'),
  seq: Seq,
  change: AlertChangeSchema,
  alert: AlertSchema,
});

export const NotificationEventSchema = Type.Object({
  type: Type.Literal('notification'),
  seq: Seq,
  notification: ConsoleNotificationSchema,
});

/**
 * A drill changed (issue 6): started, paused, resumed, an inject fired, a task done, a message, one of its alerts,
 * a note or rating, ended. Sent to everyone with the `all` scope and to staff of the drill's grids (its scope and
 * its participants' grids). Protocol version 1 still: a console that does not know the type ignores it.
 */
export const DrillEventSchema = Type.Object({
  type: Type.Literal('drill'),
  seq: Seq,
  drillId: Type.String(),
  change: Type.Enum([...DRILL_CHANGES]),
  drill: DrillSummarySchema,
  detail: Type.Optional(DrillDetailSchema),
});

/**
 * Stock changed at one or more depots (issue 7): a movement, a CSV import, a transfer's state, minimum levels. Carries
 * the depots' levels of the item(s) after the change and, for transfers, the transfer. Sent to everyone with the `all`
 * scope, to depot keepers, and to staff of the grids the depots serve. Protocol version 1 still: a console that does
 * not know the type ignores it.
 */
export const StockEventSchema = Type.Object({
  type: Type.Literal('stock'),
  seq: Seq,
  ...StockEventBodySchema.properties,
});

export const CaughtUpSchema = Type.Object({ type: Type.Literal('caught-up'), seq: Seq, replayed: Type.Integer() });
export const PongSchema = Type.Object({ type: Type.Literal('pong') });
export const ErrorMessageSchema = Type.Object({
  type: Type.Literal('error'),
  code: Type.String(),
  message: Type.String(),
});

export const ServerMessageSchema = Type.Union([
  WelcomeSchema,
  SnapshotSchema,
  AlertEventSchema,
  NotificationEventSchema,
  DrillEventSchema,
  StockEventSchema,
  CaughtUpSchema,
  PongSchema,
  ErrorMessageSchema,
]);
export type ServerMessage = Static<typeof ServerMessageSchema>;
export type AlertEvent = Static<typeof AlertEventSchema>;
export type NotificationEvent = Static<typeof NotificationEventSchema>;
export type DrillLiveEvent = Static<typeof DrillEventSchema>;
export type StockLiveEvent = Static<typeof StockEventSchema>;

/** Is sequence `a` after `b`? (`<ms>-<n>`, compared numerically part by part) */
export function seqAfter(a: string, b: string | undefined): boolean {
  if (!b) return true;
  const [am = 0, an = 0] = a.split('-').map(Number);
  const [bm = 0, bn = 0] = b.split('-').map(Number);
  return am > bm || (am === bm && an > bn);
}
