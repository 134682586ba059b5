/**
 * Drills (`#/drills`, issue 6): the scenarios of config/drills with a start button (directors, drill controllers,
 * admins), and the drills run, per community and newest first, with how many objectives each met or missed, so
 * one quarter's drill can be set against the last.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, useApi } from '../api.ts';
import { ErrorBox, Loading, Section, toast, useBusy } from '../components.tsx';
import { DrillState, scopeText, targetText } from '../drill-ui.tsx';
import { canControlDrills } from '../drills.ts';
import { bi, drillTypeLabel, fmtDate, fmtDateTime, fmtDrillTime, roleLabel, settings, t } from '../i18n.ts';
import { live } from '../live.ts';
import { places } from '../places.ts';
import { href, navigate } from '../router.ts';
import { useStore } from '../store.ts';
import type { DrillReport, DrillSummary, DrillView, HierarchyNode, Me, Page, ScenarioView } from '../types.ts';

export function DrillsPage({ me }: { me: Me }) {
  useStore(settings);
  useStore(places);
  const scenarios = useApi<{ items: ScenarioView[] }>('drills/scenarios');
  const drills = useApi<Page<DrillSummary>>('drills', { limit: 100 });
  const communities = useApi<{ items: HierarchyNode[] }>('hierarchy/community');
  const liveDrills = useStore(live.drills);
  const { last } = liveDrills;
  // a drill started or ended (here or elsewhere): the start buttons and the list follow
  useEffect(() => {
    if (last && (last.change === 'started' || last.change === 'ended')) {
      scenarios.reload();
      drills.reload();
    }
  }, [liveDrills.rev]);

  // the list as loaded, each row as the live channel last told it
  const rows = (drills.data?.items ?? []).map((d) => liveDrills.byId.get(d.id) ?? d);
  const names = new Map((communities.data?.items ?? []).map((c) => [c.id, c.name]));

  return (
    <div class="page page-drills" data-testid="page-drills">
      <div class="page-head">
        <h1>{t('dr_title')}</h1>
      </div>
      <Section title={t('dr_scenarios')} testid="drill-scenarios">
        {scenarios.error ? <ErrorBox error={scenarios.error} onRetry={scenarios.reload} /> : null}
        {!scenarios.data && !scenarios.error ? <Loading /> : null}
        {scenarios.data && scenarios.data.items.length === 0 ? <p class="muted">{t('dr_scenarios_empty')}</p> : null}
        <div class="scenario-grid">
          {scenarios.data?.items.map((s) => (
            <ScenarioCard key={s.id} scenario={s} me={me} />
          ))}
        </div>
      </Section>
      <Section title={t('dr_history')} testid="drill-history">
        <p class="muted small">{t('dr_history_hint')}</p>
        {drills.error ? <ErrorBox error={drills.error} onRetry={drills.reload} /> : null}
        {!drills.data && !drills.error ? <Loading /> : null}
        {drills.data && rows.length === 0 ? <p class="muted">{t('dr_history_empty')}</p> : null}
        {rows.length > 0 ? <History rows={rows} names={names} /> : null}
      </Section>
    </div>
  );
}

function ScenarioCard({ scenario: s, me }: { scenario: ScenarioView; me: Me }) {
  const [busy, run] = useBusy();
  const start = () => {
    if (!window.confirm(t('dr_start_confirm', { name: bi(s.name) }))) return;
    void run(async () => {
      const view = await api<DrillView>('drills', { body: { scenarioId: s.id } });
      toast(t('dr_started'));
      navigate(`/drills/${encodeURIComponent(view.id)}`);
    });
  };
  const roles = s.participants.roles ?? [];
  return (
    <article class={`scenario ${s.available ? '' : 'unavailable'}`} data-testid={`scenario-${s.id}`}>
      <header class="scenario-head">
        <h3>{bi(s.name)}</h3>
        <span class="tag">{drillTypeLabel(s.type)}</span>
      </header>
      <p class="small">{bi(s.description)}</p>
      <dl class="facts small">
        <dt>{t('dr_scope')}</dt>
        <dd>{scopeText(s.scope) || '—'}</dd>
        <dt>{t('dr_inject')}</dt>
        <dd>
          {t('dr_injects_n', { n: s.injects.length })}
          {s.durationMinutes ? ` · ${t('dr_minutes', { n: s.durationMinutes })}` : ''}
        </dd>
        {roles.length > 0 ? (
          <>
            <dt>{t('dr_roles')}</dt>
            <dd>{roles.map(roleLabel).join(t('list_sep'))}</dd>
          </>
        ) : null}
      </dl>
      <h4>{t('dr_objectives')}</h4>
      <ul class="objective-list small">
        {s.objectives.map((o) => (
          <li key={o.id}>
            {bi(o.text)} <span class="muted">· {targetText(o.target)}</span>
          </li>
        ))}
      </ul>
      {!s.available ? (
        <p class="notice notice-warn small">{t('dr_unavailable', { problems: s.problems.join('; ') })}</p>
      ) : null}
      <div class="row-actions">
        {s.activeDrillId ? (
          <a class="btn" href={href('drills', s.activeDrillId)} data-testid={`active-${s.id}`}>
            {t('dr_active_link')}
          </a>
        ) : canControlDrills(me) ? (
          <button
            type="button"
            class="btn btn-primary"
            disabled={busy || !s.available}
            onClick={start}
            data-testid={`start-${s.id}`}
          >
            {t('dr_start')}
          </button>
        ) : null}
      </div>
    </article>
  );
}

interface Results {
  met: number;
  missed: number;
  pending: number;
}
/** Objective results of ended drills: they no longer change, so they are kept for the session. */
const results = new Map<string, Results>();

