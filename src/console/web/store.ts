/** A tiny observable value and the hook that re-renders a component when it changes. */
import { useEffect, useState } from 'preact/hooks';

export class Store<T> {
  private listeners = new Set<() => void>();
  private version = 0;

  constructor(private value: T) {}

  get(): T {
    return this.value;
  }

  get revision(): number {
    return this.version;
  }

  set(value: T): void {
    this.value = value;
    this.version++;
    for (const l of [...this.listeners]) l();
  }

  update(fn: (value: T) => T): void {
    this.set(fn(this.value));
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** The store's value; the component re-renders on every change. */
export function useStore<T>(store: Store<T>): T {
  const [, setTick] = useState(0);
  useEffect(() => {
    const force = () => setTick((n) => n + 1);
    const seen = store.revision;
    const off = store.subscribe(force);
    // changed between render and subscription
    if (store.revision !== seen) force();
    return off;
  }, [store]);
  return store.get();
}
