/** "My alerts" for the grid worker's phone (`#/m`): big taps, usable at 360 × 640. */
import { useState } from 'preact/hooks';
import { acknowledge, byUrgency, ResolveForm, titleOf } from '../alerts.tsx';
import { useApi } from '../api.ts';
import { Age, ColourChip, ErrorBox, Loading, SeverityBadge, toast, useBusy } from '../components.tsx';
import { COLOURS, colourClassLabel, fmtShort, t, todoText } from '../i18n.ts';
import { live } from '../live.ts';
import { whoLabel } from '../people.ts';
import { addressOf, places } from '../places.ts';
import { href } from '../router.ts';
import { canAct } from '../session.ts';
import { useStore } from '../store.ts';
import type { Alert, Me, Overdue } from '../types.ts';
import { VisitForm } from './visit-form.tsx';

export function MobilePage({ me }: { me: Me }) {
  const s = useStore(live.state);
  useStore(places);
  const alerts = [...s.alerts.values()].sort(byUrgency);
  return (
    <div class="page page-mobile" data-testid="page-mobile">
      <h1 class="m-h1">
        {t('m_title')} <span class="count-pill">{alerts.length}</span>
      </h1>
      {!s.synced ? (
        <Loading />
      ) : alerts.length === 0 ? (
        <p class="empty" data-testid="m-empty">
          {t('m_empty')}
        </p>
      ) : (
        <div class="mcards">
          {alerts.map((a) => (
            <MobileAlert key={a.id} alert={a} me={me} />
          ))}
        </div>
      )}
      <VisitsDue me={me} />
    </div>
  );
}

function MobileAlert({ alert: a, me }: { alert: Alert; me: Me }) {
  const [resolving, setResolving] = useState(false);
  const [busy, run] = useBusy();
  const act = canAct(me);
  const ack = () =>
    run(async () => {
      await acknowledge(a);
      toast(t('acked_by_you'));
    });
  return (
    <article
      class={`mcard sev-row-${a.severity} st-${a.status} ${a.drill ? 'is-drill' : ''}`}
      data-testid={`alert-row-${a.id}`}
      data-alert-id={a.id}
      data-status={a.status}
      data-severity={a.severity}
    >
      <header class="mcard-head">
        <SeverityBadge severity={a.severity} />
        <h2>{titleOf(a)}</h2>
        <Age since={a.firstSeen} testid={`age-${a.id}`} />
      </header>
      <p class="m-address">
        <span data-testid={`address-${a.id}`}>{addressOf(a)}</span> <ColourChip colour={a.colour} />
      </p>
      <p class="m-todo">
        <strong>{t('m_what_to_do')}</strong>
        {todoText(a.type, a.category)}
      </p>
      <p class="m-state" data-testid={`acked-by-${a.id}`}>
        {a.status === 'acknowledged'
          ? a.acknowledgedBy === me.id
            ? t('acked_by_you')
            : t('acked_by', { who: whoLabel(a.acknowledgedBy) })
          : t('not_acked')}
      </p>
      {act ? (
        resolving ? (
          <ResolveForm alert={a} onDone={() => setResolving(false)} />
        ) : (
          <div class="m-actions">
            {a.status === 'open' ? (
              <button
                type="button"
                class="btn btn-primary btn-huge"
                onClick={ack}
                disabled={busy}
                data-testid={`ack-${a.id}`}
              >
                {t('ack_mobile')}
              </button>
            ) : null}
            <button
              type="button"
              class={`btn btn-huge ${a.status === 'open' ? '' : 'btn-primary'}`}
              onClick={() => setResolving(true)}
              data-testid={`resolve-${a.id}`}
            >
              {t('resolve_mobile')}
            </button>
          </div>
        )
      ) : null}
      {a.householdId ? (
        <a class="m-link" href={href('households', a.householdId)}>
          {t('household_link')} →
        </a>
      ) : null}
    </article>
  );
}

/** Households shown per colour class before "show all": the most overdue first (the server's order). */
const GROUP_SHOWN = 5;

function VisitsDue({ me }: { me: Me }) {
  const due = useApi<{ items: Overdue[] }>('visits/overdue');
  const [open, setOpen] = useState<string | null>(null);
  const [whole, setWhole] = useState<ReadonlySet<string>>(new Set());
  const items = due.data?.items ?? [];
  return (
    <section class="m-visits" data-testid="visits-due">
      <h2 class="m-h2">
        {t('m_visits_title')} {due.data ? <span class="count-pill">{items.length}</span> : null}
      </h2>
      {due.error ? <ErrorBox error={due.error} onRetry={due.reload} /> : null}
      {due.loading && !due.data ? <Loading /> : null}
      {due.data && items.length === 0 ? <p class="empty">{t('m_visits_empty')}</p> : null}
      {COLOURS.map((colour) => {
        const group = items.filter((o) => o.colour === colour);
        if (group.length === 0) return null;
        return (
          <div key={colour} class="visit-group" data-testid={`visit-group-${colour}`}>
            <h3>
              <ColourChip colour={colour} /> {colourClassLabel(colour)} · {group.length}
            </h3>
            <ul class="plain">
              {(whole.has(colour) ? group : group.slice(0, GROUP_SHOWN)).map((o) => (
                <li key={o.householdId} class="visit-row" data-testid={`overdue-${o.householdId}`}>
                  <div class="visit-line">
                    <a href={href('households', o.householdId)} class="m-address-small">
                      {addressOf({ householdId: o.householdId })}
                    </a>
                    <span class={o.overdueDays > 0 ? 'overdue' : 'due'}>
                      {o.overdueDays > 0 ? t('m_overdue_days', { n: Math.floor(o.overdueDays) }) : t('m_due')}
                    </span>
                  </div>
                  <div class="muted small">
                    {o.lastVisit ? t('m_last_visit', { t: fmtShort(o.lastVisit) }) : t('m_never_visited')}
                  </div>
                  {canAct(me) ? (
                    open === o.householdId ? (
                      <VisitForm
                        householdId={o.householdId}
                        onDone={(saved) => {
                          setOpen(null);
                          if (saved) due.reload();
                        }}
                      />
                    ) : (
                      <button
                        type="button"
                        class="btn btn-wide"
                        onClick={() => setOpen(o.householdId)}
                        data-testid={`record-visit-${o.householdId}`}
                      >
                        {t('m_record_visit')}
                      </button>
                    )
                  ) : null}
                </li>
              ))}
            </ul>
            {group.length > GROUP_SHOWN && !whole.has(colour) ? (
              <button
                type="button"
                class="btn btn-ghost btn-wide"
                onClick={() => setWhole(new Set([...whole, colour]))}
                data-testid={`visit-group-more-${colour}`}
              >
                {t('show_all', { n: group.length })}
              </button>
            ) : null}
          </div>
        );
      })}
    </section>
  );
}
