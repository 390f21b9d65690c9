/**
 * Sandbox ids on the command line: every `rock sandbox` command that takes an id takes a unique
 * prefix of one, as docker does. An exact id wins over longer ids it starts; an unknown or
 * ambiguous prefix is bad input (ConfigError: one line, exit 2).
 */
import { BadRequestError, ConfigError } from "../common/errors.ts";
import type { AdminClient } from "../sdk/admin_client.ts";

/** How many of the ids an ambiguous prefix starts are named in the error. */
const NAMED = 5;

/**
 * The sandbox id `given` names: itself when it is an id, else the one id (of a sandbox not
 * deleted) it starts.
 * @throws {ConfigError} when no id, or more than one, starts with `given`.
 */
export async function resolveSandboxId(client: AdminClient, given: string): Promise<string> {
  // One list call: the ids starting so (the admin's own filter, checked here again).
  const page = await client.list({ id_prefix: given, page_size: NAMED + 1 });
  const ids = page.items.map((item) => item.sandbox_id).filter((id) => id.startsWith(given));
  if (ids.includes(given)) return given;
  if (ids.length === 1) return ids[0]!;
  // An exact id listed on no page: a deleted sandbox, or one among more than a page of matches.
  if (await exists(client, given)) return given;
  if (ids.length === 0) throw new ConfigError(`No sandbox id starts with "${given}"`);
  const named = ids.slice(0, NAMED).join(", ");
  const more = page.total > NAMED ? `, ... (${page.total} in all)` : "";
  throw new ConfigError(
    `Sandbox id prefix "${given}" is ambiguous: it starts ${named}${more}; give more of the id`,
  );
}

/** resolveSandboxId() of each of `given`, in order. */
export function resolveSandboxIds(client: AdminClient, given: string[]): Promise<string[]> {
  return Promise.all(given.map((id) => resolveSandboxId(client, id)));
}

/** Whether the admin knows sandbox `id`, deleted or not. */
async function exists(client: AdminClient, id: string): Promise<boolean> {
  try {
    await client.getStatus(id, { includeAllStates: true });
    return true;
  } catch (error) {
    // Not found (ROCK's admin says it with the family's code only).
    if (error instanceof BadRequestError) return false;
    throw error;
  }
}
