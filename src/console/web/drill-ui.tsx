/** What the drill pages share (loaded with them, not in the first download): labels, the live refetch, the status. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.ts';
import { drillStatusLabel, fmtSeconds, t } from './i18n.ts';
import { live, POLL_MS } from './live.ts';
import { whoLabel } from './people.ts';
import { buildingName, gridName } from './places.ts';
import type { DrillView, ScenarioView } from './types.ts';

export type Target = ScenarioView['objectives'][number]['target'];

/** A scenario's duration: 2分钟 / 2 min for whole minutes (and hours), 1分30秒 / 1 min 30 s otherwise. */
export function fmtDuration(s: number): string {
  if (s >= 3600 && s % 3600 === 0) return t('dr_dur_h', { h: s / 3600 });
  if (s >= 60 && s % 60 === 0) return t('dr_dur_m', { m: s / 60 });
  return fmtSeconds(s);
}

/** "first acknowledgement ≤ 2 min" */
export function targetText(target: Target): string {
  const d = fmtDuration(target.seconds);
  switch (target.kind) {
    case 'first_ack_within':
      return t('dr_target_first_ack', { d });
    case 'all_alerts_acked_within':
      return t('dr_target_all_acked', { d });
    case 'tasks_done_within':
      return t(target.from === 'start' ? 'dr_target_tasks_start' : 'dr_target_tasks', { d });
    case 'injects_handled':
      return t('dr_target_injects', { d });
    default:
      return `${target.kind} ≤ ${d}`;
  }
}

export function scopeText(scope: ScenarioView['scope']): string {
  return [...(scope.buildingIds ?? []).map(buildingName), ...(scope.gridIds ?? []).map(gridName)].join(t('list_sep'));
}

export function DrillState({ status, testid }: { status: string; testid?: string }) {
  return (
    <span class={`dstate dstate-${status}`} data-testid={testid} data-state={status}>
      {drillStatusLabel(status)}
    </span>
  );
}

/** A person in a drill: their (masked) name from the participants, else as the rest of the console names them. */
export function drillWho(view: Pick<DrillView, 'participants'> | undefined, by: string | undefined): string {
  if (by === 'schedule') return t('dr_by_schedule');
  const p = by ? view?.participants.find((x) => x.staffId === by) : undefined;
  return p ? p.name : whoLabel(by);
}

export interface Fetched<T> {
  data?: T;
  error?: unknown;
  /** when the data arrived (Date.now()): the running clock counts on from here */
  at: number;
  reload: () => void;
  set: (data: T) => void;
}

/**
 * GET `path` now, again on every live `drill` message about `drillId` (coalesced: one request at a time, one more
 * if something came meanwhile), when the live channel is back after a drop, and every 15 s while it is not live
 * (unless `settled` says the data no longer changes: an ended drill).
 */
export function useDrillData<T>(path: string, drillId: string, settled?: (data: T) => boolean): Fetched<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; at: number }>({ at: 0 });
  const latest = useRef(state);
  latest.current = state;
  const isSettled = useRef(settled);
  isSettled.current = settled;
  const busy = useRef(false);
  const again = useRef(false);
  const mounted = useRef(true);
  const load = useCallback(async () => {
    if (busy.current) {
      again.current = true;
      return;
    }
    busy.current = true;
    try {
      do {
        again.current = false;
        try {
          const data = await api<T>(path);
          if (mounted.current) setState({ data, at: Date.now() });
        } catch (error) {
          if (mounted.current) setState((s) => ({ ...s, error }));
        }
      } while (again.current && mounted.current);
    } finally {
      busy.current = false;
    }
  }, [path]);

  useEffect(() => {
    mounted.current = true;
    void load();
    return () => {
      mounted.current = false;
    };
  }, [load]);

  useEffect(() => {
    let conn = live.state.get().conn;
    const offDrills = live.drills.subscribe(() => {
      if (live.drills.get().last?.drillId === drillId) void load();
    });
    const offConn = live.state.subscribe(() => {
      const now = live.state.get().conn;
      // back after a drop: drill messages may have been missed when the server sent a snapshot instead of a replay
      if (now === 'live' && conn !== 'live') void load();
      conn = now;
    });
    return () => {
      offDrills();
      offConn();
    };
  }, [drillId, load]);

  useEffect(() => {
    const timer = window.setInterval(() => {
      const data = latest.current.data;
      if (data !== undefined && isSettled.current?.(data)) return;
      if (live.state.get().conn !== 'live') void load();
    }, POLL_MS);
    return () => window.clearInterval(timer);
  }, [load]);

  const set = useCallback((data: T) => setState({ data, at: Date.now() }), []);
  return { ...state, reload: () => void load(), set };
}
