/**
 * A drill (`#/drills/<id>`, issue 6), live: the 【演练 DRILL】 banner, the drill clock (pauses excluded), pause /
 * resume / end and firing injects (directors, drill controllers, admins), the master list of injects, the drill's
 * alerts from the live board (acknowledged here like on the board), tasks marked done by the participants, the
 * messages, evaluator notes and HSEEP ratings per objective. Real alerts meanwhile stay on the board, counted apart.
 *
 * The drill is refetched (`GET /api/v1/drills/:id`) on every live `drill` message about it; its alerts come from
 * the board's live store, so an acknowledgement shows at once wherever it was made.
 */
import { useEffect, useState } from 'preact/hooks';
import { byUrgency, titleOf } from '../alerts.tsx';
import { api } from '../api.ts';
import { ColourChip, ErrorBox, Loading, StatusBadge, toast, useBusy, useNow } from '../components.tsx';
import { DrillState, drillWho, fmtDuration, targetText, useDrillData } from '../drill-ui.tsx';
import { canControlDrills, DRILL_NOTE_ROLES, DRILL_RATING_ROLES } from '../drills.ts';
import {
  bi,
  fmtDateTime,
  fmtDrillTime,
  injectKindLabel,
  injectStateLabel,
  RATINGS,
  ratingLabel,
  roleLabel,
  settings,
  t,
  taskStatusLabel,
} from '../i18n.ts';
import { live } from '../live.ts';
import { people } from '../people.ts';
import { addressOf, places } from '../places.ts';
import { href } from '../router.ts';
import { hasRole } from '../session.ts';
import { useStore } from '../store.ts';
import type { Alert, DrillView, Me } from '../types.ts';
import { AlertList } from './board.tsx';

type Inject = DrillView['injects'][number];
type Task = DrillView['tasks'][number];

const isActive = (a: Alert) => a.status === 'open' || a.status === 'acknowledged';

export function DrillPage({ id, me }: { id: string; me: Me }) {
  useStore(settings);
  useStore(places);
  useStore(people);
  const d = useDrillData<DrillView>(`drills/${encodeURIComponent(id)}`, id, (v) => v.status === 'ended');
  const view = d.data;
  // the participants' (masked) names for the alert rows, for people who may not read the staff list
  const names = view?.participants.map((p) => `${p.staffId}=${p.name}`).join(',');
  useEffect(() => {
    if (!view) return;
    const known = people.get();
    const missing = view.participants.filter((p) => !known.has(p.staffId));
    if (missing.length > 0) people.set(new Map([...known, ...missing.map((p) => [p.staffId, p.name] as const)]));
  }, [names]);
  if (!view) {
    return (
      <div class="page page-drill" data-testid="page-drill">
        {d.error ? <ErrorBox error={d.error} onRetry={d.reload} /> : <Loading />}
      </div>
    );
  }
  const control = canControlDrills(me) && view.status !== 'ended';
  const act = (path: string, done: string, method: 'POST' | 'PUT' = 'POST', body: unknown = {}) =>
    api<DrillView>(`drills/${encodeURIComponent(id)}/${path}`, { method, body }).then((v) => {
      d.set(v);
      if (done) toast(done);
    });
  return (
    <div class={`page page-drill drill-${view.status}`} data-testid="page-drill" data-status={view.status}>
      <div class="drill-banner" role="note" data-testid="drill-banner">
        <strong class="drill-banner-mark">{t('dr_banner')}</strong>
        <span class="drill-banner-sub">{t('dr_banner_sub')}</span>
      </div>
      {d.error ? <ErrorBox error={d.error} onRetry={d.reload} /> : null}
      <div class="page-head">
        <h1>{bi(view.name)}</h1>
        <DrillState status={view.status} testid="drill-status" />
        <a href={href('drills', id, 'report')} class="btn btn-small" data-testid="drill-report-link">
          {t('dr_report_link')}
        </a>
        <a href="#/drills" class="small">
          {t('dr_back')}
        </a>
      </div>
      <section class="card drill-head">
        <div class="drill-clock-box">
          <span class="muted small" title={t('dr_clock_hint')}>
            {t('dr_clock')}
          </span>
          <DrillClock view={view} at={d.at} />
        </div>
        <div class="drill-facts">
          <p class="small">{bi(view.description)}</p>
          <p class="muted small">
            {t('dr_started_by', { who: drillWho(view, view.startedBy), t: fmtDateTime(view.startedAt) })}
            {view.endedAt
              ? ` · ${t('dr_ended_at', { who: drillWho(view, view.endedBy), t: fmtDateTime(view.endedAt) })}`
              : ''}
          </p>
          <p class="small" data-testid="drill-counts">
            {t('dr_counts', {
              fi: view.progress.injects.fired,
              ti: view.progress.injects.total,
              td: view.progress.tasks.done,
              tt: view.progress.tasks.total,
              a: view.progress.alerts,
              p: view.participantCount,
            })}
          </p>
        </div>
        {control ? <Controls view={view} act={act} /> : null}
      </section>
      <DrillAlerts view={view} me={me} />
      <div class="grid-2">
        <Injects view={view} control={control && view.status === 'running'} act={act} />
        <Tasks view={view} me={me} act={act} />
      </div>
      <div class="grid-2">
        <div>
          <Messages view={view} />
          <Notes view={view} me={me} act={act} />
        </div>
        <div>
          <Objectives view={view} me={me} act={act} />
          <Participants view={view} />
        </div>
      </div>
    </div>
  );
}

