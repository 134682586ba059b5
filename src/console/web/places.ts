/**
 * Names of grids, buildings, units and charging areas (GET /api/v1/hierarchy/:level, loaded once), and addresses
 * built from an alert's or household's ids: 3号楼2单元501 / Bldg 3 Unit 2 Rm 501. Household details are not fetched
 * for this: reading one is logged as an access to a resident's personal data.
 */
import { formatAddress } from '../../notify/templates.ts';
import { api } from './api.ts';
import { settings } from './i18n.ts';
import { Store } from './store.ts';
import type { HierarchyNode } from './types.ts';

export interface Places {
  grids: ReadonlyMap<string, HierarchyNode>;
  buildings: ReadonlyMap<string, HierarchyNode>;
  units: ReadonlyMap<string, HierarchyNode>;
  areas: ReadonlyMap<string, HierarchyNode>;
  loaded: boolean;
}

export const places = new Store<Places>({
  grids: new Map(),
  buildings: new Map(),
  units: new Map(),
  areas: new Map(),
  loaded: false,
});

let loading: Promise<void> | undefined;

export function loadPlaces(): Promise<void> {
  loading ??= (async () => {
    const level = async (l: string) => {
      try {
        const r = await api<{ items: HierarchyNode[] }>(`hierarchy/${l}`);
        return new Map(r.items.map((n) => [n.id, n]));
      } catch {
        return new Map<string, HierarchyNode>();
      }
    };
    const [grids, buildings, units, areas] = await Promise.all(['grid', 'building', 'unit', 'area'].map(level));
    places.set({ grids: grids!, buildings: buildings!, units: units!, areas: areas!, loaded: true });
  })();
  return loading;
}

export function resetPlaces(): void {
  loading = undefined;
}

export function gridName(id: string | undefined): string {
  if (!id) return '—';
  return places.get().grids.get(id)?.name ?? id;
}

export function buildingName(id: string | undefined): string {
  if (!id) return '—';
  return places.get().buildings.get(id)?.name ?? id;
}

export interface Where {
  householdId?: string;
  unitId?: string;
  buildingId?: string;
  areaId?: string;
  deviceId?: string;
}

/** The sample ids' convention: h-<community>-<building>-<unit>-<room>, u-<community>-<building>-<unit>, b-<community>-<building>. */
function fromIds(w: Where): { buildingId?: string; unitId?: string; room?: string; b?: string; u?: string } {
  const h = /^h-(.+)-(\d{1,4})-(\d{1,3})-(\d{3,5})$/.exec(w.householdId ?? '');
  if (h) {
    return {
      buildingId: w.buildingId ?? `b-${h[1]}-${h[2]}`,
      unitId: w.unitId ?? `u-${h[1]}-${h[2]}-${h[3]}`,
      room: String(Number(h[4])),
      b: String(Number(h[2])),
      u: String(Number(h[3])),
    };
  }
  const u = /^u-.+-(\d{1,4})-(\d{1,3})$/.exec(w.unitId ?? '');
  const b = /^b-.+-(\d{1,4})$/.exec(w.buildingId ?? '');
  return {
    buildingId: w.buildingId,
    unitId: w.unitId,
    b: u ? String(Number(u[1])) : b ? String(Number(b[1])) : undefined,
    u: u ? String(Number(u[2])) : undefined,
  };
}

/** 3号楼2单元501 (zh) or Bldg 3 Unit 2 Rm 501 (en); a charging area by its name; else the ids. */
export function addressOf(w: Where): string {
  const p = places.get();
  const lang = settings.get().lang;
  const ids = fromIds(w);
  const building = (ids.buildingId && p.buildings.get(ids.buildingId)?.name) || ids.b;
  const unit = (ids.unitId && p.units.get(ids.unitId)?.name) || ids.u;
  const text = formatAddress({ building, unit, room: ids.room }, lang);
  if (text) return text;
  if (w.areaId) return p.areas.get(w.areaId)?.name ?? w.areaId;
  return w.householdId ?? w.unitId ?? w.buildingId ?? w.deviceId ?? '—';
}
