/** Waiting for a sandbox's rocklet to answer: short probe intervals, no fixed sleeps. */
import { RockError } from "../common/errors.ts";
import type { RockletClient } from "../sdk/rocklet_client.ts";

/** The rocklet did not answer in time. */
export class StartTimeoutError extends RockError {}

/**
 * How long to wait between probes, in ms: 5 ms in the first second, where a rocklet normally
 * comes up (each millisecond it goes unnoticed is one on every start; a failed probe costs
 * little), then 20 ms, so a slow start among many costs the admin little.
 */
function probeInterval(waitedMs: number): number {
  return waitedMs < 1000 ? 5 : 20;
}

/**
 * Polls `client.isAlive()` every 5 ms for a second, then every 20 ms, until it answers,
 * `deadline` (performance.now() time) passes, or `signal` aborts. Each probe is bounded, since
 * a published port may accept a connection and hang.
 * @throws {StartTimeoutError} with the last probe error when the deadline passes.
 */
export async function waitForRocklet(
  client: RockletClient,
  options: { deadline: number; signal?: AbortSignal; what: string; timeoutSeconds: number },
): Promise<void> {
  const started = performance.now();
  let last = "";
  while (true) {
    if (options.signal?.aborted) {
      throw new RockError(`Cannot start ${options.what}: it was stopped while starting`);
    }
    try {
      const probe = AbortSignal.timeout(
        Math.max(50, Math.min(2000, options.deadline - performance.now())),
      );
      if ((await client.isAlive({ signal: probe })).is_alive) return;
    } catch (error) {
      last = (error as Error).message;
    }
    const left = options.deadline - performance.now();
    if (left <= 0) {
      throw new StartTimeoutError(
        `Cannot start ${options.what}: the rocklet did not answer within ${options.timeoutSeconds} s${
          last ? `: ${last}` : ""
        }`,
      );
    }
    const interval = probeInterval(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, left)));
  }
}
