/**
 * Admin configuration: defaults < YAML (`rock-conf/rock-<env>.yml` or --config) < ROCK_* env <
 * flags, validated once with zod. An unknown or bad key fails at start naming the file and key.
 */
import { z } from "zod";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { ConfigError } from "../common/errors.ts";
import { readYamlConfig } from "../common/yaml_config.ts";
import { DEFAULT_TIME_ZONE } from "../common/time.ts";
import { DEFAULT_SERVER_LIMITS, readServerLimits, type ServerLimits } from "../common/config.ts";
import { memoryBytes } from "../protocol/admin.ts";
import type { TaskConfig } from "./scheduler/scheduler.ts";
import {
  type AutoBackendConfig,
  BACKEND_CHOICES,
  type BackendChoice,
  type BackendConfig,
  type DockerBackendConfig,
  type KubernetesBackendConfig,
  type LocalBackendConfig,
} from "../sandbox/backend.ts";
import type { RockletLauncher } from "../sandbox/rocklet_launcher.ts";

const memory = z.string().refine((v) => memoryBytes(v) > 0, "must look like 64g, 512m or 1024");

/** The YAML file's schema (every key documented in rock-conf/rock-local.yml). */
export const AdminConfigFile = z.strictObject({
  admin: z.strictObject({
    host: z.string().min(1).optional(),
    port: z.number().int().min(0).max(65535).optional(),
    backend: z.enum(BACKEND_CHOICES).optional(),
    data_dir: z.string().min(1).optional(),
    db_url: z.string().min(1).optional(),
    db_auth_token: z.string().min(1).optional(),
    lease_seconds: z.number().positive().optional(),
    server: z.strictObject({
      header_timeout_seconds: z.number().positive().optional(),
      idle_timeout_seconds: z.number().positive().optional(),
      body_timeout_seconds: z.number().positive().optional(),
      max_connections: z.number().int().positive().optional(),
      shutdown_grace_seconds: z.number().positive().optional(),
    }).optional(),
  }).optional(),
  runtime: z.strictObject({
    default_image: z.string().min(1).optional(),
    gem_image: z.string().min(1).optional(),
    max_allowed_spec: z.strictObject({
      cpus: z.number().positive().optional(),
      memory: memory.optional(),
    }).optional(),
    default_auto_clear_time_minutes: z.number().int().positive().optional(),
    startup_timeout_seconds: z.number().positive().optional(),
    start_concurrency: z.number().int().positive().optional(),
    start_queue_limit: z.number().int().positive().optional(),
    queue_timeout_seconds: z.number().positive().optional(),
    sweep_interval_seconds: z.number().positive().optional(),
    expiry_warning_seconds: z.number().positive().optional(),
    batch_get_status_max_count: z.number().int().positive().optional(),
    time_zone: z.string().min(1).optional(),
    warm_pool: z.array(z.strictObject({
      image: z.string().min(1),
      memory,
      cpus: z.number().positive(),
      size: z.number().int().min(0).max(100),
    })).optional(),
  }).optional(),
  scheduler: z.strictObject({
    enabled: z.boolean().optional(),
    worker_cache_ttl: z.number().positive().optional(),
    tasks: z.array(z.strictObject({
      task_class: z.string().min(1),
      enabled: z.boolean().optional(),
      interval_seconds: z.number().positive(),
      params: z.record(z.string(), z.unknown()).optional(),
      name: z.string().min(1).optional(),
    })).optional(),
  }).optional(),
  local: z.strictObject({
    work_root: z.string().min(1).optional(),
  }).optional(),
  docker: z.strictObject({
    binary: z.string().min(1).optional(),
    publish_ip: z.literal("127.0.0.1").optional(),
    extra_run_args: z.array(z.string()).optional(),
    publish_ports: z.array(z.number().int().min(1).max(65535)).optional(),
  }).optional(),
  k8s: z.strictObject({
    kubectl_binary: z.string().min(1).optional(),
    kubeconfig: z.string().min(1).optional(),
    context: z.string().min(1).optional(),
    namespace: z.string().min(1).optional(),
    runtime_image: z.string().min(1).optional(),
    runtime_image_base: z.string().min(1).optional(),
    runtime_image_pull_policy: z.enum(["Always", "IfNotPresent", "Never"]).optional(),
    runtime_class_name: z.string().min(1).optional(),
    node_selector: z.record(z.string(), z.string()).optional(),
    tolerations: z.array(z.strictObject({
      key: z.string().optional(),
      operator: z.enum(["Exists", "Equal"]).optional(),
      value: z.string().optional(),
      effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
      toleration_seconds: z.number().int().optional(),
    })).optional(),
    access: z.enum(["pod-ip", "api-proxy"]).optional(),
    max_lifetime_seconds: z.number().int().positive().optional(),
  }).optional(),
});
/** A parsed YAML file. */
export type AdminConfigFile = z.output<typeof AdminConfigFile>;

