/**
 * Why a sandbox stopped, in the words get_status, the CLI and errors show, and the error a call
 * gets when its sandbox no longer runs; while it runs, what its expiry waits for.
 */
import { constants } from "node:os";
import { SandboxStoppedError } from "../common/errors.ts";
import { describeStopped, type FailureKind, type StopInfo } from "../protocol/admin.ts";
import type { SandboxExit } from "../sandbox/backend.ts";
import { toStatusResponse } from "./sandbox_info.ts";
import type { SandboxRecord } from "./store.ts";

/**
 * Why a sandbox stopped or failed: the words (`stop_reason`) and their class (`failure_kind`),
 * always set together, where the end happens; nothing reads the class back out of the words.
 */
export interface StopCause {
  /** What get_status shows as stop_reason, e.g. "stop requested". */
  reason: string;
  /** The class of the end. */
  kind: FailureKind;
}

/** A stop asked for through the API (or the CLI, or the SDK). */
export const STOP_REQUESTED: StopCause = { reason: "stop requested", kind: "user" };
/** A stop asked for while the sandbox was still being placed. */
export const STOP_REQUESTED_WHILE_STARTING: StopCause = {
  reason: "stop requested while starting",
  kind: "user",
};
/** A GEM environment was closed: its sandbox stops with it. */
export const GEM_CLOSED: StopCause = { reason: "gem environment closed", kind: "user" };
/** A GEM environment could not be made in the sandbox started for it (the environment's fault). */
export const GEM_MAKE_FAILED: StopCause = {
  reason: "gem make failed: the environment could not be made",
  kind: "user",
};
/** The backend no longer had the sandbox when the admin (re)started. */
export const VANISHED: StopCause = {
  reason: "vanished: the sandbox was gone when the admin started",
  kind: "infra",
};

/**
 * The admin reaped the sandbox, `detail` saying why (`expired: <detail>`): the one cause of kind
 * `expired`, for every reaper (keep-alive expiry, a lease's end).
 */
export function expiredCause(detail: string): StopCause {
  return { reason: `expired: ${detail}`, kind: "expired" };
}

/**
 * The expiry stopped it: no keep-alive within auto_clear_time_minutes, or the timeout set with
 * timeout_seconds passed.
 */
export function leaseExpired(
  record: Pick<SandboxRecord, "auto_clear_minutes" | "timeout_seconds">,
): StopCause {
  const seconds = record.timeout_seconds;
  return expiredCause(seconds ? `timeout of ${seconds} s passed` : idleText(record));
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
 * (SIGKILL)`, `died: the rocklet exited with code 137`, or that it is gone. Of kind `oom` when
 * the engine reports an OOM kill, else `infra`.
 */
export function diedCause(exit: SandboxExit): StopCause {
  if (exit.oomKilled) return { reason: "died: out of memory (OOMKilled)", kind: "oom" };
  return { reason: diedReason(exit), kind: "infra" };
}

function diedReason(exit: SandboxExit): string {
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
  const { state, stop_reason, stop_time, failure_kind } = toStatusResponse(record, timeZone, false);
  return { state, stop_reason, stop_time, failure_kind };
}
