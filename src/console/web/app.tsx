/** The console shell: session, navigation by role, connection indicator, loud banners, and the page of the route. */
import type { ComponentChildren, FunctionComponent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from './api.ts';
import { ErrorBox, Loading, Toasts, useNow } from './components.tsx';
import { activeDrills, showDrills, unwatchDrills, watchDrills } from './drills.ts';
import { bi, type Key, setLang, setTimezone, settings, t } from './i18n.ts';
import { live, POLL_MS } from './live.ts';
import { BoardPage } from './pages/board.tsx';
import { LoginPage } from './pages/login.tsx';
import { MobilePage } from './pages/mobile.tsx';
import { loadPeople, resetPeople } from './people.ts';
import { loadPlaces, resetPlaces } from './places.ts';
import { href, navigate, type Route, useRoute } from './router.ts';
import { homeRoute, isAdmin, loadSession, logout, session, showSupplies } from './session.ts';
import { useStore } from './store.ts';
import type { Me } from './types.ts';

// Pages beyond the board and the phone page load when first opened: the charts (uPlot) and admin pages stay out of
// the first download.
const pages = {
  household: () => import('./pages/household.tsx').then((m) => m.HouseholdPage),
  device: () => import('./pages/device.tsx').then((m) => m.DevicePage),
  households: () => import('./pages/lists.tsx').then((m) => m.HouseholdsPage),
  devices: () => import('./pages/lists.tsx').then((m) => m.DevicesPage),
  overview: () => import('./pages/overview.tsx').then((m) => m.OverviewPage),
  outbox: () => import('./pages/outbox.tsx').then((m) => m.OutboxPage),
  roster: () => import('./pages/roster.tsx').then((m) => m.RosterPage),
  staff: () => import('./pages/staff.tsx').then((m) => m.StaffPage),
  accessLog: () => import('./pages/access-log.tsx').then((m) => m.AccessLogPage),
  drills: () => import('./pages/drills.tsx').then((m) => m.DrillsPage),
  drill: () => import('./pages/drill.tsx').then((m) => m.DrillPage),
  drillReport: () => import('./pages/drill-report.tsx').then((m) => m.DrillReportPage),
  supplies: () => import('./pages/supplies.tsx').then((m) => m.SuppliesPage),
  depot: () => import('./pages/depot.tsx').then((m) => m.DepotPage),
};

// biome-ignore lint/suspicious/noExplicitAny: a page module's component, whatever its props; Lazy passes them through
type AnyPage = FunctionComponent<any>;
const loaded = new Map<() => Promise<AnyPage>, AnyPage>();

function Lazy<P extends object>({ load, props }: { load: () => Promise<FunctionComponent<P>>; props: P }) {
  const [, setTick] = useState(0);
  const [error, setError] = useState<{ load: unknown; error: unknown } | undefined>();
  const Page = loaded.get(load);
  useEffect(() => {
    if (loaded.has(load)) return;
    let current = true;
    load().then(
      (c) => {
        loaded.set(load, c);
        if (current) setTick((n) => n + 1);
      },
      (e: unknown) => current && setError({ load, error: e }),
    );
    return () => {
      current = false;
    };
  }, [load]);
  if (error && error.load === load) return <ErrorBox error={error.error} onRetry={() => location.reload()} />;
  return Page ? <Page {...props} /> : <Loading />;
}

interface NavItem {
  path: string;
  key: Key;
  show: (me: Me) => boolean;
}

const NAV: NavItem[] = [
  { path: '/board', key: 'nav_board', show: () => true },
  { path: '/m', key: 'nav_mobile', show: () => true },
  { path: '/overview', key: 'nav_overview', show: () => true },
  { path: '/households', key: 'nav_households', show: () => true },
  { path: '/devices', key: 'nav_devices', show: () => true },
  { path: '/outbox', key: 'nav_outbox', show: () => true },
  { path: '/roster', key: 'nav_roster', show: () => true },
  { path: '/drills', key: 'nav_drills', show: showDrills },
  { path: '/supplies', key: 'nav_supplies', show: showSupplies },
  { path: '/staff', key: 'nav_staff', show: isAdmin },
  { path: '/access-log', key: 'nav_access_log', show: isAdmin },
];

export function App() {
  const s = useStore(session);
  useStore(settings);
  const [fatal, setFatal] = useState<unknown>();

  useEffect(() => {
    loadSession().catch(setFatal);
  }, []);

  const meId = s.state === 'in' ? s.me.id : undefined;
  useEffect(() => {
    const cur = session.get();
    if (cur.state === 'in') {
      live.start(cur.me);
      watchDrills(cur.me);
      void loadPlaces();
      void loadPeople(isAdmin(cur.me));
      // the community's time zone until the live channel's welcome says it
      api<{ timezone: string }>('rules').then(
        (r) => setTimezone(r.timezone),
        () => undefined,
      );
    } else if (cur.state === 'out') {
      live.stop();
      unwatchDrills();
      resetPlaces();
      resetPeople();
    }
  }, [meId, s.state]);

  if (fatal) {
    return (
      <main class="center">
        <ErrorBox error={fatal} onRetry={() => location.reload()} />
      </main>
    );
  }
  if (s.state === 'loading') {
    return (
      <main class="center">
        <Loading />
      </main>
    );
  }
  if (s.state === 'out') return <LoginPage expired={s.expired ?? false} />;
  return <Shell me={s.me} />;
}

function Shell({ me }: { me: Me }) {
  const route = useRoute();
  useStore(activeDrills); // the drills entry comes and goes with a drill one takes part in
  useEffect(() => {
    if (route.path === '/') navigate(homeRoute(me), true);
  }, [route.path, me]);
  const lang = settings.get().lang;
  useEffect(() => {
    const item = NAV.find((n) => route.path === n.path || route.path.startsWith(`${n.path}/`));
    document.title = item ? `${t(item.key)} · ${t('app_name')}` : t('app_name');
  }, [route.path, lang]);
  const mobile = route.parts[0] === 'm';
  return (
    <div class={`shell ${mobile ? 'shell-mobile' : ''}`}>
      {/* a button, not a #main link: the hash is the route */}
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        {t('skip_to_content')}
      </button>
      <header class="topbar">
        <a class="brand" href={`#${homeRoute(me)}`} data-testid="brand">
          <span class="brand-mark" aria-hidden="true">
            ✚
          </span>
          <span class="brand-text">{t('app_short')}</span>
        </a>
        <ConnIndicator />
        <div class="topbar-right">
          <button
            type="button"
            class="btn btn-ghost btn-small"
            onClick={() => void setLang(settings.get().lang === 'zh' ? 'en' : 'zh')}
            aria-label={t('lang_switch_label')}
            lang={settings.get().lang === 'zh' ? 'en' : 'zh-CN'}
            data-testid="lang-toggle"
          >
            {t('lang_switch')}
          </button>
          <span class="user" title={t('signed_in_as', { name: me.name ?? me.username })} data-testid="user">
            {me.name ?? me.username}
          </span>
          <button type="button" class="btn btn-ghost btn-small" onClick={() => void logout()} data-testid="logout">
            {t('logout')}
          </button>
        </div>
        <nav class="nav" aria-label={t('nav_label')}>
          {NAV.filter((n) => n.show(me)).map((n) => {
            const active = route.path === n.path || route.path.startsWith(`${n.path}/`);
            return (
              <a
                key={n.path}
                href={`#${n.path}`}
                class={active ? 'active' : ''}
                aria-current={active ? 'page' : undefined}
                data-testid={`nav-${n.path.slice(1)}`}
              >
                {t(n.key)}
              </a>
            );
          })}
        </nav>
      </header>
      <Banners route={route} />
      <main id="main" tabIndex={-1}>
        <Page route={route} me={me} />
      </main>
      <Toasts />
    </div>
  );
}

function Page({ route, me }: { route: Route; me: Me }): ComponentChildren {
  const [first, id] = route.parts;
  switch (first) {
    case undefined:
      return null;
    case 'board':
      return <BoardPage me={me} focus={route.query.get('alert') ?? undefined} />;
    case 'm':
      return <MobilePage me={me} />;
    case 'households':
      return id ? (
        <Lazy key={id} load={pages.household} props={{ id, me }} />
      ) : (
        <Lazy load={pages.households} props={{ route }} />
      );
    case 'devices':
      return id ? (
        <Lazy key={id} load={pages.device} props={{ id, me }} />
      ) : (
        <Lazy load={pages.devices} props={{ route }} />
      );
    case 'overview':
      return <Lazy load={pages.overview} props={{}} />;
    case 'outbox':
      return <Lazy load={pages.outbox} props={{}} />;
    case 'roster':
      return <Lazy load={pages.roster} props={{ me }} />;
    case 'staff':
      return isAdmin(me) ? <Lazy load={pages.staff} props={{ me }} /> : <Forbidden />;
    case 'access-log':
      return isAdmin(me) ? <Lazy load={pages.accessLog} props={{}} /> : <Forbidden />;
    case 'drills':
      if (!id) return <Lazy load={pages.drills} props={{ me }} />;
      return route.parts[2] === 'report' ? (
        <Lazy key={`${id}/report`} load={pages.drillReport} props={{ id, me }} />
      ) : (
        <Lazy key={id} load={pages.drill} props={{ id, me }} />
      );
    case 'supplies':
      return id ? (
        <Lazy key={id} load={pages.depot} props={{ id, me }} />
      ) : (
        <Lazy load={pages.supplies} props={{ me }} />
      );
    default:
      return (
        <div class="page">
          <h1>{t('page_not_found')}</h1>
          <a href="#/board">{t('back_to_board')}</a>
        </div>
      );
  }
}

function Forbidden() {
  return <ErrorBox error={new ApiError(403, 'forbidden', '', '')} />;
}

function ConnIndicator() {
  const s = useStore(live.state);
  const state = s.conn === 'live' ? 'live' : s.polling ? 'polling' : s.conn;
  const text =
    state === 'live'
      ? t('conn_live')
      : state === 'polling'
        ? t('conn_polling')
        : state === 'reconnecting'
          ? t('conn_reconnecting')
          : state === 'connecting'
            ? t('conn_connecting')
            : t('conn_offline');
  return (
    <span
      class={`conn conn-${state}`}
      role="status"
      title={state === 'live' ? t('conn_title_live') : text}
      data-testid="conn"
      data-state={state}
    >
      <span class="conn-dot" aria-hidden="true" />
      <span class="conn-text">{text}</span>
    </span>
  );
}

function Banners({ route }: { route: Route }) {
  const s = useStore(live.state);
  const drills = useStore(activeDrills);
  return (
    <div class="banners">
      {drills.active
        // the drill's own pages carry the big banner
        .filter((d) => !(route.parts[0] === 'drills' && route.parts[1] === d.id))
        .map((d) => (
          <div key={d.id} class="banner banner-drill" role="status" data-testid={`drill-running-banner-${d.id}`}>
            <strong aria-hidden="true">{t('dr_banner')}</strong>
            <span>{t(d.status === 'paused' ? 'dr_paused_banner' : 'dr_running_banner', { name: bi(d.name) })}</span>
            <a href={href('drills', d.id)}>{t('dr_open')}</a>
          </div>
        ))}
      {s.smsOutbox ? (
        <div class="banner banner-outbox" role="alert" data-testid="sms-outbox-banner">
          <strong aria-hidden="true">⚠</strong>
          <span>{t('sms_outbox_banner')}</span>
        </div>
      ) : null}
      {s.polling ? (
        <div class="banner banner-info" role="status" data-testid="polling-banner">
          {t('polling_banner', { s: POLL_MS / 1000 })}
        </div>
      ) : s.conn === 'reconnecting' ? (
        <Reconnecting retryAt={s.retryAt} />
      ) : null}
      {s.error ? (
        <div class="banner banner-info" role="status" data-testid="ws-error">
          {s.error}
        </div>
      ) : null}
    </div>
  );
}

function Reconnecting({ retryAt }: { retryAt?: number }) {
  const now = useNow();
  const left = retryAt ? Math.max(0, Math.ceil((retryAt - now) / 1000)) : 0;
  return (
    <div class="banner banner-warn" role="status" data-testid="reconnecting-banner">
      <span>{left > 0 ? t('reconnecting_banner', { s: left }) : t('reconnecting_now')}</span>
      <button type="button" class="btn btn-small" onClick={() => live.reconnectNow()}>
        {t('reconnect_now')}
      </button>
    </div>
  );
}
