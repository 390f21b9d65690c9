/**
 * The admin's wire contract under `/apis/envs/sandbox/v1`: ROCK's envelope, request schemas with
 * ROCK's snake_case names and defaults (unknown keys ignored), and response shapes.
 */
import { z } from "zod";

/** Prefix of every sandbox route. */
export const SANDBOX_API = "/apis/envs/sandbox/v1";

/** ROCK's response envelope; HTTP 200 whether it succeeded or not. */
export interface Envelope<T> {
  status: "Success" | "Failed";
  message: string;
  error: string | null;
  result: T | null;
}

/** `result` of a Failed envelope caused by a RockError. */
export interface FailureResult {
  code: number;
  exit_code: number | null;
  failure_reason: string;
}

const MEMORY = /^\s*\d+(\.\d+)?\s*(b|k|kb|m|mb|g|gb|t|tb)?\s*$/i;
const UNITS: Record<string, number> = { b: 0, k: 1, kb: 1, m: 2, mb: 2, g: 3, gb: 3, t: 4, tb: 4 };

/** Bytes in a ROCK memory string (`8g`, `512m`, `1024`; 1024-based units, as in ROCK). */
export function memoryBytes(memory: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(memory);
  if (!match) return Number.NaN;
  return Math.round(Number(match[1]) * 1024 ** UNITS[(match[2] || "b").toLowerCase()]);
}

/** Docker-compatible sandbox ids (also container names). */
const SANDBOX_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const sandboxId = z.string().regex(SANDBOX_ID, "must be 1-128 letters, digits, '_', '.', '-'");

/** POST /start and /start_async (StartReq). */
export const StartRequest = z.object({
  "image": z.string().default(""),
  "auto_clear_time_minutes": z.number().int("must be a whole number of minutes").positive()
    .optional(),
  "pull": z.enum(["never", "always", "missing"]).default("missing"),
  "memory": z.string().regex(MEMORY, "must look like 8g, 512m or 1024").default("8g"),
  "cpus": z.number().positive().default(2),
  "sandbox_id": sandboxId.nullish(),
  "registry_username": z.string().nullish(),
  "registry_password": z.string().nullish(),
  "use_kata_runtime": z.boolean().default(false),
});
/** Parsed start request. */
export type StartRequest = z.output<typeof StartRequest>;

/** Query or body carrying just a sandbox id. */
export const SandboxIdRequest = z.object({ "sandbox_id": sandboxId });

/** POST /sandboxes/batch */
export const BatchRequest = z.object({ "sandbox_ids": z.array(z.string()) });

/** GET /sandboxes query. */
export const ListQuery = z.object({
  "page": z.coerce.number().int().min(1).default(1),
  "page_size": z.coerce.number().int().min(1).default(500),
  "user_id": z.string().optional(),
  "experiment_id": z.string().optional(),
  "namespace": z.string().optional(),
  "image": z.string().optional(),
  "state": z.string().optional(),
});
/** Parsed list query. */
export type ListQuery = z.output<typeof ListQuery>;

/** A phase as ROCK reports it. */
export interface PhaseInfo {
  status: string;
  message: string;
}

/** Sandbox states: ROCK's pending and running, plus stopped history and failed starts. */
export type SandboxState = "pending" | "running" | "stopped" | "failed";

/** StartResp */
export interface StartResponse {
  code: number | null;
  exit_code: number | null;
  failure_reason: string | null;
  sandbox_id: string;
  host_name: string | null;
  host_ip: string | null;
  cpus: number;
  memory: string;
}

/** StatusResp (also the items of batch and list). */
export interface StatusResponse {
  sandbox_id: string;
  status: Record<string, PhaseInfo>;
  state: SandboxState;
  port_mapping: Record<string, number>;
  host_name: string | null;
  host_ip: string | null;
  is_alive: boolean;
  image: string;
  gateway_version: string | null;
  swe_rex_version: string | null;
  user_id: string;
  experiment_id: string;
  namespace: string;
  cluster_name: string;
  cpus: number;
  memory: string;
  create_time: string;
  start_time: string | null;
  stop_time: string | null;
  failure_reason: string | null;
}

/** GET /sandboxes result. */
export interface ListResponse {
  items: StatusResponse[];
  total: number;
  has_more: boolean;
}
