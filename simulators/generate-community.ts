/**
 * Generates seed files (src/registry/seed.ts format) for demos, tests and benchmarks: a community, or a whole
 * street of ~3,000-household communities, with households of all five colours, lone-elderly homes with sensor kits,
 * door access on every building, e-bike cut-offs in every unit, a charging area per community, staff for every role
 * and a couple of drill devices. Deterministic: the same options and seed give byte-identical output.
 *
 *   npm run generate -- --households 2261 --buildings 61 --out file.yaml
 *   npm run generate -- --street 60000 --out street.yaml          (~20 communities)
 *   npm run generate -- --households 150 --buildings 6 --grids 2 --lone-elderly 20 --seed 1 \
 *       --out config/sample-community.yaml                          (the committed sample)
 *
 * Sizes follow DOMAIN.md: ~100 households per grid, 2–3 units per building, two flats per floor, about 6 % of
 * households lone elderly, and a colour mix with few red and mostly green households.
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { SeedCommunity, SeedDevice, SeedFile, SeedHousehold, SeedStaff } from '../src/registry/seed.ts';
import type { Colour } from '../src/registry/types.ts';
import { Rng } from './random.ts';

export interface GenerateOptions {
  /** Households of one community (ignored with `street`). Default 150. */
  households?: number;
  /** Buildings of one community; default: one per ~37 households (利民社区: 2,261 households, 61 buildings). */
  buildings?: number;
  /** Grids of one community; default: one per ~100 households, at least 2, at most one per building. */
  grids?: number;
  /** Lone-elderly homes (each gets a sensor kit); default 6 % of households. */
  loneElderly?: number;
  /** Street mode: total households of the street, split into communities of ~3,000. */
  street?: number;
  /** PRNG seed. Default 1. */
  seed?: number;
}

/** Community names and id slugs (pinyin); the first is the sample community. */
const COMMUNITY_NAMES: ReadonlyArray<[string, string]> = [
  ['limin', '利民社区'],
  ['heping', '和平社区'],
  ['xingfu', '幸福社区'],
  ['jianshe', '建设社区'],
  ['guangming', '光明社区'],
  ['xinhua', '新华社区'],
  ['dongfeng', '东风社区'],
  ['shengli', '胜利社区'],
  ['youyi', '友谊社区'],
  ['tuanjie', '团结社区'],
  ['wenhua', '文化社区'],
  ['yangguang', '阳光社区'],
  ['chunhui', '春晖社区'],
  ['kangle', '康乐社区'],
  ['anju', '安居社区'],
  ['yucai', '育才社区'],
  ['zhenxing', '振兴社区'],
  ['minzhu', '民主社区'],
  ['jiefang', '解放社区'],
  ['changqing', '长青社区'],
];
const GRID_ORDINALS = ['一', '二', '三', '四', '五', '六', '七', '八', '九', '十'];
const SURNAMES = [
  ...'王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤',
];
const GIVEN = [
  ...'秀兰英华芳玉珍桂凤淑建国明伟强军平志海文德福春丽敏静红霞云涛磊勇刚斌荣慧娟萍梅琴燕宏立新振永宝金成家',
];
const CONTACT_RELATIONS = ['儿子', '女儿', '侄子', '外甥女', '孙子'];

/** Colour shares of a community: few red, more green (DOMAIN.md five-colour visiting). */
const COLOUR_SHARE: ReadonlyArray<[Colour, number]> = [
  ['red', 0.03],
  ['orange', 0.07],
  ['yellow', 0.15],
  ['blue', 0.2],
];

/** The sensor kit of a lone-elderly home: id prefix and model; vendor models replace some natives (see below). */
const HOME_KIT: ReadonlyArray<[string, string]> = [
  ['wm', 'native-water-meter'],
  ['em', 'native-electricity-meter'],
  ['gm', 'native-gas-meter'],
  ['pir', 'native-motion'],
  ['dc', 'native-door-contact'],
  ['wb', 'native-wristband'],
  ['eb', 'native-emergency-button'],
  ['sd', 'native-smoke-detector'],
  ['gd', 'native-gas-detector'],
];

const pad = (n: number, width: number) => String(n).padStart(width, '0');

function personName(rng: Rng, surname?: string): string {
  const s = surname ?? rng.pick(SURNAMES);
  return rng.chance(0.7) ? `${s}${rng.pick(GIVEN)}${rng.pick(GIVEN)}` : `${s}${rng.pick(GIVEN)}`;
}

/** Splits `total` into `parts` near-equal integers (the first ones get the remainder). */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

interface CommunityPlan {
  slug: string;
  name: string;
  households: number;
  buildings: number;
  grids: number;
  loneElderly: number;
  /** Only the first community of a file gets the drill devices. */
  drills: boolean;
}

