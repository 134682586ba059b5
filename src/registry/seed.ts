/**
 * Seed files: a whole deployment's registry (hierarchy, households, staff, devices) as one YAML document, loaded
 * into an EMPTY registry at first start (config `registry.seedFile`) in one transaction.
 *
 * Format (version 1; see config/sample-community.yaml, produced by simulators/generate-community.ts):
 *
 *   version: 1
 *   districts:
 *     - id: d-xincheng            name: 新城区
 *       streets:
 *         - id: s-heping          name: 和平街道
 *           communities:
 *             - id: c-limin       name: 利民社区
 *               grids:
 *                 - id: g-limin-01   name: 第一网格
 *                   buildings:
 *                     - id: b-limin-03   name: 3号楼
 *                       units:
 *                         - id: u-limin-03-2   name: 2单元
 *                           households:
 *                             - id: h-limin-03-2-0501   room: '501'   colour: red
 *                               loneElderly: true   atRisk: true           (both default false)
 *                               address: …            (default: community + building + unit + room, 利民社区3号楼2单元501)
 *                               residents: [{ name: 张秀兰, birthYear: 1941, loneElderly: true, atRisk: true }]
 *                               emergencyContacts: [{ name: 王强, phone: '+8613912345678', relation: 儿子 }]
 *               chargingAreas:
 *                 - id: a-limin-01   name: 集中充电区   building: b-limin-03 (optional; default: the community's)
 *   staff:
 *     - username: li.na   name: 李娜   phone: '+8613800000001'   roles: [grid_worker]
 *       coverage: { grids: [g-limin-01], communities: [], streets: [] }
 *       passwordEnv: GRIDWATCH_PW_LI_NA      (optional)
 *   devices:
 *     - id: wm-limin-03-2-0501   model: native-water-meter   household: h-limin-03-2-0501   drill: false
 *       (exactly one of household / unit / building / area)
 *
 * ID scheme (readable and stable, so logs, SMS and simulators can refer to places by id; all match
 * `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`): `d-<slug>` district, `s-<slug>` street, `c-<slug>` community,
 * `g-<slug>-NN` grid, `b-<slug>-NN` building (NN = building number), `u-<slug>-NN-U` unit, `h-<slug>-NN-U-FFRR`
 * household (floor and room, 4 digits), `a-<slug>-NN` charging area, `r-<household id without h->-K` resident,
 * `st-<username>` staff. Devices: `<kind prefix>-<place id without its letter>`, e.g. `wm-limin-03-2-0501` (water
 * meter of that home), `da-limin-03` (door access of building 3), `ec-limin-03-2` (e-bike cut-off of unit 2),
 * `ca-limin-01` (charging area); drill devices start with `drill-`.
 *
 * Secrets never live in the file: device secrets are generated at seed time and returned once to the caller (the
 * demo writes them with `writeSecretsFile` to a 0600 file under dataDir for the simulators); staff passwords come
 * from the environment variable named by `passwordEnv` when it is set, otherwise a random one is generated and
 * returned the same way. `admin` is reserved for the bootstrap account (GRIDWATCH_ADMIN_PASSWORD).
 */
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { Ajv, type ErrorObject } from 'ajv';
import { sql } from 'kysely';
import { type Static, Type } from 'typebox';
import { parseDocument } from 'yaml';
import { DEVICE_ID_PATTERN } from '../contracts/topics.ts';
import type { DB, DeviceTable } from '../store/db.ts';
import {
  ADMIN_USERNAME,
  chunks,
  deviceRow,
  MIN_PASSWORD_LENGTH,
  PHONE_PATTERN,
  type PlacementColumns,
  type SqlRegistry,
  staffIdFor,
  USERNAME_PATTERN,
  writeRolesAndCoverage,
} from './registry.ts';
import { generateSecret } from './secrets.ts';
import { COLOURS, type InstallTarget, ROLES } from './types.ts';

export const NODE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';

const Id = Type.String({ pattern: NODE_ID_PATTERN });
const Name = Type.String({ minLength: 1, maxLength: 100 });
const strict = { additionalProperties: false } as const;

