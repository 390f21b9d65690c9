/**
 * The admin's wire contract under `/apis/envs/sandbox/v1`: ROCK's envelope, request schemas with
 * ROCK's snake_case names and defaults (unknown keys ignored), and response shapes.
 */
import { z } from "zod";

/** Prefix of every sandbox route. */
export const SANDBOX_API = "/apis/envs/sandbox/v1";

/** ROCK's response envelope; HTTP 200 whether it succeeded or not. */
export interface Envelope<T> {
  /** Start phases by name (image_pull, docker_run). */
  status: "Success" | "Failed";
  /** A message (empty when there is nothing to say). */
  message: string;
  error: string | null;
  result: T | null;
}

/** `result` of a Failed envelope caused by a RockError. */
export interface FailureResult extends Partial<StopInfo> {
  /** ROCK code of a failure; null on success. */
  code: number;
  /** Exit code of a failed command; null otherwise. */
  exit_code: number | null;
  /** Why it failed; null or empty when it did not. */
  failure_reason: string;
  /** rock's extension: the error's class path (ROCK's names where ROCK has the error). */
  class_path?: string;
  /** rock's extension: the error's structured details (e.g. a syntax error's line). */
  extra_info?: Record<string, unknown>;
}

/**
 * Why and when a sandbox stopped (rock's extension of ROCK's wire): in StatusResp, in get_logs,
 * and in the `result` of a call refused because the sandbox no longer runs.
 */
export interface StopInfo {
  /** pending, running, stopped, failed or deleted. */
  state: SandboxState;
  /**
   * Why it stopped or failed, e.g. "stop requested", "expired: no keep-alive for 5 minutes",
   * "start failed: ..."; null while it runs.
   */
  stop_reason: string | null;
  /** When it stopped or failed, ISO 8601 in ROCK_TIME_ZONE; null while it runs. */
  stop_time: string | null;
  /**
   * The class of its end (see FailureKind); null while it runs, and for sandboxes an older admin
   * stopped.
   */
  failure_kind?: FailureKind | null | undefined;
}

/**
 * The class of a sandbox's end (rock's extension), so a trainer can retry what was no fault of
 * the run and score the rest: `user` a stop someone asked for; `timeout` a start that did not
 * finish in time; `oom` the engine killed it for memory; `infra` the backend or the rocklet
 * failed (a failed start, a death without OOM, a sandbox gone); `expired` the admin reaped it
 * (no keep-alive in time, or its lease ended).
 */
export type FailureKind = "user" | "timeout" | "oom" | "infra" | "expired";

/** Every FailureKind. */
export const FAILURE_KINDS: readonly FailureKind[] = ["user", "timeout", "oom", "infra", "expired"];

/** `value` when it names a FailureKind, else null (what an older admin or ROCK sends). */
export function failureKindOf(value: unknown): FailureKind | null {
  return (FAILURE_KINDS as readonly unknown[]).includes(value) ? value as FailureKind : null;
}

/**
 * A stopped or failed sandbox's state, reason and stop time:
 * `stopped: expired: no keep-alive for 5 minutes (stopped at 2026-...)`. Without a recorded stop
 * reason (an older admin, or ROCK) `failure_reason` stands in.
 */
export function describeStop(info: StopInfo & { failure_reason?: string | null }): string {
  const reason = info.stop_reason || info.failure_reason || "no reason recorded";
  const at = info.stop_time ? ` (stopped at ${info.stop_time})` : "";
  return `${info.state}: ${reason}${at}`;
}

/**
 * One line saying that a sandbox no longer runs, why and since when:
 * `Sandbox "sb-1" is stopped: expired: no keep-alive for 5 minutes (stopped at 2026-...)`.
 */
export function describeStopped(
  sandboxId: string,
  info: StopInfo & { failure_reason?: string | null },
): string {
  return `Sandbox "${sandboxId}" is ${describeStop(info)}`;
}

const MEMORY = /^\s*\d+(\.\d+)?\s*(b|k|kb|m|mb|g|gb|t|tb)?\s*$/i;
const UNITS: Record<string, number> = { b: 0, k: 1, kb: 1, m: 2, mb: 2, g: 3, gb: 3, t: 4, tb: 4 };

/** Bytes in a ROCK memory string (`8g`, `512m`, `1024`; 1024-based units, as in ROCK). */
export function memoryBytes(memory: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(memory);
  if (!match) return Number.NaN;
  const [, digits, unit] = match;
  const power = UNITS[(unit || "b").toLowerCase()];
  if (power === undefined) return Number.NaN;
  return Math.round(Number(digits) * 1024 ** power);
}

/** Docker-compatible sandbox ids (also container names). */
const SANDBOX_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const sandboxId = z.string().regex(SANDBOX_ID, "must be 1-128 letters, digits, '_', '.', '-'");

