/**
 * One depot (`#/supplies/<id>`, issue 7): stock by item against its minimum, lots with expiry by colour, the
 * managers' actions (receive, issue, dispose, inspect, count), the open alerts, mutual aid (where a short item is
 * nearby, request a transfer), transfers with the buttons the server allows, a 12-month expiry calendar, the
 * ledger with filters, report links. Refreshes on the live `stock` messages naming this depot.
 */
import { useEffect, useState } from 'preact/hooks';
import { MOVEMENT_KINDS } from '../../../supplies/constants.ts';
import type { DisposeReason, IssueTo } from '../../../supplies/service.ts';
import { API, api, useApi, withQuery } from '../api.ts';
import { ErrorBox, Loading, MoreButton, Section, toast, useBusy } from '../components.tsx';
import { bi, fmtDateTime, type Key, settings, t } from '../i18n.ts';
import { href } from '../router.ts';
import { useStore } from '../store.ts';
import {
  catalogue,
  conditionLabel,
  expiryLabel,
  itemName,
  levelLabel,
  loadCatalogue,
  movementKindLabel,
  relationLabel,
  supplyAlertLabel,
  todayIso,
  transferStatusLabel,
  unitOf,
  useCommunityName,
  useStockChanges,
} from '../supplies.ts';
import type {
  DepotDetail,
  ExpiryCalendar,
  LotView,
  Me,
  MovementView,
  Page,
  Sources,
  StockLevel,
  TransferView,
} from '../types.ts';
import { DepotBadges } from './supplies.tsx';

