/**
 * Small statistics for benchmark samples. Medians rather than means: a shared machine adds
 * one-sided noise (another process taking the core), which a median ignores and a mean does not.
 */

/** Summary of a list of samples (milliseconds, bytes, ...). */
export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  p25: number;
  p75: number;
}

/** The q-quantile (0..1) of `values`, linearly interpolated between order statistics. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = Math.min(1, Math.max(0, q)) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** The median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** n, median, min, max and quartiles of `values`. */
export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    median: median(values),
    min: values.length ? Math.min(...values) : Number.NaN,
    max: values.length ? Math.max(...values) : Number.NaN,
    p25: quantile(values, 0.25),
    p75: quantile(values, 0.75),
  };
}

/** Rounds to `digits` decimals, keeping JSON output short and diffs readable. */
export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Wall-clock and CPU time of one call: CPU time is what a pinned, uncontended core would have taken. */
export interface Timing {
  wallMs: number;
  cpuMs: number;
}

/**
 * Times `fn` by wall clock and by process CPU time (all threads, user + system). On a pinned single
 * core with one libuv thread, CPU time ≈ the wall time an idle machine would show, so the two together
 * reveal when a neighbour stole the core.
 */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T } & Timing> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { value, wallMs, cpuMs: (c.user + c.system) / 1000 };
}
