/** The live alert board (desk, `#/board`): open and acknowledged alerts by severity and age, with actions. */
import { useEffect, useState } from 'preact/hooks';
import {
  acknowledge,
  byUrgency,
  Evidence,
  NoteForm,
  NotifiedList,
  NotifiedSummary,
  ResolveForm,
  Timeline,
  titleOf,
} from '../alerts.tsx';
import { Age, ColourChip, DrillBadge, Loading, SeverityBadge, StatusBadge, toast, useBusy } from '../components.tsx';
import { categoryLabel, fmtDateTime, outcomeLabel, t } from '../i18n.ts';
import { live } from '../live.ts';
import { whoLabel } from '../people.ts';
import { addressOf, gridName, places } from '../places.ts';
import { href } from '../router.ts';
import { canAct } from '../session.ts';
import { useStore } from '../store.ts';
import type { Alert, Me } from '../types.ts';

type Filter = 'all' | 'open' | 'acknowledged';

export function BoardPage({ me, focus }: { me: Me; focus?: string }) {
  const s = useStore(live.state);
  useStore(places);
  const [filter, setFilter] = useState<Filter>('all');
  const all = [...s.alerts.values()].sort(byUrgency);
  const list = all.filter((a) => filter === 'all' || a.status === filter);
  const open = all.filter((a) => a.status === 'open').length;

  return (
    <div class="page page-board" data-testid="page-board">
      <div class="page-head">
        <h1>{t('board_title')}</h1>
        <p class="counts" data-testid="board-counts">
          {t('board_counts', { open, acked: all.length - open })}
        </p>
        <fieldset class="segmented">
          <legend class="sr-only">{t('filter_status')}</legend>
          {(['all', 'open', 'acknowledged'] as const).map((f) => (
            <button
              key={f}
              type="button"
              class={`seg ${filter === f ? 'on' : ''}`}
              aria-pressed={filter === f}
              onClick={() => setFilter(f)}
              data-testid={`board-filter-${f}`}
            >
              {t(f === 'all' ? 'board_filter_all' : f === 'open' ? 'board_filter_open' : 'board_filter_acked')}
            </button>
          ))}
        </fieldset>
      </div>
      {!s.synced ? (
        <Loading />
      ) : list.length === 0 ? (
        <p class="empty" data-testid="board-empty">
          {t('board_empty')}
        </p>
      ) : (
        <AlertList alerts={list} me={me} focus={focus} label={t('board_title')} />
      )}
      {s.closed.length > 0 ? <RecentlyClosed alerts={s.closed} /> : null}
    </div>
  );
}

/** Alert rows with their actions and expandable details: the board's, and the drill page's drill alerts. */
export function AlertList({
  alerts: list,
  me,
  focus,
  label,
}: {
  alerts: readonly Alert[];
  me: Me;
  focus?: string;
  label: string;
}) {
  const [expanded, setExpanded] = useState<string | null>(focus ?? null);
  const ids = list
    .slice(0, 60)
    .map((a) => a.id)
    .join(',');
  useEffect(() => {
    for (const id of ids.split(',')) if (id) live.loadNotifications(id);
  }, [ids]);
  return (
    <div class="board">
      {/* column titles for the eye; each row says what its values are to a screen reader */}
      <div class="arow-grid board-head" aria-hidden="true">
        <span>{t('col_severity')}</span>
        <span>{t('col_type')}</span>
        <span>{t('col_where')}</span>
        <span>{t('col_age')}</span>
        <span>{t('col_notified')}</span>
        <span>{t('col_acked')}</span>
        <span />
      </div>
      <ul class="plain board-list" aria-label={label}>
        {list.map((a) => (
          <BoardRow
            key={a.id}
            alert={a}
            me={me}
            expanded={expanded === a.id}
            onToggle={(resolve) => {
              setExpanded(expanded === a.id && !resolve ? null : a.id);
              if (resolve) {
                // the outcome choice gets the focus: keyboard users go on from there
                window.setTimeout(() => {
                  document.querySelector<HTMLInputElement>(`#details-${CSS.escape(a.id)} .outcome input`)?.focus();
                }, 0);
              }
            }}
            onClose={() => setExpanded(null)}
          />
        ))}
      </ul>
    </div>
  );
}

