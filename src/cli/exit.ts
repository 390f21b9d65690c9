/**
 * The one place where a failure becomes an exit code and a line on stderr. Bad input (a usage
 * error, a ConfigError) exits 2, any other failure 1; the line is `error: <message>`, one line
 * whatever the message holds. Free of any CLI library, so the slim rocklet entry uses it too.
 */
import { ConfigError, RockError } from "../common/errors.ts";

/** Exit code of bad command-line input or configuration. */
export const USAGE_EXIT = 2;

/** Exit code of a failure. */
export const FAILURE_EXIT = 1;

/** The exit code for `error`: 2 for bad configuration, 1 otherwise. */
export function exitCodeOf(error: unknown): number {
  return error instanceof ConfigError ? USAGE_EXIT : FAILURE_EXIT;
}

/** `error: <message>` on one line (docker stderr tails and the like span several). */
export function failureLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `error: ${message.replace(/\s*\n\s*/g, " | ").trim()}`;
}

/** Prints the one line for bad command-line input and exits 2. */
export function exitUsage(message: string): never {
  console.error(`error: ${message}`);
  Deno.exit(USAGE_EXIT);
}

/**
 * Prints the one line for an expected failure (a RockError) and exits with its code; anything
 * else is a bug and is thrown on, so its stack is printed.
 */
export function exitOnFailure(error: unknown): never {
  if (!(error instanceof RockError)) throw error;
  console.error(failureLine(error));
  Deno.exit(exitCodeOf(error));
}

/**
 * Runs a CLI action over the network (`rock sandbox ...`, `rock envhub ls`, `rock agent run`):
 * any failure prints one line and exits with exitCodeOf(); a number returned becomes the exit
 * code.
 */
export async function runCli(action: () => Promise<number | void>): Promise<void> {
  let code: number;
  try {
    code = (await action()) ?? 0;
  } catch (error) {
    console.error(failureLine(error));
    code = exitCodeOf(error);
  }
  if (code !== 0) Deno.exit(code);
}
