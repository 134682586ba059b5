/**
 * The after-action report of a drill (`#/drills/<id>/report`, issue 6; `GET /api/v1/drills/:id/report`): each
 * objective met or missed with the measured time against its target, a timeline chart of what happened in drill
 * time, response times per participant, failed notifications, evaluator notes and ratings; the printable HTML,
 * CSV and JSON to download. Provisional (and refreshed live) while the drill runs.
 */
import { ErrorBox, Loading, Section } from '../components.tsx';
import { DrillState, drillWho, targetText, useDrillData } from '../drill-ui.tsx';
import {
  alertTitle,
  bi,
  fmtDateTime,
  fmtDrillTime,
  fmtSeconds,
  notificationStatusLabel,
  objectiveResultLabel,
  outcomeLabel,
  ratingLabel,
  roleLabel,
  settings,
  severityLabel,
  statusLabel,
  t,
  taskStatusLabel,
} from '../i18n.ts';
import { places } from '../places.ts';
import { href } from '../router.ts';
import { useStore } from '../store.ts';
import type { DrillReport, Me } from '../types.ts';

export function DrillReportPage({ id }: { id: string; me: Me }) {
  const { lang } = useStore(settings);
  useStore(places);
  const enc = encodeURIComponent(id);
  const r = useDrillData<DrillReport>(`drills/${enc}/report`, id, (x) => x.final);
  const report = r.data;
  if (!report) {
    return (
      <div class="page page-drill-report" data-testid="page-drill-report">
        {r.error ? <ErrorBox error={r.error} onRetry={r.reload} /> : <Loading />}
      </div>
    );
  }
  const view = { participants: report.participants.map((p) => ({ ...p, roles: [], named: false })) };
  const who = (by: string | undefined, name?: string) => name ?? drillWho(view, by);
  const count = (k: string) => report.objectives.filter((o) => o.result === k).length;
  return (
    <div class="page page-drill-report" data-testid="page-drill-report" data-final={String(report.final)}>
      <div class="drill-banner drill-banner-slim" role="note">
        <strong class="drill-banner-mark">{t('dr_banner')}</strong>
        <span class="drill-banner-sub">{t('rp_title')}</span>
      </div>
      {r.error ? <ErrorBox error={r.error} onRetry={r.reload} /> : null}
      <div class="page-head">
        <h1>
          {t('rp_title')} · {bi(report.drill.name)}
        </h1>
        <DrillState status={report.drill.status} />
        <a href={href('drills', id)} class="small" data-testid="report-back">
          {t('rp_back')}
        </a>
      </div>
      <section class="card report-head">
        <dl class="facts">
          <dt>{t('dr_date')}</dt>
          <dd>
            {fmtDateTime(report.drill.startedAt)}
            {report.drill.endedAt ? ` — ${fmtDateTime(report.drill.endedAt)}` : ''}
          </dd>
          <dt>{t('dr_duration')}</dt>
          <dd>{fmtDrillTime(report.durationS, false)}</dd>
          <dt>{t('rp_objectives')}</dt>
          <dd data-testid="report-summary">
            {t('rp_summary', { met: count('met'), missed: count('missed'), pending: count('pending') })}
          </dd>
        </dl>
        <p class="downloads">
          <span class="muted">{t('rp_download')}</span>{' '}
          <a
            href={`/api/v1/drills/${enc}/report.html?lang=${lang}`}
            target="_blank"
            rel="noopener"
            data-testid="report-html-link"
          >
            {t('rp_html')}
          </a>
          {' · '}
          <a href={`/api/v1/drills/${enc}/report.csv?lang=${lang}`} download data-testid="report-csv-link">
            {t('rp_csv')}
          </a>
          {' · '}
          <a href={`/api/v1/drills/${enc}/report`} download={`drill-${id}.json`} data-testid="report-json-link">
            {t('rp_json')}
          </a>
        </p>
        {!report.final ? (
          <p class="notice notice-info small" data-testid="report-provisional">
            {t('rp_provisional')} {t('rp_generated', { t: fmtDateTime(report.generatedAt) })}
          </p>
        ) : null}
      </section>

      <Section title={t('rp_objectives')} testid="report-objectives">
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th>{t('rp_objective')}</th>
                <th>{t('rp_target')}</th>
                <th>{t('rp_measured')}</th>
                <th>{t('rp_result')}</th>
                <th>{t('rp_rating')}</th>
              </tr>
            </thead>
            <tbody>
              {report.objectives.map((o) => (
                <tr
                  key={o.id}
                  data-testid={`objective-${o.id}`}
                  data-met={String(o.result === 'met')}
                  data-result={o.result}
                >
                  <td>
                    <strong>{bi(o.text)}</strong>
                    <div class="muted small">{bi(o.statement)}</div>
                  </td>
                  <td class="small">{targetText(o.target)}</td>
                  <td class="nowrap">{o.measuredS !== undefined ? fmtSeconds(o.measuredS) : '—'}</td>
                  <td>
                    <span class={`res res-${o.result}`}>{objectiveResultLabel(o.result)}</span>
                  </td>
                  <td class="small">
                    {o.rating ? (
                      <>
                        <span class={`rating rating-${o.rating.rating}`}>{ratingLabel(o.rating.rating)}</span>
                        <span class="muted"> · {who(o.rating.by, o.rating.byName)}</span>
                        {o.rating.note ? <div>{o.rating.note}</div> : null}
                      </>
                    ) : (
                      <span class="muted">{t('dr_rating_none')}</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>

      <Section title={t('rp_chart')} testid="report-chart">
        <TimelineChart report={report} />
      </Section>

      <div class="grid-2">
        <Section title={t('rp_participants')} testid="report-participants">
          <div class="table-wrap">
            <table class="table compact">
              <thead>
                <tr>
                  <th>{t('rp_person')}</th>
                  <th>{t('rp_notified')}</th>
                  <th>{t('rp_acked')}</th>
                  <th>{t('rp_response')}</th>
                  <th>{t('rp_first_task')}</th>
                  <th class="num">{t('rp_tasks_done')}</th>
                  <th class="num">{t('rp_sms')}</th>
                </tr>
              </thead>
              <tbody>
                {report.participants.map((p) => (
                  <tr key={p.staffId} data-testid={`report-participant-${p.username}`}>
                    <td>
                      {p.name} <span class="muted small">{p.as.map(roleLabel).join(t('list_sep'))}</span>
                    </td>
                    <td class="nowrap">{fmtDrillTime(p.notifiedS)}</td>
                    <td class="nowrap">{fmtDrillTime(p.acknowledgedS)}</td>
                    <td class="nowrap">{fmtSeconds(p.responseS)}</td>
                    <td class="nowrap">{fmtDrillTime(p.firstTaskDoneS)}</td>
                    <td class="num">{p.tasksDone.length}</td>
                    <td class="num">{p.sms}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Section>
        <div>
          <Section title={t('rp_alerts')} testid="report-alerts">
            {report.alerts.length === 0 ? <p class="muted">{t('rp_none')}</p> : null}
            <ul class="plain list-lines small">
              {report.alerts.map((a) => (
                <li key={a.id}>
                  <span class="nowrap muted">{fmtDrillTime(a.openedS)}</span> <strong>{alertTitle(a.type)}</strong>{' '}
                  {severityLabel(a.severity)} · {statusLabel(a.status)}
                  {a.ackAfterS !== undefined
                    ? ` · ${t('rp_ack_after')} ${fmtSeconds(a.ackAfterS)} (${who(a.acknowledgedBy)})`
                    : ''}
                  {a.outcome ? ` · ${outcomeLabel(a.outcome)}` : ''}
                </li>
              ))}
            </ul>
          </Section>
          <Section title={t('rp_tasks')} testid="report-tasks">
            {report.tasks.length === 0 ? <p class="muted">{t('rp_none')}</p> : null}
            <ul class="plain list-lines small">
              {report.tasks.map((task) => (
                <li key={task.id} data-testid={`report-task-${task.id}`} data-state={task.status}>
                  <strong>{bi(task.title)}</strong> {taskStatusLabel(task.status)}
                  {task.issuedS !== undefined ? ` · ${fmtDrillTime(task.issuedS)}` : ''}
                  {task.tookS !== undefined ? ` · ${t('rp_took')} ${fmtSeconds(task.tookS)} (${who(task.doneBy)})` : ''}
                </li>
              ))}
            </ul>
          </Section>
        </div>
      </div>

      <div class="grid-2">
        <Section title={t('rp_failed')} testid="report-failed">
          <p class="small">{t('rp_notifications', report.notifications)}</p>
          {report.failedNotifications.length === 0 ? (
            <p class="muted">{t('rp_failed_none')}</p>
          ) : (
            <table class="table compact">
              <thead>
                <tr>
                  <th>{t('dr_time')}</th>
                  <th>{t('rp_recipient')}</th>
                  <th>{t('dr_status')}</th>
                </tr>
              </thead>
              <tbody>
                {report.failedNotifications.map((n) => (
                  <tr key={n.id}>
                    <td class="nowrap">{fmtDrillTime(n.t)}</td>
                    <td>
                      {n.staffId ? who(n.staffId) : n.recipient}{' '}
                      <span class="muted">{n.role ? roleLabel(n.role) : ''}</span>
                    </td>
                    <td>
                      {notificationStatusLabel(n.status)} {n.errorCode ? <code>{n.errorCode}</code> : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
        <div>
          <Section title={t('rp_notes')} testid="report-notes">
            {report.notes.length === 0 ? <p class="muted">{t('dr_notes_empty')}</p> : null}
            <ul class="plain list-lines">
              {report.notes.map((n) => (
                <li key={`${n.at}-${n.by}`}>
                  <span class="nowrap muted">{fmtDrillTime(n.t)}</span> {n.text}{' '}
                  <span class="muted small">— {who(n.by, n.byName)}</span>
                </li>
              ))}
            </ul>
          </Section>
          <Section title={t('rp_real')} testid="report-real">
            {report.realAlerts.length === 0 ? <p class="muted">{t('rp_none')}</p> : null}
            <ul class="plain list-lines small">
              {report.realAlerts.map((a) => (
                <li key={a.id}>
                  {fmtDateTime(a.openedAt)} <strong>{alertTitle(a.type)}</strong> {severityLabel(a.severity)} ·{' '}
                  {statusLabel(a.status)}
                </li>
              ))}
            </ul>
          </Section>
        </div>
      </div>

      <details class="card" data-testid="report-timeline">
        <summary>
          <h2 class="inline-h2">
            {t('rp_timeline')} ({report.timeline.length})
          </h2>
        </summary>
        <div class="table-wrap">
          <table class="table compact">
            <thead>
              <tr>
                <th>{t('dr_time')}</th>
                <th>{t('rp_event')}</th>
                <th>{t('rp_who')}</th>
              </tr>
            </thead>
            <tbody>
              {report.timeline.map((e, i) => (
                <tr key={`${e.at}-${i}`} class={`tl-${e.kind}`}>
                  <td class="nowrap" title={fmtDateTime(e.at)}>
                    {fmtDrillTime(e.t)}
                  </td>
                  <td>{bi(e.text)}</td>
                  <td class="small">{e.by || e.byName ? who(e.by, e.byName) : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </div>
  );
}

// ------------------------------------------------------------------ the timeline chart (SVG, no chart library)

type Lane = 'drill' | 'inject' | 'alert' | 'task' | 'sms' | 'note';
const LANES: Lane[] = ['drill', 'inject', 'alert', 'task', 'sms', 'note'];
const LANE_KEY = {
  drill: 'rp_lane_drill',
  inject: 'rp_lane_inject',
  alert: 'rp_lane_alert',
  task: 'rp_lane_task',
  sms: 'rp_lane_sms',
  note: 'rp_lane_note',
} as const;

function laneOf(kind: string): Lane {
  if (kind.startsWith('alert_')) return 'alert';
  if (kind.startsWith('sms')) return 'sms';
  if (kind === 'inject_fired' || kind === 'message') return 'inject';
  if (kind.startsWith('task')) return 'task';
  if (kind === 'note' || kind === 'rating') return 'note';
  return 'drill';
}

function markClass(kind: string): string {
  if (kind === 'sms_failed') return 'mk-bad';
  if (kind === 'alert_opened') return 'mk-alert';
  if (kind === 'alert_acknowledged' || kind === 'task_done') return 'mk-good';
  if (kind === 'paused' || kind === 'ended' || kind === 'alert_cancelled') return 'mk-stop';
  return `mk-${laneOf(kind)}`;
}

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

function TimelineChart({ report }: { report: DrillReport }) {
  const W = 1000;
  const left = 72;
  const right = 16;
  const laneH = 26;
  const top = 8;
  const plotW = W - left - right;
  const H = top + LANES.length * laneH + 26;
  const last = Math.max(10, report.durationS, ...report.timeline.map((e) => e.t));
  const step = STEPS.find((s) => last / s <= 10) ?? 7200;
  const maxT = Math.ceil(last / step) * step;
  const x = (s: number) => left + (Math.max(0, s) / maxT) * plotW;
  const ticks: number[] = [];
  for (let s = 0; s <= maxT; s += step) ticks.push(s);
  // drill time: a pause takes none, so a pause and its resume sit at the same t
  return (
    <figure class="chart drill-chart" aria-label={t('rp_chart')} data-testid="report-timeline-chart">
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label={t('rp_chart')}>
        {LANES.map((lane, i) => (
          <g key={lane}>
            <rect x={left} y={top + i * laneH} width={plotW} height={laneH} class={i % 2 ? 'lane-odd' : 'lane-even'} />
            <text x={left - 8} y={top + i * laneH + laneH / 2 + 4} text-anchor="end" class="lane-label">
              {t(LANE_KEY[lane])}
            </text>
          </g>
        ))}
        {ticks.map((s) => (
          <g key={s}>
            <line x1={x(s)} x2={x(s)} y1={top} y2={top + LANES.length * laneH} class="tick-line" />
            <text x={x(s)} y={H - 8} text-anchor="middle" class="tick-label">
              {fmtDrillTime(s, false)}
            </text>
          </g>
        ))}
        {report.timeline.map((e, i) => {
          const lane = LANES.indexOf(laneOf(e.kind));
          return (
            <circle
              key={`${e.at}-${i}`}
              cx={x(e.t)}
              cy={top + lane * laneH + laneH / 2}
              r={5.5}
              class={`mark ${markClass(e.kind)}`}
              data-kind={e.kind}
            >
              <title>{`${fmtDrillTime(e.t)} ${bi(e.text)}`}</title>
            </circle>
          );
        })}
      </svg>
      <figcaption class="chart-legend small">
        {(['alert', 'good', 'stop', 'bad'] as const).map((k) => (
          <span key={k}>
            <svg viewBox="0 0 12 12" width="12" height="12" aria-hidden="true">
              <circle cx="6" cy="6" r="5" class={`mark mk-${k}`} />
            </svg>{' '}
            {t(`rp_mk_${k}`)}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