function BoardRow({
  alert: a,
  me,
  expanded,
  onToggle,
  onClose,
}: {
  alert: Alert;
  me: Me;
  expanded: boolean;
  onToggle: (resolve?: boolean) => void;
  onClose: () => void;
}) {
  const notes = useStore(live.state).notifications.get(a.id);
  const [busy, run] = useBusy();
  const act = canAct(me);
  const ack = () =>
    run(async () => {
      await acknowledge(a);
      toast(t('acked_by_you'));
    });
  return (
    <li
      class={`arow sev-row-${a.severity} st-${a.status} ${a.drill ? 'is-drill' : ''} ${expanded ? 'expanded' : ''}`}
      data-testid={`alert-row-${a.id}`}
      data-alert-id={a.id}
      data-status={a.status}
      data-severity={a.severity}
    >
      <div class="arow-grid">
        <span class="a-sev">
          <SeverityBadge severity={a.severity} />
        </span>
        <span class="a-title">
          <strong>
            {a.drill ? <DrillBadge /> : null}
            {titleOf(a).replace(a.drill ? `${t('drill')} ` : '', '')}
          </strong>
          <span class="muted a-summary">
            {categoryLabel(a.category)}
            {a.count > 1 ? ` · ${t('count_times', { n: a.count })}` : ''}
          </span>
        </span>
        <span class="a-where">
          {a.householdId ? (
            <a href={href('households', a.householdId)} data-testid={`address-${a.id}`}>
              {addressOf(a)}
            </a>
          ) : (
            <span data-testid={`address-${a.id}`}>{addressOf(a)}</span>
          )}{' '}
          <ColourChip colour={a.colour} />
          <span class="muted a-grid">{gridName(a.gridId)}</span>
        </span>
        <span class="a-age">
          <span class="sr-only">{t('col_age')} </span>
          <Age since={a.firstSeen} testid={`age-${a.id}`} />
        </span>
        <span class="a-notified" data-testid={`notified-${a.id}`}>
          <span class="sr-only">{t('col_notified')} </span>
          <NotifiedSummary items={notes} />
        </span>
        <span class="a-acked" data-testid={`acked-by-${a.id}`}>
          {a.status === 'acknowledged' ? (
            <>
              <StatusBadge status="acknowledged" /> {whoLabel(a.acknowledgedBy)}
            </>
          ) : (
            <StatusBadge status="open" />
          )}
        </span>
        <span class="a-actions">
          {act && a.status === 'open' ? (
            <button type="button" class="btn btn-primary" onClick={ack} disabled={busy} data-testid={`ack-${a.id}`}>
              {t('ack')}
            </button>
          ) : null}
          {act ? (
            <button type="button" class="btn" onClick={() => onToggle(true)} data-testid={`resolve-${a.id}`}>
              {t('resolve')}
            </button>
          ) : null}
          <button
            type="button"
            class="btn btn-ghost"
            aria-expanded={expanded}
            aria-controls={`details-${a.id}`}
            onClick={() => onToggle()}
            data-testid={`expand-${a.id}`}
          >
            {expanded ? t('hide_details') : t('details')}
          </button>
        </span>
      </div>
      {expanded ? <AlertDetails alert={a} me={me} onResolved={onClose} /> : null}
    </li>
  );
}

function AlertDetails({ alert: a, me, onResolved }: { alert: Alert; me: Me; onResolved: () => void }) {
  const notes = useStore(live.state).notifications.get(a.id);
  useEffect(() => live.loadNotifications(a.id, true), [a.id]);
  return (
    <div class="details" id={`details-${a.id}`} data-testid={`details-${a.id}`}>
      <div class="details-col">
        <h3>{t('summary')}</h3>
        <p>{a.summary}</p>
        <p class="muted">
          {t('first_seen')} {fmtDateTime(a.firstSeen)} · {t('last_seen')} {fmtDateTime(a.lastSeen)}
          {a.deviceId ? (
            <>
              {' · '}
              <a href={href('devices', a.deviceId)}>
                {t('device_link')} {a.deviceId}
              </a>
            </>
          ) : null}
        </p>
        {a.notBefore && Date.parse(a.notBefore) > Date.now() ? (
          <p class="notice notice-info">{t('cancel_window', { t: fmtDateTime(a.notBefore) })}</p>
        ) : null}
        <h3>{t('evidence')}</h3>
        <Evidence alert={a} />
        <h3>{t('timeline')}</h3>
        <Timeline alert={a} />
      </div>
      <div class="details-col">
        <h3>{t('notifications')}</h3>
        <NotifiedList items={notes} />
        {canAct(me) ? (
          <>
            <h3>{t('add_note')}</h3>
            <NoteForm alert={a} />
            <ResolveForm alert={a} onDone={onResolved} />
          </>
        ) : null}
      </div>
    </div>
  );
}

function RecentlyClosed({ alerts }: { alerts: readonly Alert[] }) {
  return (
    <details class="card closed" data-testid="recently-closed">
      <summary>
        {t('board_recent_closed')} ({alerts.length})
      </summary>
      <ul class="plain">
        {alerts.map((a) => (
          <li key={a.id} data-testid={`closed-${a.id}`} data-status={a.status}>
            <StatusBadge status={a.status} /> <strong>{titleOf(a)}</strong> {addressOf(a)}{' '}
            <span class="muted">
              {a.outcome ? outcomeLabel(a.outcome) : ''} · {fmtDateTime(a.resolvedAt ?? a.updatedAt)}
            </span>
          </li>
        ))}
      </ul>
    </details>
  );
}