type Act = (path: string, done: string, method?: 'POST' | 'PUT', body?: unknown) => Promise<void>;

function DrillClock({ view, at }: { view: DrillView; at: number }) {
  const now = useNow();
  const s = view.clock.elapsedS + (view.clock.running ? Math.max(0, now - at) / 1000 : 0);
  return (
    <time
      class="drill-clock"
      role="timer"
      data-testid="drill-clock"
      data-state={view.status}
      data-seconds={Math.floor(s)}
    >
      {fmtDrillTime(s, false)}
    </time>
  );
}

function Controls({ view, act }: { view: DrillView; act: Act }) {
  const [busy, run] = useBusy();
  const end = () => {
    if (!window.confirm(t('dr_end_confirm'))) return;
    void run(() => act('end', t('dr_ended_toast')));
  };
  return (
    <div class="drill-controls">
      {view.status === 'running' ? (
        <button
          type="button"
          class="btn btn-big"
          disabled={busy}
          onClick={() => run(() => act('pause', t('dr_paused_toast')))}
          data-testid="drill-pause"
        >
          {t('dr_pause')}
        </button>
      ) : (
        <button
          type="button"
          class="btn btn-big btn-primary"
          disabled={busy}
          onClick={() => run(() => act('resume', t('dr_resumed_toast')))}
          data-testid="drill-resume"
        >
          {t('dr_resume')}
        </button>
      )}
      <button type="button" class="btn btn-big btn-danger" disabled={busy} onClick={end} data-testid="drill-end">
        {t('dr_end')}
      </button>
    </div>
  );
}

// ------------------------------------------------------------------ alerts

/** Ids of the grids the drill's scope covers (its grids, and the grids of its buildings). */
function scopeGrids(view: DrillView): Set<string> {
  const grids = new Set(view.scope.gridIds ?? []);
  const buildings = places.get().buildings;
  for (const b of view.scope.buildingIds ?? []) {
    const parent = buildings.get(b)?.parentId;
    if (parent) grids.add(parent);
  }
  return grids;
}