export function DepotPage({ id }: { id: string; me: Me }) {
  useStore(settings);
  useStore(catalogue);
  useEffect(() => void loadCatalogue(), []);
  const depot = useApi<DepotDetail>(`supplies/depots/${encodeURIComponent(id)}`);
  const lots = useApi<{ items: LotView[] }>(`supplies/depots/${encodeURIComponent(id)}/lots`);
  const transfers = useApi<Page<TransferView>>('supplies/transfers', { depotId: id, limit: 20 });
  const calendar = useApi<ExpiryCalendar>('supplies/expiry-calendar', { depotId: id });
  const [ledgerRev, setLedgerRev] = useState(0);
  const [finding, setFinding] = useState<string | undefined>();
  const communityName = useCommunityName();
  const reloadAll = () => {
    depot.reload();
    lots.reload();
    transfers.reload();
    calendar.reload();
    setLedgerRev((n) => n + 1);
  };
  useStockChanges([id], reloadAll);

  if (depot.error) return <ErrorBox error={depot.error} onRetry={depot.reload} />;
  if (!depot.data) return <Loading />;
  const d = depot.data;
  const lang = settings.get().lang;
  const levels = [...d.levels].sort(
    (a, b) => Number(b.belowMinimum) - Number(a.belowMinimum) || a.itemId.localeCompare(b.itemId),
  );
  return (
    <div class="page page-depot" data-testid="page-depot" data-depot={d.id}>
      <p class="small">
        <a href={href('supplies')}>← {t('sp_back')}</a>
      </p>
      <div class="page-head">
        <h1>
          {bi(d.name)} <span class={`tag lvl-${d.level}`}>{levelLabel(d.level)}</span>
        </h1>
        <div class="row-actions">
          <a class="btn btn-small" href={withQuery(`${API}/supplies/report.csv`, { depotId: d.id, lang })} download>
            {t('sp_report_csv')}
          </a>
          <a
            class="btn btn-small"
            href={withQuery(`${API}/supplies/report.csv`, { depotId: d.id, detail: 'lots', lang })}
            download
          >
            {t('sp_report_lots_csv')}
          </a>
          <a
            class="btn btn-small"
            href={withQuery(`${API}/supplies/report.html`, { depotId: d.id, lang })}
            target="_blank"
            rel="noopener"
          >
            {t('sp_report_html')}
          </a>
        </div>
      </div>
      <dl class="facts small depot-facts">
        <dt>{t('sp_address')}</dt>
        <dd>{d.address}</dd>
        <dt>{t('sp_keeper')}</dt>
        <dd>{d.keeper?.name ?? '—'}</dd>
        <dt>{t('sp_population')}</dt>
        <dd>{d.population.toLocaleString()}</dd>
        {d.communityId ? (
          <>
            <dt>{t('sp_community')}</dt>
            <dd>{communityName(d)}</dd>
          </>
        ) : null}
        <dt>{t('sp_status')}</dt>
        <dd>
          <DepotBadges d={d} />
        </dd>
        {d.agreements.length > 0 ? (
          <>
            <dt>{t('sp_agreements')}</dt>
            <dd>
              {d.agreements.flatMap((a) =>
                a.items.map((x) => (
                  <div key={`${a.id}-${x.itemId}`}>
                    {t('sp_agreement_line', {
                      supplier: a.supplier,
                      item: itemName(x.itemId),
                      qty: x.quantity,
                      unit: unitOf(x.itemId),
                      h: x.withinHours,
                    })}
                  </div>
                )),
              )}
            </dd>
          </>
        ) : null}
      </dl>

      <Section title={t('sp_alerts')} testid="depot-alerts">
        {d.alerts.length === 0 ? <p class="muted">{t('sp_alerts_none')}</p> : null}
        <ul class="depot-alerts">
          {d.alerts.map((a) => (
            <li
              key={a.id}
              class={`sev-row-${a.severity}`}
              data-testid={`depot-alert-${a.type}`}
              data-item={a.itemId}
              data-alert={a.id}
            >
              <span class={`sev sev-${a.severity}`}>{supplyAlertLabel(a.type)}</span> {itemName(a.itemId)}
              <span class="muted small"> · {fmtDateTime(a.firstSeen)}</span>
            </li>
          ))}
        </ul>
      </Section>

      <Section title={t('sp_stock')} testid="stock">
        <div class="table-wrap">
          <table class="table">
            <thead>
              <tr>
                <th>{t('sp_item')}</th>
                <th class="num">{t('sp_usable')}</th>
                <th class="num">{t('sp_minimum')}</th>
                <th class="num">{t('sp_shortfall')}</th>
                <th class="num">{t('sp_incoming')}</th>
                <th class="num">{t('sp_expired')}</th>
                <th>{t('sp_next_expiry')}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {levels.map((l) => (
                <LevelRow key={l.itemId} l={l} onFind={() => setFinding(finding === l.itemId ? undefined : l.itemId)} />
              ))}
            </tbody>
          </table>
        </div>
        {finding ? (
          <SourcesPanel
            depot={d}
            itemId={finding}
            onRequested={() => {
              setFinding(undefined);
              reloadAll();
            }}
          />
        ) : null}
      </Section>

      {d.canManage ? (
        <div class="two-col">
          <ReceiveForm depotId={d.id} onDone={reloadAll} />
          <IssueForm depotId={d.id} levels={d.levels} onDone={reloadAll} />
        </div>
      ) : null}

      <Section title={t('sp_transfers')} testid="transfers">
        <Transfers data={transfers.data?.items} error={transfers.error} depotId={d.id} onDone={reloadAll} />
      </Section>

      <Section title={t('sp_lots')} testid="lots">
        {lots.error ? <ErrorBox error={lots.error} onRetry={lots.reload} /> : null}
        {lots.data ? <Lots lots={lots.data.items} depotId={d.id} canManage={d.canManage} onDone={reloadAll} /> : null}
      </Section>

      <Section title={t('sp_calendar')} testid="expiry-calendar">
        {calendar.error ? <ErrorBox error={calendar.error} onRetry={calendar.reload} /> : null}
        {calendar.data ? <Calendar cal={calendar.data} /> : <Loading />}
      </Section>

      <Section title={t('sp_ledger')} testid="ledger">
        <Ledger depotId={d.id} rev={ledgerRev} />
      </Section>
    </div>
  );
}

