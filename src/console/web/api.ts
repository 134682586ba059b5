/**
 * The HTTP API client: JSON over fetch with the session cookie (same origin). Errors are `ApiError` with the
 * server's `{error, message}`; a 401 signs the console out (the login page shows), a 403 is shown as "not yours".
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { t } from './i18n.ts';
import { Store } from './store.ts';

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly path: string,
    readonly details?: unknown[],
  ) {
    super(message);
  }

  get forbidden(): boolean {
    return this.status === 403;
  }

  /** The server has no such route: an endpoint another part of the system has not shipped yet. */
  get missing(): boolean {
    return this.status === 404 && /^no route /.test(this.message);
  }
}

/** Counts 401 answers: the session listens and shows the login page. */
export const unauthorized = new Store(0);

type Query = Record<string, string | number | boolean | undefined>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
  query?: Query;
  signal?: AbortSignal;
  /** do not sign out on 401 (the login call itself) */
  noSignOut?: boolean;
}

export async function api<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const url = withQuery(path.startsWith('/') ? path : `${API}/${path}`, opts.query);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, {
      method: opts.method ?? (opts.body !== undefined ? 'POST' : 'GET'),
      headers,
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      credentials: 'same-origin',
      signal: opts.signal,
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'network', t('error_network'), url);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = (body ?? {}) as { error?: string; message?: string; details?: unknown[] };
    if (res.status === 401 && !opts.noSignOut) unauthorized.update((n) => n + 1);
    throw new ApiError(res.status, e.error ?? `http_${res.status}`, e.message ?? res.statusText, url, e.details);
  }
  return body as T;
}

export interface Loaded<T> {
  data?: T;
  error?: ApiError;
  loading: boolean;
  reload: () => void;
  /** replace the data (after an action answered the new state) */
  set: (data: T) => void;
}

/** GET `path` (skipped while it is null); reloads when the path changes. */
export function useApi<T>(path: string | null, query?: Query): Loaded<T> {
  const url = path === null ? null : withQuery(path.startsWith('/') ? path : `${API}/${path}`, query);
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: url !== null });
  const [tick, setTick] = useState(0);
  const current = useRef(url);
  current.current = url;
  useEffect(() => {
    if (url === null) return;
    const ctl = new AbortController();
    setState((s) => ({ data: s.data, loading: true }));
    api<T>(url, { signal: ctl.signal }).then(
      (data) => {
        if (current.current === url) setState({ data, loading: false });
      },
      (error: unknown) => {
        if ((error as Error).name === 'AbortError') return;
        const e =
          error instanceof ApiError ? error : new ApiError(0, 'client', (error as Error).message ?? String(error), url);
        if (current.current === url) setState({ error: e, loading: false });
      },
    );
    return () => ctl.abort();
  }, [url, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  const set = useCallback((data: T) => setState({ data, loading: false }), []);
  return { ...state, reload, set };
}

/** Every page of a list, following nextCursor (for small lists such as buildings and staff). */
export async function allPages<T>(path: string, query: Query = {}, max = 10): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < max; i++) {
    const page = await api<{ items: T[]; nextCursor?: string }>(path, { query: { ...query, limit: 1000, cursor } });
    out.push(...page.items);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return out;
}
