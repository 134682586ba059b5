/**
 * The typed in-process event bus between feature modules. Listeners run synchronously in registration order and
 * must not throw (a throwing listener is logged and skipped, so one module cannot break another).
 */
import type { DeviceEventRecord, Reading, Rejection, StatusChange } from './ingest/types.ts';

export interface BusEvents {
  /** A batch of readings from one message. */
  readings: readonly Reading[];
  event: DeviceEventRecord;
  status: StatusChange;
  rejected: Rejection;
}

type Listener<T> = (payload: T) => void;

export class Bus {
  private listeners: { [K in keyof BusEvents]?: Listener<BusEvents[K]>[] } = {};
  constructor(private readonly onListenerError: (event: string, err: unknown) => void = () => {}) {}

  on<K extends keyof BusEvents>(event: K, listener: Listener<BusEvents[K]>): () => void {
    let list = this.listeners[event] as Listener<BusEvents[K]>[] | undefined;
    if (!list) {
      list = [];
      (this.listeners as Record<string, unknown>)[event] = list;
    }
    list.push(listener);
    const registered = list;
    return () => {
      const i = registered.indexOf(listener);
      if (i >= 0) registered.splice(i, 1);
    };
  }

  emit<K extends keyof BusEvents>(event: K, payload: BusEvents[K]): void {
    const list = this.listeners[event] as Listener<BusEvents[K]>[] | undefined;
    if (!list) return;
    for (const l of list) {
      try {
        l(payload);
      } catch (err) {
        this.onListenerError(event, err);
      }
    }
  }
}
