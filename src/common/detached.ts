/** Starting processes that outlive their parent. */

/** Options of spawnDetached. */
export interface DetachedOptions {
  /** Working directory. */
  cwd?: string;
  /** Environment; with `clearEnv`, the whole environment. */
  env?: Record<string, string>;
  clearEnv?: boolean;
}

/**
 * Starts `argv` in a session of its own with stdout and stderr appended to `logPath`, so it holds
 * no pipe to a parent that may exit first. The child is unref'd and reaped if it exits early.
 */
export function spawnDetached(
  argv: string[],
  logPath: string,
  options: DetachedOptions = {},
): Deno.ChildProcess {
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'exec "$@" >> "$ROCK_DETACHED_LOG" 2>&1', "rock-detached", ...argv],
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    clearEnv: options.clearEnv ?? false,
    env: { ...options.env, ROCK_DETACHED_LOG: logPath },
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.unref();
  child.status.catch(() => {});
  return child;
}