const ResidentSchema = Type.Object(
  {
    id: Type.Optional(Id),
    name: Name,
    birthYear: Type.Optional(Type.Integer({ minimum: 1880, maximum: 2100 })),
    loneElderly: Type.Optional(Type.Boolean()),
    atRisk: Type.Optional(Type.Boolean()),
  },
  strict,
);
const ContactSchema = Type.Object(
  {
    name: Name,
    phone: Type.String({ pattern: PHONE_PATTERN }),
    relation: Type.String({ minLength: 1, maxLength: 30 }),
  },
  strict,
);
const HouseholdSchema = Type.Object(
  {
    id: Id,
    room: Type.String({ minLength: 1, maxLength: 20 }),
    colour: Type.Enum([...COLOURS]),
    loneElderly: Type.Optional(Type.Boolean()),
    atRisk: Type.Optional(Type.Boolean()),
    address: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    residents: Type.Optional(Type.Array(ResidentSchema)),
    emergencyContacts: Type.Optional(Type.Array(ContactSchema)),
  },
  strict,
);
const UnitSchema = Type.Object({ id: Id, name: Name, households: Type.Optional(Type.Array(HouseholdSchema)) }, strict);
const BuildingSchema = Type.Object({ id: Id, name: Name, units: Type.Array(UnitSchema) }, strict);
const GridSchema = Type.Object({ id: Id, name: Name, buildings: Type.Array(BuildingSchema) }, strict);
const AreaSchema = Type.Object({ id: Id, name: Name, building: Type.Optional(Id) }, strict);
const CommunitySchema = Type.Object(
  { id: Id, name: Name, grids: Type.Array(GridSchema), chargingAreas: Type.Optional(Type.Array(AreaSchema)) },
  strict,
);
const StreetSchema = Type.Object({ id: Id, name: Name, communities: Type.Array(CommunitySchema) }, strict);
const DistrictSchema = Type.Object({ id: Id, name: Name, streets: Type.Array(StreetSchema) }, strict);
const StaffSchema = Type.Object(
  {
    username: Type.String({ pattern: USERNAME_PATTERN }),
    name: Name,
    phone: Type.String({ pattern: PHONE_PATTERN }),
    roles: Type.Array(Type.Enum([...ROLES]), { minItems: 1 }),
    coverage: Type.Optional(
      Type.Object(
        {
          grids: Type.Optional(Type.Array(Id)),
          communities: Type.Optional(Type.Array(Id)),
          streets: Type.Optional(Type.Array(Id)),
        },
        strict,
      ),
    ),
    passwordEnv: Type.Optional(Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$' })),
    disabled: Type.Optional(Type.Boolean()),
  },
  strict,
);
const DeviceSchema = Type.Object(
  {
    id: Type.String({ pattern: DEVICE_ID_PATTERN }),
    model: Type.String({ minLength: 1, maxLength: 64 }),
    household: Type.Optional(Id),
    unit: Type.Optional(Id),
    building: Type.Optional(Id),
    area: Type.Optional(Id),
    drill: Type.Optional(Type.Boolean()),
  },
  strict,
);
export const SeedSchema = Type.Object(
  {
    version: Type.Literal(1),
    districts: Type.Array(DistrictSchema, { minItems: 1 }),
    staff: Type.Optional(Type.Array(StaffSchema)),
    devices: Type.Optional(Type.Array(DeviceSchema)),
  },
  strict,
);

export type SeedFile = Static<typeof SeedSchema>;
export type SeedDistrict = Static<typeof DistrictSchema>;
export type SeedCommunity = Static<typeof CommunitySchema>;
export type SeedHousehold = Static<typeof HouseholdSchema>;
export type SeedStaff = Static<typeof StaffSchema>;
export type SeedDevice = Static<typeof DeviceSchema>;

/** One problem of a seed file: a JSON pointer into the document and what is wrong there. */
export interface SeedProblem {
  path: string;
  message: string;
}

export class SeedError extends Error {
  constructor(
    readonly problems: SeedProblem[],
    source?: string,
  ) {
    const head = `invalid seed file${source ? ` ${source}` : ''}: ${problems.length} problem(s)`;
    const list = problems.slice(0, 50).map((p) => `  ${p.path || '/'}: ${p.message}`);
    super([head, ...list, ...(problems.length > 50 ? [`  … and ${problems.length - 50} more`] : [])].join('\n'));
  }
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validateSchema = ajv.compile(SeedSchema);

function ajvProblems(errors: ErrorObject[] | null | undefined): SeedProblem[] {
  const out: SeedProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    let p = e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      p += `/${(e.params as { missingProperty: string }).missingProperty}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      p += `/${(e.params as { additionalProperty: string }).additionalProperty}`;
      message = 'is not a known field';
    } else if (e.keyword === 'enum') {
      message = `must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).join(', ')}`;
    } else if (e.keyword === 'pattern' && /\/phone$/.test(p)) {
      message = 'must be an E.164 number such as +8613812345678';
    }
    const key = `${p}\0${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ path: p, message });
    }
  }
  return out;
}