/** The resolved admin configuration. */
export interface AdminConfig {
  host: string;
  port: number;
  backend: BackendChoice;
  dataDir: string;
  dbUrl: string;
  dbAuthToken?: string | undefined;
  /**
   * How long the leader's lease (and each admin's own) lasts without renewal, in seconds
   * (admin.lease_seconds, default 15): a killed leader's duties move to another admin within it.
   */
  leaseSeconds: number;
  /** Where the local backend keeps sandboxes' work dirs (default `<data dir>/sandboxes`). */
  localWorkRoot: string;
  defaultImage: string;
  /** The image GEM sandboxes start from (ROCK_ENVHUB_DEFAULT_DOCKER_IMAGE, runtime.gem_image). */
  gemImage: string;
  maxCpus: number;
  maxMemory: string;
  defaultAutoClearMinutes: number;
  startupTimeoutSeconds: number;
  /** Most placements at once (undefined: the manager's default from the cores). */
  startConcurrency?: number | undefined;
  /** Most starts waiting (default 1000). */
  startQueueLimit: number;
  /** Longest wait in the start queue from the create, in seconds (default 600). */
  queueTimeoutSeconds: number;
  sweepIntervalSeconds: number;
  /** How long before its expiry a sandbox's `expiring` event goes out (half a shorter lease). */
  expiryWarningSeconds: number;
  maxBatch: number;
  timeZone: string;
  dockerBinary: string;
  dockerExtraRunArgs: string[];
  /** Container ports published besides the rocklet's (docker.publish_ports; default none). */
  dockerPublishPorts: number[];
  /** The `k8s` section as written (read when the backend is kubernetes). */
  k8s: z.infer<typeof AdminConfigFile>["k8s"];
  /** Specs kept ready by the warm pool (docker backend). */
  warmPool: Array<{ image: string; memory: string; cpus: number; size: number }>;
  /** The scheduler: enabled and its tasks (ROCK's `scheduler` section). */
  scheduler: { enabled: boolean; tasks: TaskConfig[] };
  /** Bounds on the API's connections and the shutdown grace (admin.server, ROCK_SERVER_*). */
  server: ServerLimits;
  /** The YAML file read, if any. */
  configFile?: string | undefined;
}

/** Flags of `rock admin start` that override configuration. */
export interface AdminFlags {
  env?: string | undefined;
  config?: string | undefined;
  host?: string | undefined;
  port?: number | undefined;
  backend?: BackendChoice | undefined;
  dataDir?: string | undefined;
  db?: string | undefined;
}

/** Reads and validates a YAML file. */
export function readConfigFile(path: string): Promise<AdminConfigFile> {
  return readYamlConfig(path, AdminConfigFile);
}

