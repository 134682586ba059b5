/** Small shared pieces: chips and badges (always with a text label, never colour alone), ticking ages, errors, toasts. */
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.ts';
import {
  colourClassLabel,
  colourLabel,
  deviceStatusLabel,
  fmtAge,
  fmtDateTime,
  severityLabel,
  statusLabel,
  t,
} from './i18n.ts';
import { Store, useStore } from './store.ts';

// ------------------------------------------------------------------ clock

const now = new Store(Date.now());
let ticking = 0;
let tickTimer: number | undefined;

/** The current time, re-rendering every second while a component shows it. */
export function useNow(): number {
  useEffect(() => {
    if (ticking++ === 0) tickTimer = window.setInterval(() => now.set(Date.now()), 1000);
    return () => {
      if (--ticking === 0) window.clearInterval(tickTimer);
    };
  }, []);
  return useStore(now);
}

/** Time since `since`, ticking. */
export function Age({ since, testid }: { since: string | number; testid?: string }) {
  const n = useNow();
  const ms = typeof since === 'number' ? since : Date.parse(since);
  if (Number.isNaN(ms)) return <span class="age">—</span>;
  return (
    <time class="age" dateTime={new Date(ms).toISOString()} title={fmtDateTime(ms)} data-testid={testid}>
      {fmtAge(n - ms)}
    </time>
  );
}

// ------------------------------------------------------------------ chips

export function ColourChip({ colour, long }: { colour?: string; long?: boolean }) {
  if (!colour) return null;
  return (
    <span class={`chip chip-${colour}`} title={colourClassLabel(colour)} data-colour={colour}>
      <span class="chip-dot" aria-hidden="true" />
      {colourLabel(colour)}
      {long ? ` · ${colourClassLabel(colour)}` : ''}
    </span>
  );
}

export function SeverityBadge({ severity }: { severity: string }) {
  return (
    <span class={`sev sev-${severity}`} data-severity={severity}>
      {severityLabel(severity)}
    </span>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`status status-${status}`}>{statusLabel(status)}</span>;
}

export function DeviceStatus({ status }: { status: string }) {
  return (
    <span class={`dstatus dstatus-${status}`}>
      <span class="chip-dot" aria-hidden="true" />
      {deviceStatusLabel(status)}
    </span>
  );
}

export function DrillBadge() {
  return (
    <span class="drill" data-testid="drill-badge">
      {t('drill')}
    </span>
  );
}

// ------------------------------------------------------------------ states

export function Loading() {
  return (
    <p class="muted loading" role="status">
      {t('loading')}
    </p>
  );
}

/** An API error as a person should read it: not yours (403), not on this server yet, no network, or the message. */
export function ErrorBox({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  let text: string;
  let testid = 'error';
  if (error instanceof ApiError && error.forbidden) {
    text = t('forbidden');
    testid = 'forbidden';
  } else if (error instanceof ApiError && error.missing) {
    text = t('not_available', { path: error.path.split('?')[0] ?? '' });
    testid = 'not-available';
  } else if (error instanceof ApiError && error.status === 404) {
    text = t('not_found', { what: error.message });
  } else {
    text = error instanceof Error ? t('error_generic', { msg: error.message }) : String(error);
  }
  return (
    <div class={`notice ${testid === 'error' ? 'notice-error' : 'notice-info'}`} role="alert" data-testid={testid}>
      <span>{text}</span>
      {onRetry && testid === 'error' ? (
        <button type="button" class="btn btn-small" onClick={onRetry}>
          {t('retry')}
        </button>
      ) : null}
    </div>
  );
}

export function Section({
  title,
  children,
  actions,
  testid,
}: {
  title: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
  testid?: string;
}) {
  return (
    <section class="card" data-testid={testid}>
      <header class="card-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

// ------------------------------------------------------------------ toasts

interface Toast {
  id: number;
  text: string;
  kind: 'ok' | 'error';
}
const toasts = new Store<Toast[]>([]);
let toastId = 0;

export function toast(text: string, kind: Toast['kind'] = 'ok'): void {
  const id = ++toastId;
  toasts.update((list) => [...list.slice(-2), { id, text, kind }]);
  window.setTimeout(() => toasts.update((list) => list.filter((x) => x.id !== id)), kind === 'error' ? 8000 : 4000);
}

export function toastError(err: unknown): void {
  if (err instanceof ApiError && err.forbidden) toast(t('forbidden'), 'error');
  else toast(err instanceof Error ? err.message : String(err), 'error');
}

export function Toasts() {
  const list = useStore(toasts);
  return (
    <div class="toasts" aria-live="polite" data-testid="toasts">
      {list.map((x) => (
        <div key={x.id} class={`toast toast-${x.kind}`} role={x.kind === 'error' ? 'alert' : 'status'}>
          {x.text}
        </div>
      ))}
    </div>
  );
}

/** Runs an action with a busy flag; errors become a toast. */
export function useBusy(): [boolean, (fn: () => Promise<void>) => Promise<void>] {
  const [busy, setBusy] = useState(false);
  const run = async (fn: () => Promise<void>) => {
    if (busy) return;
    setBusy(true);
    try {
      await fn();
    } catch (err) {
      toastError(err);
    } finally {
      setBusy(false);
    }
  };
  return [busy, run];
}

/** A "load more" button for lists paged by nextCursor. */
export function MoreButton({ cursor, onMore, busy }: { cursor?: string; onMore: () => void; busy?: boolean }) {
  if (!cursor) return null;
  return (
    <div class="more">
      <button type="button" class="btn" onClick={onMore} disabled={busy} data-testid="load-more">
        {t('more')}
      </button>
    </div>
  );
}
