/**
 * Escalation policies (issue 4): per alert category, severity and five-colour class, ordered steps of who is told,
 * how, and how long to wait for an acknowledgement before the next step. The first matching policy applies, and it
 * is frozen into the alert when it opens, so later edits of the config do not change a running escalation.
 * The policies themselves are configuration: `escalation.policies` in config/default.yaml.
 */
import { type Static, Type } from 'typebox';
import { CATEGORIES, type Category, SEVERITIES, type Severity } from '../alerts/types.ts';
import { COLOURS, type Colour } from '../registry/types.ts';

/** Who, relative to the alert's household (or building / device), or a named staff account (`staff:<id>`). */
export const RECIPIENT_ROLES = [
  'grid_worker',
  'grid_leader',
  'building_leader',
  'community_director',
  'street_duty_officer',
  'emergency_contacts',
  'device_keeper',
  /** the keeper of the depot a supplies alert is about (src/supplies) */
  'depot_keeper',
] as const;
export type RecipientRole = (typeof RECIPIENT_ROLES)[number];

const Recipient = Type.Union([
  Type.Enum([...RECIPIENT_ROLES]),
  Type.String({ pattern: '^staff:[A-Za-z0-9._-]+$', description: 'a named staff account: staff:<id>' }),
]);

export const StepSchema = Type.Object(
  {
    /** minutes after the alert opened (0: at once) */
    afterMinutes: Type.Number({ minimum: 0, maximum: 24 * 60 }),
    to: Type.Array(Recipient, { minItems: 1 }),
    /** sms: now (night too); digest: the working-hours digest, never at night */
    channel: Type.Enum(['sms', 'digest']),
  },
  { additionalProperties: false },
);

export const PolicySchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    match: Type.Object(
      {
        categories: Type.Optional(Type.Array(Type.Enum([...CATEGORIES]), { minItems: 1 })),
        severities: Type.Optional(Type.Array(Type.Enum([...SEVERITIES]), { minItems: 1 })),
        colours: Type.Optional(Type.Array(Type.Enum([...COLOURS]), { minItems: 1 })),
      },
      { additionalProperties: false },
    ),
    steps: Type.Array(StepSchema, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export const EscalationConfigSchema = Type.Array(PolicySchema, { minItems: 1 });
export type Policy = Static<typeof PolicySchema>;
export type Step = Static<typeof StepSchema>;

export interface PolicySubject {
  category: Category;
  severity: Severity;
  colour?: Colour;
}

/** The first policy whose every given condition matches; undefined when none does (nobody is notified). */
export function policyFor(policies: readonly Policy[], a: PolicySubject): Policy | undefined {
  return policies.find(
    (p) =>
      (!p.match.categories || p.match.categories.includes(a.category)) &&
      (!p.match.severities || p.match.severities.includes(a.severity)) &&
      (!p.match.colours || (a.colour !== undefined && p.match.colours.includes(a.colour))),
  );
}