/** Where `rock-conf/rock-<env>.yml` is: the working directory's rock-conf, else the checkout's. */
async function findEnvFile(env: string): Promise<string | undefined> {
  const name = `rock-${env}.yml`;
  const candidates = [join(Deno.cwd(), "rock-conf", name)];
  try {
    candidates.push(fileURLToPath(new URL(`../../rock-conf/${name}`, import.meta.url)));
  } catch {
    // Not a file URL (a bundle served from elsewhere): only the working directory counts.
  }
  for (const path of candidates) {
    if (await Deno.stat(path).then((s) => s.isFile, () => false)) return path;
  }
  return undefined;
}

function envNumber(env: Record<string, string>, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConfigError(
      `Invalid environment variable ${name}: expected a positive number, got "${raw}"`,
    );
  }
  return value;
}

/**
 * Resolves the configuration from flags, the environment and the YAML file.
 * @throws {ConfigError} naming the file and key, or the variable, that is wrong.
 */
export async function loadAdminConfig(
  flags: AdminFlags,
  env: Record<string, string>,
): Promise<AdminConfig> {
  const explicit = flags.config ?? env.ROCK_CONFIG;
  let configFile: string | undefined = explicit;
  if (!configFile) {
    const name = flags.env ?? "local";
    configFile = await findEnvFile(name);
    if (!configFile && flags.env && flags.env !== "local") {
      throw new ConfigError(
        `Cannot find config for --env ${flags.env}: no rock-conf/rock-${flags.env}.yml`,
      );
    }
  }
  const file = configFile ? await readConfigFile(configFile) : {};
  const home = env.HOME ?? Deno.cwd();
  const dataDir =
    (flags.dataDir ?? env.ROCK_ADMIN_DATA_DIR ?? file.admin?.data_dir ?? join(home, ".rock"))
      .replace(/^~(?=\/|$)/, home);
  const timeZone = env.ROCK_TIME_ZONE || file.runtime?.time_zone || DEFAULT_TIME_ZONE;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
  } catch {
    throw new ConfigError(`Invalid time zone "${timeZone}" (ROCK_TIME_ZONE or runtime.time_zone)`);
  }
  return {
    host: flags.host ?? file.admin?.host ?? "127.0.0.1",
    port: flags.port ?? file.admin?.port ?? 8080,
    backend: flags.backend ?? file.admin?.backend ?? "auto",
    dataDir,
    dbUrl: flags.db ?? env.ROCK_ADMIN_DB_URL ?? file.admin?.db_url ??
      `file:${join(dataDir, "rock.db")}`,
    dbAuthToken: env.ROCK_ADMIN_DB_AUTH_TOKEN ?? file.admin?.db_auth_token,
    leaseSeconds: file.admin?.lease_seconds ?? 15,
    localWorkRoot: (file.local?.work_root ?? join(dataDir, "sandboxes")).replace(
      /^~(?=\/|$)/,
      home,
    ),
    defaultImage: file.runtime?.default_image ?? "python:3.11",
    gemImage: env.ROCK_ENVHUB_DEFAULT_DOCKER_IMAGE || file.runtime?.gem_image ||
      file.runtime?.default_image || "python:3.11",
    maxCpus: file.runtime?.max_allowed_spec?.cpus ?? 16,
    maxMemory: file.runtime?.max_allowed_spec?.memory ?? "64g",
    defaultAutoClearMinutes: envNumber(env, "ROCK_DEFAULT_AUTO_CLEAR_TIME_MINUTES") ??
      file.runtime?.default_auto_clear_time_minutes ?? 360,
    startupTimeoutSeconds: envNumber(env, "ROCK_SANDBOX_STARTUP_TIMEOUT_SECONDS") ??
      file.runtime?.startup_timeout_seconds ?? 180,
    startConcurrency: file.runtime?.start_concurrency,
    startQueueLimit: file.runtime?.start_queue_limit ?? 1000,
    queueTimeoutSeconds: file.runtime?.queue_timeout_seconds ?? 600,
    sweepIntervalSeconds: file.runtime?.sweep_interval_seconds ?? 30,
    expiryWarningSeconds: file.runtime?.expiry_warning_seconds ?? 60,
    maxBatch: file.runtime?.batch_get_status_max_count ?? 2000,
    timeZone,
    dockerBinary: file.docker?.binary ?? "docker",
    dockerExtraRunArgs: file.docker?.extra_run_args ?? [],
    dockerPublishPorts: file.docker?.publish_ports ?? [],
    k8s: file.k8s,
    warmPool: file.runtime?.warm_pool ?? [],
    scheduler: {
      enabled: file.scheduler?.enabled ?? false,
      tasks: (file.scheduler?.tasks ?? []).filter((t) => t.enabled ?? true),
    },
    server: readServerLimits(serverLimitsOf(file.admin?.server), env),
    configFile,
  };
}