/** Derived ids, also used by the generator and the CSV import so all three agree. */
export function residentId(householdId: string, index: number): string {
  return `r-${householdId.replace(/^h-/, '')}-${index + 1}`;
}
export function contactId(householdId: string, index: number): string {
  return `ec-${householdId.replace(/^h-/, '')}-${index + 1}`;
}

export interface SeedValidateOptions {
  /** Device model check (devices/index.ts); when absent, models are not checked. */
  knownModel?: (id: string) => boolean;
}

/** Everything in the hierarchy flattened, with the JSON pointer of each node (for problem paths and loading). */
interface Flat {
  districts: Array<{ id: string; name: string; path: string }>;
  streets: Array<{ id: string; name: string; districtId: string; path: string }>;
  communities: Array<{ id: string; name: string; streetId: string; path: string }>;
  grids: Array<{ id: string; name: string; communityId: string; path: string }>;
  buildings: Array<{ id: string; name: string; gridId: string; communityId: string; path: string }>;
  units: Array<{ id: string; name: string; buildingId: string; path: string }>;
  areas: Array<{ id: string; name: string; communityId: string; buildingId: string | null; path: string }>;
  households: Array<{
    h: SeedHousehold;
    unitId: string;
    buildingId: string;
    gridId: string;
    communityId: string;
    address: string;
    path: string;
  }>;
}

function flatten(seed: SeedFile): Flat {
  const f: Flat = {
    districts: [],
    streets: [],
    communities: [],
    grids: [],
    buildings: [],
    units: [],
    areas: [],
    households: [],
  };
  seed.districts.forEach((d, di) => {
    const dp = `/districts/${di}`;
    f.districts.push({ id: d.id, name: d.name, path: dp });
    d.streets.forEach((s, si) => {
      const sp = `${dp}/streets/${si}`;
      f.streets.push({ id: s.id, name: s.name, districtId: d.id, path: sp });
      s.communities.forEach((c, ci) => {
        const cp = `${sp}/communities/${ci}`;
        f.communities.push({ id: c.id, name: c.name, streetId: s.id, path: cp });
        c.grids.forEach((g, gi) => {
          const gp = `${cp}/grids/${gi}`;
          f.grids.push({ id: g.id, name: g.name, communityId: c.id, path: gp });
          g.buildings.forEach((b, bi) => {
            const bp = `${gp}/buildings/${bi}`;
            f.buildings.push({ id: b.id, name: b.name, gridId: g.id, communityId: c.id, path: bp });
            b.units.forEach((u, ui) => {
              const up = `${bp}/units/${ui}`;
              f.units.push({ id: u.id, name: u.name, buildingId: b.id, path: up });
              (u.households ?? []).forEach((h, hi) => {
                f.households.push({
                  h,
                  unitId: u.id,
                  buildingId: b.id,
                  gridId: g.id,
                  communityId: c.id,
                  address: h.address ?? `${c.name}${b.name}${u.name}${h.room}`,
                  path: `${up}/households/${hi}`,
                });
              });
            });
          });
        });
        (c.chargingAreas ?? []).forEach((a, ai) => {
          f.areas.push({
            id: a.id,
            name: a.name,
            communityId: c.id,
            buildingId: a.building ?? null,
            path: `${cp}/chargingAreas/${ai}`,
          });
        });
      });
    });
  });
  return f;
}

