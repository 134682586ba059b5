/**
 * Drill scenarios (issue 6), modelled on the HSEEP exercise method and the DRIVER+ trial-management tool: a scope
 * (buildings / grids), the participants (staff by role relative to the scope, or by name), objectives with a
 * measurable target the after-action report can mark met or missed, and the master list of injects (MSEL) — device
 * events published by drill devices over the real MQTT path, messages to the participants, tasks they mark done.
 *
 * Scenario files live in `drills.dir` (config/drills/*.yaml) and are validated like the rest of the configuration
 * when the node starts: every problem of every file is listed with the file and the path inside it, and the node
 * refuses to start (ScenarioError is a ConfigError). References to the registry (buildings, households, staff
 * usernames) are data, not configuration: they are checked against the registry separately (`registryProblems`),
 * and a scenario whose places do not exist is listed as unavailable instead of stopping a deployment that holds
 * another community.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { type Static, Type } from 'typebox';
import { parseDocument } from 'yaml';
import { getModel } from '../../devices/index.ts';
import { ConfigError } from '../config/load.ts';
import { EventSchema, TelemetrySchema } from '../contracts/canonical.ts';
import { assertNoUrl, MAX_SMS_UNITS } from '../notify/templates.ts';
import { COLOURS, ROLES, type Role } from '../registry/types.ts';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export const DRILL_TYPES = [
  'fire',
  'ebike_fire',
  'flood',
  'power_cut',
  'sewage_overflow',
  'lone_elderly',
  'gas_leak',
  'earthquake',
  'epidemic',
  'other',
] as const;
export type DrillType = (typeof DRILL_TYPES)[number];

export const TARGET_KINDS = [
  'first_ack_within',
  'all_alerts_acked_within',
  'tasks_done_within',
  'injects_handled',
] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];
export const ACTION_KINDS = ['device_event', 'message', 'task'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

/** The SMS prefix of every drill message (the alert templates use the same one). */
export const DRILL_SMS_PREFIX = '【演练】';

const Id = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,47}$', description: 'lower-case letters, digits, - and _' });
const RefId = Type.String({ minLength: 1, maxLength: 64 });
const Text = Type.Object(
  { zh: Type.String({ minLength: 1, maxLength: 500 }), en: Type.String({ minLength: 1, maxLength: 500 }) },
  { additionalProperties: false },
);
const Seconds = Type.Integer({ minimum: 1, maximum: 7 * 86_400 });
const AlertType = Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' });

export const PlaceSchema = Type.Object(
  {
    householdId: Type.Optional(RefId),
    buildingId: Type.Optional(RefId),
    unitId: Type.Optional(RefId),
    areaId: Type.Optional(RefId),
  },
  { additionalProperties: false },
);
export type Place = Static<typeof PlaceSchema>;