function DrillAlerts({ view, me }: { view: DrillView; me: Me }) {
  const s = useStore(live.state);
  const linked = new Map<string, Alert>(view.alerts.map((a) => [a.id, a]));
  const buildings = new Set(view.scope.buildingIds ?? []);
  const grids = scopeGrids(view);
  const from = Date.parse(view.startedAt);
  const until = view.endedAt ? Date.parse(view.endedAt) : Number.POSITIVE_INFINITY;
  const during = (a: Alert) => {
    const ts = Date.parse(a.firstSeen);
    return ts >= from - 1000 && ts <= until;
  };
  const inScope = (a: Alert) =>
    (a.buildingId !== undefined && buildings.has(a.buildingId)) || (a.gridId !== undefined && grids.has(a.gridId));

  // the live board's version of each alert when it has one (it is the newer), the drill's own list otherwise
  const byId = new Map<string, Alert>();
  for (const a of linked.values()) byId.set(a.id, s.alerts.get(a.id) ?? s.closed.find((x) => x.id === a.id) ?? a);
  // drill alerts of the scope on the board that the drill has not linked yet (the link follows within a moment)
  if (view.status !== 'ended') {
    for (const a of s.alerts.values()) if (a.drill && !byId.has(a.id) && inScope(a) && during(a)) byId.set(a.id, a);
  }
  const active = [...byId.values()].filter(isActive).sort(byUrgency);
  const closed = [...byId.values()].filter((a) => !isActive(a));
  // real alerts of the scope while the drill runs: from the drill (server) and the live board
  const real = new Map<string, Alert>(view.realAlerts.map((a) => [a.id, a]));
  for (const a of s.alerts.values()) if (!a.drill && inScope(a) && during(a)) real.set(a.id, a);

  return (
    <section class="card drill-alerts" data-testid="drill-alerts">
      <header class="card-head">
        <h2>{t('dr_alerts')}</h2>
        <a
          href="#/board"
          class={`real-alerts ${real.size > 0 ? 'has-real' : ''}`}
          data-testid="drill-real-alerts"
          data-count={real.size}
          title={t('dr_real_hint')}
        >
          {t('dr_real', { n: real.size })} · {t('dr_real_link')}
        </a>
      </header>
      {active.length === 0 ? (
        <p class="muted" data-testid="drill-alerts-empty">
          {t('dr_alerts_empty')}
        </p>
      ) : (
        <AlertList alerts={active} me={me} label={t('dr_alerts')} />
      )}
      {closed.length > 0 ? (
        <details class="closed">
          <summary>{t('dr_alerts_closed', { n: closed.length })}</summary>
          <ul class="plain">
            {closed.map((a) => (
              <li key={a.id} data-testid={`drill-closed-${a.id}`} data-status={a.status}>
                <StatusBadge status={a.status} /> <strong>{titleOf(a)}</strong> {addressOf(a)}{' '}
                <span class="muted">{fmtDateTime(a.resolvedAt ?? a.updatedAt)}</span>
              </li>
            ))}
          </ul>
        </details>
      ) : null}
    </section>
  );
}

// ------------------------------------------------------------------ injects

function triggerText(view: DrillView, inj: Inject): string {
  const { trigger } = inj;
  if (trigger.manual) return t('dr_manual');
  if (trigger.after) {
    const d = fmtDuration(trigger.after.delaySeconds ?? 0);
    const ref = view.injects.find((x) => x.id === (trigger.after?.injectId ?? trigger.after?.taskId));
    const what = ref ? bi(ref.title) : (trigger.after.injectId ?? trigger.after.taskId ?? '');
    return t(trigger.after.taskId ? 'dr_after_task' : 'dr_after_inject', { what, d });
  }
  if (trigger.at !== undefined) return t('dr_at', { t: fmtDrillTime(trigger.at, false) });
  return '—';
}

function Injects({ view, control, act }: { view: DrillView; control: boolean; act: Act }) {
  const [busy, run] = useBusy();
  const fire = (inj: Inject) =>
    run(() => act(`injects/${encodeURIComponent(inj.id)}/trigger`, t('dr_fired_toast', { what: bi(inj.title) })));
  return (
    <section class="card" data-testid="drill-injects">
      <header class="card-head">
        <h2>{t('dr_injects')}</h2>
        <span class="muted small">
          {view.progress.injects.fired}/{view.progress.injects.total}
        </span>
      </header>
      <ol class="plain injects">
        {view.injects.map((inj) => {
          const fired = inj.state === 'fired';
          return (
            <li
              key={inj.id}
              class={`inject inject-${inj.state} ${inj.error ? 'inject-error' : ''}`}
              data-testid={`inject-${inj.id}`}
              data-state={fired ? 'fired' : 'pending'}
              data-trigger={inj.state}
            >
              <span class="inject-time nowrap">
                {fired
                  ? fmtDrillTime(inj.firedS)
                  : inj.dueS !== undefined
                    ? t('dr_due', { t: fmtDrillTime(inj.dueS) })
                    : '—'}
              </span>
              <span class="inject-body">
                <strong>{bi(inj.title)}</strong>
                <span class="muted small">
                  {injectKindLabel(inj.kind)} · {triggerText(view, inj)}
                  {fired && inj.firedBy ? ` · ${drillWho(view, inj.firedBy)}` : ''}
                </span>
                {inj.error ? <span class="inject-err small">{t('dr_inject_error', { msg: inj.error })}</span> : null}
              </span>
              <span class="inject-state">
                <span class={`istate istate-${inj.state}`}>{injectStateLabel(inj.state)}</span>
                {control && !fired ? (
                  <button
                    type="button"
                    class={`btn btn-small ${inj.state === 'manual' ? 'btn-primary' : 'btn-ghost'}`}
                    disabled={busy}
                    onClick={() => fire(inj)}
                    data-testid={`trigger-${inj.id}`}
                  >
                    {inj.state === 'manual' ? t('dr_fire') : t('dr_fire_early')}
                  </button>
                ) : null}
              </span>
            </li>
          );
        })}
      </ol>
    </section>
  );
}

