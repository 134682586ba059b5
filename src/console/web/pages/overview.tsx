/**
 * Community overview (`#/overview`): grids and buildings with open alerts and offline devices
 * (`GET /api/v1/stats/overview`), alerts per day by type, acknowledgement times per grid and outcomes
 * (`GET /api/v1/stats/alerts?days=30`) — the 接诉即办 KPIs.
 */
import { useApi } from '../api.ts';
import { TimeChart } from '../chart.tsx';
import { ErrorBox, Loading, Section } from '../components.tsx';
import { alertTitle, fmtSeconds, outcomeLabel, settings, severityLabel, t } from '../i18n.ts';
import { places } from '../places.ts';
import { href } from '../router.ts';
import { useStore } from '../store.ts';
import type { AlertStats, Overview } from '../types.ts';

type SevCounts = Overview['totals']['openAlerts'];

const SEVERITIES = ['critical', 'major', 'minor', 'info'] as const;
const PALETTE = ['#c62828', '#ef6c00', '#f9a825', '#2e7d32', '#1565c0', '#6a1b9a', '#00838f', '#5d4037', '#757575'];
const DAYS = 30;

function OpenCounts({ open }: { open: SevCounts }) {
  const parts = SEVERITIES.filter((s) => open[s] > 0);
  if (parts.length === 0) return <span class="muted">0</span>;
  return (
    <span class="sev-counts" title={String(open.total)}>
      {parts.map((s) => (
        <span key={s} class={`sev sev-${s}`}>
          {severityLabel(s)} {open[s]}
        </span>
      ))}
    </span>
  );
}

function Offline({ n, gridId }: { n: number; gridId?: string }) {
  if (n === 0) return <span class="muted">0</span>;
  const q = gridId ? `&gridId=${encodeURIComponent(gridId)}` : '';
  return (
    <a href={`#/devices?status=offline${q}`} class="offline-count">
      {n}
    </a>
  );
}

export function OverviewPage() {
  useStore(settings);
  useStore(places);
  const overview = useApi<Overview>('stats/overview');
  const stats = useApi<AlertStats>('stats/alerts', { days: DAYS });
  return (
    <div class="page page-overview" data-testid="page-overview">
      <div class="page-head">
        <h1>{t('ov_title')}</h1>
      </div>
      <Section title={`${t('ov_grid')} / ${t('ov_building')}`} testid="overview-grids">
        {overview.error ? <ErrorBox error={overview.error} onRetry={overview.reload} /> : null}
        {!overview.data && !overview.error ? <Loading /> : null}
        {overview.data ? <GridTable data={overview.data} /> : null}
      </Section>
      {stats.error ? <ErrorBox error={stats.error} onRetry={stats.reload} /> : null}
      {!stats.data && !stats.error ? <Loading /> : null}
      {stats.data ? <StatsCharts data={stats.data} /> : null}
    </div>
  );
}

function GridTable({ data }: { data: Overview }) {
  return (
    <div class="table-wrap">
      <table class="table" data-testid="overview-table">
        <thead>
          <tr>
            <th>{t('ov_grid')}</th>
            <th>{t('ov_building')}</th>
            <th class="num">{t('ov_households')}</th>
            <th>{t('ov_open_alerts')}</th>
            <th class="num">{t('ov_offline')}</th>
          </tr>
        </thead>
        <tbody>
          {data.grids.map((g) => [
            <tr key={g.gridId} class="grid-row" data-testid={`overview-grid-${g.gridId}`}>
              <th scope="row" colSpan={2}>
                {g.name}
              </th>
              <td class="num">{g.households}</td>
              <td>
                <OpenCounts open={g.openAlerts} />
              </td>
              <td class="num">
                <Offline n={g.offlineDevices} gridId={g.gridId} />
              </td>
            </tr>,
            ...g.buildings.map((b) => (
              <tr key={`${g.gridId}/${b.buildingId}`} data-testid={`overview-building-${b.buildingId}`}>
                <td />
                <td>
                  <a href={`${href('households')}?buildingId=${encodeURIComponent(b.buildingId)}`}>{b.name}</a>
                </td>
                <td class="num">{b.households}</td>
                <td>
                  <OpenCounts open={b.openAlerts} />
                </td>
                <td class="num">{b.offlineDevices}</td>
              </tr>
            )),
          ])}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row" colSpan={2}>
              {t('ov_total')}
            </th>
            <td class="num">{data.totals.households}</td>
            <td>
              <OpenCounts open={data.totals.openAlerts} />
            </td>
            <td class="num">
              <Offline n={data.totals.offlineDevices} />
            </td>
          </tr>
        </tfoot>
      </table>
    </div>
  );
}