function LevelRow({ l, onFind }: { l: StockLevel; onFind: () => void }) {
  return (
    <tr
      data-testid={`level-${l.itemId}`}
      data-below={l.belowMinimum ? 'true' : 'false'}
      data-usable={l.usable}
      class={l.belowMinimum ? 'row-below' : ''}
    >
      <td>
        {itemName(l.itemId)} <span class="muted small">{unitOf(l.itemId)}</span>
      </td>
      <td class="num strong">{l.usable}</td>
      <td class="num">{l.minimum || '—'}</td>
      <td class="num">
        {l.belowMinimum ? (
          <span class="sbadge sbadge-bad">
            {t('sp_below')} −{l.shortfall}
          </span>
        ) : (
          '—'
        )}
      </td>
      <td class="num">{l.incoming || ''}</td>
      <td class="num">{l.expired ? <span class="sbadge sbadge-bad">{l.expired}</span> : ''}</td>
      <td class="nowrap">{l.nextExpiry ?? '—'}</td>
      <td class="nowrap">
        {l.belowMinimum ? (
          <button type="button" class="btn btn-small" onClick={onFind} data-testid={`find-${l.itemId}`}>
            {t('sp_find')}
          </button>
        ) : null}
      </td>
    </tr>
  );
}

function SourcesPanel({ depot, itemId, onRequested }: { depot: DepotDetail; itemId: string; onRequested: () => void }) {
  const src = useApi<Sources>(`supplies/depots/${encodeURIComponent(depot.id)}/sources`, { itemId });
  const [asking, setAsking] = useState<string | undefined>();
  return (
    <div class="sources card-inner" data-testid={`sources-${itemId}`}>
      <h3>{t('sp_sources_title', { item: itemName(itemId) })}</h3>
      {src.error ? <ErrorBox error={src.error} onRetry={src.reload} /> : null}
      {!src.data && !src.error ? <Loading /> : null}
      {src.data && src.data.sources.length === 0 ? <p class="muted">{t('sp_sources_empty')}</p> : null}
      {src.data && src.data.sources.length > 0 ? (
        <table class="table table-compact">
          <thead>
            <tr>
              <th>{t('sp_depot')}</th>
              <th>{t('sp_relation')}</th>
              <th class="num">{t('sp_usable')}</th>
              <th class="num">{t('sp_spare')}</th>
              <th>{t('sp_keeper')}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {src.data.sources.map((s) =>
              s.kind === 'agreement' ? (
                <tr key={`${s.agreementId}-${s.depotId}`} data-testid={`agreement-${s.agreementId}`}>
                  <td>{bi(s.depotName)}</td>
                  <td>{t('sp_agreement')}</td>
                  <td colSpan={3}>
                    {t('sp_agreement_src', { supplier: s.supplier ?? '', qty: s.quantity ?? 0, h: s.withinHours ?? 0 })}
                    {s.contact ? <span class="muted small"> · {s.contact}</span> : null}
                  </td>
                  <td />
                </tr>
              ) : (
                <tr key={s.depotId} data-testid={`source-${s.depotId}`}>
                  <td>
                    <a href={href('supplies', s.depotId)}>{bi(s.depotName)}</a>
                  </td>
                  <td>{relationLabel(s.relation)}</td>
                  <td class="num">{s.usable ?? ''}</td>
                  <td class="num strong">{s.spare ?? ''}</td>
                  <td>{s.keeper?.name ?? ''}</td>
                  <td>
                    {depot.canManage && (s.spare ?? 0) > 0 ? (
                      <button
                        type="button"
                        class="btn btn-small btn-primary"
                        onClick={() => setAsking(s.depotId)}
                        data-testid={`request-${s.depotId}`}
                      >
                        {t('sp_request')}
                      </button>
                    ) : null}
                  </td>
                </tr>
              ),
            )}
          </tbody>
        </table>
      ) : null}
      {asking && src.data ? (
        <RequestForm
          key={asking}
          toDepotId={depot.id}
          fromDepotId={asking}
          itemId={itemId}
          suggested={Math.max(
            1,
            Math.min(
              src.data.level.shortfall || 1,
              src.data.sources.find((s) => s.depotId === asking)?.spare ?? src.data.level.shortfall,
            ),
          )}
          onDone={onRequested}
        />
      ) : null}
    </div>
  );
}

