/**
 * Drills for the shell (issue 6): who may do what (the server's role lists, src/http/routes/drills.ts), the drills
 * running or paused now (for the banner and, for staff without a drill role, the nav entry when they take part in
 * one), kept up to date by the live channel's `drill` messages. The drill pages themselves load when opened.
 */
import { api } from './api.ts';
import { live } from './live.ts';
import { hasRole } from './session.ts';
import { Store } from './store.ts';
import type { DrillSummary, DrillView, Me, Page } from './types.ts';

/** See the drills pages in the nav. */
export const DRILL_ROLES = ['community_director', 'drill_controller', 'evaluator', 'admin'];
/** Start, pause, resume, end, fire an inject. */
export const DRILL_CONTROL_ROLES = ['community_director', 'drill_controller', 'admin'];
/** Evaluator notes. */
export const DRILL_NOTE_ROLES = ['evaluator', 'drill_controller', 'community_director', 'admin'];
/** HSEEP ratings. */
export const DRILL_RATING_ROLES = ['evaluator', 'admin'];

export const canControlDrills = (me: Me) => hasRole(me, ...DRILL_CONTROL_ROLES);

export interface ActiveDrills {
  /** running or paused drills this person may see */
  active: readonly DrillSummary[];
  /** of those, the ones they take part in */
  mine: ReadonlySet<string>;
}

const NONE: ActiveDrills = { active: [], mine: new Set() };
export const activeDrills = new Store<ActiveDrills>(NONE);

/** The drills entry in the nav: the drill roles, and participants while their drill is on. */
export function showDrills(me: Me): boolean {
  return hasRole(me, ...DRILL_ROLES) || activeDrills.get().mine.size > 0;
}

let me: Me | undefined;
let generation = 0;
let off: (() => void) | undefined;

export function watchDrills(who: Me): void {
  unwatchDrills();
  me = who;
  const gen = ++generation;
  const offDrills = live.drills.subscribe(() => onLive(gen));
  // back on the live channel after a drop: the drill messages missed may not be replayed (a snapshot instead)
  let conn = live.state.get().conn;
  let welcomed = false;
  const offConn = live.state.subscribe(() => {
    const now = live.state.get().conn;
    if (now === 'live' && conn !== 'live') {
      if (welcomed) void loadActive(gen);
      welcomed = true;
    }
    conn = now;
  });
  off = () => {
    offDrills();
    offConn();
  };
  void loadActive(gen);
}

export function unwatchDrills(): void {
  off?.();
  off = undefined;
  me = undefined;
  generation++;
  activeDrills.set(NONE);
}

async function loadActive(gen: number): Promise<void> {
  const rev = live.drills.get().rev;
  try {
    const pages = await Promise.all(
      (['running', 'paused'] as const).map((status) =>
        api<Page<DrillSummary>>('drills', { query: { status, limit: 20 } }),
      ),
    );
    if (gen !== generation) return;
    const found = new Map(pages.flatMap((p) => p.items).map((d) => [d.id, d]));
    // what the live channel said while the lists were on their way is newer than they are
    if (live.drills.get().rev !== rev) {
      for (const d of live.drills.get().byId.values()) {
        if (d.status === 'ended') found.delete(d.id);
        else found.set(d.id, d);
      }
    }
    const active = [...found.values()];
    const mine = new Set([...activeDrills.get().mine].filter((id) => found.has(id)));
    activeDrills.set({ active, mine });
    for (const d of active) void checkMine(d.id, gen);
  } catch {
    // a server without drills, or not reachable now: no banner, the nav as the roles say
  }
}

/** Whether the signed-in person takes part in a drill (only asked for people without a drill role). */
async function checkMine(id: string, gen: number): Promise<void> {
  const who = me;
  if (!who || hasRole(who, ...DRILL_ROLES) || activeDrills.get().mine.has(id)) return;
  try {
    const view = await api<DrillView>(`drills/${encodeURIComponent(id)}`);
    if (gen !== generation || !view.participants.some((p) => p.staffId === who.id)) return;
    activeDrills.update((s) => ({ ...s, mine: new Set(s.mine).add(id) }));
  } catch {
    // not visible after all
  }
}

function onLive(gen: number): void {
  const { last, byId } = live.drills.get();
  const drill = last && byId.get(last.drillId);
  if (!last || !drill) return;
  const s = activeDrills.get();
  const rest = s.active.filter((d) => d.id !== drill.id);
  if (drill.status === 'ended') {
    const mine = new Set(s.mine);
    mine.delete(drill.id);
    activeDrills.set({ active: rest, mine });
    return;
  }
  const isNew = rest.length === s.active.length;
  activeDrills.set({ ...s, active: [...rest, drill] });
  if (isNew) void checkMine(drill.id, gen);
}
