/** Staff accounts (`#/staff`, admins): list, create, roles and coverage, disable, reset password. */
import { useState } from 'preact/hooks';
import { api, useApi } from '../api.ts';
import { ErrorBox, Loading, toast, useBusy } from '../components.tsx';
import { ROLES, roleLabel, t } from '../i18n.ts';
import { loadPeople, resetPeople } from '../people.ts';
import { places } from '../places.ts';
import { useStore } from '../store.ts';
import type { HierarchyNode, Me, Page, Staff } from '../types.ts';

interface Coverage {
  gridIds: string[];
  communityIds: string[];
  streetIds: string[];
}

function refreshNames(): void {
  resetPeople();
  void loadPeople(true);
}

export function StaffPage({ me }: { me: Me }) {
  const list = useApi<Page<Staff>>('staff', { limit: 1000 });
  const communities = useApi<{ items: HierarchyNode[] }>('hierarchy/community');
  const streets = useApi<{ items: HierarchyNode[] }>('hierarchy/street');
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  const nodes = { communities: communities.data?.items ?? [], streets: streets.data?.items ?? [] };
  return (
    <div class="page page-staff" data-testid="page-staff">
      <div class="page-head">
        <h1>{t('st_title')}</h1>
        {!creating ? (
          <button type="button" class="btn btn-primary" onClick={() => setCreating(true)} data-testid="staff-new">
            {t('st_create')}
          </button>
        ) : null}
      </div>
      {creating ? (
        <CreateStaff
          nodes={nodes}
          onDone={(created) => {
            setCreating(false);
            if (created) {
              list.reload();
              refreshNames();
            }
          }}
        />
      ) : null}
      {list.error ? <ErrorBox error={list.error} onRetry={list.reload} /> : null}
      {!list.data && !list.error ? <Loading /> : null}
      {list.data ? (
        <div class="table-wrap">
          <table class="table" data-testid="staff-table">
            <thead>
              <tr>
                <th>{t('st_username')}</th>
                <th>{t('st_name')}</th>
                <th>{t('st_roles')}</th>
                <th>{t('st_coverage')}</th>
                <th>{t('filter_status')}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((s) => [
                <tr key={s.id} data-testid={`staff-${s.username}`} class={s.disabled ? 'disabled' : ''}>
                  <td>
                    <code>{s.username}</code>
                  </td>
                  <td>
                    {s.name}
                    <div class="muted small">{s.phone}</div>
                  </td>
                  <td>{s.roles.map(roleLabel).join(t('list_sep'))}</td>
                  <td class="small">
                    <CoverageText c={s.coverage} nodes={nodes} />
                  </td>
                  <td>{s.disabled ? <span class="tag tag-warn">{t('st_disabled')}</span> : t('st_active')}</td>
                  <td>
                    <button
                      type="button"
                      class="btn btn-small"
                      aria-expanded={editing === s.id}
                      onClick={() => setEditing(editing === s.id ? null : s.id)}
                      data-testid={`staff-edit-${s.username}`}
                    >
                      {t('st_edit')}
                    </button>
                  </td>
                </tr>,
                editing === s.id ? (
                  <tr key={`${s.id}-edit`}>
                    <td colSpan={6}>
                      <EditStaff
                        staff={s}
                        me={me}
                        nodes={nodes}
                        onDone={(changed) => {
                          if (changed) {
                            list.reload();
                            refreshNames();
                          }
                        }}
                      />
                    </td>
                  </tr>
                ) : null,
              ])}
            </tbody>
          </table>
        </div>
      ) : null}
    </div>
  );
}

interface Nodes {
  communities: HierarchyNode[];
  streets: HierarchyNode[];
}

function CoverageText({ c, nodes }: { c: Coverage; nodes: Nodes }) {
  const p = useStore(places);
  const name = (list: ReadonlyMap<string, HierarchyNode> | HierarchyNode[], id: string) =>
    (Array.isArray(list) ? list.find((n) => n.id === id)?.name : list.get(id)?.name) ?? id;
  const parts = [
    ...c.streetIds.map((id) => name(nodes.streets, id)),
    ...c.communityIds.map((id) => name(nodes.communities, id)),
    ...c.gridIds.map((id) => name(p.grids, id)),
  ];
  return <span>{parts.length ? parts.join(t('list_sep')) : '—'}</span>;
}

function RolePicker({ roles, onChange }: { roles: string[]; onChange: (r: string[]) => void }) {
  return (
    <fieldset class="checks">
      <legend>{t('st_roles')}</legend>
      {ROLES.map((r) => (
        <label key={r} class="check">
          <input
            type="checkbox"
            checked={roles.includes(r)}
            onChange={(e) => onChange(e.currentTarget.checked ? [...roles, r] : roles.filter((x) => x !== r))}
            data-testid={`role-${r}`}
          />
          {roleLabel(r)}
        </label>
      ))}
    </fieldset>
  );
}