/** Longest lease `timeout_seconds` may set: 30 days. */
export const MAX_TIMEOUT_SECONDS = 30 * 24 * 3600;
/** When an image is pulled: never, always, or when it is missing here (ROCK's default). */
export type PullPolicy = "never" | "always" | "missing";
const PULL_POLICIES = ["never", "always", "missing"] as const satisfies readonly PullPolicy[];

/** POST /start and /start_async (StartReq). */
export const StartRequest = z.object({
  "image": z.string().default(""),
  "auto_clear_time_minutes": z.number().int("must be a whole number of minutes").positive()
    .optional(),
  "pull": z.enum(PULL_POLICIES).default("missing"),
  "memory": z.string().regex(MEMORY, "must look like 8g, 512m or 1024").default("8g"),
  "cpus": z.number().positive().default(2),
  "sandbox_id": sandboxId.nullish(),
  "registry_username": z.string().nullish(),
  "registry_password": z.string().nullish(),
  "use_kata_runtime": z.boolean().default(false),
  // rock's extension (E2B's shape): a fixed lease, stopped this many seconds after it runs
  // whatever keeps it busy, instead of auto_clear_time_minutes without a keep-alive.
  "timeout_seconds": z.number().positive().max(MAX_TIMEOUT_SECONDS).nullish(),
});
/** Parsed start request. */
export type StartRequest = z.output<typeof StartRequest>;

/**
 * POST /sandboxes/{id}/timeout (rock's extension, E2B's shape): the sandbox is stopped
 * `timeout_seconds` from now, keep-alives or not, until a later call sets it again.
 */
export const TimeoutRequest = z.object({
  "timeout_seconds": z.number().positive().max(MAX_TIMEOUT_SECONDS),
});

/** GET /events query (rock's extension): one sandbox's events, or every sandbox's. */
export const EventsQuery = z.object({ "sandbox_id": z.string().optional() });

/** Query or body carrying just a sandbox id. */
export const SandboxIdRequest = z.object({ "sandbox_id": sandboxId });

/** A query flag as FastAPI reads a bool: true/1/yes/on or false/0/no/off, any case. */
const queryFlag = z.union([z.boolean(), z.string()]).transform((value, ctx) => {
  if (typeof value === "boolean") return value;
  const text = value.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(text)) return true;
  if (["false", "0", "no", "off"].includes(text)) return false;
  ctx.addIssue({ code: "custom", message: "must be true or false" });
  return z.NEVER;
});

/**
 * GET /get_status query. `include_all_states` (ROCK v1.8) also answers a deleted sandbox; without
 * it rock answers every state but `deleted` (ROCK's later versions answer only pending and
 * running, rock keeps its stopped and failed history visible with why they ended).
 */
export const StatusQuery = SandboxIdRequest.extend({
  "include_all_states": queryFlag.default(false),
});

/**
 * POST /delete body: any string, since an id that names no sandbox counts as deleted (as in
 * ROCK).
 */
export const DeleteRequest = z.object({ "sandbox_id": z.string().min(1) });

/**
 * POST /commit: an image of the sandbox, pushed when the tag names a registry or credentials
 * come; `async` (rock's, as ROCK's later versions do) answers at once with the status.
 */
export const CommitRequest = z.object({
  "sandbox_id": sandboxId,
  "image_tag": z.string().min(1),
  "username": z.string().nullish(),
  "password": z.string().nullish(),
  "async": z.boolean().default(false),
});

/**
 * A commit's status (`GET /commit/{sandbox_id}`; `POST /commit` answers it, at once with `async`,
 * else when the commit is done), in ROCK's later shape plus rock's `pushed` and `error`.
 */
export interface CommitStatus {
  /** The sandbox committed. */
  sandbox_id: string;
  /** The image made. */
  image_tag: string;
  /** Where it is. */
  phase: "RUNNING" | "SUCCEEDED" | "FAILED";
  /** When it started, ISO 8601 in ROCK_TIME_ZONE (a string, as ROCK's SDKs read it). */
  started_at: string;
  /** When it ended, as started_at; null while running. */
  completed_at: string | null;
  /** 0 when it succeeded, 1 when it failed, null while running. */
  exit_code: number | null;
  /** Whether it is pushed (the tag names a registry, or credentials came with it). */
  pushed: boolean;
  /** The stage that failed. */
  failed_stage: "commit" | "login" | "push" | null;
  /** Why, as ROCK's later versions say it. */
  error_code:
    | "SANDBOX_NOT_FOUND"
    | "COMMIT_CONFLICT"
    | "LOGIN_FAILED"
    | "COMMIT_FAILED"
    | "PUSH_FAILED"
    | null;
  /** Why it failed, in words (never holding the password). */
  error: string | null;
}

