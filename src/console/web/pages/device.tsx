/** A device (`#/devices/<id>`): status, last seen, battery, last readings, rejects, commands and their answers. */
import { useEffect, useState } from 'preact/hooks';
import { api, useApi } from '../api.ts';
import { TimeChart } from '../chart.tsx';
import { toSeries } from '../activity.tsx';
import { DeviceStatus, ErrorBox, Loading, Section, toast, useBusy } from '../components.tsx';
import {
  commandLabel,
  commandStatusLabel,
  fieldLabel,
  fmtDateTime,
  fmtShort,
  settings,
  t,
  kindLabel,
} from '../i18n.ts';
import { whoLabel } from '../people.ts';
import { addressOf, gridName } from '../places.ts';
import { href } from '../router.ts';
import { hasRole } from '../session.ts';
import { useStore } from '../store.ts';
import type { DeviceCommand, DeviceDetail, DeviceModel, Me, Page, ReadingPoint, Reject } from '../types.ts';

/** Who may send commands (COMMAND_ROLES in src/http/routes/devices.ts); the server checks it anyway. */
const COMMAND_ROLES = ['admin', 'grid_worker', 'grid_leader', 'community_director'];

let modelsCache: Promise<DeviceModel[]> | undefined;
function models(): Promise<DeviceModel[]> {
  modelsCache ??= api<{ items: DeviceModel[] }>('models').then(
    (r) => r.items,
    () => {
      modelsCache = undefined;
      return [];
    },
  );
  return modelsCache;
}

