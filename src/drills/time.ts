/** Drill time: running time since the start, pauses excluded. No dependencies: the console uses it too. */

/** A running period of a drill, epoch ms; the last one is open while the drill runs. */
export interface Segment {
  from: number;
  to?: number;
}

/** Drill time at `ts` (ms): the running time since the start, pauses excluded. */
export function elapsedAt(segments: readonly Segment[], ts: number): number {
  let ms = 0;
  for (const s of segments) {
    if (s.from >= ts) continue;
    ms += Math.min(s.to ?? Number.POSITIVE_INFINITY, ts) - s.from;
  }
  return Math.max(0, ms);
}
