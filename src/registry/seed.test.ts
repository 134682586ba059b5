import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSeed, SeedError, type SeedProblem, validateSeed } from './seed.ts';

const MODELS = new Set(['native-water-meter', 'native-door-access', 'native-ebike-cutoff']);
const knownModel = (m: string) => MODELS.has(m);

function problemsOf(text: string): SeedProblem[] {
  try {
    parseSeed(text, { knownModel });
  } catch (e) {
    expect(e).toBeInstanceOf(SeedError);
    return (e as SeedError).problems;
  }
  throw new Error('expected the seed to be rejected');
}

const GOOD = `
version: 1
districts:
  - id: d-x
    name: 新城区
    streets:
      - id: s-x
        name: 和平街道
        communities:
          - id: c-x
            name: 利民社区
            grids:
              - id: g-x-01
                name: 第一网格
                buildings:
                  - id: b-x-01
                    name: 1号楼
                    units:
                      - id: u-x-01-1
                        name: 1单元
                        households:
                          - id: h-x-01-1-0101
                            room: '101'
                            colour: red
                            residents: [{ name: 张秀兰, birthYear: 1941, loneElderly: true }]
                            emergencyContacts: [{ name: 王强, phone: '+8613912345678', relation: 儿子 }]
            chargingAreas:
              - id: a-x-01
                name: 充电区
                building: b-x-01
staff:
  - username: gw.x
    name: 李娜
    phone: '+8613800000001'
    roles: [grid_worker]
    coverage: { grids: [g-x-01] }
devices:
  - id: wm-x-01-1-0101
    model: native-water-meter
    household: h-x-01-1-0101
  - id: da-x-01
    model: native-door-access
    building: b-x-01
    drill: true
`;

describe('seed file validation', () => {
  it('accepts a good file', () => {
    const seed = parseSeed(GOOD, { knownModel });
    expect(seed.devices).toHaveLength(2);
    expect(validateSeed(seed, { knownModel })).toEqual([]);
  });

  it('accepts the committed sample community', () => {
    const text = readFileSync(new URL('../../config/sample-community.yaml', import.meta.url), 'utf8');
    const seed = parseSeed(text);
    expect(seed.districts[0]!.streets[0]!.communities[0]!.id).toBe('c-limin');
  });

  it('lists every schema problem with its path', () => {
    const bad = GOOD.replace('colour: red', 'colour: purple')
      .replace("phone: '+8613912345678'", "phone: '13912345678'")
      .replace('roles: [grid_worker]', 'roles: [grid_worker, janitor]')
      .replace('name: 第一网格', 'name: 第一网格\n                colour: blue')
      .replace('  - username: gw.x\n    name: 李娜\n', '  - username: gw.x\n');
    const problems = problemsOf(bad);
    const paths = problems.map((p) => p.path);
    const base = '/districts/0/streets/0/communities/0/grids/0';
    expect(paths).toContain(`${base}/buildings/0/units/0/households/0/colour`);
    expect(paths).toContain(`${base}/buildings/0/units/0/households/0/emergencyContacts/0/phone`);
    expect(paths).toContain('/staff/0/roles/1');
    expect(paths).toContain(`${base}/colour`);
    expect(paths).toContain('/staff/0/name');
    expect(problems.find((p) => p.path === '/staff/0/name')!.message).toBe('is required');
    expect(problems.find((p) => p.path.endsWith('/phone'))!.message).toMatch(/E\.164/);
    expect(problems.find((p) => p.path === `${base}/colour`)!.message).toMatch(/not a known field/);
    expect(problems.find((p) => p.path.endsWith('/households/0/colour'))!.message).toMatch(/red, orange/);
  });

  it('lists every reference and uniqueness problem with its path', () => {
    const bad = GOOD.replace('coverage: { grids: [g-x-01] }', 'coverage: { grids: [g-x-99], streets: [s-x] }')
      .replace('household: h-x-01-1-0101', 'household: h-nowhere')
      .replace('model: native-door-access', 'model: acme-unknown')
      .replace('    building: b-x-01\n    drill: true', '    building: b-x-01\n    unit: u-x-01-1')
      .replace('building: b-x-01\nstaff:', 'building: b-x-77\nstaff:')
      .concat(
        `  - id: da-x-01
    model: native-door-access
    building: b-x-01
  - id: ec-x
    model: native-ebike-cutoff
`,
      );
    const problems = problemsOf(bad);
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: '/staff/0/coverage/grids/0', message: 'grid g-x-99 does not exist' },
        { path: '/devices/0/household', message: 'household h-nowhere does not exist' },
        { path: '/devices/1/model', message: 'unknown device model acme-unknown' },
        { path: '/devices/1', message: 'exactly one of household, unit, building or area is required' },
        {
          path: '/districts/0/streets/0/communities/0/chargingAreas/0/building',
          message: 'building b-x-77 does not exist',
        },
        { path: '/devices/2/id', message: 'duplicate device id da-x-01 (first at /devices/1)' },
        { path: '/devices/3', message: 'exactly one of household, unit, building or area is required' },
      ]),
    );
    expect(problems).toHaveLength(7);
  });

  it('reports duplicate ids, rooms, usernames and the reserved admin', () => {
    const bad = GOOD.replace(
      "                            emergencyContacts: [{ name: 王强, phone: '+8613912345678', relation: 儿子 }]\n",
      "                            emergencyContacts: [{ name: 王强, phone: '+8613912345678', relation: 儿子 }]\n" +
        "                          - id: h-x-01-1-0101\n                            room: '101'\n                            colour: green\n",
    ).concat('');
    const withStaff = bad.replace(
      'staff:\n',
      "staff:\n  - { username: gw.x, name: 甲, phone: '+8613800000002', roles: [admin] }\n  - { username: admin, name: 乙, phone: '+8613800000003', roles: [admin] }\n",
    );
    const problems = problemsOf(withStaff);
    const h = '/districts/0/streets/0/communities/0/grids/0/buildings/0/units/0/households/1';
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: `${h}/id`, message: expect.stringMatching(/duplicate household id h-x-01-1-0101/) },
        { path: `${h}/room`, message: expect.stringMatching(/room 101 already used/) },
        { path: '/staff/1/username', message: expect.stringMatching(/reserved/) },
        { path: '/staff/2/username', message: 'duplicate username gw.x (first at /staff/0)' },
      ]),
    );
  });

  it('reports YAML syntax errors with their line', () => {
    const problems = problemsOf('version: 1\ndistricts:\n  - id: [unclosed\n');
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]!.message).toMatch(/line \d+/);
  });

  it('reports a wrong version and a missing hierarchy', () => {
    const problems = problemsOf('version: 2\n');
    expect(problems.map((p) => p.path).sort()).toEqual(['/districts', '/version']);
  });

  it('the error message names every path', () => {
    try {
      parseSeed('version: 1\ndistricts: []\nextra: 1\n', { source: 'x.yaml' });
      throw new Error('not rejected');
    } catch (e) {
      expect((e as Error).message).toMatch(/invalid seed file x\.yaml/);
      expect((e as Error).message).toMatch(/\/extra: is not a known field/);
      expect((e as Error).message).toMatch(/\/districts: must NOT have fewer than 1 items/);
    }
  });
});
