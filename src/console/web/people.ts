/** Staff names for timelines ("acknowledged by 王*明"): the signed-in person always; everyone when the staff list may be read (admins). */
import { api } from './api.ts';
import { t } from './i18n.ts';
import { session } from './session.ts';
import { Store } from './store.ts';
import type { Page, Staff } from './types.ts';

export const people = new Store<ReadonlyMap<string, string>>(new Map());
let loading: Promise<void> | undefined;

export function loadPeople(isAdmin: boolean): Promise<void> {
  if (!isAdmin) return Promise.resolve();
  loading ??= api<Page<Staff>>('staff', { query: { limit: 1000 } }).then(
    (page) => people.set(new Map(page.items.map((s) => [s.id, s.name || s.username]))),
    () => undefined,
  );
  return loading;
}

export function resetPeople(): void {
  loading = undefined;
  people.set(new Map());
}

/** Who did something: a staff member's name, "me", the system, a rule or a device. */
export function whoLabel(by: string | undefined): string {
  if (!by) return '—';
  const s = session.get();
  if (s.state === 'in' && s.me.id === by) return s.me.name ? `${s.me.name} · ${t('by_you')}` : t('by_you');
  if (by === 'system') return t('by_system');
  if (by.startsWith('rule:')) return t('by_system');
  if (by.startsWith('device:')) return by.slice('device:'.length);
  return people.get().get(by) ?? by;
}
