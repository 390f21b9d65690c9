/**
 * EnvHub's wire contract (ROCK's `rock/envhub`): raw JSON requests and replies, no envelope.
 * Request schemas keep ROCK's snake_case names and defaults; unknown keys are ignored.
 */
import { z } from "zod";

/** Name of the row every EnvHub upserts at start. */
export const DEFAULT_ENV_NAME = "EnvhubDefaultDockerImage";
/** Owner of the default row. */
export const DEFAULT_ENV_OWNER = "ENVHUB";
/** Tags of the default row. */
export const DEFAULT_ENV_TAGS: readonly string[] = ["default", "system", "envhub"];
/** Description of the default row (ROCK's text). */
export const DEFAULT_ENV_DESCRIPTION = "Default docker environment provided by EnvHub";

// Column sizes of ROCK's RockDockerEnvs table (varchar(255) and varchar(512)).
const envName = z.string().min(1, "must not be empty").max(255, "must be at most 255 characters");

/** POST /env/register: create or replace an environment. */
export const RegisterEnvRequest = z.object({
  "env_name": envName,
  "image": z.string().min(1, "must not be empty").max(512, "must be at most 512 characters"),
  "owner": z.string().max(255, "must be at most 255 characters").default(""),
  "description": z.string().default(""),
  "tags": z.array(z.string()).default([]),
  "extra_spec": z.record(z.string(), z.unknown()).nullable().default(null),
});
/** Parsed register request. */
export type RegisterEnvRequest = z.output<typeof RegisterEnvRequest>;

/** POST /env/get and /env/delete: one environment by name. */
export const EnvNameRequest = z.object({ "env_name": z.string().min(1, "must not be empty") });
/** Parsed get or delete request. */
export type EnvNameRequest = z.output<typeof EnvNameRequest>;

/**
 * POST /env/list. `owner` matches exactly; `tags` matches environments carrying any of them.
 * Null, empty or missing filters match everything (ROCK's SDK sends nulls).
 */
export const ListEnvsRequest = z.object({
  "owner": z.string().nullish(),
  "tags": z.array(z.string()).nullish(),
});
/** Parsed list request. */
export type ListEnvsRequest = z.output<typeof ListEnvsRequest>;

/** An environment as EnvHub returns it. */
export interface EnvInfo {
  /** Unique name (at most 255 characters). */
  env_name: string;
  /** Docker image (at most 512 characters). */
  image: string;
  /** Who registered it ("" when nobody said). */
  owner: string;
  /** What it is for ("" when nobody said). */
  description: string;
  /** Labels `/env/list` can filter by. */
  tags: string[];
  /** Free-form settings of the environment, or null. */
  extra_spec: Record<string, unknown> | null;
  /** When it was first registered: ISO 8601 with the offset of ROCK_TIME_ZONE. */
  create_at: string;
  /** When it was last registered: ISO 8601 with the offset of ROCK_TIME_ZONE. */
  update_at: string;
}

/** Reply of POST /env/list. */
export interface ListEnvsResponse {
  /** The matching environments, in registration order. */
  envs: EnvInfo[];
}

/** Reply of GET /health. */
export interface EnvHubHealth {
  /** "ok" */
  status: string;
}
