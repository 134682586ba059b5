import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { validateSeed, type SeedFile } from '../src/registry/seed.ts';
import { COLOURS, ROLES } from '../src/registry/types.ts';
import { generateCommunity, toYaml } from './generate-community.ts';

function stats(seed: SeedFile) {
  const communities = seed.districts.flatMap((d) => d.streets.flatMap((s) => s.communities));
  const grids = communities.flatMap((c) => c.grids);
  const buildings = grids.flatMap((g) => g.buildings);
  const units = buildings.flatMap((b) => b.units);
  const households = units.flatMap((u) => u.households ?? []);
  const residents = households.flatMap((h) => h.residents ?? []);
  const areas = communities.flatMap((c) => c.chargingAreas ?? []);
  return { communities, grids, buildings, units, households, residents, areas };
}

describe('generateCommunity', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = generateCommunity({ households: 300, seed: 7 });
    const b = generateCommunity({ households: 300, seed: 7 });
    const c = generateCommunity({ households: 300, seed: 8 });
    expect(toYaml(a, 'x')).toBe(toYaml(b, 'x'));
    expect(toYaml(a, 'x')).not.toBe(toYaml(c, 'x'));
  });

  it('builds the requested sizes (利民社区: 2,261 households in 61 buildings)', () => {
    const seed = generateCommunity({ households: 2261, buildings: 61 });
    const s = stats(seed);
    expect(s.communities).toHaveLength(1);
    expect(s.buildings).toHaveLength(61);
    expect(s.households).toHaveLength(2261);
    // ~100 households per grid
    expect(s.grids).toHaveLength(23);
    const lone = s.households.filter((h) => h.loneElderly);
    expect(lone.length).toBe(Math.round(2261 * 0.06));
    // a 9-device kit per lone-elderly home, a door per building, a cut-off per unit, the area, two drill devices
    expect(seed.devices).toHaveLength(lone.length * 9 + 61 + s.units.length + 1 + 2);
  });

  it('makes the sample shape: 2 grids, 6 buildings, 150 households, 20 lone-elderly homes', () => {
    const seed = generateCommunity({ households: 150, buildings: 6, grids: 2, loneElderly: 20, seed: 1 });
    const s = stats(seed);
    expect([s.grids.length, s.buildings.length, s.households.length]).toEqual([2, 6, 150]);
    expect(s.households.filter((h) => h.loneElderly)).toHaveLength(20);
    const models = new Set(seed.devices!.map((d) => d.model));
    for (const m of [
      'native-water-meter',
      'native-electricity-meter',
      'native-gas-meter',
      'native-motion',
      'native-door-contact',
      'native-wristband',
      'native-emergency-button',
      'native-smoke-detector',
      'native-gas-detector',
      'native-door-access',
      'hikv-ac100',
      'native-ebike-cutoff',
      'volt-cb2',
      'native-charging-area',
      'acme-wb200',
      'zenmeter-em3',
    ]) {
      expect(models, m).toContain(m);
    }
    expect(seed.devices!.filter((d) => d.drill)).toHaveLength(2);
    expect(new Set(seed.staff!.flatMap((st) => st.roles))).toEqual(new Set(ROLES));
    expect(seed.staff!.every((st) => /^\+86138\d{8}$/.test(st.phone))).toBe(true);
    // addresses like 利民社区3号楼2单元501 (derived by the seed loader from the names)
    const b3 = s.buildings.find((b) => b.id === 'b-limin-03')!;
    expect(b3.name).toBe('3号楼');
    expect(b3.units[1]!.name).toBe('2单元');
    expect(b3.units[1]!.households![0]!.id).toBe('h-limin-03-2-0101');
  });

  it('has all five colours with few red and mostly green', () => {
    for (const households of [20, 150, 3000]) {
      const s = stats(generateCommunity({ households }));
      const by = Object.fromEntries(COLOURS.map((c) => [c, s.households.filter((h) => h.colour === c).length]));
      for (const c of COLOURS) expect(by[c], `${c} of ${households}`).toBeGreaterThan(0);
      if (households >= 150) {
        expect(by.red).toBeLessThan(by.orange!);
        expect(by.green).toBeGreaterThan(households / 2);
      }
    }
  });

  it('gives unique, valid ids and passes seed validation', () => {
    const seed = generateCommunity({ households: 3000, seed: 3 });
    const s = stats(seed);
    const ids = [
      ...s.communities.map((c) => c.id),
      ...s.grids.map((g) => g.id),
      ...s.buildings.map((b) => b.id),
      ...s.units.map((u) => u.id),
      ...s.households.map((h) => h.id),
      ...s.areas.map((a) => a.id),
      ...seed.devices!.map((d) => d.id),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(seed.staff!.map((st) => st.username)).size).toBe(seed.staff!.length);
    expect(validateSeed(seed)).toEqual([]);
  });

  it('street mode makes ~20 communities of ~3,000 households', () => {
    const seed = generateCommunity({ street: 60000, seed: 2 });
    const s = stats(seed);
    expect(s.communities).toHaveLength(20);
    expect(s.households).toHaveLength(60000);
    expect(new Set(s.households.map((h) => h.id)).size).toBe(60000);
    expect(new Set(seed.devices!.map((d) => d.id)).size).toBe(seed.devices!.length);
    expect(seed.devices!.length).toBeGreaterThan(20000);
    expect(validateSeed(seed)).toEqual([]);
  });

  it('rejects impossible sizes', () => {
    expect(() => generateCommunity({ households: 0 })).toThrow(RangeError);
    expect(() => generateCommunity({ households: 5, buildings: 6 })).toThrow(/more buildings/);
  });

  it('the committed sample is exactly what the generator makes (regenerate it after changing the generator)', () => {
    const text = readFileSync(new URL('../config/sample-community.yaml', import.meta.url), 'utf8');
    const body = text.slice(text.indexOf('\nversion: 1') + 1);
    const fresh = toYaml(generateCommunity({ households: 150, buildings: 6, grids: 2, loneElderly: 20, seed: 1 }), '');
    expect(body).toBe(fresh.slice(fresh.indexOf('\nversion: 1') + 1));
    expect(text.length).toBeLessThan(300_000);
  });
});