export const TriggerSchema = Type.Object(
  {
    /** seconds of drill time after the start (pauses do not count) */
    at: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86_400 })),
    /** fired by a controller from the console */
    manual: Type.Optional(Type.Literal(true)),
    /** after another inject fired, or a task was done, plus a delay in drill time */
    after: Type.Optional(
      Type.Object(
        {
          injectId: Type.Optional(Id),
          taskId: Type.Optional(Id),
          state: Type.Enum(['fired', 'done']),
          delaySeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type Trigger = Static<typeof TriggerSchema>;

export const DeviceEventActionSchema = Type.Object(
  {
    kind: Type.Literal('device_event'),
    /** a `native-*` model: the payload is canonical */
    model: Type.String({ minLength: 1 }),
    place: PlaceSchema,
    /** for a building or unit place and a household model: one drill device in every household there */
    each: Type.Optional(Type.Literal('household')),
    /** a canonical event without `id` and `ts` (the runner sets them) */
    event: Type.Optional(Type.Object({ type: Type.String() }, { additionalProperties: true })),
    /** canonical telemetry without `ts` */
    telemetry: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: false },
);
export type DeviceEventAction = Static<typeof DeviceEventActionSchema>;

export const MessageActionSchema = Type.Object(
  {
    kind: Type.Literal('message'),
    text: Text,
    /** only the participants with these roles (default: every participant) */
    to: Type.Optional(Type.Array(Type.Enum([...ROLES]), { minItems: 1 })),
    /** also as SMS (default true); always shown live in the console */
    sms: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type MessageAction = Static<typeof MessageActionSchema>;

export const HouseholdSelectSchema = Type.Object(
  {
    buildingIds: Type.Optional(Type.Array(RefId, { minItems: 1 })),
    unitIds: Type.Optional(Type.Array(RefId, { minItems: 1 })),
    colours: Type.Optional(Type.Array(Type.Enum([...COLOURS]), { minItems: 1 })),
    loneElderly: Type.Optional(Type.Boolean()),
    /** ground floor and the like: rooms starting with these floor numbers ("1" → 101, 102 …) */
    floors: Type.Optional(Type.Array(Type.Integer({ minimum: 1, maximum: 99 }), { minItems: 1 })),
  },
  { additionalProperties: false },
);
export type HouseholdSelect = Static<typeof HouseholdSelectSchema>;

export const TaskActionSchema = Type.Object(
  {
    kind: Type.Literal('task'),
    text: Text,
    /** who is expected to do it (any participant may mark it done) */
    assigneeRole: Type.Optional(Type.Enum([...ROLES])),
    /** households to check, by id … */
    householdIds: Type.Optional(Type.Array(RefId, { minItems: 1, maxItems: 500 })),
    /** … or chosen from the registry when the drill starts */
    households: Type.Optional(HouseholdSelectSchema),
    /** places to check or act at (a unit to evacuate, a building entrance to sandbag) */
    places: Type.Optional(Type.Array(PlaceSchema, { minItems: 1, maxItems: 100 })),
  },
  { additionalProperties: false },
);
export type TaskAction = Static<typeof TaskActionSchema>;

export type Action = DeviceEventAction | MessageAction | TaskAction;

const InjectShape = Type.Object(
  {
    id: Id,
    title: Text,
    trigger: TriggerSchema,
    action: Type.Object({ kind: Type.Enum([...ACTION_KINDS]) }, { additionalProperties: true }),
  },
  { additionalProperties: false },
);
export type Inject = Omit<Static<typeof InjectShape>, 'action'> & { action: Action };

export const FirstAckTargetSchema = Type.Object(
  { kind: Type.Literal('first_ack_within'), seconds: Seconds, alertTypes: Type.Optional(Type.Array(AlertType)) },
  { additionalProperties: false },
);
export const AllAckedTargetSchema = Type.Object(
  { kind: Type.Literal('all_alerts_acked_within'), seconds: Seconds, alertTypes: Type.Optional(Type.Array(AlertType)) },
  { additionalProperties: false },
);
export const TasksDoneTargetSchema = Type.Object(
  {
    kind: Type.Literal('tasks_done_within'),
    taskIds: Type.Array(Id, { minItems: 1 }),
    seconds: Seconds,
    /** measured from the task's issue (default) or from the start of the drill */
    from: Type.Optional(Type.Enum(['issued', 'start'])),
  },
  { additionalProperties: false },
);
export const InjectsHandledTargetSchema = Type.Object(
  { kind: Type.Literal('injects_handled'), injectIds: Type.Array(Id, { minItems: 1 }), seconds: Seconds },
  { additionalProperties: false },
);
export type Target =
  | Static<typeof FirstAckTargetSchema>
  | Static<typeof AllAckedTargetSchema>
  | Static<typeof TasksDoneTargetSchema>
  | Static<typeof InjectsHandledTargetSchema>;

const ObjectiveShape = Type.Object(
  {
    id: Id,
    text: Text,
    target: Type.Object({ kind: Type.Enum([...TARGET_KINDS]) }, { additionalProperties: true }),
  },
  { additionalProperties: false },
);
export type Objective = Omit<Static<typeof ObjectiveShape>, 'target'> & { target: Target };

export const ScenarioShape = Type.Object(
  {
    id: Id,
    name: Text,
    type: Type.Enum([...DRILL_TYPES]),
    description: Text,
    /** how long it is expected to take, minutes (shown; the drill ends when a controller ends it) */
    durationMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 60 })),
    scope: Type.Object(
      {
        buildingIds: Type.Optional(Type.Array(RefId, { minItems: 1 })),
        gridIds: Type.Optional(Type.Array(RefId, { minItems: 1 })),
      },
      { additionalProperties: false },
    ),
    participants: Type.Object(
      {
        /** roles relative to the scope: staff holding one of them whose coverage reaches a grid of the scope */
        roles: Type.Optional(Type.Array(Type.Enum([...ROLES]), { minItems: 1 })),
        /** named staff, by username */
        staff: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9_.-]{3,32}$' }), { minItems: 1 })),
        /** residents' emergency contacts may be texted about the drill's alerts (default: never) */
        emergencyContacts: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
    objectives: Type.Array(ObjectiveShape, { minItems: 1, maxItems: 50 }),
    injects: Type.Array(InjectShape, { minItems: 1, maxItems: 200 }),
  },
  { additionalProperties: false },
);
export type Scenario = Omit<Static<typeof ScenarioShape>, 'objectives' | 'injects'> & {
  objectives: Objective[];
  injects: Inject[];
};

/** A loaded scenario and where it came from. */
export interface ScenarioFile {
  scenario: Scenario;
  file: string;
}

/** Every problem of every scenario file; a ConfigError, so the node refuses to start with the same message shape. */
export class ScenarioError extends ConfigError {}

const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const validators = {
  scenario: ajv.compile(ScenarioShape),
  device_event: ajv.compile(DeviceEventActionSchema),
  message: ajv.compile(MessageActionSchema),
  task: ajv.compile(TaskActionSchema),
  first_ack_within: ajv.compile(FirstAckTargetSchema),
  all_alerts_acked_within: ajv.compile(AllAckedTargetSchema),
  tasks_done_within: ajv.compile(TasksDoneTargetSchema),
  injects_handled: ajv.compile(InjectsHandledTargetSchema),
  telemetry: ajv.compile(TelemetrySchema),
} satisfies Record<string, ValidateFunction>;

/** One validator per canonical event type (the union's branches), so a problem is told for the type it is about. */
const eventValidators = new Map<string, ValidateFunction>(
  (EventSchema as unknown as { anyOf: { properties: { type: { const: string } } }[] }).anyOf.map((branch) => [
    branch.properties.type.const,
    ajv.compile(branch),
  ]),
);

function ajvProblems(errors: ErrorObject[] | null | undefined, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of errors ?? []) {
    // a union's branches each complain: the canonical event union is reported once, below
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
    let p = prefix + e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      p += `/${(e.params as { missingProperty: string }).missingProperty}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      p += `/${(e.params as { additionalProperty: string }).additionalProperty}`;
      message = 'is not a known field';
    } else if (e.keyword === 'enum') {
      message = `must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).join(', ')}`;
    } else if (e.keyword === 'const') {
      message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
    }
    const line = `${dotted(p)}: ${message}`;
    if (!out.includes(line)) out.push(line);
  }
  return out;
}

/** `/injects/2/trigger` → `injects.2.trigger` (the config loader's style). */
function dotted(p: string): string {
  return p.replace(/^\//, '').split('/').filter(Boolean).join('.') || '(root)';
}

function placeKind(p: Place): ('household' | 'building' | 'unit' | 'area')[] {
  const kinds: ('household' | 'building' | 'unit' | 'area')[] = [];
  if (p.householdId !== undefined) kinds.push('household');
  if (p.buildingId !== undefined) kinds.push('building');
  if (p.unitId !== undefined) kinds.push('unit');
  if (p.areaId !== undefined) kinds.push('area');
  return kinds;
}

/** The one id of a place. */
export function placeId(p: Place): string {
  return (p.householdId ?? p.unitId ?? p.buildingId ?? p.areaId)!;
}

/** Validates one parsed document; returns every problem (paths dotted, without the file). */
export function validateScenario(data: unknown): string[] {
  if (!validators.scenario(data)) return ajvProblems(validators.scenario.errors);
  const s = data as Scenario;
  const problems: string[] = [];
  if (!s.scope.buildingIds && !s.scope.gridIds) problems.push('scope: needs buildingIds or gridIds');
  if (!s.participants.roles && !s.participants.staff) problems.push('participants: needs roles or staff');

  const injectIds = new Map<string, number>();
  s.injects.forEach((inj, i) => {
    if (injectIds.has(inj.id)) problems.push(`injects.${i}.id: duplicate inject id "${inj.id}"`);
    else injectIds.set(inj.id, i);
  });
  const taskIds = new Set(s.injects.filter((x) => x.action.kind === 'task').map((x) => x.id));

  s.injects.forEach((inj, i) => {
    const at = `injects.${i}`;
    const t = inj.trigger;
    const set = [t.at !== undefined, t.manual !== undefined, t.after !== undefined].filter(Boolean).length;
    if (set !== 1) problems.push(`${at}.trigger: exactly one of at, manual or after`);
    if (t.after) {
      const a = t.after;
      if ((a.injectId === undefined) === (a.taskId === undefined)) {
        problems.push(`${at}.trigger.after: exactly one of injectId or taskId`);
      } else if (a.injectId !== undefined) {
        if (a.state !== 'fired') problems.push(`${at}.trigger.after.state: an inject can only be "fired"`);
        if (!injectIds.has(a.injectId)) problems.push(`${at}.trigger.after.injectId: no inject "${a.injectId}"`);
        if (a.injectId === inj.id) problems.push(`${at}.trigger.after.injectId: an inject cannot follow itself`);
      } else if (a.taskId !== undefined) {
        if (a.state !== 'done') problems.push(`${at}.trigger.after.state: a task can only be "done"`);
        if (!taskIds.has(a.taskId)) problems.push(`${at}.trigger.after.taskId: no task inject "${a.taskId}"`);
        if (a.taskId === inj.id) problems.push(`${at}.trigger.after.taskId: an inject cannot follow itself`);
      }
    }
    problems.push(...actionProblems(inj.action, `/injects/${i}/action`, s));
  });
  problems.push(...cycleProblems(s));

  const objectiveIds = new Set<string>();
  s.objectives.forEach((o, i) => {
    const at = `objectives.${i}`;
    if (objectiveIds.has(o.id)) problems.push(`${at}.id: duplicate objective id "${o.id}"`);
    objectiveIds.add(o.id);
    const v = validators[o.target.kind];
    if (!v(o.target)) {
      problems.push(...ajvProblems(v.errors, `/objectives/${i}/target`));
      return;
    }
    if (o.target.kind === 'tasks_done_within') {
      for (const id of o.target.taskIds) {
        if (!taskIds.has(id)) problems.push(`${at}.target.taskIds: no task inject "${id}"`);
      }
    }
    if (o.target.kind === 'injects_handled') {
      for (const id of o.target.injectIds) {
        const j = injectIds.get(id);
        if (j === undefined) problems.push(`${at}.target.injectIds: no inject "${id}"`);
        else if (s.injects[j]!.action.kind === 'message') {
          problems.push(`${at}.target.injectIds: "${id}" is a message; only device events and tasks are handled`);
        }
      }
    }
  });
  return problems;
}

function actionProblems(action: { kind: ActionKind }, prefix: string, s: Scenario): string[] {
  const v = validators[action.kind];
  if (!v(action)) return ajvProblems(v.errors, prefix);
  const at = dotted(prefix);
  const problems: string[] = [];
  if (action.kind === 'device_event') {
    const a = action as DeviceEventAction;
    const model = getModel(a.model);
    const kinds = placeKind(a.place);
    if (kinds.length !== 1) problems.push(`${at}.place: exactly one of householdId, buildingId, unitId or areaId`);
    if (!model) problems.push(`${at}.model: unknown device model "${a.model}"`);
    else if (model.vendor !== 'native') {
      problems.push(`${at}.model: "${a.model}" is a vendor model; drills publish canonical payloads (native-* models)`);
    } else if (kinds.length === 1) {
      const kind = kinds[0]!;
      if (a.each === 'household') {
        if (kind !== 'building' && kind !== 'unit') {
          problems.push(`${at}.each: "household" needs a buildingId or unitId place`);
        }
        if (!model.installOn.includes('household')) {
          problems.push(`${at}.each: ${a.model} is not installed in households`);
        }
      } else if (!model.installOn.includes(kind)) {
        problems.push(`${at}.place: ${a.model} is installed on ${model.installOn.join(' / ')}, not on a ${kind}`);
      }
    }
    if ((a.event === undefined) === (a.telemetry === undefined)) {
      problems.push(`${at}: exactly one of event or telemetry`);
    }
    if (a.event) {
      const ev = a.event as Record<string, unknown>;
      if ('id' in ev || 'ts' in ev) problems.push(`${at}.event: leave out id and ts (the runner sets them)`);
      const check = eventValidators.get(String(ev.type));
      if (ev.type === 'cmd_ack') problems.push(`${at}.event.type: cmd_ack is a command answer, not a drill event`);
      else if (!check) {
        problems.push(
          `${at}.event.type: "${String(ev.type)}" is not a canonical event type (ARCHITECTURE.md section 2)`,
        );
      } else if (!check(ev)) {
        problems.push(...ajvProblems(check.errors, `${prefix}/event`));
      } else if (model && !model.events.includes(String(ev.type))) {
        problems.push(`${at}.event.type: ${a.model} does not send "${String(ev.type)}" (${model.events.join(', ')})`);
      }
    }
    if (a.telemetry) {
      const tm = a.telemetry as Record<string, unknown>;
      if ('ts' in tm) problems.push(`${at}.telemetry: leave out ts (the runner sets it)`);
      else if (!validators.telemetry(tm))
        problems.push(...ajvProblems(validators.telemetry.errors, `${prefix}/telemetry`));
      else if (model) {
        for (const f of Object.keys(tm)) {
          if (!model.fields.includes(f)) problems.push(`${at}.telemetry.${f}: ${a.model} does not report ${f}`);
        }
      }
    }
  }
  if (action.kind === 'message') {
    const a = action as MessageAction;
    for (const lang of ['zh', 'en'] as const) {
      try {
        assertNoUrl(a.text[lang], 'message');
      } catch {
        problems.push(`${at}.text.${lang}: must not contain a URL or domain (carriers block them)`);
      }
    }
    if (a.sms !== false && (DRILL_SMS_PREFIX + a.text.zh).length > MAX_SMS_UNITS) {
      problems.push(
        `${at}.text.zh: with ${DRILL_SMS_PREFIX} the SMS is ${(DRILL_SMS_PREFIX + a.text.zh).length} characters; at most ${MAX_SMS_UNITS} (two segments)`,
      );
    }
    const roles = s.participants.roles ?? [];
    for (const r of a.to ?? []) {
      if (!roles.includes(r) && !s.participants.staff) problems.push(`${at}.to: ${r} is not a participant role`);
    }
  }
  if (action.kind === 'task') {
    const a = action as TaskAction;
    if (a.householdIds && a.households) problems.push(`${at}: householdIds or households, not both`);
    (a.places ?? []).forEach((p, j) => {
      if (placeKind(p).length !== 1) {
        problems.push(`${at}.places.${j}: exactly one of householdId, buildingId, unitId or areaId`);
      }
    });
  }
  return problems;
}

/** `after` chains must not loop (a → b → a would never fire). */
function cycleProblems(s: Scenario): string[] {
  const next = new Map<string, string>();
  for (const inj of s.injects) {
    const ref = inj.trigger.after?.injectId ?? inj.trigger.after?.taskId;
    if (ref) next.set(inj.id, ref);
  }
  const problems: string[] = [];
  const reported = new Set<string>();
  for (const start of next.keys()) {
    const seen = new Set<string>([start]);
    let cur = next.get(start);
    while (cur !== undefined) {
      if (seen.has(cur)) {
        const loop = [...seen].sort().join(', ');
        if (!reported.has(loop)) {
          reported.add(loop);
          problems.push(`injects: the "after" triggers of ${loop} form a loop; none of them would ever fire`);
        }
        break;
      }
      seen.add(cur);
      cur = next.get(cur);
    }
  }
  return problems;
}

/** Parses and validates one file's text; problems carry the file name. */
export function parseScenario(text: string, file: string): { scenario?: Scenario; problems: string[] } {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) => {
        const pos = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
        return `${file}: not valid YAML${pos}: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`;
      }),
    };
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const problems = validateScenario(data).map((p) => `${file}: ${p}`);
  return problems.length > 0 ? { problems } : { scenario: data as Scenario, problems };
}

/**
 * Loads every `*.yaml` / `*.yml` / `*.json` file of `dir` (a missing directory holds no scenarios). Throws a
 * ScenarioError listing every problem of every file, and duplicate scenario ids across files.
 */
export function loadScenarios(dir: string): ScenarioFile[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new ScenarioError([`${dir}: drills.dir is not a directory`]);
    names = readdirSync(dir)
      .filter((n) => /\.(ya?ml|json)$/i.test(n))
      .sort();
  } catch (e) {
    if (e instanceof ScenarioError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ScenarioError([`${dir}: cannot read: ${(e as Error).message}`]);
  }
  const problems: string[] = [];
  const out: ScenarioFile[] = [];
  const byId = new Map<string, string>();
  for (const name of names) {
    const file = path.join(dir, name);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      problems.push(`${file}: cannot read: ${(e as Error).message}`);
      continue;
    }
    const r = parseScenario(text, file);
    problems.push(...r.problems);
    if (!r.scenario) continue;
    const first = byId.get(r.scenario.id);
    if (first) {
      problems.push(`${file}: id: scenario "${r.scenario.id}" is already defined in ${first}`);
      continue;
    }
    byId.set(r.scenario.id, file);
    out.push({ scenario: r.scenario, file });
  }
  if (problems.length > 0) throw new ScenarioError(problems.map((p) => `drill scenario ${p}`));
  return out;
}

// ------------------------------------------------------------------ references to the registry

/** What the registry check needs: the hierarchy and staff usernames. */
export interface PlaceDirectory {
  /** where a place is: undefined when it does not exist (a free-standing charging area has no grid) */
  placeOf(
    kind: 'household' | 'building' | 'unit' | 'area' | 'grid',
    id: string,
  ): { gridId?: string; communityId: string } | undefined;
  hasStaff(username: string): boolean;
}

/**
 * Checks the scenario's references against the registry: every place exists, the scope lies in one community.
 * Returns the problems (empty: the scenario can run) and the community.
 */
export function registryProblems(s: Scenario, dir: PlaceDirectory): { problems: string[]; communityId?: string } {
  const problems: string[] = [];
  const communities = new Set<string>();
  for (const b of s.scope.buildingIds ?? []) {
    const p = dir.placeOf('building', b);
    if (!p) problems.push(`scope.buildingIds: building ${b} does not exist`);
    else communities.add(p.communityId);
  }
  for (const g of s.scope.gridIds ?? []) {
    const p = dir.placeOf('grid', g);
    if (!p) problems.push(`scope.gridIds: grid ${g} does not exist`);
    else communities.add(p.communityId);
  }
  if (communities.size > 1) problems.push(`scope: spans several communities (${[...communities].join(', ')})`);
  for (const u of s.participants.staff ?? []) {
    if (!dir.hasStaff(u)) problems.push(`participants.staff: no staff account ${u}`);
  }
  const exists = (kind: 'household' | 'building' | 'unit' | 'area', id: string, at: string) => {
    if (!dir.placeOf(kind, id)) problems.push(`${at}: ${kind} ${id} does not exist`);
  };
  const checkPlace = (p: Place, at: string) => {
    const [kind] = placeKind(p);
    if (kind) exists(kind, placeId(p), at);
  };
  s.injects.forEach((inj, i) => {
    const a = inj.action;
    const at = `injects.${i}.action`;
    if (a.kind === 'device_event') checkPlace(a.place, `${at}.place`);
    if (a.kind === 'task') {
      (a.places ?? []).forEach((p, j) => {
        checkPlace(p, `${at}.places.${j}`);
      });
      for (const h of a.householdIds ?? []) exists('household', h, `${at}.householdIds`);
      for (const b of a.households?.buildingIds ?? []) exists('building', b, `${at}.households.buildingIds`);
      for (const u of a.households?.unitIds ?? []) exists('unit', u, `${at}.households.unitIds`);
    }
  });
  return { problems, communityId: communities.size === 1 ? [...communities][0] : undefined };
}

/** Roles that take part in a drill without covering grids of their own (deployment-wide roles). */
export const WIDE_ROLES: readonly Role[] = ['drill_controller', 'evaluator', 'admin'];