/** Cross-reference checks that a schema cannot express: unique ids, references, exactly-one targets. */
function semanticProblems(seed: SeedFile, f: Flat, opts: SeedValidateOptions): SeedProblem[] {
  const problems: SeedProblem[] = [];
  const unique = (items: Array<{ id: string; path: string }>, what: string) => {
    const first = new Map<string, string>();
    for (const it of items) {
      const prev = first.get(it.id);
      if (prev !== undefined)
        problems.push({ path: `${it.path}/id`, message: `duplicate ${what} id ${it.id} (first at ${prev})` });
      else first.set(it.id, it.path);
    }
    return first;
  };
  unique(f.districts, 'district');
  const streets = unique(f.streets, 'street');
  const communities = unique(f.communities, 'community');
  const grids = unique(f.grids, 'grid');
  const buildings = unique(f.buildings, 'building');
  const units = unique(f.units, 'unit');
  const areas = unique(f.areas, 'charging area');
  const households = unique(
    f.households.map((x) => ({ id: x.h.id, path: x.path })),
    'household',
  );
  const residentIds = new Map<string, string>();
  const rooms = new Map<string, string>();
  for (const x of f.households) {
    const roomKey = `${x.unitId}\0${x.h.room}`;
    const prev = rooms.get(roomKey);
    if (prev !== undefined)
      problems.push({ path: `${x.path}/room`, message: `room ${x.h.room} already used in unit ${x.unitId} (${prev})` });
    else rooms.set(roomKey, x.path);
    (x.h.residents ?? []).forEach((r, i) => {
      const id = r.id ?? residentId(x.h.id, i);
      const p = `${x.path}/residents/${i}`;
      if (residentIds.has(id)) problems.push({ path: p, message: `duplicate resident id ${id}` });
      else residentIds.set(id, p);
    });
  }
  const buildingCommunity = new Map(f.buildings.map((b) => [b.id, b.communityId]));
  for (const a of f.areas) {
    if (a.buildingId !== null) {
      const c = buildingCommunity.get(a.buildingId);
      if (c === undefined)
        problems.push({ path: `${a.path}/building`, message: `building ${a.buildingId} does not exist` });
      else if (c !== a.communityId) {
        problems.push({
          path: `${a.path}/building`,
          message: `building ${a.buildingId} is not in community ${a.communityId}`,
        });
      }
    }
  }
  const usernames = new Map<string, string>();
  (seed.staff ?? []).forEach((s, i) => {
    const p = `/staff/${i}`;
    if (s.username === ADMIN_USERNAME) {
      problems.push({ path: `${p}/username`, message: `"${ADMIN_USERNAME}" is reserved for the bootstrap admin` });
    }
    const prev = usernames.get(s.username);
    if (prev !== undefined)
      problems.push({ path: `${p}/username`, message: `duplicate username ${s.username} (first at ${prev})` });
    else usernames.set(s.username, p);
    const refs: Array<[keyof NonNullable<SeedStaff['coverage']>, Map<string, string>, string]> = [
      ['grids', grids, 'grid'],
      ['communities', communities, 'community'],
      ['streets', streets, 'street'],
    ];
    for (const [key, known, what] of refs) {
      (s.coverage?.[key] ?? []).forEach((id, j) => {
        if (!known.has(id))
          problems.push({ path: `${p}/coverage/${key}/${j}`, message: `${what} ${id} does not exist` });
      });
    }
  });
  const deviceIds = new Map<string, string>();
  (seed.devices ?? []).forEach((d, i) => {
    const p = `/devices/${i}`;
    const prev = deviceIds.get(d.id);
    if (prev !== undefined)
      problems.push({ path: `${p}/id`, message: `duplicate device id ${d.id} (first at ${prev})` });
    else deviceIds.set(d.id, p);
    if (opts.knownModel && !opts.knownModel(d.model)) {
      problems.push({ path: `${p}/model`, message: `unknown device model ${d.model}` });
    }
    const targets: Array<['household' | 'unit' | 'building' | 'area', Map<string, string>]> = [
      ['household', households],
      ['unit', units],
      ['building', buildings],
      ['area', areas],
    ];
    const set = targets.filter(([k]) => d[k] !== undefined);
    if (set.length !== 1) {
      problems.push({ path: p, message: 'exactly one of household, unit, building or area is required' });
    }
    for (const [k, known] of set) {
      const id = d[k]!;
      if (!known.has(id)) problems.push({ path: `${p}/${k}`, message: `${k} ${id} does not exist` });
    }
  });
  return problems;
}

