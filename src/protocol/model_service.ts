/**
 * The model service's wire contract: the YAML config file (ROCK's ModelServiceConfig keys plus
 * rock's retry keys), the OpenAI-compatible request fields the service reads, and the bodies of
 * its own routes. Names are ROCK's snake_case; everything else in a chat request passes through.
 */
import { z } from "zod";

const url = z.string().refine((value) => {
  try {
    const parsed = new URL(value);
    return parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch {
    return false;
  }
}, "must be an http or https URL");

const statusCode = z.number().int().min(100).max(599);

/**
 * The `--config-file` YAML of `rock model-service start`. Unknown keys are rejected (ROCK ignores
 * them silently, which hides typos such as `proxy_rule`).
 */
export const ModelServiceConfigFile = z.strictObject({
  /** Address to bind (ROCK default "0.0.0.0"). */
  host: z.string().min(1).optional(),
  /** TCP port (ROCK default 8080; 0 picks a free one). */
  port: z.number().int().min(0).max(65535).optional(),
  /** One upstream for every model; takes precedence over proxy_rules. */
  proxy_base_url: url.nullish(),
  /** Upstream base URL per model name; "default" serves models without a rule. */
  proxy_rules: z.record(z.string(), url).optional(),
  /** Upstream statuses that are retried (ROCK default [429, 500]). */
  retryable_status_codes: z.array(statusCode).optional(),
  /** Seconds an upstream attempt may take (ROCK default 120; fractions allowed). */
  request_timeout: z.number().positive().optional(),
  /** rock: attempts per call, the first included (ROCK's fixed 6). */
  retry_max_attempts: z.number().int().min(1).max(100).optional(),
  /** rock: seconds before the first retry (ROCK's fixed 2), doubled each time. */
  retry_delay: z.number().min(0).optional(),
  /** rock: cap on one retry delay in seconds (ROCK has none; default 30). */
  retry_max_delay: z.number().min(0).optional(),
});
/** A parsed config file. */
export type ModelServiceConfigFile = z.output<typeof ModelServiceConfigFile>;

/**
 * The fields of an OpenAI chat completion request the service looks at; every other field is
 * kept and forwarded as it came.
 */
export const ChatCompletionRequest = z.looseObject({
  /** Model name, used for routing in proxy mode. */
  model: z.string().optional(),
  /** Server-sent events instead of one JSON body. */
  stream: z.boolean().nullish(),
});
/** A chat completion request (all other fields kept). */
export type ChatCompletionRequest = z.output<typeof ChatCompletionRequest>;

/** `POST /v1/agent/watch`: the agent process to watch (a number or a numeric string). */
export const WatchAgentRequest = z.looseObject({
  pid: z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]).pipe(
    z.number().int().positive(),
  ),
});
/** A watch request. */
export type WatchAgentRequest = z.output<typeof WatchAgentRequest>;

/** `POST /v1/agent/watch` reply, as ROCK sends it. */
export interface WatchAgentResponse {
  status: "watching";
  pid: number;
}

/** `GET /health` reply. */
export interface HealthResponse {
  status: "healthy";
}

/**
 * An error body. `detail` is what ROCK's FastAPI server sends for request errors; `error` is the
 * OpenAI shape that OpenAI clients read their message from.
 */
export interface ModelServiceErrorBody {
  detail?: string;
  error: { message: string; type: string; code: number | string };
}

/** One line of the trajectory file. */
export interface TrajectoryRecord {
  request: unknown;
  response: unknown;
}
