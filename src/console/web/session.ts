/** Who is signed in: login (desk or phone session), logout, and what the console shows to which roles. */
import { ApiError, api, unauthorized } from './api.ts';
import { Store } from './store.ts';
import type { Me } from './types.ts';

export type Session = { state: 'loading' } | { state: 'out'; expired?: boolean } | { state: 'in'; me: Me };

export const session = new Store<Session>({ state: 'loading' });

const DEVICE_KEY = 'gw.device';

function savedDevice(): 'desk' | 'phone' | undefined {
  try {
    const d = localStorage.getItem(DEVICE_KEY);
    return d === 'phone' || d === 'desk' ? d : undefined;
  } catch {
    return undefined;
  }
}

function signedIn(me: Me): void {
  // the server says which kind of session this is; an older server does not, then the login's choice counts
  session.set({ state: 'in', me: { ...me, device: me.device ?? savedDevice() ?? 'desk' } });
}

export async function loadSession(): Promise<void> {
  try {
    signedIn(await api<Me>('auth/me', { noSignOut: true }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) session.set({ state: 'out' });
    else throw err;
  }
}

/** Signs in; `phone`: a long-lived session for the grid worker's own phone. Throws ApiError on failure. */
export async function login(username: string, password: string, phone: boolean): Promise<void> {
  const device = phone ? 'phone' : 'desk';
  try {
    await api('auth/login', { body: { username, password, device }, noSignOut: true });
  } catch (err) {
    // a server that does not know `device` yet refuses the field: sign in without it
    if (
      !(
        err instanceof ApiError &&
        err.status === 400 &&
        /device|additional/i.test(JSON.stringify(err.details ?? err.message))
      )
    )
      throw err;
    await api('auth/login', { body: { username, password }, noSignOut: true });
  }
  try {
    localStorage.setItem(DEVICE_KEY, device);
  } catch {
    // private mode: the server's answer decides
  }
  signedIn(await api<Me>('auth/me', { noSignOut: true }));
}

export async function logout(): Promise<void> {
  try {
    await api('auth/logout', { method: 'POST', noSignOut: true });
  } catch {
    // signed out anyway: the cookie is gone or the session was already revoked
  }
  try {
    sessionStorage.clear();
  } catch {
    // nothing kept
  }
  session.set({ state: 'out' });
}

unauthorized.subscribe(() => {
  if (session.get().state === 'in') session.set({ state: 'out', expired: true });
});

export const hasRole = (me: Me, ...roles: string[]) => me.roles.some((r) => roles.includes(r));
export const isAdmin = (me: Me) => hasRole(me, 'admin');
/** Everyone but evaluators may act on alerts, visits and away periods (ALERT_ACTOR_ROLES on the server). */
export const canAct = (me: Me) => me.roles.some((r) => r !== 'evaluator');
export const ROSTER_WRITE = ['admin', 'community_director', 'grid_leader'];

/** The page a user lands on: the phone page for phone sessions and grid workers on a narrow screen. */
export function homeRoute(me: Me): string {
  const narrow = window.matchMedia?.('(max-width: 700px)').matches ?? false;
  if (me.device === 'phone' || (hasRole(me, 'grid_worker') && narrow)) return '/m';
  return '/board';
}

/** The supplies pages in the nav (issue 7): the roles that read depots beyond their own grids, and keepers. */
export const SUPPLY_ROLES = [
  'depot_keeper',
  'community_director',
  'admin',
  'street_duty_officer',
  'committee_member',
  'drill_controller',
];
export const showSupplies = (me: Me) => hasRole(me, ...SUPPLY_ROLES);