function CoveragePicker({ c, onChange, nodes }: { c: Coverage; onChange: (c: Coverage) => void; nodes: Nodes }) {
  const p = useStore(places);
  const group = (legend: string, key: keyof Coverage, items: HierarchyNode[]) =>
    items.length === 0 ? null : (
      <fieldset class="checks">
        <legend>{legend}</legend>
        {items.map((n) => (
          <label key={n.id} class="check">
            <input
              type="checkbox"
              checked={c[key].includes(n.id)}
              onChange={(e) =>
                onChange({
                  ...c,
                  [key]: e.currentTarget.checked ? [...c[key], n.id] : c[key].filter((x) => x !== n.id),
                })
              }
            />
            {n.name}
          </label>
        ))}
      </fieldset>
    );
  return (
    <>
      {group(t('st_grids'), 'gridIds', [...p.grids.values()])}
      {group(t('st_communities'), 'communityIds', nodes.communities)}
      {group(t('st_streets'), 'streetIds', nodes.streets)}
    </>
  );
}

function CreateStaff({ onDone, nodes }: { onDone: (created?: Staff) => void; nodes: Nodes }) {
  const [form, setForm] = useState({ username: '', name: '', phone: '+86', password: '' });
  const [roles, setRoles] = useState<string[]>(['grid_worker']);
  const [coverage, setCoverage] = useState<Coverage>({ gridIds: [], communityIds: [], streetIds: [] });
  const [busy, run] = useBusy();
  const field = (key: keyof typeof form, label: string, type = 'text', extra: Record<string, unknown> = {}) => (
    <label class="field">
      <span>{label}</span>
      <input
        type={type}
        value={form[key]}
        onInput={(e) => setForm({ ...form, [key]: e.currentTarget.value })}
        required
        data-testid={`staff-${key}`}
        {...extra}
      />
    </label>
  );
  const submit = (ev: Event) => {
    ev.preventDefault();
    void run(async () => {
      const created = await api<Staff>('staff', { body: { ...form, roles, coverage } });
      toast(t('st_created'));
      onDone(created);
    });
  };
  return (
    <form class="card form-grid" onSubmit={submit} data-testid="staff-create-form">
      {field('username', t('st_username'), 'text', { pattern: '[a-z0-9_.\\-]{3,32}', autocomplete: 'off' })}
      {field('name', t('st_name'))}
      {field('phone', t('st_phone'), 'tel', { pattern: '\\+[1-9][0-9]{7,14}' })}
      {field('password', t('st_password'), 'password', { minLength: 10, autocomplete: 'new-password' })}
      <RolePicker roles={roles} onChange={setRoles} />
      <CoveragePicker c={coverage} onChange={setCoverage} nodes={nodes} />
      <div class="row-actions">
        <button type="submit" class="btn btn-primary" disabled={busy || roles.length === 0} data-testid="staff-submit">
          {t('save')}
        </button>
        <button type="button" class="btn" onClick={() => onDone()}>
          {t('cancel')}
        </button>
      </div>
    </form>
  );
}

function EditStaff({
  staff,
  me,
  nodes,
  onDone,
}: {
  staff: Staff;
  me: Me;
  nodes: Nodes;
  onDone: (changed: boolean) => void;
}) {
  const [roles, setRoles] = useState<string[]>(staff.roles);
  const [coverage, setCoverage] = useState<Coverage>(staff.coverage);
  const [name, setName] = useState(staff.name);
  const [phone, setPhone] = useState(staff.phone);
  const [password, setPassword] = useState('');
  const [busy, run] = useBusy();
  const patch = (body: Record<string, unknown>) =>
    run(async () => {
      await api<Staff>(`staff/${encodeURIComponent(staff.id)}`, { method: 'PATCH', body });
      toast(t('saved'));
      onDone(true);
    });
  const save = (ev: Event) => {
    ev.preventDefault();
    void patch({ name, phone, roles, coverage });
  };
  const reset = (ev: Event) => {
    ev.preventDefault();
    void run(async () => {
      await api(`staff/${encodeURIComponent(staff.id)}/password`, { body: { password } });
      setPassword('');
      toast(t('st_password_reset'));
    });
  };
  return (
    <div class="edit-staff">
      <form class="form-grid" onSubmit={save} data-testid="staff-edit-form">
        <label class="field">
          <span>{t('st_name')}</span>
          <input type="text" value={name} onInput={(e) => setName(e.currentTarget.value)} required />
        </label>
        <label class="field">
          <span>{t('st_phone')}</span>
          <input type="tel" value={phone} onInput={(e) => setPhone(e.currentTarget.value)} required />
        </label>
        <RolePicker roles={roles} onChange={setRoles} />
        <CoveragePicker c={coverage} onChange={setCoverage} nodes={nodes} />
        <div class="row-actions">
          <button type="submit" class="btn btn-primary" disabled={busy || roles.length === 0}>
            {t('save')}
          </button>
          {staff.id !== me.id ? (
            <button
              type="button"
              class={`btn ${staff.disabled ? '' : 'btn-danger'}`}
              disabled={busy}
              onClick={() => void patch({ disabled: !staff.disabled })}
              data-testid={`staff-toggle-${staff.username}`}
            >
              {staff.disabled ? t('st_enable') : t('st_disable')}
            </button>
          ) : null}
        </div>
      </form>
      <form class="form-inline" onSubmit={reset} data-testid="staff-password-form">
        <label class="field grow">
          <span>{t('st_new_password')}</span>
          <input
            type="password"
            minLength={10}
            value={password}
            autocomplete="new-password"
            onInput={(e) => setPassword(e.currentTarget.value)}
            required
          />
        </label>
        <button type="submit" class="btn" disabled={busy || password.length < 10}>
          {t('st_reset_password')}
        </button>
      </form>
    </div>
  );
}