interface Built {
  community: SeedCommunity;
  devices: SeedDevice[];
  gridIds: string[];
}

function buildCommunity(rng: Rng, plan: CommunityPlan): Built {
  const { slug, name } = plan;
  const B = plan.buildings;
  const G = Math.min(plan.grids, B);
  const perBuilding = split(plan.households, B);
  const unitsPer = plan.households / B > 28 ? 3 : 2;

  // Where the households are, before deciding who lives there.
  interface Slot {
    b: number;
    u: number;
    floor: number;
    room: number;
  }
  const slots: Slot[] = [];
  perBuilding.forEach((n, b) => {
    split(n, unitsPer).forEach((m, u) => {
      for (let k = 0; k < m; k++) slots.push({ b: b + 1, u: u + 1, floor: Math.floor(k / 2) + 1, room: (k % 2) + 1 });
    });
  });

  // Colours: fixed shares, all five present whenever there are at least five households. Lone-elderly homes take
  // the strongest classes first (they are the ones the red/orange visits exist for); the rest is shuffled.
  const H = slots.length;
  const colourList: Colour[] = [];
  for (const [colour, share] of COLOUR_SHARE) {
    const n = H >= 5 ? Math.max(1, Math.round(H * share)) : 0;
    for (let i = 0; i < n && colourList.length < H; i++) colourList.push(colour);
  }
  while (colourList.length < H) colourList.push('green');
  const lone = new Set(
    shuffle(
      rng,
      slots.map((_, i) => i),
    ).slice(0, Math.min(plan.loneElderly, H)),
  );
  // in the shuffled order, so the red homes are spread over the buildings
  const loneOrder = [...lone];
  const colourOf = new Map<number, Colour>();
  for (const [i, slot] of loneOrder.entries()) colourOf.set(slot, colourList[i]!);
  const rest = shuffle(rng, colourList.slice(loneOrder.length));
  let r = 0;
  for (let i = 0; i < H; i++) if (!colourOf.has(i)) colourOf.set(i, rest[r++]!);

  const bId = (b: number) => `b-${slug}-${pad(b, 2)}`;
  const uId = (b: number, u: number) => `u-${slug}-${pad(b, 2)}-${u}`;
  const households = new Map<string, SeedHousehold[]>();
  const loneHomes: string[] = [];
  slots.forEach((s, i) => {
    const room = `${s.floor}${pad(s.room, 2)}`;
    const id = `h-${slug}-${pad(s.b, 2)}-${s.u}-${pad(s.floor, 2)}${pad(s.room, 2)}`;
    const colour = colourOf.get(i)!;
    const isLone = lone.has(i);
    const atRisk = colour === 'red' || (colour === 'orange' && rng.chance(0.5));
    const h: SeedHousehold = { id, room, colour };
    if (isLone) h.loneElderly = true;
    if (atRisk) h.atRisk = true;
    const surname = rng.pick(SURNAMES);
    if (isLone) {
      loneHomes.push(id);
      h.residents = [
        {
          name: personName(rng, surname),
          birthYear: rng.int(1934, 1952),
          loneElderly: true,
          ...(atRisk ? { atRisk } : {}),
        },
      ];
      h.emergencyContacts = Array.from({ length: rng.int(1, 2) }, () => ({
        name: personName(rng, surname),
        phone: `+86139${pad(rng.int(0, 99_999_999), 8)}`,
        relation: rng.pick(CONTACT_RELATIONS),
      }));
    } else {
      const n = rng.int(1, 4);
      h.residents = Array.from({ length: n }, (_, k) => ({
        name: personName(rng, k === 0 || rng.chance(0.6) ? surname : undefined),
        birthYear: k === 0 ? rng.int(1945, 1995) : rng.int(1940, 2022),
        ...(atRisk && k === 0 ? { atRisk: true } : {}),
      }));
      if (rng.chance(0.4)) {
        h.emergencyContacts = [
          {
            name: personName(rng),
            phone: `+86137${pad(rng.int(0, 99_999_999), 8)}`,
            relation: rng.pick(CONTACT_RELATIONS),
          },
        ];
      }
    }
    const key = uId(s.b, s.u);
    const list = households.get(key) ?? [];
    list.push(h);
    households.set(key, list);
  });

  const gridIds = Array.from({ length: G }, (_, g) => `g-${slug}-${pad(g + 1, 2)}`);
  const community: SeedCommunity = {
    id: `c-${slug}`,
    name,
    grids: gridIds.map((gid, g) => {
      const first = Math.floor((g * B) / G) + 1;
      const last = Math.floor(((g + 1) * B) / G);
      return {
        id: gid,
        name: `第${GRID_ORDINALS[g] ?? g + 1}网格`,
        buildings: Array.from({ length: last - first + 1 }, (_, k) => {
          const b = first + k;
          return {
            id: bId(b),
            name: `${b}号楼`,
            units: Array.from({ length: unitsPer }, (_, u) => ({
              id: uId(b, u + 1),
              name: `${u + 1}单元`,
              households: households.get(uId(b, u + 1)) ?? [],
            })),
          };
        }),
      };
    }),
    // A free-standing central charging area in the courtyard: it belongs to the community, not to a building.
    chargingAreas: [{ id: `a-${slug}-01`, name: '集中充电区' }],
  };

  const devices: SeedDevice[] = [];
  loneHomes.sort().forEach((hid, i) => {
    const place = hid.slice(2);
    for (const [prefix, native] of HOME_KIT) {
      let model = native;
      // A few homes carry vendor models, so the demo exercises the vendor decoders too.
      if (prefix === 'wb' && i % 7 === 3) model = 'acme-wb200';
      if (prefix === 'em' && i % 5 === 2) model = 'zenmeter-em3';
      devices.push({ id: `${prefix}-${place}`, model, household: hid });
    }
  });
  for (let b = 1; b <= B; b++) {
    devices.push({
      id: `da-${slug}-${pad(b, 2)}`,
      model: b === 2 ? 'hikv-ac100' : 'native-door-access',
      building: bId(b),
    });
    for (let u = 1; u <= unitsPer; u++) {
      const n = (b - 1) * unitsPer + u;
      devices.push({
        id: `ec-${slug}-${pad(b, 2)}-${u}`,
        model: n % 4 === 3 ? 'volt-cb2' : 'native-ebike-cutoff',
        unit: uId(b, u),
      });
    }
  }
  devices.push({ id: `ca-${slug}-01`, model: 'native-charging-area', area: `a-${slug}-01` });
  if (plan.drills) {
    // Drill devices are bound to real places (a lone-elderly home, the charging area) but flagged as drill, so
    // everything they send is a drill (ARCHITECTURE.md section 2).
    const home = loneHomes[0];
    if (home)
      devices.push({ id: `drill-wb-${home.slice(2)}`, model: 'native-wristband', household: home, drill: true });
    devices.push({ id: `drill-ca-${slug}-01`, model: 'native-charging-area', area: `a-${slug}-01`, drill: true });
  }
  return { community, devices, gridIds };
}

