/** A household (`#/households/<id>`): residents as the server masks them, class, devices, activity, alerts, visits, away. */
import { useState } from 'preact/hooks';
import { ActivityCharts, type Range, RangeSwitch } from '../activity.tsx';
import { titleOf } from '../alerts.tsx';
import { api, useApi } from '../api.ts';
import {
  Age,
  ColourChip,
  DeviceStatus,
  ErrorBox,
  Loading,
  Section,
  StatusBadge,
  SeverityBadge,
  toast,
  useBusy,
} from '../components.tsx';
import {
  epochToZoned,
  fmtDateTime,
  fmtShort,
  outcomeLabel,
  settings,
  t,
  visitOutcomeLabel,
  zonedToEpoch,
  kindLabel,
} from '../i18n.ts';
import { whoLabel } from '../people.ts';
import { addressOf, gridName } from '../places.ts';
import { href } from '../router.ts';
import { canAct } from '../session.ts';
import { useStore } from '../store.ts';
import type { Alert, Away, Device, HouseholdDetail, Me, Page, Visit } from '../types.ts';
import { VisitForm } from './visit-form.tsx';

export function HouseholdPage({ id, me }: { id: string; me: Me }) {
  useStore(settings);
  const hh = useApi<HouseholdDetail>(`households/${encodeURIComponent(id)}`);
  const [range, setRange] = useState<Range>('24h');
  if (hh.error) return <ErrorBox error={hh.error} onRetry={hh.reload} />;
  if (!hh.data) return <Loading />;
  const h = hh.data;
  const birthNow = new Date().getFullYear();
  return (
    <div class="page page-household" data-testid="page-household" data-household-id={h.id}>
      <div class="page-head">
        <h1>
          {addressOf({ householdId: h.id, buildingId: h.buildingId, unitId: h.unitId })}{' '}
          <ColourChip colour={h.colour} long />
        </h1>
        <p class="muted">
          {h.address} · {gridName(h.gridId)} · <code>{h.id}</code>
          {h.loneElderly ? <span class="tag">{t('hh_lone')}</span> : null}
          {h.atRisk ? <span class="tag tag-warn">{t('hh_at_risk')}</span> : null}
        </p>
      </div>
      <div class="grid-2">
        <Section title={t('hh_residents')} testid="residents">
          <p class="muted small" data-testid="personal-details" data-state={h.personalDetails ?? 'masked'}>
            {h.personalDetails === 'shown' ? t('hh_shown') : t('hh_masked')}
          </p>
          <ul class="plain residents">
            {h.residents.map((r) => (
              <li key={r.id}>
                <strong>{r.fullName ?? r.displayName}</strong>
                {r.birthYear ? <span class="muted"> {t('hh_age', { n: birthNow - r.birthYear })}</span> : null}
                {r.loneElderly ? <span class="tag">{t('hh_lone')}</span> : null}
                {r.atRisk ? <span class="tag tag-warn">{t('hh_at_risk')}</span> : null}
              </li>
            ))}
          </ul>
          {h.emergencyContacts && h.emergencyContacts.length > 0 ? (
            <>
              <h3>{t('hh_contacts')}</h3>
              <ul class="plain contacts">
                {h.emergencyContacts.map((c) => (
                  <li key={c.phone}>
                    {c.name} <span class="muted">{c.relation}</span>{' '}
                    {/\*/.test(c.phone) ? <span>{c.phone}</span> : <a href={`tel:${c.phone}`}>{c.phone}</a>}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </Section>
        <Devices householdId={h.id} />
      </div>
      <Section title={t('hh_activity')} actions={<RangeSwitch range={range} onChange={setRange} />} testid="activity">
        <ActivityCharts query={{ householdId: h.id }} range={range} />
      </Section>
      <div class="grid-2">
        <RecentAlerts householdId={h.id} />
        <Visits householdId={h.id} me={me} />
      </div>
      <AwayPeriods householdId={h.id} me={me} />
    </div>
  );
}

function Devices({ householdId }: { householdId: string }) {
  const devices = useApi<Page<Device>>('devices', { householdId, limit: 100 });
  return (
    <Section title={t('hh_devices')} testid="household-devices">
      {devices.error ? <ErrorBox error={devices.error} /> : null}
      {!devices.data && !devices.error ? <Loading /> : null}
      {devices.data?.items.length === 0 ? <p class="muted">{t('none')}</p> : null}
      <ul class="plain devices">
        {devices.data?.items.map((d) => (
          <li key={d.id}>
            <a href={href('devices', d.id)}>{d.id}</a> <span class="muted">{kindLabel(d.kind) || d.model}</span>{' '}
            <DeviceStatus status={d.status} /> <span class="muted small">{d.lastSeen ? fmtShort(d.lastSeen) : ''}</span>
            {d.lastReading?.battery_pct ? (
              <span class="muted small"> · {String(d.lastReading.battery_pct.value)}%</span>
            ) : null}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function RecentAlerts({ householdId }: { householdId: string }) {
  const alerts = useApi<Page<Alert>>('alerts', { householdId, limit: 20 });
  return (
    <Section title={t('hh_alerts')} testid="household-alerts">
      {alerts.error ? <ErrorBox error={alerts.error} /> : null}
      {!alerts.data && !alerts.error ? <Loading /> : null}
      {alerts.data?.items.length === 0 ? <p class="muted">{t('none')}</p> : null}
      <ul class="plain list-lines">
        {alerts.data?.items.map((a) => (
          <li key={a.id}>
            <SeverityBadge severity={a.severity} /> <strong>{titleOf(a)}</strong> <StatusBadge status={a.status} />{' '}
            <span class="muted small">
              {fmtDateTime(a.firstSeen)}
              {a.outcome ? ` · ${outcomeLabel(a.outcome)}` : ''}
            </span>
            {a.status === 'open' || a.status === 'acknowledged' ? (
              <>
                {' '}
                <a href={`#/board?alert=${encodeURIComponent(a.id)}`}>{t('details')}</a>
              </>
            ) : null}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function Visits({ householdId, me }: { householdId: string; me: Me }) {
  const visits = useApi<{ items: Visit[] }>(`households/${encodeURIComponent(householdId)}/visits`);
  const [adding, setAdding] = useState(false);
  return (
    <Section
      title={t('hh_visits')}
      testid="household-visits"
      actions={
        canAct(me) && !adding ? (
          <button type="button" class="btn btn-small" onClick={() => setAdding(true)} data-testid="add-visit">
            {t('m_record_visit')}
          </button>
        ) : null
      }
    >
      {adding ? (
        <VisitForm
          householdId={householdId}
          onDone={(saved) => {
            setAdding(false);
            if (saved) visits.reload();
          }}
        />
      ) : null}
      {visits.error ? <ErrorBox error={visits.error} /> : null}
      {visits.data?.items.length === 0 ? <p class="muted">{t('none')}</p> : null}
      <ul class="plain list-lines">
        {visits.data?.items.slice(0, 20).map((v) => (
          <li key={v.id}>
            <strong>{visitOutcomeLabel(v.outcome)}</strong> <span class="muted small">{fmtDateTime(v.ts)}</span>{' '}
            <span class="small">{whoLabel(v.staffId)}</span>
            {v.notes ? <div class="small">{v.notes}</div> : null}
          </li>
        ))}
      </ul>
    </Section>
  );
}

const PRESET_DAYS = [1, 3, 7, 14, 30];

function AwayPeriods({ householdId, me }: { householdId: string; me: Me }) {
  const path = `households/${encodeURIComponent(householdId)}/away`;
  const away = useApi<{ items: Away[] }>(path);
  const [until, setUntil] = useState(() => epochToZoned(Date.now() + 3 * 86_400_000));
  const [reason, setReason] = useState('');
  const [busy, run] = useBusy();
  const now = Date.now();
  const active = away.data?.items.filter((a) => !a.ended && Date.parse(a.until) > now) ?? [];
  const submit = (ev: Event) => {
    ev.preventDefault();
    const ms = zonedToEpoch(until);
    if (ms === undefined || !reason.trim()) return;
    void run(async () => {
      await api<Away>(path, { body: { until: new Date(ms).toISOString(), reason: reason.trim() } });
      setReason('');
      toast(t('saved'));
      away.reload();
    });
  };
  const end = (a: Away) =>
    run(async () => {
      await api<Away>(`${path}/${encodeURIComponent(a.id)}`, { method: 'DELETE' });
      away.reload();
    });
  return (
    <Section title={t('hh_away')} testid="household-away">
      {away.error ? <ErrorBox error={away.error} /> : null}
      {active.length === 0 && away.data ? <p class="muted">{t('hh_away_none')}</p> : null}
      <ul class="plain list-lines">
        {active.map((a) => (
          <li key={a.id} data-testid={`away-${a.id}`}>
            <strong>{t('hh_away_active', { t: fmtDateTime(a.until) })}</strong> · {a.reason}{' '}
            <span class="muted small">
              {whoLabel(a.createdBy)} · <Age since={a.from} />
            </span>{' '}
            {canAct(me) ? (
              <button type="button" class="btn btn-small" onClick={() => end(a)} disabled={busy}>
                {t('hh_away_end')}
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      {canAct(me) ? (
        <form class="form-inline" onSubmit={submit} data-testid="away-form">
          <label class="field">
            <span>{t('hh_away_until')}</span>
            <input
              type="datetime-local"
              value={until}
              onInput={(e) => setUntil(e.currentTarget.value)}
              required
              data-testid="away-until"
            />
          </label>
          <fieldset class="presets">
            <legend class="sr-only">{t('hh_away_presets')}</legend>
            {PRESET_DAYS.map((d) => (
              <button
                key={d}
                type="button"
                class="btn btn-small"
                onClick={() => setUntil(epochToZoned(Date.now() + d * 86_400_000))}
              >
                {t('days_n', { n: d })}
              </button>
            ))}
          </fieldset>
          <label class="field grow">
            <span>{t('hh_away_reason')}</span>
            <input
              type="text"
              maxLength={200}
              value={reason}
              onInput={(e) => setReason(e.currentTarget.value)}
              required
              data-testid="away-reason"
            />
          </label>
          <button type="submit" class="btn btn-primary" disabled={busy || !reason.trim()} data-testid="away-submit">
            {t('hh_away_submit')}
          </button>
        </form>
      ) : null}
    </Section>
  );
}