function RequestForm(p: {
  toDepotId: string;
  fromDepotId: string;
  itemId: string;
  suggested: number;
  onDone: () => void;
}) {
  const [qty, setQty] = useState(String(p.suggested));
  const [reason, setReason] = useState(t('sp_request_reason_default'));
  const [busy, run] = useBusy();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      await api('supplies/transfers', {
        body: {
          fromDepotId: p.fromDepotId,
          toDepotId: p.toDepotId,
          itemId: p.itemId,
          quantity: Number(qty),
          ...(reason.trim() ? { reason: reason.trim() } : {}),
        },
      });
      toast(t('sp_request_sent'));
      p.onDone();
    });
  };
  return (
    <form class="form-inline" onSubmit={submit} data-testid="request-form">
      <label class="field">
        <span>{t('sp_request_qty')}</span>
        <input
          type="number"
          min={1}
          required
          value={qty}
          onInput={(e) => setQty(e.currentTarget.value)}
          data-testid="request-qty"
        />
      </label>
      <label class="field grow">
        <span>{t('sp_request_reason')}</span>
        <input value={reason} maxLength={500} onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      <button type="submit" class="btn btn-primary" disabled={busy} data-testid="request-submit">
        {t('sp_request')}
      </button>
    </form>
  );
}

function ItemSelect({ value, onChange, testid }: { value: string; onChange: (v: string) => void; testid: string }) {
  const items = catalogue.get()?.items ?? [];
  return (
    <label class="field">
      <span>{t('sp_item')}</span>
      <select value={value} onChange={(e) => onChange(e.currentTarget.value)} required data-testid={testid}>
        <option value="" />
        {items.map((i) => (
          <option key={i.id} value={i.id}>
            {bi(i.name)} ({bi(i.unit)})
          </option>
        ))}
      </select>
    </label>
  );
}

function ReceiveForm({ depotId, onDone }: { depotId: string; onDone: () => void }) {
  const [f, setF] = useState({ itemId: '', quantity: '', expiresOn: '', source: '' });
  const [busy, run] = useBusy();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      await api('supplies/movements/receive', {
        body: {
          depotId,
          itemId: f.itemId,
          quantity: Number(f.quantity),
          receivedOn: todayIso(),
          ...(f.expiresOn ? { expiresOn: f.expiresOn } : {}),
          ...(f.source.trim() ? { source: f.source.trim() } : {}),
        },
      });
      toast(t('sp_received'));
      setF({ itemId: f.itemId, quantity: '', expiresOn: '', source: '' });
      onDone();
    });
  };
  return (
    <form class="card" onSubmit={submit} data-testid="receive-form">
      <header class="card-head">
        <h2>{t('sp_receive_title')}</h2>
      </header>
      <ItemSelect value={f.itemId} onChange={(itemId) => setF({ ...f, itemId })} testid="receive-item" />
      <label class="field">
        <span>{t('sp_qty')}</span>
        <input
          type="number"
          min={1}
          required
          value={f.quantity}
          onInput={(e) => setF({ ...f, quantity: e.currentTarget.value })}
          data-testid="receive-qty"
        />
      </label>
      <label class="field">
        <span>{t('sp_expires')}</span>
        <input
          type="date"
          value={f.expiresOn}
          onInput={(e) => setF({ ...f, expiresOn: e.currentTarget.value })}
          data-testid="receive-expires"
        />
      </label>
      <label class="field">
        <span>{t('sp_source')}</span>
        <input value={f.source} maxLength={100} onInput={(e) => setF({ ...f, source: e.currentTarget.value })} />
      </label>
      <button type="submit" class="btn btn-primary" disabled={busy} data-testid="receive-submit">
        {t('sp_receive')}
      </button>
    </form>
  );
}