/** Validates a parsed document; returns every problem found (schema first; references only when the shape is right). */
export function validateSeed(data: unknown, opts: SeedValidateOptions = {}): SeedProblem[] {
  if (!validateSchema(data)) return ajvProblems(validateSchema.errors);
  const seed = data as SeedFile;
  return semanticProblems(seed, flatten(seed), opts);
}

/** Parses and validates YAML text; throws SeedError listing every problem with its path. */
export function parseSeed(text: string, opts: SeedValidateOptions & { source?: string } = {}): SeedFile {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new SeedError(
      doc.errors.map((e) => ({
        path: '',
        message: `YAML ${e.code}${e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : ''}: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`,
      })),
      opts.source,
    );
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const problems = validateSeed(data, opts);
  if (problems.length > 0) throw new SeedError(problems, opts.source);
  return data as SeedFile;
}

export async function loadSeedFile(file: string, opts: SeedValidateOptions = {}): Promise<SeedFile> {
  return parseSeed(await readFile(file, 'utf8'), { ...opts, source: file });
}

/**
 * A device's secret as handed to whoever installs or simulates it. The place ids are hints for simulators (which
 * home a simulated wristband belongs to); the service itself never reads them from here.
 */
export interface DeviceSecret {
  deviceId: string;
  model: string;
  secret: string;
  householdId?: string;
  unitId?: string;
  buildingId?: string;
  areaId?: string;
}
/** What the demo's simulated fleet reads from the secrets file. */
export type DemoDevice = DeviceSecret;

/** The secret entry of a device, with its place ids. */
export function deviceSecretEntry(
  d: { id: string; model: string },
  secret: string,
  placement: PlacementColumns,
): DeviceSecret {
  const e: DeviceSecret = { deviceId: d.id, model: d.model, secret };
  if (placement.household_id) e.householdId = placement.household_id;
  if (placement.unit_id) e.unitId = placement.unit_id;
  if (placement.building_id) e.buildingId = placement.building_id;
  if (placement.area_id) e.areaId = placement.area_id;
  return e;
}
export interface StaffPassword {
  username: string;
  password: string;
}
export interface SeedCounts {
  districts: number;
  streets: number;
  communities: number;
  grids: number;
  buildings: number;
  units: number;
  areas: number;
  households: number;
  residents: number;
  staff: number;
  devices: number;
}
export type SeedResult =
  | { seeded: false; reason: string }
  | {
      seeded: true;
      counts: SeedCounts;
      /** Every device's secret, shown only here: hand them to the simulators (writeSecretsFile), then drop them. */
      deviceSecrets: DeviceSecret[];
      /** Passwords generated for staff without `passwordEnv` (or whose variable was unset). */
      staffPasswords: StaffPassword[];
    };