/** POST /warmup/tasks: the image to fetch where sandboxes run (ROCK's default python:3.11). */
export const WarmupRequest = z.object({ "image": z.string().min(1).default("python:3.11") });

/** GET /get_logs query (rock's extension): the sandbox and how many lines from the end. */
export const LogsQuery = SandboxIdRequest.extend({
  "tail": z.coerce.number().int().min(1).max(100_000).default(200),
});

/** POST /sandboxes/batch */
export const BatchRequest = z.object({ "sandbox_ids": z.array(z.string()) });

/** Every state a sandbox row can be in (see SandboxState). */
export const SANDBOX_STATES = [
  "pending",
  "running",
  "stopped",
  "failed",
  "deleted",
] as const satisfies readonly SandboxState[];

/**
 * GET /sandboxes query. rock's extensions: `state` may name several, comma-separated (without
 * it, every state but `deleted`); `id_prefix` lists the ids starting so; `stopped_before` (ISO
 * 8601) the sandboxes that stopped or failed before then.
 */
export const ListQuery = z.object({
  "page": z.coerce.number().int().min(1).default(1),
  "page_size": z.coerce.number().int().min(1).default(500),
  "user_id": z.string().optional(),
  "experiment_id": z.string().optional(),
  "namespace": z.string().optional(),
  "image": z.string().optional(),
  "state": z.string().transform((value) => value.split(",").map((s) => s.trim()))
    .pipe(z.array(z.enum(SANDBOX_STATES, "must name states among " + SANDBOX_STATES.join(", "))))
    .optional(),
  "id_prefix": z.string().min(1).optional(),
  "stopped_before": z.string().transform((value, ctx) => {
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: "custom", message: "must be an ISO 8601 time" });
      return z.NEVER;
    }
    return ms;
  }).optional(),
});
/** Parsed list query. */
export type ListQuery = z.output<typeof ListQuery>;

/** A phase as ROCK reports it. */
export interface PhaseInfo {
  /** Start phases by name (image_pull, docker_run). */
  status: string;
  /** A message (empty when there is nothing to say). */
  message: string;
}

/**
 * Sandbox states: ROCK's pending and running, stopped history, failed starts and deaths, and
 * deleted (history removed, as ROCK's later versions keep the row).
 */
export type SandboxState = "pending" | "running" | "stopped" | "failed" | "deleted";

/** StartResp */
export interface StartResponse {
  /** ROCK code of a failure; null on success. */
  code: number | null;
  /** Exit code of a failed command; null otherwise. */
  exit_code: number | null;
  /** Why it failed; null or empty when it did not. */
  failure_reason: string | null;
  /** The sandbox id. */
  sandbox_id: string;
  /** Host running the sandbox. */
  host_name: string | null;
  /** Address the admin reaches the sandbox at. */
  host_ip: string | null;
  /** CPUs of the sandbox; null when the backend enforces no limit (local). */
  cpus: number | null;
  /** Memory of the sandbox as requested, e.g. "8g"; null when the backend enforces no limit. */
  memory: string | null;
}

/**
 * StatusResp fields ROCK fills whenever it answers get_status and its later SDKs read as a value or
 * nothing (its TypeScript SDK's schema refuses null there). Where rock has none (the host of a
 * sandbox that no longer runs, limits a backend does not enforce), get_status leaves the field out
 * instead of answering null; batch, list and events keep the null.
 */
export const STATUS_FIELDS_ABSENT_WHEN_NULL = ["host_name", "host_ip", "cpus", "memory"] as const;

/**
 * `status` as get_status answers it, in the words ROCK's later SDKs accept (their schemas refuse
 * anything else): the fields of STATUS_FIELDS_ABSENT_WHEN_NULL left out where null, and `state`
 * one of ROCK's states, a failed sandbox being `stopped` (as ROCK ends a start that fails), with
 * rock's own state, `failed` included, in `rock_state` (rock's extension).
 */
export function statusToWire(status: StatusResponse): Record<string, unknown> {
  const wire: Record<string, unknown> = {
    ...status,
    state: status.state === "failed" ? "stopped" : status.state,
    rock_state: status.state,
  };
  for (const field of STATUS_FIELDS_ABSENT_WHEN_NULL) {
    if (wire[field] === null) delete wire[field];
  }
  return wire;
}

/**
 * A get_status answer as StatusResponse: rock's state from `rock_state` where there is one (not
 * from ROCK's admin), and null for the fields left out.
 */
export function statusFromWire(
  wire: StatusResponse & { rock_state?: SandboxState },
): StatusResponse {
  const absent = Object.fromEntries(STATUS_FIELDS_ABSENT_WHEN_NULL.map((field) => [field, null]));
  const { rock_state, ...status } = wire;
  return { ...absent, ...status, state: rock_state ?? status.state };
}