function IssueForm({ depotId, levels, onDone }: { depotId: string; levels: StockLevel[]; onDone: () => void }) {
  const [f, setF] = useState({ itemId: '', quantity: '', kind: 'drill', ref: '', reason: '' });
  const [busy, run] = useBusy();
  const usable = levels.find((l) => l.itemId === f.itemId)?.usable;
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      await api('supplies/movements/issue', {
        body: {
          depotId,
          itemId: f.itemId,
          quantity: Number(f.quantity),
          to: { kind: f.kind, ref: f.ref.trim() },
          ...(f.reason.trim() ? { reason: f.reason.trim() } : {}),
        },
      });
      toast(t('sp_issued'));
      setF({ ...f, quantity: '', ref: '', reason: '' });
      onDone();
    });
  };
  return (
    <form class="card" onSubmit={submit} data-testid="issue-form">
      <header class="card-head">
        <h2>{t('sp_issue_title')}</h2>
      </header>
      <ItemSelect value={f.itemId} onChange={(itemId) => setF({ ...f, itemId })} testid="issue-item" />
      <label class="field">
        <span>
          {t('sp_qty')}
          {usable !== undefined ? ` (${t('sp_usable')} ${usable})` : ''}
        </span>
        <input
          type="number"
          min={1}
          max={usable}
          required
          value={f.quantity}
          onInput={(e) => setF({ ...f, quantity: e.currentTarget.value })}
          data-testid="issue-qty"
        />
      </label>
      <label class="field">
        <span>{t('sp_issue_kind')}</span>
        <select value={f.kind} onChange={(e) => setF({ ...f, kind: e.currentTarget.value })} data-testid="issue-kind">
          {ISSUE_TO.map((k) => (
            <option key={k} value={k}>
              {t(`sp_to_${k}` as Key)}
            </option>
          ))}
        </select>
      </label>
      <label class="field">
        <span>{t('sp_issue_ref')}</span>
        <input
          required
          maxLength={100}
          placeholder={t('sp_issue_ref_hint')}
          value={f.ref}
          onInput={(e) => setF({ ...f, ref: e.currentTarget.value })}
          data-testid="issue-ref"
        />
      </label>
      <label class="field">
        <span>{t('sp_reason')}</span>
        <input value={f.reason} maxLength={500} onInput={(e) => setF({ ...f, reason: e.currentTarget.value })} />
      </label>
      <button type="submit" class="btn btn-primary" disabled={busy} data-testid="issue-submit">
        {t('sp_issue')}
      </button>
    </form>
  );
}

