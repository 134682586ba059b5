/** A feature module: the composition root starts modules in order and stops them in reverse. */
export interface Module {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Stops modules in reverse order within ONE overall budget, so a slow module cannot use up the time the ones after
 * it (the time-series flush, Redis) need. A module past the deadline still gets `minimumMs` to try. Errors are
 * collected, not thrown midway.
 */
export async function stopAll(
  modules: readonly Module[],
  budgetMs: number,
  onError: (m: Module, e: unknown) => void,
  minimumMs = 500,
): Promise<void> {
  const deadline = Date.now() + budgetMs;
  for (const m of [...modules].reverse()) {
    const allowed = Math.max(minimumMs, deadline - Date.now());
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        m.stop(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${m.name} did not stop within ${allowed} ms`)), allowed);
        }),
      ]);
    } catch (e) {
      onError(m, e);
    } finally {
      clearTimeout(timer);
    }
  }
}
