/** Wire views of a stored sandbox: ROCK's StatusResp and StartResp, times in ROCK_TIME_ZONE. */
import { isoInZone } from "../common/time.ts";
import {
  type EventError,
  type Lease,
  type SandboxEvent,
  type StartResponse,
  type StatusResponse,
} from "../protocol/admin.ts";
import { type RockError, SandboxStartError } from "../common/errors.ts";
import { ROCKLET_WIRE_VERSION } from "../version.ts";
import type { SandboxRecord } from "./store.ts";
import { backendTraits } from "../sandbox/backend.ts";
import { leaseReason, sandboxStoppedError } from "./stop_reason.ts";

/** ROCK's gateway version string, reported for compatibility. */
export const GATEWAY_VERSION = "0.0.45";

function iso(ms: number | null, timeZone: string): string | null {
  return ms === null ? null : isoInZone(new Date(ms), timeZone);
}

/** StatusResp of `record`; `full` adds the version fields get_status reports (batch/list do not). */
export function toStatusResponse(
  record: SandboxRecord,
  timeZone: string,
  full = true,
): StatusResponse {
  const limits = backendTraits(record.backend).enforcesLimits;
  return {
    sandbox_id: record.sandbox_id,
    status: record.phases,
    state: record.state,
    port_mapping: record.port_mapping,
    host_name: record.host_name,
    host_ip: record.host_ip,
    is_alive: record.state === "running",
    image: record.image,
    gateway_version: full ? GATEWAY_VERSION : null,
    swe_rex_version: full ? ROCKLET_WIRE_VERSION : null,
    user_id: record.user_id,
    experiment_id: record.experiment_id,
    namespace: record.namespace,
    cluster_name: record.cluster_name,
    // Limits a backend does not enforce are not reported as if they held.
    cpus: limits ? record.cpus : null,
    memory: limits ? record.memory : null,
    create_time: iso(record.create_time, timeZone)!,
    start_time: iso(record.start_time, timeZone),
    stop_time: iso(record.stop_time, timeZone),
    stop_reason: record.stop_reason,
    failure_reason: record.failure_reason,
    ...leaseOf(record, timeZone),
    failure_kind: record.failure_kind ?? null,
    delete_time: iso(record.delete_time ?? null, timeZone),
  };
}

/**
 * When pending or running `record` will be stopped and why (rock's extension of StatusResp);
 * nothing for a sandbox that no longer runs.
 */
export function leaseOf(record: SandboxRecord, timeZone: string): Lease | Record<never, never> {
  if (record.state !== "pending" && record.state !== "running") return {};
  return {
    // To the millisecond: a lease may be seconds long, and the sandbox stops at that moment.
    expire_time: isoInZone(new Date(record.expire_at), timeZone, true),
    expire_in_seconds: Math.max(0, Math.round((record.expire_at - Date.now()) / 1000)),
    expire_reason: leaseReason(record),
    timeout_seconds: record.timeout_seconds ?? null,
  };
}

/**
 * The `status` event of `record` as it is now: its status as get_status reports it, and once it
 * failed or stopped the error a client gets for it (SandboxStartError for a start that failed,
 * SandboxStoppedError otherwise).
 */
export function toStatusEvent(record: SandboxRecord, timeZone: string): SandboxEvent {
  const status = toStatusResponse(record, timeZone, false);
  let failure: RockError | undefined;
  if (record.state === "failed" && record.start_time === null) {
    failure = new SandboxStartError(
      `Sandbox "${record.sandbox_id}" failed to start: ${record.failure_reason}`,
    );
  } else if (record.state === "failed" || record.state === "stopped") {
    failure = sandboxStoppedError(record, { timeZone });
  }
  const error: EventError | null = failure
    ? { class_path: failure.classPath, code: failure.code, message: failure.message }
    : null;
  return { ...status, type: "status", time: isoInZone(new Date(), timeZone, true), error };
}

/** StartResp of `record`. */
export function toStartResponse(record: SandboxRecord): StartResponse {
  return {
    code: null,
    exit_code: null,
    failure_reason: record.failure_reason,
    sandbox_id: record.sandbox_id,
    host_name: record.host_name,
    host_ip: record.host_ip,
    cpus: backendTraits(record.backend).enforcesLimits ? record.cpus : null,
    memory: backendTraits(record.backend).enforcesLimits ? record.memory : null,
  };
}
