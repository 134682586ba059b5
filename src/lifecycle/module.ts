/** A feature module: the composition root starts modules in order and stops them in reverse. */
export interface Module {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Stops modules in reverse order, each bounded in time; errors are collected, not thrown midway. */
export async function stopAll(modules: readonly Module[], timeoutMs: number, onError: (m: Module, e: unknown) => void) {
  for (const m of [...modules].reverse()) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        m.stop(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${m.name} did not stop within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (e) {
      onError(m, e);
    } finally {
      clearTimeout(timer);
    }
  }
}
