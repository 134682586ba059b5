/** The duty roster (`#/roster`): absences with their substitutes; admins, directors and grid leaders add and end them. */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { ErrorBox, Loading, MoreButton, toast, useBusy } from '../components.tsx';
import { epochToZoned, fmtDateTime, ROLES, roleLabel, settings, t, zonedToEpoch } from '../i18n.ts';
import { people, whoLabel } from '../people.ts';
import { gridName, places } from '../places.ts';
import { hasRole, ROSTER_WRITE } from '../session.ts';
import { useStore } from '../store.ts';
import type { Absence, Me } from '../types.ts';
import { usePaged } from './paged.ts';

export function RosterPage({ me }: { me: Me }) {
  useStore(settings);
  useStore(places);
  const [activeAt, setActiveAt] = useState<string | undefined>();
  const list = usePaged<Absence>('roster', { activeAt });
  const [busy, run] = useBusy();
  const canWrite = hasRole(me, ...ROSTER_WRITE);
  const now = Date.now();
  const end = (a: Absence) =>
    run(async () => {
      await api(`roster/${encodeURIComponent(a.id)}`, { method: 'DELETE' });
      list.reload();
    });
  return (
    <div class="page page-roster" data-testid="page-roster">
      <div class="page-head">
        <h1>{t('ro_title')}</h1>
        <label class="check">
          <input
            type="checkbox"
            checked={activeAt !== undefined}
            onChange={(e) => setActiveAt(e.currentTarget.checked ? new Date().toISOString() : undefined)}
          />
          {t('ro_active_now')}
        </label>
      </div>
      {canWrite ? <AddAbsence onAdded={list.reload} /> : null}
      {list.error ? <ErrorBox error={list.error} onRetry={list.reload} /> : null}
      {!list.loading && !list.error && list.items.length === 0 ? <p class="empty">{t('ro_empty')}</p> : null}
      {list.items.length > 0 ? (
        <div class="table-wrap">
          <table class="table" data-testid="roster-table">
            <thead>
              <tr>
                <th>{t('ro_staff')}</th>
                <th>{t('ro_substitute')}</th>
                <th>{t('ro_from')}</th>
                <th>{t('ro_to')}</th>
                <th>{t('ro_role')}</th>
                <th>{t('ro_note')}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.items.map((a) => {
                const active = Date.parse(a.from) <= now && Date.parse(a.to) > now;
                return (
                  <tr key={a.id} data-testid={`absence-${a.id}`}>
                    <td>
                      {whoLabel(a.staffId)} {active ? <span class="tag">{t('ro_active_now')}</span> : null}
                    </td>
                    <td>{whoLabel(a.substituteId)}</td>
                    <td class="nowrap">{fmtDateTime(a.from)}</td>
                    <td class="nowrap">{fmtDateTime(a.to)}</td>
                    <td>
                      {a.role ? roleLabel(a.role) : t('ro_any_role')}
                      {a.gridId ? ` · ${gridName(a.gridId)}` : ''}
                    </td>
                    <td class="small">{a.note}</td>
                    <td>
                      {canWrite && Date.parse(a.to) > now ? (
                        <button type="button" class="btn btn-small" onClick={() => end(a)} disabled={busy}>
                          {t('ro_end')}
                        </button>
                      ) : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
      {list.loading ? <Loading /> : null}
      <MoreButton cursor={list.cursor} onMore={list.more} busy={list.loading} />
    </div>
  );
}

function StaffInput({
  label,
  value,
  onChange,
  testid,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  testid: string;
}) {
  const names = useStore(people);
  if (names.size > 0) {
    return (
      <label class="field">
        <span>{label}</span>
        <select value={value} onChange={(e) => onChange(e.currentTarget.value)} required data-testid={testid}>
          <option value="" />
          {[...names.entries()]
            .sort((a, b) => a[1].localeCompare(b[1]))
            .map(([id, name]) => (
              <option key={id} value={id}>
                {name}
              </option>
            ))}
        </select>
      </label>
    );
  }
  // without the staff list (admins only), the staff id
  return (
    <label class="field">
      <span>{label}</span>
      <input
        type="text"
        value={value}
        onInput={(e) => onChange(e.currentTarget.value)}
        placeholder="st-…"
        required
        data-testid={testid}
      />
    </label>
  );
}

function AddAbsence({ onAdded }: { onAdded: () => void }) {
  const p = useStore(places);
  const [staffId, setStaffId] = useState('');
  const [substituteId, setSubstituteId] = useState('');
  const [from, setFrom] = useState(() => epochToZoned(Date.now()));
  const [to, setTo] = useState(() => epochToZoned(Date.now() + 86_400_000));
  const [role, setRole] = useState('');
  const [gridId, setGridId] = useState('');
  const [note, setNote] = useState('');
  const [busy, run] = useBusy();
  const submit = (ev: Event) => {
    ev.preventDefault();
    const f = zonedToEpoch(from);
    const tt = zonedToEpoch(to);
    if (f === undefined || tt === undefined) return;
    const body: Record<string, string> = {
      staffId,
      substituteId,
      from: new Date(f).toISOString(),
      to: new Date(tt).toISOString(),
    };
    if (role) body.role = role;
    if (gridId) body.gridId = gridId;
    if (note.trim()) body.note = note.trim();
    void run(async () => {
      await api('roster', { body });
      toast(t('saved'));
      setNote('');
      onAdded();
    });
  };
  return (
    <form class="card form-grid" onSubmit={submit} data-testid="roster-form">
      <StaffInput label={t('ro_staff')} value={staffId} onChange={setStaffId} testid="roster-staff" />
      <StaffInput
        label={t('ro_substitute')}
        value={substituteId}
        onChange={setSubstituteId}
        testid="roster-substitute"
      />
      <label class="field">
        <span>{t('ro_from')}</span>
        <input type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} required />
      </label>
      <label class="field">
        <span>{t('ro_to')}</span>
        <input type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} required />
      </label>
      <label class="field">
        <span>{t('ro_role')}</span>
        <select value={role} onChange={(e) => setRole(e.currentTarget.value)}>
          <option value="">{t('ro_any_role')}</option>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {roleLabel(r)}
            </option>
          ))}
        </select>
      </label>
      <label class="field">
        <span>{t('ro_grid')}</span>
        <select value={gridId} onChange={(e) => setGridId(e.currentTarget.value)}>
          <option value="">{t('ro_any_grid')}</option>
          {[...p.grids.values()].map((g) => (
            <option key={g.id} value={g.id}>
              {g.name}
            </option>
          ))}
        </select>
      </label>
      <label class="field grow">
        <span>{t('ro_note')}</span>
        <input type="text" maxLength={500} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
      </label>
      <div class="row-actions">
        <button
          type="submit"
          class="btn btn-primary"
          disabled={busy || !staffId || !substituteId}
          data-testid="roster-submit"
        >
          {t('ro_add')}
        </button>
      </div>
    </form>
  );
}