/** Empty = no community yet. Staff alone (the bootstrap admin, created before seeding) does not count. */
export async function isRegistryEmpty(registry: SqlRegistry): Promise<boolean> {
  const row = await registry.db.selectFrom('community').select('id').limit(1).executeTakeFirst();
  return row === undefined;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Loads the seed into the registry when it is empty (no community yet) and returns the generated secrets; a no-op
 * (`seeded: false`) otherwise, so it can run at every start. Everything is written in ONE transaction: a failure
 * leaves the registry empty, never half-seeded.
 */
export async function seedIfEmpty(
  registry: SqlRegistry,
  source: string | SeedFile,
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<SeedResult> {
  if (!(await isRegistryEmpty(registry))) return { seeded: false, reason: 'registry is not empty' };
  const seed = typeof source === 'string' ? await loadSeedFile(source, { knownModel: registry.knownModel }) : source;
  if (typeof source !== 'string') {
    const problems = validateSeed(seed, { knownModel: registry.knownModel });
    if (problems.length > 0) throw new SeedError(problems);
  }
  const env = opts.env ?? process.env;
  const f = flatten(seed);
  const now = Date.now();

  // Hash before the transaction: scrypt is slow (≈25 ms each) and must not hold the database's write lock.
  // Four at a time matches libuv's default thread pool.
  // A variable that is set but too short is a mistake to report, not to paper over with a random password.
  const weak = (seed.staff ?? []).flatMap((s, i) => {
    const v = s.passwordEnv ? env[s.passwordEnv] : undefined;
    return v !== undefined && v !== '' && v.length < MIN_PASSWORD_LENGTH
      ? [
          {
            path: `/staff/${i}/passwordEnv`,
            message: `${s.passwordEnv} is shorter than ${MIN_PASSWORD_LENGTH} characters`,
          },
        ]
      : [];
  });
  if (weak.length > 0) throw new SeedError(weak, typeof source === 'string' ? source : undefined);
  const staffPasswords: StaffPassword[] = [];
  const staffRows = await mapLimit(seed.staff ?? [], 4, async (s) => {
    const fromEnv = s.passwordEnv ? env[s.passwordEnv] : undefined;
    const password = fromEnv ? fromEnv : generateSecret();
    if (password !== fromEnv) staffPasswords.push({ username: s.username, password });
    return {
      s,
      row: {
        id: staffIdFor(s.username),
        username: s.username,
        name: s.name,
        phone: s.phone,
        password_hash: await registry.hash(password),
        disabled: s.disabled ? 1 : 0,
        created_at: now,
      },
    };
  });
  staffPasswords.sort((a, b) => a.username.localeCompare(b.username));

  const placements = placementIndex(f);
  const deviceSecrets: DeviceSecret[] = [];
  const deviceRows: DeviceTable[] = await mapLimit(seed.devices ?? [], 4, async (d) => {
    const install = installOf(d);
    const secret = generateSecret();
    const placement = placements.get(`${install.kind}:${d[install.kind]}`)!;
    deviceSecrets.push(deviceSecretEntry(d, secret, placement));
    return deviceRow(
      { id: d.id, model: d.model, install, drill: d.drill },
      placement,
      await registry.hashDeviceSecrets(secret),
      now,
    );
  });
  deviceSecrets.sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));

  let residents = 0;
  const seeded = await registry.db.transaction().execute(async (trx) => {
    if (registry.dialect === 'postgres') {
      // Several nodes starting at once against one PostgreSQL: the first to take the lock seeds, the others then
      // see a non-empty registry below and back off.
      await sql`lock table community in exclusive mode`.execute(trx);
    }
    if (await trx.selectFrom('community').select('id').limit(1).executeTakeFirst()) return false;
    const insert = async <T extends keyof DB>(table: T, rows: readonly DB[T][]) => {
      for (const part of chunks(rows, 400)) {
        // Kysely cannot relate a table-name union to its row type; the rows are typed by `insert`'s signature.
        await trx
          .insertInto(table)
          .values(part as never)
          .execute();
      }
    };
    await insert(
      'district',
      f.districts.map((d) => ({ id: d.id, name: d.name })),
    );
    await insert(
      'street',
      f.streets.map((s) => ({ id: s.id, district_id: s.districtId, name: s.name })),
    );
    await insert(
      'community',
      f.communities.map((c) => ({ id: c.id, street_id: c.streetId, name: c.name })),
    );
    await insert(
      'grid',
      f.grids.map((g) => ({ id: g.id, community_id: g.communityId, name: g.name })),
    );
    await insert(
      'building',
      f.buildings.map((b) => ({ id: b.id, grid_id: b.gridId, community_id: b.communityId, name: b.name })),
    );
    await insert(
      'unit',
      f.units.map((u) => ({ id: u.id, building_id: u.buildingId, name: u.name })),
    );
    await insert(
      'charging_area',
      f.areas.map((a) => ({ id: a.id, community_id: a.communityId, building_id: a.buildingId, name: a.name })),
    );
    await insert(
      'household',
      f.households.map((x) => ({
        id: x.h.id,
        unit_id: x.unitId,
        building_id: x.buildingId,
        grid_id: x.gridId,
        community_id: x.communityId,
        room: x.h.room,
        address: x.address,
        colour: x.h.colour,
        lone_elderly: x.h.loneElderly ? 1 : 0,
        at_risk: x.h.atRisk ? 1 : 0,
        created_at: now,
      })),
    );
    const residentRows = f.households.flatMap((x) =>
      (x.h.residents ?? []).map((r, i) => ({
        id: r.id ?? residentId(x.h.id, i),
        household_id: x.h.id,
        full_name: r.name,
        birth_year: r.birthYear ?? null,
        lone_elderly: r.loneElderly ? 1 : 0,
        at_risk: r.atRisk ? 1 : 0,
      })),
    );
    residents = residentRows.length;
    await insert('resident', residentRows);
    await insert(
      'emergency_contact',
      f.households.flatMap((x) =>
        (x.h.emergencyContacts ?? []).map((c, i) => ({
          id: contactId(x.h.id, i),
          household_id: x.h.id,
          position: i,
          name: c.name,
          phone: c.phone,
          relation: c.relation,
        })),
      ),
    );
    await insert(
      'staff',
      staffRows.map((s) => s.row),
    );
    for (const { s, row } of staffRows) {
      await writeRolesAndCoverage(trx, row.id, s.roles, {
        gridIds: s.coverage?.grids ?? [],
        communityIds: s.coverage?.communities ?? [],
        streetIds: s.coverage?.streets ?? [],
      });
    }
    await insert('device', deviceRows);
    return true;
  });
  if (!seeded) return { seeded: false, reason: 'registry is not empty' };
  await registry.reload();
  return {
    seeded: true,
    counts: {
      districts: f.districts.length,
      streets: f.streets.length,
      communities: f.communities.length,
      grids: f.grids.length,
      buildings: f.buildings.length,
      units: f.units.length,
      areas: f.areas.length,
      households: f.households.length,
      residents,
      staff: staffRows.length,
      devices: deviceRows.length,
    },
    deviceSecrets,
    staffPasswords,
  };
}

