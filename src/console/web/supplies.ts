/**
 * Emergency supplies in the console (issue 7): the catalogue (loaded once, for item names and units), labels of the
 * supply enumerations, and a hook that refetches when the live channel says stock changed at a depot shown.
 * Only src/supplies/constants.ts is imported at run time; the rest of src/supplies are types.
 */
import { useEffect, useRef } from 'preact/hooks';
import type { Level, MovementKind, TransferStatus } from '../../supplies/constants.ts';
import { api, useApi } from './api.ts';
import { bi, type Key, t } from './i18n.ts';
import { live } from './live.ts';
import { Store } from './store.ts';
import type { Catalogue, CatalogueItem, DepotView, HierarchyNode } from './types.ts';

export const catalogue = new Store<Catalogue | undefined>(undefined);
let loading: Promise<void> | undefined;

export function loadCatalogue(): Promise<void> {
  loading ??= api<Catalogue>('supplies/catalogue').then(
    (c) => catalogue.set(c),
    () => {
      loading = undefined;
    },
  );
  return loading;
}

export function itemOf(id: string): CatalogueItem | undefined {
  return catalogue.get()?.items.find((i) => i.id === id);
}

export const itemName = (id: string) => {
  const i = itemOf(id);
  return i ? bi(i.name) : id;
};

export const unitOf = (id: string) => {
  const i = itemOf(id);
  return i ? bi(i.unit) : '';
};

export const levelLabel = (l: Level | string) => t(`sp_level_${l}` as Key);
export const transferStatusLabel = (s: TransferStatus | string) => t(`sp_ts_${s}` as Key);
export const movementKindLabel = (k: MovementKind | string) => t(`sp_mk_${k}` as Key);
export const expiryLabel = (e: string) => t(`sp_exp_${e}` as Key);
export const conditionLabel = (c: string) => t(`sp_cond_${c}` as Key);
export const relationLabel = (r: string) => t(`sp_rel_${r}` as Key);
export function supplyAlertLabel(type: string): string {
  const k = `sp_al_${type}` as Key;
  const s = t(k);
  return s === undefined ? type : s;
}

/** Calls `reload` (at most every 300 ms) when a `stock` message names one of `depotIds` (any depot: undefined). */
export function useStockChanges(depotIds: readonly string[] | undefined, reload: () => void): void {
  const fn = useRef(reload);
  fn.current = reload;
  const ids = useRef(depotIds);
  ids.current = depotIds;
  useEffect(() => {
    let seen = live.stock.get().rev;
    let timer: number | undefined;
    const off = live.stock.subscribe(() => {
      const s = live.stock.get();
      if (s.rev === seen) return;
      seen = s.rev;
      const want = ids.current;
      if (want && !s.last?.depotIds.some((d) => want.includes(d))) return;
      window.clearTimeout(timer);
      timer = window.setTimeout(() => fn.current(), 300);
    });
    return () => {
      off();
      window.clearTimeout(timer);
    };
  }, []);
}

/** `YYYY-MM-DD` of today in the browser's zone. */
export function todayIso(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** The community a depot serves: the depot's own label, else the registry's name, else its id. */
export function useCommunityName(): (d: Pick<DepotView, 'communityId' | 'communityName'>) => string {
  const communities = useApi<{ items: HierarchyNode[] }>('hierarchy/community');
  const names = new Map((communities.data?.items ?? []).map((c) => [c.id, c.name]));
  return (d) =>
    d.communityName ? bi(d.communityName) : d.communityId ? (names.get(d.communityId) ?? d.communityId) : '—';
}
