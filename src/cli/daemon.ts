/**
 * Background servers (`rock admin start --daemon`, `rock model-service start`): run this same
 * program again detached, and wait until that child owns the role's state file with its port.
 */
import { fileURLToPath } from "node:url";
import { spawnDetached } from "../common/detached.ts";
import { RockError } from "../common/errors.ts";
import { pollUntil } from "../common/poll.ts";
import { type OwnedState, readStateFile } from "../common/state_file.ts";

/** A server's state file: its owner and the port it serves on (null while starting). */
export interface ServerState extends OwnedState {
  host: string;
  port: number | null;
}

/** argv that runs this same program again (compiled, bundle or source). */
export function selfCommand(): string[] {
  if (Deno.build.standalone) return [Deno.execPath()];
  const main = fileURLToPath(Deno.mainModule);
  return [
    Deno.execPath(),
    "run",
    "--allow-all",
    "--unstable-no-legacy-abort",
    // A bundle is self-contained; a config found near it would only get in the way.
    ...(main.endsWith(".js") ? ["--no-config"] : []),
    main,
  ];
}

/** The address to reach a server bound to `host` (a wildcard means this machine). */
export function connectHost(host: string): string {
  if (host === "0.0.0.0" || host === "" || host === "::" || host === "[::]") return "127.0.0.1";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** What startDaemon runs and waits for. */
export interface DaemonOptions {
  /** Arguments after the program (the role's command in the foreground). */
  args: string[];
  /** Where the child's stdout and stderr go. */
  logFile: string;
  /** The state file the child claims. */
  statePath: string;
  /** The role, for messages ("the admin"). */
  what: string;
  /** How long to wait for the child to serve, in milliseconds. */
  timeoutMs: number;
  /** Extra readiness check once the child wrote its port (e.g. a health probe). */
  ready?: (url: string) => Promise<boolean>;
}

/**
 * Starts the program detached and resolves with its state and URL once it serves.
 * @throws {RockError} with the last lines of its log when it exits first, or when it does not
 *   serve in time (it is killed then).
 */
export async function startDaemon<T extends ServerState>(
  options: DaemonOptions,
): Promise<{ state: T; url: string; pid: number }> {
  const child = spawnDetached([...selfCommand(), ...options.args], options.logFile);
  let exited: Deno.CommandStatus | undefined;
  child.status.then((status) => (exited = status), () => {});
  const served = await pollUntil(async () => {
    // Only the child's own state counts, never another process's.
    const state = await readStateFile<T>(options.statePath);
    if (state?.pid === child.pid && state.port !== null) {
      const url = `http://${connectHost(state.host)}:${state.port}`;
      if (!options.ready || await options.ready(url)) return { state, url, pid: child.pid };
    }
    if (exited) {
      throw new RockError(
        `Cannot start ${options.what}: it exited with code ${exited.code}: ${await failureOf(
          options.logFile,
        )}`,
      );
    }
    return undefined;
  }, { intervalMs: 5, maxIntervalMs: 100, timeoutMs: options.timeoutMs });
  if (served) return served;
  try {
    Deno.kill(child.pid, "SIGKILL");
  } catch {
    // Already gone.
  }
  throw new RockError(
    `Cannot start ${options.what}: it did not serve within ${
      options.timeoutMs / 1000
    } s; see ${options.logFile}`,
  );
}

/** Why a child failed: its one-line `error: ...` if it printed one, else its log's last lines. */
async function failureOf(logFile: string): Promise<string> {
  const lines = (await Deno.readTextFile(logFile).catch(() => "")).trim().split("\n");
  const last = lines.at(-1) ?? "";
  return last.startsWith("error: ") ? last.slice("error: ".length) : lines.slice(-5).join("\n");
}
