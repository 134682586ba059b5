/**
 * Supplies (`#/supplies`, issue 7): the depots one may see at the three reserve levels with a stock summary, and
 * per community the shortfalls against the population-based minimums, and the CSV import of an initial stock count
 * for those who manage a depot. Refreshes on the live `stock` messages.
 */
import { useEffect, useState } from 'preact/hooks';
import { API, ApiError, api, useApi, withQuery } from '../api.ts';
import { ErrorBox, Loading, Section, toast, useBusy } from '../components.tsx';
import { bi, settings, t } from '../i18n.ts';
import { href } from '../router.ts';
import { useStore } from '../store.ts';
import {
  catalogue,
  itemName,
  levelLabel,
  loadCatalogue,
  unitOf,
  useCommunityName,
  useStockChanges,
} from '../supplies.ts';
import type { DepotView, Me, Shortfall } from '../types.ts';

export function SuppliesPage(_: { me: Me }) {
  useStore(settings);
  useStore(catalogue);
  useEffect(() => void loadCatalogue(), []);
  const depots = useApi<{ items: DepotView[] }>('supplies/depots');
  const shortfalls = useApi<{ items: Shortfall[] }>('supplies/shortfalls');
  useStockChanges(undefined, () => {
    depots.reload();
    shortfalls.reload();
  });
  const lang = settings.get().lang;
  const communityName = useCommunityName();

  return (
    <div class="page page-supplies" data-testid="page-supplies">
      <div class="page-head">
        <h1>{t('sp_title')}</h1>
        <div class="row-actions">
          <a class="btn btn-small" href={withQuery(`${API}/supplies/report.csv`, { lang })} download>
            {t('sp_report_csv')}
          </a>
          <a
            class="btn btn-small"
            href={withQuery(`${API}/supplies/report.html`, { lang })}
            target="_blank"
            rel="noopener"
          >
            {t('sp_report_html')}
          </a>
        </div>
      </div>
      <Section title={t('sp_depots')} testid="depots">
        {depots.error ? <ErrorBox error={depots.error} onRetry={depots.reload} /> : null}
        {!depots.data && !depots.error ? <Loading /> : null}
        {depots.data && depots.data.items.length === 0 ? <p class="muted">{t('sp_depots_empty')}</p> : null}
        {depots.data && depots.data.items.length > 0 ? (
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th>{t('sp_depot')}</th>
                  <th>{t('sp_level')}</th>
                  <th>{t('sp_community')}</th>
                  <th>{t('sp_keeper')}</th>
                  <th class="num">{t('sp_population')}</th>
                  <th>{t('sp_status')}</th>
                </tr>
              </thead>
              <tbody>
                {depots.data.items.map((d) => (
                  <tr key={d.id} data-testid={`depot-row-${d.id}`}>
                    <td>
                      <a href={href('supplies', d.id)}>{bi(d.name)}</a>
                    </td>
                    <td>
                      <span class={`tag lvl-${d.level}`}>{levelLabel(d.level)}</span>
                    </td>
                    <td>{communityName(d)}</td>
                    <td>{d.keeper ? d.keeper.name : '—'}</td>
                    <td class="num">{d.population.toLocaleString()}</td>
                    <td>
                      <DepotBadges d={d} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </Section>
      <Section title={t('sp_shortfalls')} testid="shortfalls">
        <p class="muted small">{t('sp_shortfalls_hint')}</p>
        {shortfalls.error ? <ErrorBox error={shortfalls.error} onRetry={shortfalls.reload} /> : null}
        {!shortfalls.data && !shortfalls.error ? <Loading /> : null}
        <div class="shortfall-grid">
          {shortfalls.data?.items.map((c) => (
            <ShortfallCard key={c.communityId} c={c} />
          ))}
        </div>
      </Section>
      {depots.data?.items.some((d) => d.canManage) ? <ImportCard onDone={depots.reload} /> : null}
    </div>
  );
}

interface LineProblem {
  line: number;
  column?: string;
  message: string;
}

/**
 * The initial stock count: pick a CSV file, check it (the server's dry run), then import it. The server takes all
 * lines or none, so a file with errors shows them by line and changes nothing.
 */
function ImportCard({ onDone }: { onDone: () => void }) {
  const [csv, setCsv] = useState<string | undefined>();
  const [checked, setChecked] = useState<{ lines: number; depotIds: string[] } | undefined>();
  const [problems, setProblems] = useState<LineProblem[] | undefined>();
  const [busy, run] = useBusy();

  const send = async (dryRun: boolean) => {
    if (csv === undefined) return;
    setProblems(undefined);
    try {
      const res = await api<{ lines?: number; lots?: number; depotIds: string[] }>('supplies/import', {
        body: { csv },
        query: { dryRun: dryRun || undefined },
      });
      if (dryRun) setChecked({ lines: res.lines ?? 0, depotIds: res.depotIds });
      else {
        toast(t('sp_import_done', { n: res.lots ?? 0 }));
        setChecked(undefined);
        setCsv(undefined);
        onDone();
      }
    } catch (err) {
      if (err instanceof ApiError && err.code === 'invalid' && Array.isArray(err.details)) {
        setChecked(undefined);
        setProblems(err.details as LineProblem[]);
        return;
      }
      throw err;
    }
  };

  return (
    <Section title={t('sp_import')} testid="import">
      <p class="muted small">{t('sp_import_hint')}</p>
      <form
        class="form-inline"
        onSubmit={(e) => {
          e.preventDefault();
          void run(() => send(checked === undefined));
        }}
      >
        <label>
          {t('sp_import_file')}{' '}
          <input
            type="file"
            accept=".csv,text/csv"
            data-testid="import-file"
            onChange={async (e) => {
              const file = e.currentTarget.files?.[0];
              setChecked(undefined);
              setProblems(undefined);
              setCsv(file ? await file.text() : undefined);
            }}
          />
        </label>
        <button type="submit" class="btn btn-primary" disabled={busy || csv === undefined} data-testid="import-submit">
          {checked ? t('sp_import_do', { n: checked.lines }) : t('sp_import_check')}
        </button>
      </form>
      {checked ? (
        <p class="small" data-testid="import-checked">
          {t('sp_import_ok_check', { n: checked.lines, depots: checked.depotIds.join(', ') })}
        </p>
      ) : null}
      {problems ? (
        <div class="notice notice-error" role="alert" data-testid="import-problems">
          <p>{t('sp_import_errors', { n: problems.length })}</p>
          <ul class="small">
            {problems.slice(0, 50).map((p) => (
              <li key={`${p.line}-${p.column ?? ''}-${p.message}`}>
                {t('sp_import_line', { line: p.line })}
                {p.column ? ` · ${p.column}` : ''}: {p.message}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </Section>
  );
}

export function DepotBadges({ d }: { d: DepotView }) {
  const s = d.summary;
  const badges: [string, string][] = [];
  if (s.belowMinimum) badges.push(['bad', t('sp_b_below', { n: s.belowMinimum })]);
  if (s.expired) badges.push(['bad', t('sp_b_expired', { n: s.expired })]);
  if (s.expiringMinor) badges.push(['warn', t('sp_b_expiring', { n: s.expiringMinor })]);
  if (s.inspectionOverdue) badges.push(['warn', t('sp_b_inspection', { n: s.inspectionOverdue })]);
  if (s.openTransfers) badges.push(['info', t('sp_b_transfers', { n: s.openTransfers })]);
  if (badges.length === 0) badges.push(['ok', t('sp_b_ok')]);
  return (
    <span class="badges">
      {badges.map(([k, text]) => (
        <span key={text} class={`sbadge sbadge-${k}`}>
          {text}
        </span>
      ))}
    </span>
  );
}

function ShortfallCard({ c }: { c: Shortfall }) {
  const short = c.lines.filter((l) => l.shortfall > 0);
  return (
    <article class="shortfall" data-testid={`shortfall-${c.communityId}`} data-short={c.short}>
      <header class="scenario-head">
        <h3>
          {bi(c.name)}
          {c.inRegistry ? null : <span class="muted small"> {t('sp_not_in_registry')}</span>}
        </h3>
        <span class={`sbadge ${c.short ? 'sbadge-bad' : 'sbadge-ok'}`}>
          {c.short ? t('sp_shortfall_n', { n: c.short }) : t('sp_shortfall_none')}
        </span>
      </header>
      <p class="small muted">
        {t('sp_population')}: {c.population.toLocaleString()}
      </p>
      {short.length > 0 ? (
        <table class="table table-compact">
          <thead>
            <tr>
              <th>{t('sp_item')}</th>
              <th class="num">{t('sp_minimum')}</th>
              <th class="num">{t('sp_available')}</th>
              <th class="num">{t('sp_incoming')}</th>
              <th class="num">{t('sp_shortfall')}</th>
            </tr>
          </thead>
          <tbody>
            {short.map((l) => (
              <tr key={l.itemId} data-testid={`shortfall-${c.communityId}-${l.itemId}`}>
                <td>{itemName(l.itemId)}</td>
                <td class="num">{l.minimum}</td>
                <td class="num">{l.available}</td>
                <td class="num">{l.incoming || ''}</td>
                <td class="num strong">
                  {l.shortfall} {unitOf(l.itemId)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </article>
  );
}
