/**
 * The supply configuration (issue 7), validated at start like the rest of the configuration: a broken file stops the
 * start with every problem, the file and the path inside it (SupplyConfigError is a ConfigError).
 *
 * - `catalogue.yaml`: the items (id, names, category, unit, shelf life, inspection interval) and the quotas per
 *   reserve level (community, street, district): an absolute number, or a number per 1,000 residents served.
 * - `depots.yaml`: the depots at each level (address, keeper, population served, supplier agreements) and a
 *   `sample` section (keeper accounts and opening stock) used only for the demo (`supplies.sample`).
 *
 * References to the registry (communities, streets, staff usernames) are data, not configuration: they are checked
 * when the service starts and reported as warnings (a depot whose keeper does not exist has no keeper).
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { type Static, Type } from 'typebox';
import { parseDocument } from 'yaml';
import { ConfigError } from '../config/load.ts';
import { ITEM_CATEGORIES, type ItemCategory, LEVELS, type Level } from './constants.ts';
import { isDate } from './dates.ts';

export class SupplyConfigError extends ConfigError {}

export { ITEM_CATEGORIES, type ItemCategory, LEVELS, type Level };

/** Item ids: snake_case (they end alert keys and CSV cells). */
export const ITEM_ID_PATTERN = '^[a-z][a-z0-9_]{0,47}$';
/** Depot ids: lower-case letters, digits and `-` (no `_`: they sit inside LIKE patterns). */
export const DEPOT_ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,47}$';

const Text = (max = 100) =>
  Type.Object(
    { zh: Type.String({ minLength: 1, maxLength: max }), en: Type.String({ minLength: 1, maxLength: max }) },
    { additionalProperties: false },
  );

export const ItemSchema = Type.Object(
  {
    id: Type.String({ pattern: ITEM_ID_PATTERN }),
    name: Text(),
    category: Type.Enum([...ITEM_CATEGORIES]),
    unit: Text(20),
    /** days from receipt to expiry when a delivery gives no expiry date */
    shelfLifeDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 36_500 })),
    /** periodic inspection: extinguisher pressure, a generator's test run */
    inspectionEveryDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
    note: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
export type Item = Static<typeof ItemSchema>;

/** A minimum: an absolute number of units, or units per 1,000 residents served (rounded up). */
export const QuotaSchema = Type.Object(
  {
    absolute: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    /** at most 3 decimals count (0.2 per 1,000 residents) */
    per1000: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100_000 })),
  },
  { additionalProperties: false },
);
export type Quota = Static<typeof QuotaSchema>;

const QuotaMap = Type.Record(Type.String({ pattern: ITEM_ID_PATTERN }), QuotaSchema);

