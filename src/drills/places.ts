/**
 * The places a drill refers to, read from the registry's tables in a few queries: which grid and community a
 * building, unit, household or charging area belongs to, and the households a task selects (every red and orange
 * household of building 3, the ground floor of a unit). Reloaded when a drill starts, so it follows imports.
 */
import type { Kysely } from 'kysely';
import type { Colour } from '../registry/types.ts';
import type { DB } from '../store/db.ts';
import type { HouseholdSelect, Place, PlaceDirectory } from './scenario.ts';

export interface HouseholdRow {
  id: string;
  unitId: string;
  buildingId: string;
  gridId: string;
  communityId: string;
  room: string;
  address: string;
  colour: Colour;
  loneElderly: boolean;
}

type Kind = 'household' | 'building' | 'unit' | 'area' | 'grid';

export class PlaceIndex implements PlaceDirectory {
  private grids = new Map<string, { communityId: string; name: string }>();
  private buildings = new Map<string, { gridId: string; communityId: string; name: string }>();
  private units = new Map<string, { buildingId: string; name: string }>();
  private areas = new Map<string, { communityId: string; buildingId?: string; name: string }>();
  private households = new Map<string, HouseholdRow>();
  private usernames = new Set<string>();

  constructor(private readonly db: Kysely<DB>) {}

  async load(): Promise<void> {
    const [grids, buildings, units, areas, households, staff] = await Promise.all([
      this.db.selectFrom('grid').select(['id', 'community_id', 'name']).execute(),
      this.db.selectFrom('building').select(['id', 'grid_id', 'community_id', 'name']).execute(),
      this.db.selectFrom('unit').select(['id', 'building_id', 'name']).execute(),
      this.db.selectFrom('charging_area').select(['id', 'community_id', 'building_id', 'name']).execute(),
      this.db
        .selectFrom('household')
        .select([
          'id',
          'unit_id',
          'building_id',
          'grid_id',
          'community_id',
          'room',
          'address',
          'colour',
          'lone_elderly',
        ])
        .execute(),
      this.db.selectFrom('staff').select(['username']).execute(),
    ]);
    this.grids = new Map(grids.map((g) => [g.id, { communityId: g.community_id, name: g.name }]));
    this.buildings = new Map(
      buildings.map((b) => [b.id, { gridId: b.grid_id, communityId: b.community_id, name: b.name }]),
    );
    this.units = new Map(units.map((u) => [u.id, { buildingId: u.building_id, name: u.name }]));
    this.areas = new Map(
      areas.map((a) => [a.id, { communityId: a.community_id, buildingId: a.building_id ?? undefined, name: a.name }]),
    );
    this.households = new Map(
      households.map((h) => [
        h.id,
        {
          id: h.id,
          unitId: h.unit_id,
          buildingId: h.building_id,
          gridId: h.grid_id,
          communityId: h.community_id,
          room: h.room,
          address: h.address,
          colour: h.colour,
          loneElderly: Number(h.lone_elderly) === 1,
        },
      ]),
    );
    this.usernames = new Set(staff.map((s) => s.username));
  }

  placeOf(kind: Kind, id: string): { gridId?: string; communityId: string } | undefined {
    switch (kind) {
      case 'grid': {
        const g = this.grids.get(id);
        return g ? { gridId: id, communityId: g.communityId } : undefined;
      }
      case 'building': {
        const b = this.buildings.get(id);
        return b ? { gridId: b.gridId, communityId: b.communityId } : undefined;
      }
      case 'unit': {
        const u = this.units.get(id);
        return u ? this.placeOf('building', u.buildingId) : undefined;
      }
      case 'household': {
        const h = this.households.get(id);
        return h ? { gridId: h.gridId, communityId: h.communityId } : undefined;
      }
      case 'area': {
        const a = this.areas.get(id);
        if (!a) return undefined;
        const b = a.buildingId ? this.buildings.get(a.buildingId) : undefined;
        return { gridId: b?.gridId, communityId: a.communityId };
      }
    }
  }

  hasStaff(username: string): boolean {
    return this.usernames.has(username);
  }

  household(id: string): HouseholdRow | undefined {
    return this.households.get(id);
  }

  /** A place's display name (1号楼, 1单元, 集中充电区, or the household's address). */
  nameOf(p: Place): string | undefined {
    if (p.householdId) return this.households.get(p.householdId)?.address;
    if (p.unitId) {
      const u = this.units.get(p.unitId);
      const b = u ? this.buildings.get(u.buildingId) : undefined;
      return u ? `${b?.name ?? ''}${u.name}` : undefined;
    }
    if (p.buildingId) return this.buildings.get(p.buildingId)?.name;
    if (p.areaId) return this.areas.get(p.areaId)?.name;
    return undefined;
  }

  /** Households in a building or unit, by room. */
  householdsIn(p: { buildingId?: string; unitId?: string }): HouseholdRow[] {
    const out = [...this.households.values()].filter((h) =>
      p.unitId ? h.unitId === p.unitId : p.buildingId ? h.buildingId === p.buildingId : false,
    );
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** The households a task's selector chooses. */
  select(s: HouseholdSelect): HouseholdRow[] {
    const out: HouseholdRow[] = [];
    for (const h of this.households.values()) {
      if (s.buildingIds && !s.buildingIds.includes(h.buildingId)) continue;
      if (s.unitIds && !s.unitIds.includes(h.unitId)) continue;
      if (s.colours && !s.colours.includes(h.colour)) continue;
      if (s.loneElderly !== undefined && h.loneElderly !== s.loneElderly) continue;
      if (s.floors && !s.floors.includes(floorOf(h.room))) continue;
      out.push(h);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** The grids of a scope. */
  gridsOf(scope: { buildingIds?: string[]; gridIds?: string[] }): string[] {
    const grids = new Set<string>(scope.gridIds ?? []);
    for (const b of scope.buildingIds ?? []) {
      const g = this.buildings.get(b)?.gridId;
      if (g) grids.add(g);
    }
    return [...grids].sort();
  }

  /** Is a place inside the scope's buildings / grids? */
  inScope(place: { buildingId?: string; gridId?: string }, scope: { buildingIds?: string[]; gridIds?: string[] }) {
    if (place.buildingId && scope.buildingIds?.includes(place.buildingId)) return true;
    return place.gridId !== undefined && (scope.gridIds?.includes(place.gridId) ?? false);
  }
}

/** Room 501 → floor 5, 1203 → 12. */
export function floorOf(room: string): number {
  const digits = room.replace(/\D/g, '');
  return digits.length >= 3 ? Number(digits.slice(0, digits.length - 2)) : 0;
}
