/** Households (`#/households?gridId=&colour=&buildingId=`) and devices (`#/devices?status=&gridId=`) you may see. */
import { ColourChip, DeviceStatus, ErrorBox, Loading, MoreButton } from '../components.tsx';
import { COLOURS, colourClassLabel, deviceStatusLabel, fmtShort, settings, t, kindLabel } from '../i18n.ts';
import { addressOf, gridName, places } from '../places.ts';
import { href, navigate, type Route } from '../router.ts';
import { useStore } from '../store.ts';
import type { Device, Household } from '../types.ts';
import { usePaged } from './paged.ts';

function setQuery(base: string, route: Route, key: string, value: string): void {
  const q = new URLSearchParams(route.query);
  if (value) q.set(key, value);
  else q.delete(key);
  const s = q.toString();
  navigate(`${base}${s ? `?${s}` : ''}`, true);
}

function GridSelect({ route, base }: { route: Route; base: string }) {
  const p = useStore(places);
  return (
    <label class="field field-inline">
      <span>{t('filter_grid')}</span>
      <select
        value={route.query.get('gridId') ?? ''}
        onChange={(e) => setQuery(base, route, 'gridId', e.currentTarget.value)}
      >
        <option value="">{t('all')}</option>
        {[...p.grids.values()].map((g) => (
          <option key={g.id} value={g.id}>
            {g.name}
          </option>
        ))}
      </select>
    </label>
  );
}

export function HouseholdsPage({ route }: { route: Route }) {
  useStore(settings);
  useStore(places);
  const q = {
    gridId: route.query.get('gridId') ?? undefined,
    colour: route.query.get('colour') ?? undefined,
    buildingId: route.query.get('buildingId') ?? undefined,
  };
  const list = usePaged<Omit<Household, 'emergencyContacts'>>('households', q, 100);
  return (
    <div class="page page-households" data-testid="page-households">
      <div class="page-head">
        <h1>{t('hh_list_title')}</h1>
        <GridSelect route={route} base="/households" />
        <label class="field field-inline">
          <span>{t('filter_colour')}</span>
          <select
            value={q.colour ?? ''}
            onChange={(e) => setQuery('/households', route, 'colour', e.currentTarget.value)}
          >
            <option value="">{t('all')}</option>
            {COLOURS.map((c) => (
              <option key={c} value={c}>
                {colourClassLabel(c)}
              </option>
            ))}
          </select>
        </label>
      </div>
      {list.error ? <ErrorBox error={list.error} onRetry={list.reload} /> : null}
      <div class="table-wrap">
        <table class="table" data-testid="households-table">
          <thead>
            <tr>
              <th>{t('col_where')}</th>
              <th>{t('filter_colour')}</th>
              <th>{t('filter_grid')}</th>
              <th>{t('hh_residents')}</th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((h) => (
              <tr key={h.id} data-testid={`household-row-${h.id}`}>
                <td>
                  <a href={href('households', h.id)}>
                    {addressOf({ householdId: h.id, buildingId: h.buildingId, unitId: h.unitId })}
                  </a>
                </td>
                <td>
                  <ColourChip colour={h.colour} />
                </td>
                <td>{gridName(h.gridId)}</td>
                <td class="small">
                  {h.residents.map((r) => r.displayName).join(t('list_sep'))}
                  {h.loneElderly ? <span class="tag">{t('hh_lone')}</span> : null}
                  {h.atRisk ? <span class="tag tag-warn">{t('hh_at_risk')}</span> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.loading ? <Loading /> : null}
      <MoreButton cursor={list.cursor} onMore={list.more} busy={list.loading} />
    </div>
  );
}

export function DevicesPage({ route }: { route: Route }) {
  useStore(settings);
  useStore(places);
  const q = {
    gridId: route.query.get('gridId') ?? undefined,
    status: route.query.get('status') ?? undefined,
    householdId: route.query.get('householdId') ?? undefined,
    buildingId: route.query.get('buildingId') ?? undefined,
  };
  const list = usePaged<Device>('devices', q, 100);
  return (
    <div class="page page-devices" data-testid="page-devices">
      <div class="page-head">
        <h1>{t('dev_list_title')}</h1>
        <GridSelect route={route} base="/devices" />
        <label class="field field-inline">
          <span>{t('dev_status')}</span>
          <select value={q.status ?? ''} onChange={(e) => setQuery('/devices', route, 'status', e.currentTarget.value)}>
            <option value="">{t('all')}</option>
            {['online', 'offline', 'unknown'].map((s) => (
              <option key={s} value={s}>
                {deviceStatusLabel(s)}
              </option>
            ))}
          </select>
        </label>
      </div>
      {list.error ? <ErrorBox error={list.error} onRetry={list.reload} /> : null}
      <div class="table-wrap">
        <table class="table" data-testid="devices-table">
          <thead>
            <tr>
              <th>{t('dev_id')}</th>
              <th>{t('dev_kind')}</th>
              <th>{t('dev_where')}</th>
              <th>{t('dev_status')}</th>
              <th>{t('dev_last_seen')}</th>
              <th class="num">{t('dev_battery')}</th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((d) => (
              <tr key={d.id} data-testid={`device-row-${d.id}`}>
                <td>
                  <a href={href('devices', d.id)}>
                    <code>{d.id}</code>
                  </a>
                </td>
                <td class="small">{kindLabel(d.kind) || d.model}</td>
                <td>
                  {addressOf({ ...d.placement, deviceId: d.id })}{' '}
                  <span class="muted small">{gridName(d.placement.gridId)}</span>
                </td>
                <td>
                  <DeviceStatus status={d.status} />
                </td>
                <td class="nowrap small">{fmtShort(d.lastSeen)}</td>
                <td class="num">
                  {typeof d.lastReading?.battery_pct?.value === 'number' ? `${d.lastReading.battery_pct.value}%` : '—'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.loading ? <Loading /> : null}
      <MoreButton cursor={list.cursor} onMore={list.more} busy={list.loading} />
    </div>
  );
}