/** StatusResp (also the items of batch and list). */
export interface StatusResponse {
  /** The sandbox id. */
  sandbox_id: string;
  /** Start phases by name (image_pull, docker_run). */
  status: Record<string, PhaseInfo>;
  /** pending, running, stopped, failed or deleted. */
  state: SandboxState;
  /** Container port to host port ("22555" is the rocklet). */
  port_mapping: Record<string, number>;
  /** Host running the sandbox. */
  host_name: string | null;
  /** Address the admin reaches the sandbox at. */
  host_ip: string | null;
  /** True when the sandbox runs. */
  is_alive: boolean;
  /** The image. */
  image: string;
  /** ROCK's gateway version, for compatibility (null in lists). */
  gateway_version: string | null;
  /** The rocklet version ROCK reports (null in lists). */
  swe_rex_version: string | null;
  /** Owner, from X-User-Id. */
  user_id: string;
  /** Experiment, from X-Experiment-Id. */
  experiment_id: string;
  /** Namespace, from X-Namespace. */
  namespace: string;
  /** Cluster, from X-Cluster. */
  cluster_name: string;
  /** CPUs of the sandbox; null when the backend enforces no limit (local). */
  cpus: number | null;
  /** Memory of the sandbox as requested, e.g. "8g"; null when the backend enforces no limit. */
  memory: string | null;
  /** When it was created, ISO 8601 in ROCK_TIME_ZONE. */
  create_time: string;
  /** When it started running. */
  start_time: string | null;
  /** When it stopped or failed. */
  stop_time: string | null;
  /** Why it stopped or failed (rock's extension; see StopInfo); null while it runs. */
  stop_reason: string | null;
  /** Why it failed; null or empty when it did not. */
  failure_reason: string | null;
  /** The class of its end (rock's extension, see FailureKind); null while it runs. */
  failure_kind: FailureKind | null;
  /** When it was deleted (state `deleted`); null otherwise. */
  delete_time: string | null;
  /**
   * rock's extension, while the sandbox waits in the admin's start queue: its place (1 is next)
   * and the queue's length. A client polling get_status can poll less often while it waits.
   */
  queue_position?: number | undefined;
  /** The start queue's length, with queue_position. */
  queue_length?: number | undefined;
  /** rock's extension, while pending or running: when it will be stopped, ISO 8601. */
  expire_time?: string | null | undefined;
  /** rock's extension, with expire_time: seconds left until then (0 when due). */
  expire_in_seconds?: number | null | undefined;
  /** rock's extension, with expire_time: what moves it (a keep-alive, or a set timeout). */
  expire_reason?: string | null | undefined;
  /** rock's extension: the lease set with timeout_seconds; null for ROCK's keep-alive expiry. */
  timeout_seconds?: number | null | undefined;
}

/** When a pending or running sandbox will be stopped, and why (rock's extension). */
export interface Lease {
  /** When it will be stopped, ISO 8601 in ROCK_TIME_ZONE. */
  expire_time: string;
  /** Seconds left until then (0 when due). */
  expire_in_seconds: number;
  /** What moves it, e.g. "no keep-alive for 30 minutes (auto_clear_time_minutes)". */
  expire_reason: string;
  /** The lease set with timeout_seconds; null for ROCK's keep-alive expiry. */
  timeout_seconds: number | null;
}

/**
 * A failure as an event carries it: the class of the error a client gets for it (SDK classes
 * are rebuilt from it, see errorFromWire), ROCK's code and the message.
 */
export interface EventError {
  /** The error's class path (ROCK's names where ROCK has the error). */
  class_path: string;
  /** ROCK's code: 4000 for a stopped sandbox, 5000 for a failed start. */
  code: number;
  /** What a client's error says. */
  message: string;
}

/**
 * rock's extension: a lifecycle event on `GET /events` (server-sent events; the SSE event name
 * is `type`). `status`: the sandbox's state or a start phase changed (the whole status as
 * get_status reports it, and `error` once it failed or stopped); `expiring`: it will be stopped
 * soon (sent a configured time before); `lease`: its lease was set.
 */
export type SandboxEvent =
  | StatusResponse & { type: "status"; time: string; error: EventError | null }
  | Lease & { type: "expiring" | "lease"; sandbox_id: string; time: string };

/** GET /get_logs result (rock's extension): the log tail, and the sandbox's state. */
export interface LogsResponse extends StopInfo {
  /** The last lines the sandbox's rocklet wrote. */
  logs: string;
}

/** GET /sandboxes result. */
export interface ListResponse {
  /** This page's sandboxes. */
  items: StatusResponse[];
  /** How many match in all. */
  total: number;
  /** True when later pages exist. */
  has_more: boolean;
}