function communityStaff(slug: string, gridIds: string[], phone: () => string, rng: Rng): SeedStaff[] {
  const staff: SeedStaff[] = [];
  const person = () => personName(rng);
  gridIds.forEach((g, i) => {
    staff.push({
      username: `gw.${slug}.${pad(i + 1, 2)}`,
      name: person(),
      phone: phone(),
      roles: ['grid_worker'],
      coverage: { grids: [g] },
    });
  });
  for (let i = 0; i < gridIds.length; i += 4) {
    staff.push({
      username: `gl.${slug}.${i / 4 + 1}`,
      name: person(),
      phone: phone(),
      roles: ['grid_leader'],
      coverage: { grids: gridIds.slice(i, i + 4) },
    });
  }
  const first = gridIds.slice(0, 1);
  const last = gridIds.slice(-1);
  staff.push(
    { username: `bl.${slug}`, name: person(), phone: phone(), roles: ['building_leader'], coverage: { grids: first } },
    { username: `ul.${slug}`, name: person(), phone: phone(), roles: ['unit_leader'], coverage: { grids: first } },
    { username: `pv.${slug}`, name: person(), phone: phone(), roles: ['party_volunteer'], coverage: { grids: last } },
    {
      username: `cm.${slug}`,
      name: person(),
      phone: phone(),
      roles: ['committee_member'],
      coverage: { communities: [`c-${slug}`] },
    },
    {
      username: `dir.${slug}`,
      name: person(),
      phone: phone(),
      roles: ['community_director'],
      coverage: { communities: [`c-${slug}`] },
    },
    {
      username: `depot.${slug}`,
      name: person(),
      phone: phone(),
      roles: ['depot_keeper'],
      coverage: { communities: [`c-${slug}`] },
    },
  );
  return staff;
}

