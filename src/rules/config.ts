/**
 * Rule settings: one schema, validated with the rest of the config (src/config/schema.ts). Defaults in
 * config/default.yaml under `rules`; `rules.byColour.<colour>` and `rules.households.<id>` override any setting of
 * any rule for that class or household (`settingsFor`). Times of day are in the community's `timezone`.
 */
import { type Static, type TObject, Type } from 'typebox';
import type { Colour } from '../registry/types.ts';

const HHMM = Type.String({ pattern: '^([01]\\d|2[0-3]):[0-5]\\d$', description: 'HH:MM, community time zone' });
const Hours = (max = 24 * 30) => Type.Number({ minimum: 0.01, maximum: max });
const on = { enabled: Type.Boolean() };

export const RuleSchemas = {
  sos: Type.Object({ ...on }, { additionalProperties: false }),
  fall: Type.Object(
    { ...on, cancelWindowS: Type.Integer({ minimum: 0, maximum: 3600 }) },
    { additionalProperties: false },
  ),
  /** smoke / gas leak in a home; smoke or over-temperature in an e-bike charging area */
  fire: Type.Object(
    { ...on, chargingAreaMaxTemperatureC: Type.Number({ minimum: 30, maximum: 200 }) },
    { additionalProperties: false },
  ),
  inactivity: Type.Object(
    {
      ...on,
      /** a household's first days: the fixed threshold */
      coldStartDays: Type.Number({ minimum: 0, maximum: 60 }),
      coldStartHours: Hours(24),
      /** inactivity is alarmed only between dayStart and dayEnd */
      dayStart: HHMM,
      dayEnd: HHMM,
      /** learned threshold: this percentile of past quiet spells in the half-hour slot … */
      percentile: Type.Number({ minimum: 0.5, maximum: 1 }),
      /** … times this margin, clamped to [minHours, maxHours] */
      margin: Type.Number({ minimum: 1, maximum: 5 }),
      minHours: Hours(24),
      maxHours: Hours(48),
      historyDays: Type.Integer({ minimum: 7, maximum: 365 }),
      /** electricity above background counts as activity when power exceeds the background by this much */
      powerAboveBackgroundW: Type.Number({ minimum: 0, maximum: 10_000 }),
    },
    { additionalProperties: false },
  ),
  water: Type.Object(
    {
      ...on,
      lowLitres: Type.Number({ minimum: 0, maximum: 10_000 }),
      lowMajorHours: Hours(72),
      lowCriticalHours: Hours(96),
      continuousHours: Hours(72),
      dailyMaxLitres: Type.Number({ minimum: 1, maximum: 1_000_000 }),
    },
    { additionalProperties: false },
  ),
  gasLeftOn: Type.Object(
    { ...on, minutes: Type.Number({ minimum: 1, maximum: 1440 }) },
    { additionalProperties: false },
  ),
  nightExit: Type.Object(
    { ...on, start: HHMM, end: HHMM, returnMinutes: Type.Number({ minimum: 1, maximum: 600 }) },
    { additionalProperties: false },
  ),
  notSeen: Type.Object({ ...on, hours: Hours(24 * 14) }, { additionalProperties: false }),
  doorAccess: Type.Object(
    {
      ...on,
      heldOpenSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }),
      deniedCount: Type.Integer({ minimum: 2, maximum: 1000 }),
      deniedWindowMinutes: Type.Number({ minimum: 1, maximum: 1440 }),
    },
    { additionalProperties: false },
  ),
  ebike: Type.Object(
    {
      ...on,
      repeatCount: Type.Integer({ minimum: 2, maximum: 100 }),
      repeatDays: Type.Number({ minimum: 1, maximum: 90 }),
    },
    { additionalProperties: false },
  ),
  deviceHealth: Type.Object(
    {
      ...on,
      lowBatteryPct: Type.Number({ minimum: 1, maximum: 99 }),
      /** after a start, no device alerts for this long */
      graceMinutes: Type.Number({ minimum: 0, maximum: 1440 }),
      /** this many devices going offline within a minute become one alert */
      massOfflineCount: Type.Integer({ minimum: 2, maximum: 100_000 }),
    },
    { additionalProperties: false },
  ),
  visits: Type.Object(
    {
      ...on,
      days: Type.Object(
        {
          red: Type.Number({ minimum: 0.5 }),
          orange: Type.Number({ minimum: 0.5 }),
          yellow: Type.Number({ minimum: 0.5 }),
          blue: Type.Number({ minimum: 0.5 }),
          green: Type.Number({ minimum: 0.5 }),
        },
        { additionalProperties: false },
      ),
      /** a red household overdue by this many days becomes a minor alert */
      redOverdueAlertDays: Type.Number({ minimum: 0.5, maximum: 30 }),
    },
    { additionalProperties: false },
  ),
} satisfies Record<string, TObject>;

export type RuleName = keyof typeof RuleSchemas;
export const RULE_NAMES = Object.keys(RuleSchemas) as RuleName[];

const partialOf = <T extends TObject>(s: T) => Type.Partial(s, { additionalProperties: false });
const OverrideSchema = Type.Object(
  Object.fromEntries(RULE_NAMES.map((n) => [n, Type.Optional(partialOf(RuleSchemas[n]))])) as {
    [K in RuleName]: ReturnType<typeof Type.Optional<ReturnType<typeof partialOf<(typeof RuleSchemas)[K]>>>>;
  },
  { additionalProperties: false },
);

export const RulesConfigSchema = Type.Object(
  {
    ...(RuleSchemas as { [K in RuleName]: (typeof RuleSchemas)[K] }),
    byColour: Type.Object(
      {
        red: Type.Optional(OverrideSchema),
        orange: Type.Optional(OverrideSchema),
        yellow: Type.Optional(OverrideSchema),
        blue: Type.Optional(OverrideSchema),
        green: Type.Optional(OverrideSchema),
      },
      { additionalProperties: false },
    ),
    households: Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' }), OverrideSchema),
  },
  { additionalProperties: false },
);

export type RulesConfig = Static<typeof RulesConfigSchema>;
export type RuleSettings = { [K in RuleName]: Static<(typeof RuleSchemas)[K]> };
export type RuleOverrides = { [K in RuleName]?: Partial<RuleSettings[K]> };

/** The settings that apply to one household: defaults, then its colour class, then the household itself. */
export function settingsFor(cfg: RulesConfig, householdId?: string, colour?: Colour): RuleSettings {
  const byColour = colour ? (cfg.byColour[colour] as RuleOverrides | undefined) : undefined;
  const byHousehold = householdId ? (cfg.households[householdId] as RuleOverrides | undefined) : undefined;
  // Rules ask several times per reading: without an override the config's own objects are the settings (no copy;
  // callers only read them, and a config changed in place is seen at once).
  if (!byColour && !byHousehold) return cfg;
  const out = {} as Record<RuleName, unknown>;
  for (const name of RULE_NAMES) {
    const a = byColour?.[name];
    const b = byHousehold?.[name];
    out[name] = a || b ? { ...cfg[name], ...a, ...b } : cfg[name];
  }
  return out as RuleSettings;
}
