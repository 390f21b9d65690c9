/**
 * The one wait-and-ask-again loop: waiting for a file, a process's end, a state. Node-safe (web
 * timers only), so the SDK uses it too.
 */

/** How pollUntil() paces its calls. */
export interface PollOptions {
  /** Wait between calls, in milliseconds (the first one, when waits grow). */
  intervalMs: number;
  /** Waits double after each call up to this (default: intervalMs, fixed waits). */
  maxIntervalMs?: number;
  /**
   * The wait before call `attempt + 1` (attempt 0 is the wait after the first call), in
   * milliseconds, when it depends on what the calls saw; overrides intervalMs and maxIntervalMs.
   */
  nextIntervalMs?: ((attempt: number) => number) | undefined;
  /** Give up after this long, in milliseconds (default: never). */
  timeoutMs?: number;
  /** Stops waiting: pollUntil() rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
}

/**
 * Calls `check` until it returns a value other than `undefined`, and resolves with that value;
 * resolves with `undefined` when `timeoutMs` passes (after one last call at the deadline).
 * @throws what `check` throws, or the signal's reason when it aborts
 */
export async function pollUntil<T>(
  check: () => Promise<T | undefined> | T | undefined,
  options: PollOptions,
): Promise<T | undefined> {
  const started = performance.now();
  let interval = options.intervalMs;
  for (let attempt = 0;; attempt++) {
    options.signal?.throwIfAborted();
    const value = await check();
    if (value !== undefined) return value;
    if (options.nextIntervalMs) interval = options.nextIntervalMs(attempt);
    const left = options.timeoutMs === undefined
      ? interval
      : options.timeoutMs - (performance.now() - started);
    if (left <= 0) return undefined;
    await sleep(Math.min(interval, left), options.signal);
    if (!options.nextIntervalMs) {
      interval = Math.min(interval * 2, options.maxIntervalMs ?? options.intervalMs);
    }
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
