/** A list paged by `nextCursor`, appended page by page ("load more"). */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.ts';
import type { Page } from '../types.ts';

export interface Paged<T> {
  items: T[];
  cursor?: string;
  loading: boolean;
  error?: unknown;
  more: () => void;
  reload: () => void;
}

export function usePaged<T>(path: string, query: Record<string, string | number | undefined>, limit = 50): Paged<T> {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  const key = `${path}?${JSON.stringify(query)}`;

  const load = (after: string | undefined, isCurrent: () => boolean) => {
    setLoading(true);
    setError(undefined);
    api<Page<T>>(path, { query: { ...query, limit, cursor: after } }).then(
      (page) => {
        if (!isCurrent()) return;
        setItems((list) => (after ? [...list, ...page.items] : page.items));
        setCursor(page.nextCursor);
        setLoading(false);
      },
      (err: unknown) => {
        if (!isCurrent()) return;
        setError(err);
        setLoading(false);
      },
    );
  };
  useEffect(() => {
    let current = true;
    setItems([]);
    load(undefined, () => current);
    return () => {
      current = false;
    };
  }, [key, tick]);

  return {
    items,
    cursor,
    loading,
    error,
    more: () => load(cursor, () => true),
    reload: () => setTick((n) => n + 1),
  };
}
