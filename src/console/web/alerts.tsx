/** What the board and the phone page share about one alert: actions, the resolve form, timeline and SMS list. */
import { useState } from 'preact/hooks';
import { api } from './api.ts';
import { toast, useBusy } from './components.tsx';
import {
  alertTitle,
  fmtDateTime,
  fmtShort,
  fieldLabel,
  notificationStatusLabel,
  OUTCOMES,
  outcomeLabel,
  roleLabel,
  t,
  timelineActionLabel,
  viaLabel,
} from './i18n.ts';
import { live } from './live.ts';
import { whoLabel } from './people.ts';
import type { Alert, ConsoleNotification } from './types.ts';

const SEVERITY_RANK: Record<string, number> = { critical: 0, major: 1, minor: 2, info: 3 };

/** Severity first, then open before acknowledged, then the longest waiting first. */
export function byUrgency(a: Alert, b: Alert): number {
  return (
    (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) ||
    (a.status === 'open' ? 0 : 1) - (b.status === 'open' ? 0 : 1) ||
    Date.parse(a.firstSeen) - Date.parse(b.firstSeen)
  );
}

export function titleOf(a: Alert): string {
  return `${a.drill ? `${t('drill')} ` : ''}${alertTitle(a.type)}`;
}

export async function acknowledge(a: Alert): Promise<void> {
  const updated = await api<Alert>(`alerts/${encodeURIComponent(a.id)}/ack`, { method: 'POST', body: {} });
  live.applyLocal(updated);
}

export async function resolve(a: Alert, outcome: string, note?: string): Promise<void> {
  const body: { outcome: string; note?: string } = { outcome };
  if (note?.trim()) body.note = note.trim();
  const updated = await api<Alert>(`alerts/${encodeURIComponent(a.id)}/resolve`, { body });
  live.applyLocal(updated);
}

export async function addNote(a: Alert, note: string): Promise<void> {
  const updated = await api<Alert>(`alerts/${encodeURIComponent(a.id)}/notes`, { body: { note: note.trim() } });
  live.applyLocal(updated);
}

/** A notification's role: 网格员, or 网格员（代 st-…）for a substitute. */
export function recipientRole(role: string | undefined): string {
  if (!role) return '';
  const m = /^(\w+)\s*\(substitute for ([^)]+)\)$/.exec(role);
  if (m) return `${roleLabel(m[1]!)} (${t('ro_substitute')}: ${whoLabel(m[2])})`;
  return roleLabel(role);
}

/** Who was told: one line per recipient with the furthest status. */
export function NotifiedList({ items }: { items: readonly ConsoleNotification[] | undefined }) {
  if (!items || items.length === 0) return <p class="muted">{t('no_notifications')}</p>;
  return (
    <ul class="plain notified-list">
      {items.map((n) => (
        <li key={n.id}>
          <span class={`nstatus nstatus-${n.status}`}>{notificationStatusLabel(n.status)}</span>{' '}
          <span>{n.staffId ? whoLabel(n.staffId) : n.recipient}</span>{' '}
          <span class="muted">
            {recipientRole(n.role)} · {t('step_n', { n: n.step + 1 })} · {fmtShort(n.updatedAt)}
          </span>
        </li>
      ))}
    </ul>
  );
}

/** Short form for a board row: how many were told, the best status reached. */
export function NotifiedSummary({ items }: { items: readonly ConsoleNotification[] | undefined }) {
  if (!items || items.length === 0) return <span class="muted">—</span>;
  const people = new Map<string, ConsoleNotification>();
  for (const n of items) people.set(n.staffId ?? n.recipient, n);
  const delivered = items.filter((n) => n.status === 'delivered').length;
  const failed = items.filter((n) => n.status === 'failed' || n.status === 'undelivered').length;
  const roles = [...new Set([...people.values()].map((n) => recipientRole(n.role)).filter(Boolean))];
  return (
    <span class="notified" title={roles.join(', ')}>
      {t('notified_n', { n: people.size })}
      {delivered ? <span class="nstatus nstatus-delivered">✓{delivered}</span> : null}
      {failed ? <span class="nstatus nstatus-failed">✗{failed}</span> : null}
      <span class="muted notified-roles"> {roles.slice(0, 2).join(t('list_sep'))}</span>
    </span>
  );
}