/** The defaults with what `admin.server` in the YAML file sets. */
function serverLimitsOf(
  server: NonNullable<AdminConfigFile["admin"]>["server"],
): ServerLimits {
  const ms = (seconds: number | undefined, fallback: number) =>
    seconds === undefined ? fallback : Math.round(seconds * 1000);
  return {
    headerTimeoutMs: ms(server?.header_timeout_seconds, DEFAULT_SERVER_LIMITS.headerTimeoutMs),
    idleTimeoutMs: ms(server?.idle_timeout_seconds, DEFAULT_SERVER_LIMITS.idleTimeoutMs),
    bodyTimeoutMs: ms(server?.body_timeout_seconds, DEFAULT_SERVER_LIMITS.bodyTimeoutMs),
    maxConnections: server?.max_connections ?? DEFAULT_SERVER_LIMITS.maxConnections,
    shutdownGraceMs: ms(server?.shutdown_grace_seconds, DEFAULT_SERVER_LIMITS.shutdownGraceMs),
  };
}

/**
 * The configuration of the backend `config` chooses: sandboxes' work dirs under the data dir,
 * docker's binary and run arguments from the `docker` section, containers labelled with
 * `deploymentId`.
 */
export function backendConfigOf(
  config: AdminConfig,
  options: { launcher: RockletLauncher; deploymentId: string },
): BackendConfig | AutoBackendConfig {
  const { launcher, deploymentId } = options;
  const local: LocalBackendConfig = {
    type: "local",
    workRoot: config.localWorkRoot,
    launcher,
  };
  const docker: DockerBackendConfig = {
    type: "docker",
    launcher,
    dockerBinary: config.dockerBinary,
    extraRunArgs: config.dockerExtraRunArgs,
    publishPorts: config.dockerPublishPorts,
    deploymentId,
  };
  switch (config.backend) {
    case "local":
      return local;
    case "docker":
      return docker;
    case "auto":
      return { type: "auto", docker, local };
    case "kubernetes":
      return kubernetesConfigOf(config.k8s, launcher, deploymentId);
  }
}

/**
 * The kubernetes backend's configuration from the `k8s` section; without `runtime_image` the
 * backend's factory builds the runtime image of `launcher` with the local docker engine.
 */
function kubernetesConfigOf(
  k8s: AdminConfig["k8s"],
  launcher: RockletLauncher,
  deploymentId: string,
): KubernetesBackendConfig {
  return {
    type: "kubernetes",
    launcher,
    runtimeImage: k8s?.runtime_image,
    runtimeImageBase: k8s?.runtime_image_base,
    runtimeImagePullPolicy: k8s?.runtime_image_pull_policy,
    kubectlBinary: k8s?.kubectl_binary,
    kubeconfig: k8s?.kubeconfig,
    context: k8s?.context,
    namespace: k8s?.namespace,
    access: k8s?.access,
    runtimeClassName: k8s?.runtime_class_name,
    nodeSelector: k8s?.node_selector,
    tolerations: k8s?.tolerations?.map(({ toleration_seconds, ...rest }) => ({
      ...rest,
      tolerationSeconds: toleration_seconds,
    })),
    maxLifetimeSeconds: k8s?.max_lifetime_seconds,
    deploymentId,
  };
}
