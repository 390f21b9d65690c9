/** Waiting for a sandbox's rocklet to answer: short probe intervals, no fixed sleeps. */
import { RockError } from "../common/errors.ts";
import type { RockletClient } from "../sdk/rocklet_client.ts";

/** The rocklet did not answer in time. */
export class StartTimeoutError extends RockError {}

/** Probes per second all waits of this process make together, at most (see probeInterval). */
const PROBE_BUDGET_PER_SECOND = 400;

/** How many waits are probing now. */
let waiting = 0;

/**
 * How long to wait between probes, in ms: 5 ms in the first second, where a rocklet normally
 * comes up (each millisecond it goes unnoticed is one on every start), then 20 ms. While many
 * starts wait at once the intervals stretch so that together they stay within
 * PROBE_BUDGET_PER_SECOND: a probe of a port whose server is not up yet still costs a
 * connection through docker's port proxy, and in a burst that CPU is what the starts lack.
 */
function probeInterval(waitedMs: number): number {
  const base = waitedMs < 1000 ? 5 : 20;
  return Math.max(base, (waiting * 1000) / PROBE_BUDGET_PER_SECOND);
}

/**
 * Polls `client.isAlive()` every 5 ms for a second, then every 20 ms (longer while many wait:
 * see probeInterval), until it answers,
 * `deadline` (performance.now() time) passes, or `signal` aborts. Each probe is bounded, since
 * a published port may accept a connection and hang.
 * @throws {StartTimeoutError} with the last probe error when the deadline passes.
 */
export async function waitForRocklet(
  client: RockletClient,
  options: { deadline: number; signal?: AbortSignal; what: string; timeoutSeconds: number },
): Promise<void> {
  const started = performance.now();
  waiting++;
  try {
    return await probe(client, options, started);
  } finally {
    waiting--;
  }
}

/** The probe loop of waitForRocklet. */
async function probe(
  client: RockletClient,
  options: { deadline: number; signal?: AbortSignal; what: string; timeoutSeconds: number },
  started: number,
): Promise<void> {
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