export function DevicePage({ id, me }: { id: string; me: Me }) {
  useStore(settings);
  const dev = useApi<DeviceDetail>(`devices/${encodeURIComponent(id)}`);
  const [model, setModel] = useState<DeviceModel | undefined>();
  useEffect(() => {
    if (dev.data) void models().then((list) => setModel(list.find((m) => m.id === dev.data!.model)));
  }, [dev.data?.model]);
  // live status: the device's row refreshes every 15 s
  useEffect(() => {
    const timer = window.setInterval(() => dev.reload(), 15_000);
    return () => window.clearInterval(timer);
  }, [dev.reload]);
  if (dev.error) return <ErrorBox error={dev.error} onRetry={dev.reload} />;
  if (!dev.data) return <Loading />;
  const d = dev.data;
  const readings = Object.entries(d.lastReading ?? {});
  const lastBattery = d.lastReading?.battery_pct?.value;
  const battery = d.battery?.pct ?? (typeof lastBattery === 'number' ? lastBattery : undefined);
  const p = d.placement;
  return (
    <div class="page page-device" data-testid="page-device" data-device-id={d.id}>
      <div class="page-head">
        <h1>
          {t('dev_title')} <code>{d.id}</code> <DeviceStatus status={d.status} />
        </h1>
        <p class="muted">
          {d.drill ? <span class="tag tag-warn">{t('dev_drill')}</span> : null}
          {d.disabled ? <span class="tag tag-warn">{t('dev_disabled')}</span> : null}
        </p>
      </div>
      <div class="grid-2">
        <Section title={t('dev_status')} testid="device-status">
          <dl class="facts">
            <dt>{t('dev_status')}</dt>
            <dd data-testid="device-status-value">
              <DeviceStatus status={d.status} />
            </dd>
            <dt>{t('dev_last_seen')}</dt>
            <dd>{fmtDateTime(d.lastSeen)}</dd>
            <dt>{t('dev_battery')}</dt>
            <dd>
              {battery !== undefined ? (
                <span class={`battery ${battery < 20 ? 'low' : ''}`} data-testid="device-battery">
                  <meter min={0} max={100} low={20} high={50} optimum={100} value={battery} /> {Math.round(battery)}%
                  {d.battery ? <span class="muted small"> · {fmtShort(d.battery.ts)}</span> : null}
                </span>
              ) : (
                '—'
              )}
            </dd>
            <dt>{t('dev_model')}</dt>
            <dd>
              {d.model}
              {model?.vendor ? <span class="muted"> · {model.vendor}</span> : null}
            </dd>
            <dt>{t('dev_kind')}</dt>
            <dd>{kindLabel(d.kind ?? model?.kind) || '—'}</dd>
            <dt>{t('dev_where')}</dt>
            <dd>
              {p.householdId ? (
                <a href={href('households', p.householdId)}>{addressOf(p)}</a>
              ) : (
                addressOf({ ...p, deviceId: d.id })
              )}{' '}
              <span class="muted">{gridName(p.gridId)}</span>
            </dd>
          </dl>
        </Section>
        <Section title={t('dev_readings')} testid="device-readings">
          {readings.length === 0 ? <p class="muted">{t('none')}</p> : null}
          <table class="table compact">
            <tbody>
              {readings.map(([field, r]) => (
                <tr key={field}>
                  <th scope="row">{fieldLabel(field)}</th>
                  <td>{String(r.value)}</td>
                  <td class="muted">{fmtShort(r.ts)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      </div>
      {readings.length > 0 ? <DeviceChart device={d} /> : null}
      <div class="grid-2">
        <Commands device={d} model={model} me={me} />
        <Rejects id={d.id} />
      </div>
    </div>
  );
}

function DeviceChart({ device }: { device: DeviceDetail }) {
  const fields = Object.keys(device.lastReading ?? {});
  const [field, setField] = useState(fields.find((f) => f !== 'battery_pct') ?? fields[0] ?? '');
  const [data, setData] = useState<{ xs: number[]; ys: (number | null)[] } | undefined>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    if (!field) return;
    const to = Date.now();
    const from = to - 86_400_000;
    const boolean = typeof device.lastReading?.[field]?.value === 'boolean';
    setData(undefined);
    setError(undefined);
    api<{ items: ReadingPoint[] }>('readings', {
      query: { deviceId: device.id, field, from, to, every: '30m', agg: boolean ? 'sum' : 'mean', limit: 10_000 },
    }).then((r) => setData(toSeries(r.items, { kind: boolean ? 'sum' : 'mean' }, from, to, 1_800_000)), setError);
  }, [device.id, field]);
  return (
    <Section
      title={t('dev_chart')}
      testid="device-chart"
      actions={
        <label class="field field-inline">
          <span class="sr-only">{t('dev_field')}</span>
          <select value={field} onChange={(e) => setField(e.currentTarget.value)}>
            {fields.map((f) => (
              <option key={f} value={f}>
                {fieldLabel(f)}
              </option>
            ))}
          </select>
        </label>
      }
    >
      {error ? <ErrorBox error={error} /> : null}
      {data ? (
        <TimeChart
          xs={data.xs}
          ys={[data.ys]}
          series={[
            {
              label: fieldLabel(field),
              colour: '#1565c0',
              bars: typeof device.lastReading?.[field]?.value === 'boolean',
            },
          ]}
          height={170}
          label={fieldLabel(field)}
          testid="device-chart-plot"
        />
      ) : error ? null : (
        <Loading />
      )}
    </Section>
  );
}

function Rejects({ id }: { id: string }) {
  const rejects = useApi<{ items: Reject[] }>(`devices/${encodeURIComponent(id)}/rejects`);
  return (
    <Section title={t('dev_rejects')} testid="device-rejects">
      {rejects.error ? <ErrorBox error={rejects.error} /> : null}
      {rejects.data?.items.length === 0 ? <p class="muted">{t('dev_rejects_none')}</p> : null}
      <ul class="plain list-lines">
        {rejects.data?.items.map((r, i) => (
          <li key={`${r.ts}-${i}`} data-testid="reject">
            <code>{r.reason}</code> <span class="muted small">{fmtDateTime(r.ts)}</span>
            <span class="muted small"> · {r.topic}</span>
            <div class="small">{r.message}</div>
          </li>
        ))}
      </ul>
    </Section>
  );
}

function Commands({ device, model, me }: { device: DeviceDetail; model?: DeviceModel; me: Me }) {
  const path = `devices/${encodeURIComponent(device.id)}/commands`;
  const list = useApi<Page<DeviceCommand>>(path, { limit: 20 });
  const names = device.commands.length > 0 ? device.commands : (model?.commands ?? []);
  const [name, setName] = useState('');
  const [args, setArgs] = useState('{}');
  const [busy, run] = useBusy();
  useEffect(() => {
    if (!name && names[0]) setName(names[0]);
  }, [names.join(',')]);
  // commands wait for the device's answer: refresh while one is still out
  const waiting = list.data?.items.some((c) => c.status === 'sent');
  useEffect(() => {
    if (!waiting) return;
    const timer = window.setTimeout(() => list.reload(), 3000);
    return () => window.clearTimeout(timer);
  }, [waiting, list.data]);
  const submit = (ev: Event) => {
    ev.preventDefault();
    let parsed: unknown;
    try {
      parsed = JSON.parse(args || '{}');
    } catch {
      parsed = undefined;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      toast(t('dev_args_invalid'), 'error');
      return;
    }
    if (!window.confirm(t('dev_command_confirm', { name: commandLabel(name), id: device.id }))) return;
    void run(async () => {
      await api(path, { body: { name, args: parsed } });
      toast(t('dev_command_sent'));
      list.reload();
    });
  };
  return (
    <Section title={t('dev_commands')} testid="device-commands">
      {names.length === 0 ? <p class="muted">{t('dev_no_commands')}</p> : null}
      {names.length > 0 && hasRole(me, ...COMMAND_ROLES) ? (
        <form class="form-inline" onSubmit={submit} data-testid="command-form">
          <label class="field">
            <span>{t('dev_command_name')}</span>
            <select value={name} onChange={(e) => setName(e.currentTarget.value)} data-testid="command-name">
              {names.map((n) => (
                <option key={n} value={n}>
                  {commandLabel(n)} ({n})
                </option>
              ))}
            </select>
          </label>
          <label class="field grow">
            <span>{t('dev_command_args')}</span>
            <input type="text" value={args} onInput={(e) => setArgs(e.currentTarget.value)} spellcheck={false} />
          </label>
          <button type="submit" class="btn btn-primary" disabled={busy || !name} data-testid="command-submit">
            {t('dev_command_send')}
          </button>
        </form>
      ) : null}
      {list.error ? <ErrorBox error={list.error} /> : null}
      {list.data?.items.length === 0 ? <p class="muted">{t('dev_commands_none')}</p> : null}
      {list.data && list.data.items.length > 0 ? (
        <table class="table compact" data-testid="command-list">
          <thead>
            <tr>
              <th>{t('ob_time')}</th>
              <th>{t('dev_command_name')}</th>
              <th>{t('cmd_status')}</th>
              <th>{t('cmd_by')}</th>
              <th>{t('cmd_answer')}</th>
            </tr>
          </thead>
          <tbody>
            {list.data.items.map((c) => {
              const answer = c.answer;
              return (
                <tr key={c.id} data-testid={`command-${c.id}`} data-status={c.status}>
                  <td class="nowrap">{fmtShort(c.sentAt)}</td>
                  <td>
                    {commandLabel(c.name)}
                    {Object.keys(c.args).length > 0 ? <code class="small"> {JSON.stringify(c.args)}</code> : null}
                  </td>
                  <td>
                    <span class={`cstatus cstatus-${c.status}`}>{commandStatusLabel(c.status)}</span>
                  </td>
                  <td>{whoLabel(c.by)}</td>
                  <td class="small">
                    {answer ?? '—'}
                    {c.answeredAt ? <div class="muted">{fmtShort(c.answeredAt)}</div> : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
    </Section>
  );
}