function countResults(r: DrillReport): Results {
  const n = (k: string) => r.objectives.filter((o) => o.result === k).length;
  return { met: n('met'), missed: n('missed'), pending: n('pending') };
}

/** The objectives met and missed of the drills listed (from their reports, three at a time). */
function useResults(rows: readonly DrillSummary[]): ReadonlyMap<string, Results> {
  const [, setTick] = useState(0);
  const wanted = rows
    .filter((d) => d.status === 'ended' && !results.has(d.id))
    .slice(0, 30)
    .map((d) => d.id);
  const key = wanted.join(',');
  useEffect(() => {
    let current = true;
    const queue = [...wanted];
    const worker = async () => {
      for (let id = queue.shift(); id && current; id = queue.shift()) {
        try {
          const r = await api<DrillReport>(`drills/${encodeURIComponent(id)}/report`);
          results.set(id, countResults(r));
          if (current) setTick((n) => n + 1);
        } catch {
          // shown as unknown
        }
      }
    };
    void Promise.all([worker(), worker(), worker()]);
    return () => {
      current = false;
    };
  }, [key]);
  return results;
}

function History({ rows, names }: { rows: readonly DrillSummary[]; names: ReadonlyMap<string, string> }) {
  const [scenario, setScenario] = useState('');
  const res = useResults(rows);
  const scenarios = [...new Map(rows.map((d) => [d.scenarioId, d.name])).entries()];
  const shown = rows.filter((d) => !scenario || d.scenarioId === scenario);
  const byCommunity = new Map<string, DrillSummary[]>();
  for (const d of shown) byCommunity.set(d.communityId, [...(byCommunity.get(d.communityId) ?? []), d]);
  return (
    <>
      {scenarios.length > 1 ? (
        <label class="field-inline">
          <span>{t('dr_scenario')}</span>
          <select value={scenario} onChange={(e) => setScenario(e.currentTarget.value)} data-testid="drill-filter">
            <option value="">{t('dr_all_scenarios')}</option>
            {scenarios.map(([id, name]) => (
              <option key={id} value={id}>
                {bi(name)}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      {[...byCommunity.entries()].map(([communityId, list]) => (
        <div key={communityId} class="drill-community">
          <h3>{t('dr_community', { name: names.get(communityId) ?? communityId })}</h3>
          <div class="table-wrap">
            <table class="table" data-testid={`drills-${communityId}`}>
              <thead>
                <tr>
                  <th>{t('dr_date')}</th>
                  <th>{t('dr_scenario')}</th>
                  <th>{t('dr_status')}</th>
                  <th>{t('dr_duration')}</th>
                  <th>{t('dr_progress')}</th>
                  <th>{t('dr_result')}</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {list.map((d) => {
                  const r = res.get(d.id);
                  return (
                    <tr key={d.id} data-testid={`drill-row-${d.id}`} data-status={d.status}>
                      <td class="nowrap" title={fmtDateTime(d.startedAt)}>
                        {fmtDate(d.startedAt)}
                      </td>
                      <td>
                        {bi(d.name)} <span class="muted small">{drillTypeLabel(d.type)}</span>
                      </td>
                      <td>
                        <DrillState status={d.status} />
                      </td>
                      <td class="nowrap">{fmtDrillTime(d.clock.elapsedS, false)}</td>
                      <td class="small">
                        {t('dr_progress_short', {
                          fi: d.progress.injects.fired,
                          ti: d.progress.injects.total,
                          td: d.progress.tasks.done,
                          tt: d.progress.tasks.total,
                        })}
                      </td>
                      <td data-testid={`drill-result-${d.id}`}>
                        {d.status !== 'ended' ? (
                          <span class="muted">—</span>
                        ) : r ? (
                          <span class={`res ${r.missed ? 'res-missed' : 'res-met'}`}>
                            {t('dr_result_counts', { met: r.met, missed: r.missed })}
                          </span>
                        ) : (
                          <span class="muted">…</span>
                        )}
                      </td>
                      <td class="nowrap">
                        <a href={href('drills', d.id)}>{t('dr_open')}</a>
                        {' · '}
                        <a href={href('drills', d.id, 'report')}>{t('dr_report')}</a>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </div>
      ))}
    </>
  );
}