/** Builds the seed document. Throws RangeError for impossible sizes. */
export function generateCommunity(opts: GenerateOptions = {}): SeedFile {
  const rng = new Rng(opts.seed ?? 1);
  const plans: CommunityPlan[] = [];
  const positive = (v: number | undefined, what: string) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new RangeError(`${what} must be a positive integer`);
  };
  positive(opts.households, 'households');
  positive(opts.buildings, 'buildings');
  positive(opts.grids, 'grids');
  positive(opts.street, 'street');
  if (opts.loneElderly !== undefined && (!Number.isInteger(opts.loneElderly) || opts.loneElderly < 0)) {
    throw new RangeError('loneElderly must be a non-negative integer');
  }
  const defaults = (h: number) => ({
    buildings: Math.max(1, Math.round(h / 37)),
    grids: Math.max(2, Math.round(h / 100)),
    loneElderly: Math.round(h * 0.06),
  });
  if (opts.street !== undefined) {
    const n = Math.max(1, Math.min(COMMUNITY_NAMES.length, Math.round(opts.street / 3000)));
    split(opts.street, n).forEach((h, i) => {
      const [slug, name] = COMMUNITY_NAMES[i]!;
      plans.push({ slug, name, households: h, ...defaults(h), drills: i === 0 });
    });
  } else {
    const h = opts.households ?? 150;
    const d = defaults(h);
    const buildings = opts.buildings ?? d.buildings;
    if (buildings > h) throw new RangeError('more buildings than households');
    const [slug, name] = COMMUNITY_NAMES[0]!;
    plans.push({
      slug,
      name,
      households: h,
      buildings,
      grids: Math.min(opts.grids ?? d.grids, buildings),
      loneElderly: Math.min(opts.loneElderly ?? d.loneElderly, h),
      drills: true,
    });
  }

  let phoneSeq = 0;
  const phone = () => `+86138${pad(++phoneSeq, 8)}`;
  const communities: SeedCommunity[] = [];
  const devices: SeedDevice[] = [];
  const staff: SeedStaff[] = [];
  for (const plan of plans) {
    const built = buildCommunity(rng, plan);
    communities.push(built.community);
    devices.push(...built.devices);
    staff.push(...communityStaff(plan.slug, built.gridIds, phone, rng));
  }
  // Street-wide roles, one each: they see everything by role.
  staff.push(
    {
      username: 'duty.heping',
      name: personName(rng),
      phone: phone(),
      roles: ['street_duty_officer'],
      coverage: { streets: ['s-heping'] },
    },
    { username: 'drill.heping', name: personName(rng), phone: phone(), roles: ['drill_controller'] },
    { username: 'eval.heping', name: personName(rng), phone: phone(), roles: ['evaluator'] },
    { username: 'it.heping', name: personName(rng), phone: phone(), roles: ['admin'] },
  );
  return {
    version: 1,
    districts: [
      {
        id: 'd-xincheng',
        name: '新城区',
        streets: [{ id: 's-heping', name: '和平街道', communities }],
      },
    ],
    staff,
    devices,
  };
}

/** YAML text of a seed, with a header saying how it was made (so nobody edits the generated file by hand). */
export function toYaml(seed: SeedFile, command: string): string {
  const header = [
    '# GridWatch seed file (format: src/registry/seed.ts). Generated, do not edit by hand:',
    `#   ${command}`,
    '# Secrets are not in this file: device secrets and staff passwords are generated when the seed is loaded.',
    '',
  ].join('\n');
  return header + stringify(seed, { lineWidth: 0, indent: 2 });
}

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      households: { type: 'string' },
      buildings: { type: 'string' },
      grids: { type: 'string' },
      'lone-elderly': { type: 'string' },
      street: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      'usage: npm run generate -- [--households N] [--buildings N] [--grids N] [--lone-elderly N] [--street N] [--seed N] [--out file.yaml]\n',
    );
    return;
  }
  const num = (v: string | undefined, what: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new RangeError(`--${what} must be an integer`);
    return n;
  };
  const seed = generateCommunity({
    households: num(values.households, 'households'),
    buildings: num(values.buildings, 'buildings'),
    grids: num(values.grids, 'grids'),
    loneElderly: num(values['lone-elderly'], 'lone-elderly'),
    street: num(values.street, 'street'),
    seed: num(values.seed, 'seed'),
  });
  const flags = (['households', 'buildings', 'grids', 'lone-elderly', 'street', 'seed'] as const)
    .filter((k) => values[k] !== undefined)
    .map((k) => `--${k} ${values[k]}`);
  const command = ['npm run generate --', ...flags, ...(values.out ? [`--out ${values.out}`] : [])].join(' ');
  const text = toYaml(seed, command);
  if (values.out) {
    writeFileSync(values.out, text);
    const c = seed.districts[0]!.streets[0]!.communities;
    const households = c.reduce(
      (n, com) =>
        n +
        com.grids
          .flatMap((g) => g.buildings.flatMap((b) => b.units.map((u) => u.households?.length ?? 0)))
          .reduce((a, x) => a + x, 0),
      0,
    );
    process.stderr.write(
      `wrote ${values.out}: ${c.length} communities, ${households} households, ${seed.devices?.length ?? 0} devices, ${seed.staff?.length ?? 0} staff, ${text.length} bytes\n`,
    );
  } else {
    process.stdout.write(text);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`generate-community: ${(e as Error).message}\n`);
    process.exit(2);
  }
}