export const CatalogueFileSchema = Type.Object(
  {
    version: Type.Literal(1),
    items: Type.Array(ItemSchema, { minItems: 1, maxItems: 500 }),
    quotas: Type.Optional(
      Type.Object(
        { community: Type.Optional(QuotaMap), street: Type.Optional(QuotaMap), district: Type.Optional(QuotaMap) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type CatalogueFile = Static<typeof CatalogueFileSchema>;

export const AgreementSchema = Type.Object(
  {
    id: Type.String({ pattern: DEPOT_ID_PATTERN }),
    /** the supplier, e.g. a supermarket */
    supplier: Type.String({ minLength: 1, maxLength: 100 }),
    /** a business contact (the shop's number), shown to the keeper */
    contact: Type.Optional(Type.String({ maxLength: 100 })),
    validUntil: Type.Optional(Type.String({ description: 'YYYY-MM-DD' })),
    items: Type.Array(
      Type.Object(
        {
          itemId: Type.String({ pattern: ITEM_ID_PATTERN }),
          quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
          withinHours: Type.Number({ exclusiveMinimum: 0, maximum: 720 }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
  },
  { additionalProperties: false },
);
export type Agreement = Static<typeof AgreementSchema>;

export const DepotConfigSchema = Type.Object(
  {
    id: Type.String({ pattern: DEPOT_ID_PATTERN }),
    name: Text(),
    level: Type.Enum([...LEVELS]),
    /** community depots: the community they serve */
    communityId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** a community that is not in this registry (a neighbour): its name; then `streetId` and `population` too */
    communityName: Type.Optional(Text()),
    /** street depots; community depots whose community is only a label */
    streetId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    /** district depots; otherwise found from the street */
    districtId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    address: Type.String({ minLength: 1, maxLength: 200 }),
    /** the keeper's staff username */
    keeper: Type.Optional(Type.String({ pattern: '^[a-z0-9_.-]{3,32}$' })),
    /** people served; default: the residents of the communities it serves, counted in the registry */
    population: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000_000 })),
    agreements: Type.Optional(Type.Array(AgreementSchema, { maxItems: 50 })),
  },
  { additionalProperties: false },
);
export type DepotConfig = Static<typeof DepotConfigSchema>;

export const SampleLotSchema = Type.Object(
  {
    itemId: Type.String({ pattern: ITEM_ID_PATTERN }),
    quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    receivedDaysAgo: Type.Integer({ minimum: 0, maximum: 36_500 }),
    /** days from today (negative: already expired); default: the item's shelf life from receipt */
    expiresInDays: Type.Optional(Type.Integer({ minimum: -36_500, maximum: 36_500 })),
    lastInspectedDaysAgo: Type.Optional(Type.Integer({ minimum: 0, maximum: 36_500 })),
  },
  { additionalProperties: false },
);
export type SampleLot = Static<typeof SampleLotSchema>;

export const DepotsFileSchema = Type.Object(
  {
    version: Type.Literal(1),
    depots: Type.Array(DepotConfigSchema, { maxItems: 1000 }),
    /** demo only (`supplies.sample`): keeper accounts created when missing, opening stock of new depots */
    sample: Type.Optional(
      Type.Object(
        {
          keepers: Type.Optional(
            Type.Array(
              Type.Object(
                {
                  username: Type.String({ pattern: '^[a-z0-9_.-]{3,32}$' }),
                  name: Type.String({ minLength: 1, maxLength: 100 }),
                  phone: Type.String({ pattern: '^\\+[1-9]\\d{7,14}$' }),
                },
                { additionalProperties: false },
              ),
            ),
          ),
          stock: Type.Optional(Type.Record(Type.String({ pattern: DEPOT_ID_PATTERN }), Type.Array(SampleLotSchema))),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type DepotsFile = Static<typeof DepotsFileSchema>;

/** The validated catalogue with lookups. */
export interface Catalogue {
  items: Item[];
  byId: ReadonlyMap<string, Item>;
  quotas: Record<Level, Readonly<Record<string, Quota>>>;
}

export interface SupplyConfig {
  catalogue: Catalogue;
  depots: DepotsFile;
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateCatalogue = ajv.compile(CatalogueFileSchema);
const validateDepots = ajv.compile(DepotsFileSchema);

function ajvProblems(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const at = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(top)';
    if (e.keyword === 'additionalProperties') {
      return `${at}: unknown setting ${JSON.stringify((e.params as { additionalProperty: string }).additionalProperty)}`;
    }
    return `${at}: ${e.message ?? 'invalid'}`;
  });
}

function readYaml(text: string, file: string): { data?: unknown; problems: string[] } {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) => {
        const pos = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
        return `${file}: not valid YAML${pos}: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`;
      }),
    };
  }
  return { data: doc.toJS({ maxAliasCount: 100 }), problems: [] };
}

/** Validates a parsed catalogue; returns the problems (empty: valid) and the catalogue. */
export function checkCatalogue(data: unknown, file = 'catalogue'): { catalogue?: Catalogue; problems: string[] } {
  if (!validateCatalogue(data)) return { problems: ajvProblems(validateCatalogue.errors).map((p) => `${file}: ${p}`) };
  const c = data as CatalogueFile;
  const problems: string[] = [];
  const byId = new Map<string, Item>();
  c.items.forEach((item, i) => {
    if (byId.has(item.id)) problems.push(`items.${i}.id: item "${item.id}" is defined twice`);
    byId.set(item.id, item);
  });
  const quotas: Record<Level, Record<string, Quota>> = { community: {}, street: {}, district: {} };
  for (const level of LEVELS) {
    for (const [itemId, q] of Object.entries(c.quotas?.[level] ?? {})) {
      const at = `quotas.${level}.${itemId}`;
      if (!byId.has(itemId)) problems.push(`${at}: unknown item "${itemId}"`);
      if ((q.absolute === undefined) === (q.per1000 === undefined)) {
        problems.push(`${at}: give exactly one of absolute or per1000`);
      }
      quotas[level][itemId] = q;
    }
  }
  if (problems.length > 0) return { problems: problems.map((p) => `${file}: ${p}`) };
  return { catalogue: { items: c.items, byId, quotas }, problems };
}

/** Validates a parsed depots file against the catalogue. */
export function checkDepots(data: unknown, catalogue: Catalogue | undefined, file = 'depots'): string[] {
  if (!validateDepots(data)) return ajvProblems(validateDepots.errors).map((p) => `${file}: ${p}`);
  const d = data as DepotsFile;
  const problems: string[] = [];
  const ids = new Set<string>();
  const agreementIds = new Set<string>();
  const knownItem = (itemId: string, at: string) => {
    if (catalogue && !catalogue.byId.has(itemId)) problems.push(`${at}: unknown item "${itemId}"`);
  };
  d.depots.forEach((dp, i) => {
    const at = `depots.${i}`;
    if (ids.has(dp.id)) problems.push(`${at}.id: depot "${dp.id}" is defined twice`);
    ids.add(dp.id);
    if (dp.level === 'community') {
      if (!dp.communityId) problems.push(`${at}.communityId: a community depot names its community`);
      if (dp.communityName && (!dp.streetId || dp.population === undefined)) {
        problems.push(
          `${at}: a community that is only a label (communityName) needs streetId and population: the registry cannot tell them`,
        );
      }
    } else if (dp.communityId || dp.communityName) {
      problems.push(`${at}: communityId / communityName are for community depots only`);
    }
    if (dp.level === 'street' && !dp.streetId) problems.push(`${at}.streetId: a street depot names its street`);
    if (dp.level === 'district' && !dp.districtId) {
      problems.push(`${at}.districtId: a district depot names its district`);
    }
    (dp.agreements ?? []).forEach((a, j) => {
      if (agreementIds.has(a.id)) problems.push(`${at}.agreements.${j}.id: agreement "${a.id}" is defined twice`);
      agreementIds.add(a.id);
      if (a.validUntil !== undefined && !isDate(a.validUntil)) {
        problems.push(`${at}.agreements.${j}.validUntil: must be a date YYYY-MM-DD`);
      }
      a.items.forEach((x, k) => {
        knownItem(x.itemId, `${at}.agreements.${j}.items.${k}.itemId`);
      });
    });
  });
  const keepers = new Set<string>();
  (d.sample?.keepers ?? []).forEach((k, i) => {
    if (keepers.has(k.username)) problems.push(`sample.keepers.${i}.username: "${k.username}" is listed twice`);
    keepers.add(k.username);
  });
  for (const [depotId, lots] of Object.entries(d.sample?.stock ?? {})) {
    if (!ids.has(depotId)) problems.push(`sample.stock.${depotId}: unknown depot "${depotId}"`);
    lots.forEach((lot, i) => {
      const at = `sample.stock.${depotId}.${i}`;
      knownItem(lot.itemId, `${at}.itemId`);
      if (lot.expiresInDays !== undefined && lot.expiresInDays < -lot.receivedDaysAgo) {
        problems.push(`${at}.expiresInDays: the lot would expire before it was received`);
      }
    });
  }
  return problems.map((p) => `${file}: ${p}`);
}

/**
 * Reads and validates both files. Throws a SupplyConfigError listing every problem of both (the node refuses to
 * start). A missing depots file means no depots.
 */
export function loadSupplyConfig(catalogueFile: string, depotsFile: string | undefined): SupplyConfig {
  const problems: string[] = [];
  let catalogue: Catalogue | undefined;
  try {
    const r = readYaml(readFileSync(catalogueFile, 'utf8'), catalogueFile);
    problems.push(...r.problems);
    if (r.problems.length === 0) {
      const c = checkCatalogue(r.data, catalogueFile);
      problems.push(...c.problems);
      catalogue = c.catalogue;
    }
  } catch (e) {
    problems.push(`${catalogueFile}: cannot read: ${(e as Error).message}`);
  }
  let depots: DepotsFile = { version: 1, depots: [] };
  if (depotsFile) {
    let text: string | undefined;
    try {
      text = readFileSync(depotsFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        problems.push(`${depotsFile}: cannot read: ${(e as Error).message}`);
      }
    }
    if (text !== undefined) {
      const r = readYaml(text, depotsFile);
      problems.push(...r.problems);
      if (r.problems.length === 0) {
        const p = checkDepots(r.data, catalogue, depotsFile);
        problems.push(...p);
        if (p.length === 0) depots = r.data as DepotsFile;
      }
    }
  }
  if (problems.length > 0 || !catalogue) throw new SupplyConfigError(problems.map((p) => `supplies ${p}`));
  return { catalogue, depots };
}

/** The minimum a quota gives for a population: absolute, or per 1,000 residents rounded up. */
export function quotaMinimum(q: Quota | undefined, population: number): number {
  if (!q) return 0;
  if (q.absolute !== undefined) return q.absolute;
  if (q.per1000 === undefined || population <= 0) return 0;
  // per1000 has at most 3 decimals: work in thousandths so 0.1 × 3,000 does not round up to 301
  const milli = Math.round(q.per1000 * 1000);
  return Math.ceil((milli * population) / 1_000_000);
}