// ------------------------------------------------------------------ tasks

function Tasks({ view, me, act }: { view: DrillView; me: Me; act: Act }) {
  const [busy, run] = useBusy();
  const mayDo = view.status !== 'ended' && (canControlDrills(me) || view.participants.some((p) => p.staffId === me.id));
  const done = (task: Task) =>
    run(() => act(`tasks/${encodeURIComponent(task.id)}/done`, t('dr_task_done_toast', { what: bi(task.title) })));
  return (
    <section class="card" data-testid="drill-tasks">
      <header class="card-head">
        <h2>{t('dr_tasks')}</h2>
        <span class="muted small">
          {view.progress.tasks.done}/{view.progress.tasks.total}
        </span>
      </header>
      {view.tasks.length === 0 ? <p class="muted">{t('dr_tasks_empty')}</p> : null}
      <ul class="plain tasks">
        {view.tasks.map((task) => (
          <li key={task.id} class={`task task-${task.status}`} data-testid={`task-${task.id}`} data-state={task.status}>
            <div class="task-head">
              <strong>{bi(task.title)}</strong>
              <span class={`tstatus tstatus-${task.status}`}>{taskStatusLabel(task.status)}</span>
              {task.assigneeRole ? (
                <span class="muted small">{t('dr_task_for', { role: roleLabel(task.assigneeRole) })}</span>
              ) : null}
            </div>
            {task.status !== 'pending' ? <p class="small">{bi(task.text)}</p> : null}
            <TaskTargets task={task} />
            <p class="muted small">
              {task.issuedS !== undefined ? t('dr_task_issued', { t: fmtDrillTime(task.issuedS) }) : null}
              {task.doneS !== undefined
                ? ` · ${t('dr_task_done_by', { who: drillWho(view, task.doneBy), t: fmtDrillTime(task.doneS) })}`
                : null}
              {task.note ? ` · ${task.note}` : null}
            </p>
            {mayDo && task.status === 'open' ? (
              <button
                type="button"
                class="btn btn-primary"
                disabled={busy}
                onClick={() => done(task)}
                data-testid={`task-done-${task.id}`}
              >
                ✓ {t('dr_task_done')}
              </button>
            ) : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

function TaskTargets({ task }: { task: Task }) {
  if (task.status === 'pending' || (task.households.length === 0 && task.places.length === 0)) return null;
  const shown = task.households.slice(0, 12);
  return (
    <div class="task-targets small">
      {task.households.length > 0 ? (
        <>
          <span class="muted">{t('dr_task_households', { n: task.households.length })}</span>
          {shown.map((h) => (
            <a key={h.id} href={href('households', h.id)} class="task-hh">
              {addressOf({ householdId: h.id }) || h.address} <ColourChip colour={h.colour} />
            </a>
          ))}
          {task.households.length > shown.length ? <span class="muted">…</span> : null}
        </>
      ) : null}
      {task.places.length > 0 ? <span> {task.places.map((p) => p.name ?? p.id).join(t('list_sep'))}</span> : null}
    </div>
  );
}

// ------------------------------------------------------------------ messages, notes, objectives, participants

function Messages({ view }: { view: DrillView }) {
  const list = [...view.messages].sort((a, b) => b.t - a.t);
  return (
    <section class="card" data-testid="drill-messages">
      <header class="card-head">
        <h2>{t('dr_messages')}</h2>
      </header>
      {list.length === 0 ? <p class="muted">{t('dr_messages_empty')}</p> : null}
      <ul class="plain list-lines">
        {list.map((m) => (
          <li key={`${m.injectId}-${m.t}`} data-testid={`drill-message-${m.injectId}`}>
            <span class="nowrap muted">{fmtDrillTime(m.t)}</span> {bi(m.text)}{' '}
            {m.sms > 0 ? <span class="tag">{t('dr_sms_n', { n: m.sms })}</span> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Notes({ view, me, act }: { view: DrillView; me: Me; act: Act }) {
  const [text, setText] = useState('');
  const [busy, run] = useBusy();
  const may = hasRole(me, ...DRILL_NOTE_ROLES);
  const submit = (ev: Event) => {
    ev.preventDefault();
    if (!text.trim()) return;
    void run(async () => {
      await act('notes', t('saved'), 'POST', { text: text.trim() });
      setText('');
    });
  };
  const list = [...view.notes].sort((a, b) => b.t - a.t);
  return (
    <section class="card" data-testid="drill-notes">
      <header class="card-head">
        <h2>{t('dr_notes')}</h2>
      </header>
      {may ? (
        <form class="note-form" onSubmit={submit}>
          <label class="field grow">
            <span class="sr-only">{t('dr_note_label')}</span>
            <textarea
              rows={2}
              maxLength={2000}
              placeholder={t('dr_note_placeholder')}
              value={text}
              onInput={(e) => setText(e.currentTarget.value)}
              data-testid="drill-note-input"
            />
          </label>
          <button type="submit" class="btn" disabled={busy || !text.trim()} data-testid="drill-note-submit">
            {t('dr_note_submit')}
          </button>
        </form>
      ) : null}
      {list.length === 0 ? <p class="muted">{t('dr_notes_empty')}</p> : null}
      <ul class="plain list-lines">
        {list.map((n) => (
          <li key={n.id} data-testid={`drill-note-${n.id}`}>
            <span class="nowrap muted">{fmtDrillTime(n.t)}</span> {n.text}{' '}
            <span class="muted small">— {n.byName ?? drillWho(view, n.by)}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Objectives({ view, me, act }: { view: DrillView; me: Me; act: Act }) {
  const [busy, run] = useBusy();
  const may = hasRole(me, ...DRILL_RATING_ROLES);
  const rate = (objectiveId: string, rating: string) =>
    run(() => act(`ratings/${encodeURIComponent(objectiveId)}`, t('saved'), 'PUT', { rating }));
  return (
    <section class="card" data-testid="drill-objectives">
      <header class="card-head">
        <h2>{t('dr_ratings')}</h2>
      </header>
      <ul class="plain objectives">
        {view.objectives.map((o) => (
          <li key={o.id} data-testid={`drill-objective-${o.id}`} data-rating={o.rating?.rating ?? ''}>
            <strong>{bi(o.text)}</strong>
            <span class="muted small"> {targetText(o.target)}</span>
            <div class="rating-row">
              {may ? (
                <fieldset class="segmented ratings">
                  <legend class="sr-only">{t('dr_rating_for', { what: bi(o.text) })}</legend>
                  {RATINGS.map((r) => (
                    <button
                      key={r}
                      type="button"
                      class={`seg rating-${r} ${o.rating?.rating === r ? 'on' : ''}`}
                      aria-pressed={o.rating?.rating === r}
                      title={ratingLabel(r)}
                      disabled={busy}
                      onClick={() => rate(o.id, r)}
                      data-testid={`rating-${o.id}-${r}`}
                    >
                      {r}
                    </button>
                  ))}
                </fieldset>
              ) : null}
              <span class="small">
                {o.rating
                  ? t('dr_rated', { who: drillWho(view, o.rating.by), r: ratingLabel(o.rating.rating) })
                  : t('dr_rating_none')}
              </span>
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Participants({ view }: { view: DrillView }) {
  return (
    <details class="card participants" data-testid="drill-participants">
      <summary>
        <h2 class="inline-h2">{t('dr_participants', { n: view.participantCount })}</h2>
      </summary>
      <ul class="plain list-lines small">
        {view.participants.map((p) => (
          <li key={p.staffId}>
            <strong>{p.name}</strong> <span class="muted">{p.username}</span>{' '}
            {(p.as.length > 0 ? p.as : p.roles).map(roleLabel).join(t('list_sep'))}
          </li>
        ))}
      </ul>
    </details>
  );
}