function Transfers(p: { data: TransferView[] | undefined; error: unknown; depotId: string; onDone: () => void }) {
  const [busy, run] = useBusy();
  if (p.error) return <ErrorBox error={p.error} />;
  if (!p.data) return <Loading />;
  if (p.data.length === 0) return <p class="muted">{t('sp_transfers_empty')}</p>;
  const act = (tr: TransferView, action: TransferView['actions'][number]) => {
    let note: string | undefined;
    if (action === 'decline') {
      note = window.prompt(t('sp_decline_reason'))?.trim() || undefined;
      if (!note) return;
    }
    void run(async () => {
      await api(`supplies/transfers/${encodeURIComponent(tr.id)}/${action}`, { body: note ? { note } : {} });
      toast(t('sp_transfer_done'));
      p.onDone();
    });
  };
  return (
    <div class="table-wrap">
      <table class="table">
        <thead>
          <tr>
            <th>{t('sp_item')}</th>
            <th class="num">{t('sp_qty')}</th>
            <th>{t('sp_from')}</th>
            <th>{t('sp_to')}</th>
            <th>{t('sp_status')}</th>
            <th>{t('sp_requested_at')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {p.data.map((tr) => (
            <tr key={tr.id} data-testid={`transfer-${tr.id}`} data-status={tr.status}>
              <td>{itemName(tr.itemId)}</td>
              <td class="num">
                {tr.quantity} {unitOf(tr.itemId)}
              </td>
              <td>
                {tr.fromDepotId === p.depotId ? (
                  <strong>{tr.fromDepotId}</strong>
                ) : (
                  <a href={href('supplies', tr.fromDepotId)}>{tr.fromDepotId}</a>
                )}
              </td>
              <td>
                {tr.toDepotId === p.depotId ? (
                  <strong>{tr.toDepotId}</strong>
                ) : (
                  <a href={href('supplies', tr.toDepotId)}>{tr.toDepotId}</a>
                )}
              </td>
              <td>
                <span class={`tstatus tstatus-${tr.status}`}>{transferStatusLabel(tr.status)}</span>
                {tr.reason ? <div class="muted small">{tr.reason}</div> : null}
                {tr.decisionNote ? <div class="muted small">{tr.decisionNote}</div> : null}
              </td>
              <td class="nowrap">{fmtDateTime(tr.requestedAt)}</td>
              <td class="nowrap">
                {tr.actions.map((a) => (
                  <button
                    key={a}
                    type="button"
                    class={`btn btn-small ${a === 'decline' || a === 'cancel' ? '' : 'btn-primary'}`}
                    disabled={busy}
                    onClick={() => act(tr, a)}
                    data-testid={`transfer-${a}-${tr.id}`}
                  >
                    {t(`sp_ta_${a}` as Key)}
                  </button>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The server's lists (src/supplies/service.ts, not importable at run time), checked against its types. */
const ISSUE_TO = ['drill', 'incident', 'person', 'other'] as const satisfies readonly IssueTo[];
const DISPOSE_REASONS = ['expired', 'damaged', 'faulty', 'other'] as const satisfies readonly DisposeReason[];

type LotAction = { lot: LotView; kind: 'dispose' | 'inspect' | 'adjust' };

function Lots(p: { lots: LotView[]; depotId: string; canManage: boolean; onDone: () => void }) {
  const [action, setAction] = useState<LotAction | undefined>();
  if (p.lots.length === 0) return <p class="muted">{t('sp_lots_empty')}</p>;
  return (
    <>
      <div class="table-wrap">
        <table class="table">
          <thead>
            <tr>
              <th>{t('sp_item')}</th>
              <th class="num">{t('sp_lot_qty')}</th>
              <th>{t('sp_received_on')}</th>
              <th>{t('sp_expires_on')}</th>
              <th>{t('sp_condition')}</th>
              <th>{t('sp_inspection_due')}</th>
              {p.canManage ? <th>{t('sp_actions')}</th> : null}
            </tr>
          </thead>
          <tbody>
            {p.lots.map((l) => (
              <tr key={l.id} data-testid={`lot-${l.id}`} data-expiry={l.expiry} class={`lot-${l.expiry}`}>
                <td>{itemName(l.itemId)}</td>
                <td class="num">{l.quantity}</td>
                <td class="nowrap">{l.receivedOn}</td>
                <td class="nowrap">
                  <span class={`exp exp-${l.expiry}`}>
                    {l.expiresOn ?? '—'}
                    {l.daysToExpiry !== undefined && l.expiry !== 'ok'
                      ? ` · ${l.daysToExpiry < 0 ? t('sp_days_ago', { n: -l.daysToExpiry }) : t('sp_days_left', { n: l.daysToExpiry })}`
                      : ''}
                  </span>
                  <span class="sr-only"> {expiryLabel(l.expiry)}</span>
                </td>
                <td>{conditionLabel(l.condition)}</td>
                <td class="nowrap">
                  {l.inspectionDueOn ?? ''}
                  {l.inspectionOverdue ? <span class="sbadge sbadge-warn">{t('sp_inspection_overdue')}</span> : null}
                </td>
                {p.canManage ? (
                  <td class="nowrap">
                    {(['inspect', 'adjust', 'dispose'] as const).map((k) => (
                      <button
                        key={k}
                        type="button"
                        class="btn btn-small btn-ghost"
                        onClick={() => setAction({ lot: l, kind: k })}
                        data-testid={`lot-${k}-${l.id}`}
                      >
                        {t(`sp_${k}` as Key)}
                      </button>
                    ))}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p class="small legend">
        {(['expired', 'minor', 'info', 'ok'] as const).map((e) => (
          <span key={e} class={`exp exp-${e}`}>
            {expiryLabel(e)}
          </span>
        ))}
      </p>
      {action ? (
        <LotActionForm
          key={`${action.lot.id}-${action.kind}`}
          a={action}
          depotId={p.depotId}
          onClose={() => setAction(undefined)}
          onDone={() => {
            setAction(undefined);
            p.onDone();
          }}
        />
      ) : null}
    </>
  );
}

function LotActionForm(p: { a: LotAction; depotId: string; onClose: () => void; onDone: () => void }) {
  const { lot, kind } = p.a;
  const [qty, setQty] = useState(String(lot.quantity));
  const [reason, setReason] = useState(kind === 'dispose' ? (lot.expiry === 'expired' ? 'expired' : 'damaged') : '');
  const [result, setResult] = useState<'pass' | 'fail'>('pass');
  const [note, setNote] = useState('');
  const [busy, run] = useBusy();
  const submit = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const n = note.trim();
      if (kind === 'dispose') {
        await api('supplies/movements/dispose', {
          body: { depotId: p.depotId, lotId: lot.id, quantity: Number(qty), reason, ...(n ? { note: n } : {}) },
        });
        toast(t('sp_disposed'));
      } else if (kind === 'inspect') {
        await api('supplies/movements/inspect', {
          body: { depotId: p.depotId, lotId: lot.id, result, ...(n ? { note: n } : {}) },
        });
        toast(t('sp_inspected'));
      } else {
        await api('supplies/movements/adjust', {
          body: { depotId: p.depotId, lotId: lot.id, countedQuantity: Number(qty), reason: n },
        });
        toast(t('sp_adjusted'));
      }
      p.onDone();
    });
  };
  return (
    <form class="form-inline lot-action" onSubmit={submit} data-testid={`lot-form-${kind}`}>
      <strong>{t('sp_lot_action', { lot: lot.id, item: itemName(lot.itemId) })}</strong>
      {kind === 'inspect' ? (
        <label class="field">
          <span>{t('sp_inspect')}</span>
          <select value={result} onChange={(e) => setResult(e.currentTarget.value as 'pass' | 'fail')}>
            <option value="pass">{t('sp_inspect_pass')}</option>
            <option value="fail">{t('sp_inspect_fail')}</option>
          </select>
        </label>
      ) : (
        <label class="field">
          <span>{kind === 'adjust' ? t('sp_adjust_counted') : t('sp_qty')}</span>
          <input
            type="number"
            min={kind === 'adjust' ? 0 : 1}
            max={kind === 'dispose' ? lot.quantity : undefined}
            required
            value={qty}
            onInput={(e) => setQty(e.currentTarget.value)}
          />
        </label>
      )}
      {kind === 'dispose' ? (
        <label class="field">
          <span>{t('sp_dispose_reason')}</span>
          <select value={reason} onChange={(e) => setReason(e.currentTarget.value)}>
            {DISPOSE_REASONS.map((r) => (
              <option key={r} value={r}>
                {t(`sp_dr_${r}` as Key)}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      <label class="field grow">
        <span>{kind === 'adjust' ? t('sp_reason') : t('sp_note')}</span>
        <input
          required={kind === 'adjust'}
          maxLength={500}
          value={note}
          onInput={(e) => setNote(e.currentTarget.value)}
        />
      </label>
      <button type="submit" class="btn btn-primary" disabled={busy}>
        {t(`sp_${kind}` as Key)}
      </button>
      <button type="button" class="btn" onClick={p.onClose}>
        {t('cancel')}
      </button>
    </form>
  );
}

function Calendar({ cal }: { cal: ExpiryCalendar }) {
  const cells = [cal.expired, ...cal.months];
  return (
    <div class="expiry-cal">
      {cells.map((m) => {
        const qty = m.totals.reduce((s, x) => s + x.quantity, 0);
        const expired = m.month === 'expired';
        return (
          <div
            key={m.month}
            class={`cal-month ${expired ? 'cal-expired' : ''} ${qty ? 'cal-has' : ''}`}
            data-testid={`cal-${m.month}`}
            data-qty={qty}
          >
            <div class="cal-head">{expired ? t('sp_cal_expired') : m.month}</div>
            {m.totals.length === 0 ? <div class="muted small">{t('sp_cal_empty')}</div> : null}
            {m.totals.map((x) => (
              <div key={x.itemId} class="small">
                {itemName(x.itemId)} <strong>{x.quantity}</strong>
              </div>
            ))}
          </div>
        );
      })}
    </div>
  );
}

function Ledger({ depotId, rev }: { depotId: string; rev: number }) {
  const [filter, setFilter] = useState({ itemId: '', kind: '', since: '' });
  const [rows, setRows] = useState<MovementView[] | undefined>();
  const [cursor, setCursor] = useState<string | undefined>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const query = {
    depotId,
    itemId: filter.itemId || undefined,
    kind: filter.kind || undefined,
    since: filter.since ? new Date(`${filter.since}T00:00:00`).toISOString() : undefined,
    limit: 50,
  };
  const key = JSON.stringify(query);
  const load = async (more: boolean) => {
    setBusy(true);
    try {
      const page = await api<Page<MovementView>>('supplies/movements', {
        query: { ...query, cursor: more ? cursor : undefined },
      });
      setRows((r) => (more ? [...(r ?? []), ...page.items] : page.items));
      setCursor(page.nextCursor);
      setError(undefined);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    void load(false);
  }, [key, rev]);
  return (
    <>
      <p class="muted small">{t('sp_ledger_hint')}</p>
      <div class="form-inline">
        <label class="field">
          <span>{t('sp_item')}</span>
          <select
            value={filter.itemId}
            onChange={(e) => setFilter({ ...filter, itemId: e.currentTarget.value })}
            data-testid="ledger-item"
          >
            <option value="">{t('sp_all_items')}</option>
            {(catalogue.get()?.items ?? []).map((i) => (
              <option key={i.id} value={i.id}>
                {bi(i.name)}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>{t('sp_kind')}</span>
          <select
            value={filter.kind}
            onChange={(e) => setFilter({ ...filter, kind: e.currentTarget.value })}
            data-testid="ledger-kind"
          >
            <option value="">{t('sp_all_kinds')}</option>
            {MOVEMENT_KINDS.map((k) => (
              <option key={k} value={k}>
                {movementKindLabel(k)}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>{t('sp_since')}</span>
          <input
            type="date"
            value={filter.since}
            onInput={(e) => setFilter({ ...filter, since: e.currentTarget.value })}
          />
        </label>
      </div>
      {error ? <ErrorBox error={error} onRetry={() => void load(false)} /> : null}
      {!rows && !error ? <Loading /> : null}
      {rows && rows.length === 0 ? <p class="muted">{t('sp_ledger_empty')}</p> : null}
      {rows && rows.length > 0 ? (
        <div class="table-wrap">
          <table class="table table-compact" data-testid="ledger-table">
            <thead>
              <tr>
                <th>{t('sp_time')}</th>
                <th>{t('sp_kind')}</th>
                <th>{t('sp_item')}</th>
                <th class="num">{t('sp_qty')}</th>
                <th class="num">{t('sp_balance')}</th>
                <th>{t('sp_ref')}</th>
                <th>{t('sp_by')}</th>
                <th>{t('sp_reason')}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((m) => (
                <tr key={m.id} data-testid={`move-${m.id}`} data-kind={m.kind}>
                  <td class="nowrap">{fmtDateTime(m.ts)}</td>
                  <td>{movementKindLabel(m.kind)}</td>
                  <td>{itemName(m.itemId)}</td>
                  <td class={`num ${m.quantity < 0 ? 'neg' : ''}`}>{m.quantity > 0 ? `+${m.quantity}` : m.quantity}</td>
                  <td class="num">{m.balanceAfter ?? ''}</td>
                  <td class="small">{m.ref ? `${m.ref.kind}: ${m.ref.id}` : (m.transferId ?? '')}</td>
                  <td class="small">{m.by}</td>
                  <td class="small">{m.reason ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <MoreButton cursor={cursor} onMore={() => void load(true)} busy={busy} />
    </>
  );
}
