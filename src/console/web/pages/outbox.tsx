/** The SMS outbox (`#/outbox`): every SMS sent or attempted with its status history, paged by nextCursor. */
import { useEffect, useState } from 'preact/hooks';
import { recipientRole } from '../alerts.tsx';
import { ApiError, api } from '../api.ts';
import { DrillBadge, ErrorBox, Loading, MoreButton } from '../components.tsx';
import { fmtDateTime, fmtShort, NOTIFICATION_STATUSES, notificationStatusLabel, settings, t } from '../i18n.ts';
import { whoLabel } from '../people.ts';
import { useStore } from '../store.ts';
import type { NotificationRecord, Page } from '../types.ts';

export function OutboxPage() {
  useStore(settings);
  const [status, setStatus] = useState('');
  const [items, setItems] = useState<NotificationRecord[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  const [error, setError] = useState<unknown>();
  const [loading, setLoading] = useState(true);
  const [open, setOpen] = useState<string | null>(null);

  const load = async (after?: string) => {
    setLoading(true);
    setError(undefined);
    try {
      const page = await api<Page<NotificationRecord>>('notifications', {
        query: { status: status || undefined, limit: 50, cursor: after },
      });
      setItems((list) => (after ? [...list, ...page.items] : page.items));
      setCursor(page.nextCursor);
    } catch (err) {
      setError(err instanceof ApiError ? err : new Error(String(err)));
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => {
    void load();
  }, [status]);

  return (
    <div class="page page-outbox" data-testid="page-outbox">
      <div class="page-head">
        <h1>{t('ob_title')}</h1>
        <label class="field field-inline">
          <span>{t('ob_filter_status')}</span>
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)} data-testid="outbox-status">
            <option value="">{t('all')}</option>
            {NOTIFICATION_STATUSES.map((s) => (
              <option key={s} value={s}>
                {notificationStatusLabel(s)}
              </option>
            ))}
          </select>
        </label>
      </div>
      {error ? <ErrorBox error={error} onRetry={() => void load()} /> : null}
      {!loading && !error && items.length === 0 ? <p class="empty">{t('ob_empty')}</p> : null}
      {items.length > 0 ? (
        <div class="table-wrap">
          <table class="table outbox" data-testid="outbox-table">
            <thead>
              <tr>
                <th>{t('ob_time')}</th>
                <th>{t('ob_recipient')}</th>
                <th>{t('ob_role')}</th>
                <th class="num">{t('ob_step')}</th>
                <th>{t('ob_transport')}</th>
                <th>{t('ob_status')}</th>
                <th>{t('ob_body')}</th>
              </tr>
            </thead>
            <tbody>
              {items.map((n) => [
                <tr key={n.id} data-testid={`sms-${n.id}`} data-status={n.status} class={open === n.id ? 'open' : ''}>
                  <td class="nowrap">{fmtShort(n.createdAt ?? n.updatedAt)}</td>
                  <td class="nowrap">
                    {n.recipient}
                    {n.staffId ? <div class="muted small">{whoLabel(n.staffId)}</div> : null}
                  </td>
                  <td>{recipientRole(n.role)}</td>
                  <td class="num">{n.step + 1}</td>
                  <td>{n.transport === 'outbox' ? t('transport_outbox') : n.transport}</td>
                  <td>
                    <span class={`nstatus nstatus-${n.status}`}>{notificationStatusLabel(n.status)}</span>
                    {n.errorCode ? <div class="muted small">{n.errorCode}</div> : null}
                    {n.batchId ? <div class="muted small">{t('ob_batch', { id: n.batchId })}</div> : null}
                  </td>
                  <td class="sms-body">
                    {n.drill && !/^(【演练】|\[DRILL\])/.test(n.body ?? '') ? <DrillBadge /> : null}
                    <button
                      type="button"
                      class="linklike"
                      aria-expanded={open === n.id}
                      onClick={() => setOpen(open === n.id ? null : n.id)}
                    >
                      {n.body ?? n.alertId}
                    </button>
                  </td>
                </tr>,
                open === n.id ? (
                  <tr key={`${n.id}-h`} class="history-row">
                    <td colSpan={7}>
                      <strong>{t('ob_history')}</strong>
                      <ol class="plain history">
                        {(n.statusHistory ?? []).map((h, i) => (
                          <li key={`${h.at}-${i}`}>
                            <time dateTime={h.at}>{fmtDateTime(h.at)}</time>{' '}
                            <span class={`nstatus nstatus-${h.status}`}>{notificationStatusLabel(h.status)}</span>{' '}
                            {h.detail ? <span class="muted">{h.detail}</span> : null}
                          </li>
                        ))}
                      </ol>
                      <div class="muted small">
                        {t('ob_alert')}: <a href={`#/board?alert=${encodeURIComponent(n.alertId)}`}>{n.alertId}</a>
                        {n.providerId ? ` · ${n.providerId}` : ''}
                      </div>
                    </td>
                  </tr>
                ) : null,
              ])}
            </tbody>
          </table>
        </div>
      ) : null}
      {loading ? <Loading /> : null}
      <MoreButton cursor={cursor} onMore={() => void load(cursor)} busy={loading} />
    </div>
  );
}