export function Timeline({ alert }: { alert: Alert }) {
  return (
    <ol class="timeline" data-testid={`timeline-${alert.id}`}>
      {alert.timeline.map((e, i) => (
        <li key={`${e.ts}-${i}`} class={`tl tl-${e.action}`}>
          <time dateTime={e.ts}>{fmtDateTime(e.ts)}</time>
          <strong>{timelineActionLabel(e.action)}</strong>
          <span>{whoLabel(e.by)}</span>
          <span class="muted">{t('via', { via: viaLabel(e.via) })}</span>
          {e.note ? <span class="tl-note">{e.action === 'resolved' ? outcomeOrNote(e.note) : e.note}</span> : null}
        </li>
      ))}
    </ol>
  );
}

function outcomeOrNote(note: string): string {
  return (OUTCOMES as readonly string[]).includes(note) ? outcomeLabel(note) : note;
}

export function Evidence({ alert }: { alert: Alert }) {
  if (alert.evidence.length === 0) return null;
  return (
    <ul class="plain evidence">
      {alert.evidence.map((e, i) => (
        <li key={`${e.ts}-${i}`}>
          <time dateTime={e.ts}>{fmtShort(e.ts)}</time>{' '}
          {e.deviceId ? <a href={`#/devices/${encodeURIComponent(e.deviceId)}`}>{e.deviceId}</a> : null}{' '}
          {e.field ? `${fieldLabel(e.field)} = ${String(e.value)}` : null}
          {e.eventType ? `${e.eventType}` : null} {e.note ? <span class="muted">{e.note}</span> : null}
        </li>
      ))}
    </ul>
  );
}

/** Outcome choice as big radio buttons (a finger on a phone, a click at the desk), an optional note, resolve. */
export function ResolveForm({ alert, onDone }: { alert: Alert; onDone?: () => void }) {
  const [outcome, setOutcome] = useState<string>('');
  const [note, setNote] = useState('');
  const [busy, run] = useBusy();
  const submit = (ev: Event) => {
    ev.preventDefault();
    if (!outcome) {
      toast(t('resolve_pick'), 'error');
      return;
    }
    void run(async () => {
      await resolve(alert, outcome, note);
      toast(t('resolved_toast', { title: alertTitle(alert.type), outcome: outcomeLabel(outcome) }));
      onDone?.();
    });
  };
  const name = `outcome-${alert.id}`;
  return (
    <form class="resolve-form" onSubmit={submit} data-testid={`resolve-form-${alert.id}`}>
      <fieldset>
        <legend>{t('resolve_title')}</legend>
        <div class="outcomes">
          {OUTCOMES.map((o) => (
            <label key={o} class={`outcome ${outcome === o ? 'selected' : ''}`} data-testid={`outcome-${o}`}>
              <input type="radio" name={name} value={o} checked={outcome === o} onChange={() => setOutcome(o)} />
              <span>{outcomeLabel(o)}</span>
            </label>
          ))}
        </div>
      </fieldset>
      <label class="field">
        <span>{t('resolve_note')}</span>
        <textarea rows={2} maxLength={2000} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
      </label>
      <div class="row-actions">
        <button
          type="submit"
          class="btn btn-primary btn-big"
          disabled={busy || !outcome}
          data-testid={`resolve-submit-${alert.id}`}
        >
          {t('resolve_submit')}
        </button>
        {onDone ? (
          <button type="button" class="btn btn-big" onClick={onDone}>
            {t('cancel')}
          </button>
        ) : null}
      </div>
    </form>
  );
}

export function NoteForm({ alert }: { alert: Alert }) {
  const [note, setNote] = useState('');
  const [busy, run] = useBusy();
  const submit = (ev: Event) => {
    ev.preventDefault();
    if (!note.trim()) return;
    void run(async () => {
      await addNote(alert, note);
      setNote('');
      toast(t('saved'));
    });
  };
  return (
    <form class="note-form" onSubmit={submit}>
      <label class="field grow">
        <span class="sr-only">{t('add_note')}</span>
        <input
          type="text"
          maxLength={2000}
          placeholder={t('note_placeholder')}
          value={note}
          onInput={(e) => setNote(e.currentTarget.value)}
          data-testid={`note-input-${alert.id}`}
        />
      </label>
      <button type="submit" class="btn" disabled={busy || !note.trim()} data-testid={`note-submit-${alert.id}`}>
        {t('note_submit')}
      </button>
    </form>
  );
}