function installOf(d: SeedDevice): InstallTarget & { kind: 'household' | 'unit' | 'building' | 'area' } {
  if (d.household !== undefined) return { kind: 'household', householdId: d.household };
  if (d.unit !== undefined) return { kind: 'unit', unitId: d.unit };
  if (d.building !== undefined) return { kind: 'building', buildingId: d.building };
  return { kind: 'area', areaId: d.area! };
}

/** Placement columns for every possible install target of the seed, resolved in memory (no per-device query). */
function placementIndex(f: Flat): Map<string, PlacementColumns> {
  const m = new Map<string, PlacementColumns>();
  const none = {
    household_id: null,
    unit_id: null,
    building_id: null,
    area_id: null,
    grid_id: null,
    community_id: null,
  };
  const buildings = new Map(f.buildings.map((b) => [b.id, b]));
  for (const b of f.buildings) {
    m.set(`building:${b.id}`, { ...none, building_id: b.id, grid_id: b.gridId, community_id: b.communityId });
  }
  for (const u of f.units) {
    const b = buildings.get(u.buildingId)!;
    m.set(`unit:${u.id}`, {
      ...none,
      unit_id: u.id,
      building_id: b.id,
      grid_id: b.gridId,
      community_id: b.communityId,
    });
  }
  for (const x of f.households) {
    m.set(`household:${x.h.id}`, {
      ...none,
      household_id: x.h.id,
      unit_id: x.unitId,
      building_id: x.buildingId,
      grid_id: x.gridId,
      community_id: x.communityId,
    });
  }
  for (const a of f.areas) {
    const b = a.buildingId ? buildings.get(a.buildingId) : undefined;
    m.set(`area:${a.id}`, {
      ...none,
      area_id: a.id,
      building_id: a.buildingId,
      grid_id: b?.gridId ?? null,
      community_id: a.communityId,
    });
  }
  return m;
}

/**
 * Writes secrets (device secrets, generated passwords) as JSON readable only by the owner (0600). Written to a
 * fresh temporary file created with mode 0600 and renamed into place, because `writeFile`'s mode applies only
 * when it creates the file: overwriting an existing, more open file would expose the secrets.
 */
export async function writeSecretsFile(
  file: string,
  data: { deviceSecrets: DeviceSecret[]; staffPasswords?: StaffPassword[] },
): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await rm(tmp, { force: true });
  await writeFile(tmp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}
