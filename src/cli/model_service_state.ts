/**
 * The state file of a running model service (`<state dir>/model-service.json`, never in the
 * working directory): pid, process start time, mode, address and log. The serving process owns it
 * (see common/state_file.ts), so two starts cannot both serve.
 */
import { join } from "node:path";
import { RockError } from "../common/errors.ts";
import { connectHost, type ServerState } from "./daemon.ts";
import {
  claimStateFile,
  liveStateFile,
  type OwnedState,
  readStateFile,
  type StateFileClaim,
} from "../common/state_file.ts";

/** What the state file holds. */
export interface ModelServiceState extends ServerState {
  type: "local" | "proxy";
  /** The server's log file (background starts). */
  log?: string;
}

/** Path of the state file in `stateDir`. */
export function stateFilePath(stateDir: string): string {
  return join(stateDir, "model-service.json");
}

/** Reads the state file; undefined when missing or unreadable. */
export function readState(stateDir: string): Promise<ModelServiceState | undefined> {
  return readStateFile(stateFilePath(stateDir));
}

/** The state of a service that is running, or undefined (a stale file is left alone). */
export function runningState(stateDir: string): Promise<ModelServiceState | undefined> {
  return liveStateFile(stateFilePath(stateDir));
}

/** The error for a second start (`state` is undefined while the other is still starting). */
export function alreadyRunning(state: ModelServiceState | undefined): RockError {
  if (!state) {
    return new RockError(
      'A model service is starting: stop it first with "rock model-service stop"',
    );
  }
  const where = state.port === null
    ? "starting"
    : `on http://${connectHost(state.host)}:${state.port}`;
  return new RockError(
    `A model service already runs (pid ${state.pid}, ${state.type}, ${where}): ` +
      `stop it first with "rock model-service stop"`,
  );
}

/** This process's claim on the state file. */
export type StateClaim = StateFileClaim<ModelServiceState>;

/**
 * Claims the state file for this process (an exclusive lock; a dead owner's file is replaced).
 * @throws {RockError} when another service holds it.
 */
export function claimState(
  stateDir: string,
  init: Omit<ModelServiceState, keyof OwnedState>,
): Promise<StateClaim> {
  return claimStateFile<ModelServiceState>(stateFilePath(stateDir), init, alreadyRunning);
}

/** Removes the state file if it still names `pid`. */
export async function removeState(stateDir: string, pid?: number): Promise<void> {
  const state = await readState(stateDir);
  if (state && pid !== undefined && state.pid !== pid) return;
  await Deno.remove(stateFilePath(stateDir)).catch(() => {});
}
