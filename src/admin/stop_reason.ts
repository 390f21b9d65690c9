/**
 * Why a sandbox stopped, in the words get_status, the CLI and errors show, and the error a call
 * gets when its sandbox no longer runs; while it runs, what its expiry waits for.
 */
import { constants } from "node:os";
import { SandboxStoppedError } from "../common/errors.ts";
import { describeStopped, type StopInfo } from "../protocol/admin.ts";
import type { SandboxExit } from "../sandbox/backend.ts";
import { toStatusResponse } from "./sandbox_info.ts";
import type { SandboxRecord } from "./store.ts";

/** A stop asked for through the API (or the CLI, or the SDK). */
export const STOP_REQUESTED = "stop requested";
/** A stop asked for while the sandbox was still being placed. */
export const STOP_REQUESTED_WHILE_STARTING = "stop requested while starting";
/** A GEM environment was closed: its sandbox stops with it. */
export const GEM_CLOSED = "gem environment closed";
/** A GEM environment could not be made in the sandbox started for it. */
export const GEM_MAKE_FAILED = "gem make failed: the environment could not be made";
/** The backend no longer had the sandbox when the admin (re)started. */
export const VANISHED = "vanished: the sandbox was gone when the admin started";

/**
 * The sweeper stopped it: no keep-alive within auto_clear_time_minutes, or the timeout set with
 * timeout_seconds passed.
 */
export function expiredReason(
  record: Pick<SandboxRecord, "auto_clear_minutes" | "timeout_seconds">,
): string {
  const seconds = record.timeout_seconds;
  return `expired: ${seconds ? `timeout of ${seconds} s passed` : idleText(record)}`;
}

/**
 * What the expiry of a pending or running sandbox waits for, as status shows it beside
 * expire_time: `no keep-alive for 30 minutes (auto_clear_time_minutes)` or `timeout of 20 s set`.
 */
export function leaseReason(
  record: Pick<SandboxRecord, "auto_clear_minutes" | "timeout_seconds">,
): string {
  return record.timeout_seconds
    ? `timeout of ${record.timeout_seconds} s (set with timeout_seconds; keep-alives do not move it)`
    : `${idleText(record)} (auto_clear_time_minutes; every call moves it)`;
}

function idleText(record: Pick<SandboxRecord, "auto_clear_minutes">): string {
  const minutes = record.auto_clear_minutes;
  return `no keep-alive for ${minutes} minute${minutes === 1 ? "" : "s"}`;
}

/**
 * The sandbox ended on its own (its container exited, its rocklet process died), in the words of
 * what the backend knows: `died: out of memory (OOMKilled)`, `died: killed by signal 9
 * (SIGKILL)`, `died: the rocklet exited with code 137`, or that it is gone.
 */
export function diedReason(exit: SandboxExit): string {
  if (exit.oomKilled) return "died: out of memory (OOMKilled)";
  if (exit.signal !== undefined) {
    const name = Object.entries(constants.signals).find(([, n]) => n === exit.signal)?.[0];
    return `died: killed by signal ${exit.signal}${name ? ` (${name})` : ""}`;
  }
  if (exit.exitCode !== undefined) return `died: the rocklet exited with code ${exit.exitCode}`;
  return "died: the rocklet is gone (exit status unknown)";
}

/** Placement or the wait for the rocklet failed with `reason`. */
export function startFailedReason(reason: string): string {
  return `start failed: ${reason}`;
}

/**
 * The SandboxStoppedError for `record` (stopped or failed), its times in `timeZone`; `detail`
 * is added after the description (e.g. what else is gone).
 */
export function sandboxStoppedError(
  record: SandboxRecord,
  options: { timeZone: string; detail?: string },
): SandboxStoppedError {
  const info = stopInfo(record, options.timeZone);
  const text = describeStopped(record.sandbox_id, {
    ...info,
    failure_reason: record.failure_reason,
  });
  return new SandboxStoppedError(options.detail ? `${text}; ${options.detail}` : text, {
    extraInfo: { ...info },
  });
}

/** State, stop reason and stop time of `record` as the wire carries them. */
export function stopInfo(record: SandboxRecord, timeZone: string): StopInfo {
  const { state, stop_reason, stop_time } = toStatusResponse(record, timeZone, false);
  return { state, stop_reason, stop_time };
}
