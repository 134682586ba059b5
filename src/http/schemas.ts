/** HTTP shapes (ARCHITECTURE.md section 2), as TypeBox schemas: validation, types and OpenAPI from one place. */
import { type TSchema, Type } from 'typebox';
import { ALERT_STATUSES, CATEGORIES, SEVERITIES } from '../alerts/types.ts';
import { DEVICE_ID_PATTERN } from '../contracts/topics.ts';
import { COLOURS, ROLES } from '../registry/types.ts';

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'machine-readable code, e.g. bad_request, unauthorized, not_found' }),
    message: Type.String({ description: 'what went wrong, for people' }),
    details: Type.Optional(Type.Array(Type.Unknown())),
  },
  { $id: 'Error' },
);

export const Colour = Type.Enum([...COLOURS]);
export const RoleSchema = Type.Enum([...ROLES]);
export const DeviceStatusSchema = Type.Enum(['online', 'offline', 'unknown']);

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
};

export const pageOf = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Optional(Type.String()) });

const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  429: ErrorBody,
};
/** Response map with the error shape on every 4xx a route can answer. */
export function responses<T extends Record<number, TSchema>>(ok: T) {
  return { ...errorResponses, ...ok };
}

export const Placement = Type.Object({
  householdId: Type.Optional(Type.String()),
  unitId: Type.Optional(Type.String()),
  buildingId: Type.Optional(Type.String()),
  areaId: Type.Optional(Type.String()),
  gridId: Type.Optional(Type.String()),
  communityId: Type.Optional(Type.String()),
  colour: Type.Optional(Colour),
});

export const InstallTarget = Type.Object({
  kind: Type.Enum(['household', 'building', 'unit', 'area']),
  householdId: Type.Optional(Type.String()),
  buildingId: Type.Optional(Type.String()),
  unitId: Type.Optional(Type.String()),
  areaId: Type.Optional(Type.String()),
});

export const Resident = Type.Object({
  id: Type.String(),
  displayName: Type.String({ description: 'masked, e.g. 张*兰' }),
  birthYear: Type.Optional(Type.Integer()),
  loneElderly: Type.Boolean(),
  atRisk: Type.Boolean(),
});

export const Household = Type.Object({
  id: Type.String(),
  address: Type.String(),
  communityId: Type.String(),
  gridId: Type.String(),
  buildingId: Type.String(),
  unitId: Type.String(),
  room: Type.String(),
  colour: Colour,
  loneElderly: Type.Boolean(),
  atRisk: Type.Boolean(),
  residents: Type.Array(Resident),
  emergencyContacts: Type.Optional(
    Type.Array(Type.Object({ name: Type.String(), phone: Type.String(), relation: Type.String() })),
  ),
});

export const LastReading = Type.Record(
  Type.String(),
  Type.Object({ value: Type.Union([Type.Number(), Type.Boolean()]), ts: Type.String() }),
);

export const Device = Type.Object({
  id: Type.String(),
  model: Type.String(),
  kind: Type.Optional(Type.String()),
  install: InstallTarget,
  placement: Placement,
  drill: Type.Boolean(),
  disabled: Type.Boolean(),
  status: DeviceStatusSchema,
  lastSeen: Type.Optional(Type.String({ description: 'ISO-8601' })),
  lastReading: Type.Optional(LastReading),
  createdAt: Type.String(),
});

export const ProvisionBody = Type.Object(
  {
    id: Type.String({ pattern: DEVICE_ID_PATTERN, description: 'letters, digits, - and _; 1–64 characters' }),
    model: Type.String({ minLength: 1, maxLength: 64 }),
    householdId: Type.Optional(Type.String({ minLength: 1 })),
    buildingId: Type.Optional(Type.String({ minLength: 1 })),
    unitId: Type.Optional(Type.String({ minLength: 1 })),
    areaId: Type.Optional(Type.String({ minLength: 1 })),
    drill: Type.Optional(Type.Boolean({ description: 'a drill device: everything it sends is marked as a drill' })),
  },
  { additionalProperties: false },
);

export const Coverage = Type.Object({
  gridIds: Type.Array(Type.String()),
  communityIds: Type.Array(Type.String()),
  streetIds: Type.Array(Type.String()),
});

export const Staff = Type.Object({
  id: Type.String(),
  username: Type.String(),
  name: Type.String(),
  phone: Type.String({ description: 'E.164' }),
  roles: Type.Array(RoleSchema),
  coverage: Coverage,
  disabled: Type.Boolean(),
  createdAt: Type.String(),
});

export const User = Type.Object({ id: Type.String(), username: Type.String(), roles: Type.Array(RoleSchema) });

export const ReadingPoint = Type.Object({
  deviceId: Type.String(),
  field: Type.String(),
  ts: Type.String({ description: 'ISO-8601; for aggregates the window start' }),
  value: Type.Union([Type.Number(), Type.Boolean()]),
  agg: Type.Optional(Type.String()),
});

export const EvidenceSchema = Type.Object({
  ts: Type.String({ description: 'ISO-8601' }),
  kind: Type.Enum(['reading', 'event', 'status', 'rule']),
  deviceId: Type.Optional(Type.String()),
  field: Type.Optional(Type.String()),
  value: Type.Optional(Type.Union([Type.Number(), Type.Boolean(), Type.String()])),
  eventType: Type.Optional(Type.String()),
  note: Type.Optional(Type.String()),
});

export const TimelineEntrySchema = Type.Object({
  ts: Type.String({ description: 'ISO-8601' }),
  action: Type.Enum(['opened', 'repeated', 'acknowledged', 'note', 'resolved', 'cancelled', 'escalated', 'notified']),
  by: Type.String({ description: 'staff id, or system / rule:<type> / device:<id>' }),
  via: Type.String({ description: 'console, api, sms, rule, device' }),
  note: Type.Optional(Type.String()),
});

/** The alert shape of ARCHITECTURE.md section 2; every time is ISO-8601. */
export const AlertSchema = Type.Object({
  id: Type.String(),
  type: Type.String({ description: 'snake_case rule type: sos, fall, inactivity, water_low, night_exit, …' }),
  category: Type.Enum([...CATEGORIES]),
  severity: Type.Enum([...SEVERITIES]),
  status: Type.Enum([...ALERT_STATUSES]),
  key: Type.String({ description: 'dedup key: one open or acknowledged alert per key' }),
  householdId: Type.Optional(Type.String()),
  unitId: Type.Optional(Type.String()),
  buildingId: Type.Optional(Type.String()),
  areaId: Type.Optional(Type.String()),
  gridId: Type.Optional(Type.String()),
  communityId: Type.Optional(Type.String()),
  deviceId: Type.Optional(Type.String()),
  colour: Type.Optional(Colour),
  summary: Type.String(),
  count: Type.Integer({ description: 'how many times the condition was raised while this alert was active' }),
  firstSeen: Type.String(),
  lastSeen: Type.String(),
  notBefore: Type.Optional(Type.String({ description: 'notifications wait until then (a cancel window)' })),
  drill: Type.Boolean(),
  evidence: Type.Array(EvidenceSchema, { description: 'the first 5 and the latest 15 items' }),
  timeline: Type.Array(TimelineEntrySchema),
  resolvedAt: Type.Optional(Type.String()),
  outcome: Type.Optional(Type.String()),
  acknowledgedAt: Type.Optional(Type.String()),
  acknowledgedBy: Type.Optional(Type.String()),
  updatedAt: Type.String(),
});