function StatsCharts({ data }: { data: AlertStats }) {
  const rows = data.perDay;
  const totals = new Map<string, number>();
  for (const r of rows) for (const [type, n] of Object.entries(r.byType)) totals.set(type, (totals.get(type) ?? 0) + n);
  const types = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([type]) => type);
  const top = types.slice(0, PALETTE.length - 1);
  const rest = types.slice(PALETTE.length - 1);
  // a local day as the noon of that day in UTC: the bar sits on the right date in any zone east or west
  const xs = rows.map((r) => Date.parse(`${r.date}T12:00:00Z`) / 1000);
  const ys = [
    ...top.map((type) => rows.map((r) => r.byType[type] ?? 0)),
    ...(rest.length ? [rows.map((r) => rest.reduce((s, type) => s + (r.byType[type] ?? 0), 0))] : []),
  ];
  const series = [
    ...top.map((type, i) => ({ label: alertTitle(type), colour: PALETTE[i]! })),
    ...(rest.length ? [{ label: t('ov_other_types'), colour: PALETTE[PALETTE.length - 1]! }] : []),
  ];
  const ack = data.acknowledgement;
  const acks = [...ack.byGrid, { gridId: '', name: t('ov_total'), ...ack.overall }];
  const maxS = Math.max(1, ...acks.map((g) => g.p90S ?? 0));
  const outs = Object.entries(data.outcomes.byOutcome as Record<string, number>)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const maxOut = Math.max(1, ...outs.map(([, n]) => n));
  const rate = data.outcomes.falseAlarmRate;
  return (
    <>
      <Section title={t('ov_per_day', { n: data.days })} testid="overview-per-day">
        {types.length === 0 ? (
          <p class="muted">{t('chart_no_data')}</p>
        ) : (
          <TimeChart
            xs={xs}
            ys={ys}
            series={series}
            height={240}
            integer
            label={t('ov_per_day', { n: data.days })}
            testid="chart-per-day"
          />
        )}
      </Section>
      <div class="grid-2">
        <Section title={t('ov_ack_times')} testid="overview-ack-times">
          <table class="table compact bars">
            <thead>
              <tr>
                <th>{t('ov_grid')}</th>
                <th>{t('ov_median')}</th>
                <th>{t('ov_p90')}</th>
                <th class="num">{t('ov_n')}</th>
              </tr>
            </thead>
            <tbody>
              {acks.map((g) => (
                <tr key={g.gridId || 'all'} data-testid={`ack-time-${g.gridId || 'all'}`}>
                  <th scope="row">{g.name}</th>
                  <td>
                    <Bar value={g.medianS ?? 0} max={maxS} text={fmtSeconds(g.medianS)} kind="median" />
                  </td>
                  <td>
                    <Bar value={g.p90S ?? 0} max={maxS} text={fmtSeconds(g.p90S)} kind="p90" />
                  </td>
                  <td class="num">{g.n}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
        <Section title={t('ov_outcomes')} testid="overview-outcomes">
          <p class="muted small">
            {t('ov_closed', { n: data.outcomes.closed })}
            {rate !== null ? ` · ${t('ov_false_rate', { pct: Math.round(rate * 100) })}` : ''}
          </p>
          {outs.length === 0 ? <p class="muted">{t('chart_no_data')}</p> : null}
          <table class="table compact bars">
            <tbody>
              {outs.map(([o, n]) => (
                <tr key={o}>
                  <th scope="row">{outcomeLabel(o)}</th>
                  <td>
                    <Bar value={n} max={maxOut} text={String(n)} kind={o.startsWith('false_alarm') ? 'false' : 'ok'} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      </div>
    </>
  );
}

function Bar({ value, max, text, kind }: { value: number; max: number; text: string; kind: string }) {
  const pct = Math.max(0, Math.min(100, (value / max) * 100));
  return (
    <span class="bar">
      <span class={`bar-fill bar-${kind}`} style={{ width: `${pct}%` }} />
      <span class="bar-text">{text}</span>
    </span>
  );
}
