/** Polling for tests: wait for a condition with a hang guard, never a timing assertion. */

/**
 * Resolves once `condition()` is true, checking every 20 ms.
 * @throws {Error} naming `what` after `timeoutMs` (a hang guard, default 30 s).
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`Gave up after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
