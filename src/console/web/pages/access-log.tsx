/** Who was shown which household's residents' full names or emergency contacts, when (`#/access-log`, admins). */
import { ErrorBox, Loading, MoreButton } from '../components.tsx';
import { accessKindLabel, fmtDateTime, settings, t } from '../i18n.ts';
import { whoLabel } from '../people.ts';
import { addressOf, places } from '../places.ts';
import { href } from '../router.ts';
import { useStore } from '../store.ts';
import type { AccessLogEntry } from '../types.ts';
import { usePaged } from './paged.ts';

export function AccessLogPage() {
  useStore(settings);
  useStore(places);
  const log = usePaged<AccessLogEntry>('access-log', {});
  return (
    <div class="page page-access-log" data-testid="page-access-log">
      <div class="page-head">
        <h1>{t('al_title')}</h1>
      </div>
      {log.error ? <ErrorBox error={log.error} onRetry={log.reload} /> : null}
      {!log.loading && !log.error && log.items.length === 0 ? <p class="empty">{t('al_empty')}</p> : null}
      {log.items.length > 0 ? (
        <div class="table-wrap">
          <table class="table" data-testid="access-log-table">
            <thead>
              <tr>
                <th>{t('al_time')}</th>
                <th>{t('al_staff')}</th>
                <th>{t('al_household')}</th>
                <th>{t('al_action')}</th>
              </tr>
            </thead>
            <tbody>
              {log.items.map((e) => (
                <tr key={e.id} data-testid={`access-${e.id}`}>
                  <td class="nowrap">{fmtDateTime(e.at)}</td>
                  <td>{whoLabel(e.staffId)}</td>
                  <td>
                    {e.householdId ? (
                      <a href={href('households', e.householdId)}>{addressOf({ householdId: e.householdId })}</a>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td>
                    {e.what.map(accessKindLabel).join(t('list_sep'))}
                    {e.ip ? <div class="muted small">{e.ip}</div> : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {log.loading ? <Loading /> : null}
      <MoreButton cursor={log.cursor} onMore={log.more} busy={log.loading} />
    </div>
  );
}
