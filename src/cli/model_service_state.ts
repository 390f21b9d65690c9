/**
 * The state file of a running model service (`<state dir>/model-service.json`, never in the
 * working directory): pid, process start time (so a recycled pid is not mistaken for the
 * service), mode, address and log. The serving process claims it exclusively, so two starts
 * cannot both serve; a file left by a dead process is replaced.
 */
import { join } from "node:path";
import { RockError } from "../common/errors.ts";
import { isProcessAlive, readProcessInfo } from "../model_service/process_state.ts";

/** What the state file holds. */
export interface ModelServiceState {
  pid: number;
  /** Start time of the process in clock ticks since boot (Linux), to detect pid reuse. */
  start_ticks?: number;
  type: "local" | "proxy";
  host: string;
  /** The bound port; null while starting. */
  port: number | null;
  /** The server's log file (background starts). */
  log?: string;
  started_at: string;
}

/** Path of the state file in `stateDir`. */
export function stateFilePath(stateDir: string): string {
  return join(stateDir, "model-service.json");
}

/** Reads the state file; undefined when missing or unreadable. */
export async function readState(stateDir: string): Promise<ModelServiceState | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(stateFilePath(stateDir)));
  } catch {
    return undefined;
  }
}

/** The state of a service that is running, or undefined (a stale file is left alone). */
export async function runningState(stateDir: string): Promise<ModelServiceState | undefined> {
  const state = await readState(stateDir);
  if (!state || !Number.isInteger(state.pid)) return undefined;
  return (await isProcessAlive(state.pid, state.start_ticks)) ? state : undefined;
}

/** The address to reach a service bound to `host` (a wildcard means this machine). */
export function connectHost(host: string): string {
  if (host === "0.0.0.0" || host === "" || host === "::" || host === "[::]") return "127.0.0.1";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** The error for a second start. */
export function alreadyRunning(state: ModelServiceState): RockError {
  const where = state.port === null
    ? "starting"
    : `on http://${connectHost(state.host)}:${state.port}`;
  return new RockError(
    `A model service already runs (pid ${state.pid}, ${state.type}, ${where}): ` +
      `stop it first with "rock model-service stop"`,
  );
}

/** This process's claim on the state file. */
export interface StateClaim {
  /** Rewrites the file with `patch` applied (atomically). */
  update(patch: Partial<ModelServiceState>): Promise<void>;
  /** Removes the file if it is still this process's. */
  release(): Promise<void>;
}

/**
 * Claims the state file for this process (exclusive create; a dead owner's file is replaced).
 * @throws {RockError} when a live service holds it.
 */
export async function claimState(
  stateDir: string,
  init: Omit<ModelServiceState, "pid" | "start_ticks" | "started_at">,
): Promise<StateClaim> {
  const path = stateFilePath(stateDir);
  await Deno.mkdir(stateDir, { recursive: true });
  let state: ModelServiceState = {
    pid: Deno.pid,
    start_ticks: (await readProcessInfo(Deno.pid))?.startTicks,
    started_at: new Date().toISOString(),
    ...init,
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await Deno.writeTextFile(path, JSON.stringify(state), { createNew: true });
      break;
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists) || attempt === 2) throw error;
      const running = await runningState(stateDir);
      if (running && running.pid !== Deno.pid) throw alreadyRunning(running);
      await Deno.remove(path).catch(() => {});
    }
  }
  return {
    async update(patch) {
      state = { ...state, ...patch };
      const temp = `${path}.${Deno.pid}.tmp`;
      await Deno.writeTextFile(temp, JSON.stringify(state));
      await Deno.rename(temp, path);
    },
    async release() {
      if ((await readState(stateDir))?.pid === Deno.pid) await Deno.remove(path).catch(() => {});
    },
  };
}

/** Removes the state file if it still names `pid`. */
export async function removeState(stateDir: string, pid?: number): Promise<void> {
  const state = await readState(stateDir);
  if (state && pid !== undefined && state.pid !== pid) return;
  await Deno.remove(stateFilePath(stateDir)).catch(() => {});
}
