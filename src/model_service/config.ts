/**
 * Model service configuration: ROCK's ModelServiceConfig defaults < the `--config-file` YAML <
 * flags, validated with zod; and the ROCK_MODEL_SERVICE_* settings, read from an environment the
 * CLI passes in (only the CLI reads the process environment).
 */
import { readYamlConfig } from "../common/yaml_config.ts";
import { join } from "node:path";
import { ConfigError } from "../common/errors.ts";
import { ModelServiceConfigFile } from "../protocol/model_service.ts";
import { EXCHANGE_FILE_NAME, TRAJECTORY_FILE_NAME } from "../formats/file_protocol.ts";

/** The resolved server configuration (ROCK's keys, camelCase). */
export interface ModelServiceConfig {
  /** Address to bind (default "0.0.0.0"). */
  host: string;
  /** TCP port (default 8080; 0 picks a free one). */
  port: number;
  /** One upstream for every model; wins over proxyRules (default none). */
  proxyBaseUrl: string | null;
  /** Upstream base URL per model; "default" for the rest. */
  proxyRules: Record<string, string>;
  /** Upstream statuses retried (default [429, 500]). */
  retryableStatusCodes: number[];
  /** Seconds one upstream attempt may take (default 120). */
  requestTimeout: number;
  /** Attempts per call, the first included (default 6, as ROCK). */
  retryMaxAttempts: number;
  /** Seconds before the first retry, doubled per retry (default 2, as ROCK). */
  retryDelay: number;
  /** Cap on one retry delay in seconds (default 30). */
  retryMaxDelay: number;
}

/** ROCK's defaults (`rock/sdk/model/server/config.py`) plus rock's retry keys. */
export const DEFAULT_MODEL_SERVICE_CONFIG: Readonly<ModelServiceConfig> = Object.freeze({
  host: "0.0.0.0",
  port: 8080,
  proxyBaseUrl: null,
  proxyRules: {
    "gpt-3.5-turbo": "https://api.openai.com/v1",
    "default": "https://api-inference.modelscope.cn/v1",
  },
  retryableStatusCodes: [429, 500],
  requestTimeout: 120,
  retryMaxAttempts: 6,
  retryDelay: 2,
  retryMaxDelay: 30,
});

/** Flags of `rock model-service start` that override the file. */
export interface ModelServiceFlags {
  configFile?: string;
  host?: string;
  port?: number;
  proxyBaseUrl?: string;
  retryableStatusCodes?: number[];
  requestTimeout?: number;
}

/**
 * Reads and validates a config file.
 * @throws {ConfigError} naming the file and the key that is wrong.
 */
export function readModelServiceConfigFile(path: string): Promise<ModelServiceConfigFile> {
  return readYamlConfig(path, ModelServiceConfigFile);
}

/**
 * Resolves the configuration: defaults < file < flags.
 * @throws {ConfigError} for an unreadable or invalid file.
 */
export async function loadModelServiceConfig(
  flags: ModelServiceFlags,
): Promise<ModelServiceConfig> {
  const file = flags.configFile ? await readModelServiceConfigFile(flags.configFile) : {};
  const d = DEFAULT_MODEL_SERVICE_CONFIG;
  return {
    host: flags.host ?? file.host ?? d.host,
    port: flags.port ?? file.port ?? d.port,
    proxyBaseUrl: flags.proxyBaseUrl ?? file.proxy_base_url ?? d.proxyBaseUrl,
    proxyRules: file.proxy_rules ?? { ...d.proxyRules },
    retryableStatusCodes: flags.retryableStatusCodes ?? file.retryable_status_codes ??
      [...d.retryableStatusCodes],
    requestTimeout: flags.requestTimeout ?? file.request_timeout ?? d.requestTimeout,
    retryMaxAttempts: file.retry_max_attempts ?? d.retryMaxAttempts,
    retryDelay: file.retry_delay ?? d.retryDelay,
    retryMaxDelay: file.retry_max_delay ?? d.retryMaxDelay,
  };
}

/** Settings from ROCK_* variables. */
export interface ModelServiceSettings {
  /** ROCK_MODEL_SERVICE_DATA_DIR: exchange and trajectory files (default /data/logs). */
  dataDir: string;
  /** ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE: keep every trajectory line (default false). */
  trajAppend: boolean;
  /** ROCK_MODEL_SERVICE_STATE_DIR: pid/state file of the background server (~/.rock/model-service). */
  stateDir: string;
  /** Server log of a background start: ROCK_LOGGING_PATH/ROCK_LOGGING_FILE_NAME, else the state dir. */
  logFile: string;
}

/** The exchange file in `dataDir`. */
export function exchangeFilePath(dataDir: string): string {
  return join(dataDir, EXCHANGE_FILE_NAME);
}

/** The trajectory file in `dataDir`. */
export function trajectoryFilePath(dataDir: string): string {
  return join(dataDir, TRAJECTORY_FILE_NAME);
}

/**
 * Reads the model service's ROCK_* settings from `env`.
 * @throws {ConfigError} when ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE is not a boolean.
 */
export function readModelServiceSettings(env: Record<string, string>): ModelServiceSettings {
  const home = env.HOME || "/root";
  const expand = (path: string) => path.replace(/^~(?=\/|$)/, home);
  const append = (env.ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE ?? "false").trim().toLowerCase();
  if (!["true", "false", "1", "0", "yes", "no", ""].includes(append)) {
    throw new ConfigError(
      `Invalid environment variable ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE: expected true or false, got "${env.ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE}"`,
    );
  }
  const stateDir = expand(env.ROCK_MODEL_SERVICE_STATE_DIR || join(home, ".rock", "model-service"));
  const logFile = env.ROCK_LOGGING_PATH
    ? join(expand(env.ROCK_LOGGING_PATH), env.ROCK_LOGGING_FILE_NAME || "model_service.log")
    : join(stateDir, "model_service.log");
  return {
    dataDir: expand(env.ROCK_MODEL_SERVICE_DATA_DIR || "/data/logs"),
    trajAppend: ["true", "1", "yes"].includes(append),
    stateDir,
    logFile,
  };
}
