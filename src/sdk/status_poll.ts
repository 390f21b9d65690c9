/** Pacing of a client that waits for a sandbox by asking get_status. */
import type { StatusResponse } from "../protocol/admin.ts";

/**
 * How long a client waits before asking get_status again: 10 ms growing to 25 ms once the
 * sandbox is being placed (its rocklet answers soon), and longer while it waits in the start
 * queue (about 10 ms per sandbox ahead of it, at most 1 s), so a burst of waiting clients does
 * not poll the admin busy while it starts their sandboxes.
 */
export function statusPollInterval(status: StatusResponse | undefined, attempt: number): number {
  const position = status?.queue_position;
  if (position !== undefined) return Math.min(1000, 50 + 10 * position);
  return attempt === 0 ? 10 : 25;
}
