/**
 * `rock_agent_config.yaml`: ROCK's RockAgentConfig (keys and defaults of
 * `rock/sdk/sandbox/agent/rock_agent.py`), validated with zod. Unknown keys are refused (ROCK
 * ignores them, which hides typos); errors name the file and the key path.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ConfigError } from "../../common/errors.ts";
import {
  EnvVariablesSchema,
  type PythonRuntimeEnvConfig,
  PythonRuntimeEnvConfigSchema,
  type RuntimeEnvConfig,
  type RuntimeEnvConfigInput,
  RuntimeEnvConfigSchema,
} from "../runtime_env/runtime_env.ts";

function hex(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

const seconds = z.number({ error: "expected a number of seconds" }).positive(
  "expected a number of seconds above zero",
);

/** One init command (ROCK's AgentBashCommand). */
export interface AgentBashCommand {
  /** Run with `bash -c` in the agent's session; `${working_dir}` (and, post-init, `${bin_dir}`). */
  command: string;
  /** Seconds it may take (default 300). */
  timeout_seconds: number;
}

/** An init command as written. */
export interface AgentBashCommandInput {
  /** The command. */
  command: string;
  /** Seconds it may take (default 300). */
  timeout_seconds?: number;
}

/**
 * `model_service_config` (ROCK's ModelServiceConfig in `rock/sdk/sandbox/model_service/base.py`):
 * how the in-sandbox model service is installed, started and told about the agent. RockAgent
 * hands it to the model service factory it was given.
 */
export interface AgentModelServiceConfig {
  /** Start a model service with the agent (default false). */
  enabled: boolean;
  /** "local" (a trainer answers through the file protocol) or "proxy" (an upstream LLM). */
  type: "local" | "proxy";
  /** Command that installs the service (ROCK: $ROCK_MODEL_SERVICE_INSTALL_CMD). */
  install_cmd?: string | null | undefined;
  /** Seconds the install may take (default 300). */
  install_timeout: number;
  /** The Python runtime env the service runs in (`type` may be left out). */
  runtime_env_config: PythonRuntimeEnvConfig;
  /** Starts the service; `${type}` is filled (default `rock model-service start --type ${type}`). */
  start_cmd: string;
  /** Stops the service (default `rock model-service stop`). */
  stop_cmd: string;
  /** Creates the CLI config file so the CLI prints nothing else. */
  config_ini_cmd: string;
  /** Tells the service which process is the agent; `${pid}` is filled. */
  watch_agent_cmd: string;
  /** Answers call `${index}` with `${response_payload}` and prints the next request. */
  anti_call_llm_cmd: string;
  /** Prints the first request. */
  anti_call_llm_cmd_no_response: string;
  /** Directory of the service's log (default /data/logs). */
  logging_path: string;
  /** The service's log file name (default model_service.log). */
  logging_file_name: string;
}

/** A validated `rock_agent_config.yaml` (ROCK's RockAgentConfig; defaults applied). */
export interface RockAgentConfig {
  /** Type of agent (default "default"). */
  agent_type: string;
  /** Name of this agent (default: random hex). */
  agent_name: string;
  /** Version label (default "default"). */
  version: string;
  /** Where the agent is installed in the sandbox (default /tmp/installed_agent). */
  agent_installed_dir: string;
  /** Instance id (default instance-id-<hex>). */
  instance_id: string;
  /** Directory the agent runs in (created); without it, see use_deploy_working_dir_as_fallback. */
  project_path?: string | null | undefined;
  /** Without project_path, run in the uploaded working dir (default true). */
  use_deploy_working_dir_as_fallback: boolean;
  /** Bash session of the agent (default agent-session-<hex>). */
  agent_session: string;
  /** Variables of the agent's session (init commands run there too). */
  env: Record<string, string>;
  /** Commands before the runtime env (default: $ROCK_AGENT_PRE_INIT_BASH_CMD_LIST). */
  pre_init_cmds: AgentBashCommand[];
  /** Commands after the runtime env and model service are ready. */
  post_init_cmds: AgentBashCommand[];
  /** Seconds install() may take in all (default 600). */
  agent_install_timeout: number;
  /** Seconds run() waits for the agent (default 1800). */
  agent_run_timeout: number;
  /** Seconds between checks that the sandbox still runs (default 30; below agent_run_timeout). */
  agent_run_check_interval: number;
  /** Local directory uploaded into the sandbox (absolute once parsed); `${working_dir}` there. */
  working_dir?: string | null | undefined;
  /** The agent's command; `${prompt}` is the prompt, shell-quoted. */
  run_cmd: string;
  /** Run run_cmd with plain `bash -c`, without bin_dir first on the PATH (default false). */
  skip_wrap_run_cmd: boolean;
  /** The runtime env (default: python, version default). */
  runtime_env_config: RuntimeEnvConfig;
  /** The model service (default: disabled). */
  model_service_config: AgentModelServiceConfig;
}

/** An agent config as written: `run_cmd`, the rest optional. */
export type RockAgentConfigInput =
  & Pick<RockAgentConfig, "run_cmd">
  & Partial<
    Omit<
      RockAgentConfig,
      "run_cmd" | "pre_init_cmds" | "post_init_cmds" | "runtime_env_config" | "model_service_config"
    >
  >
  & {
    /** Init commands before the runtime env. */
    pre_init_cmds?: AgentBashCommandInput[];
    /** Init commands after it. */
    post_init_cmds?: AgentBashCommandInput[];
    /** The runtime env. */
    runtime_env_config?: RuntimeEnvConfigInput;
    /** The model service. */
    model_service_config?:
      & Partial<Omit<AgentModelServiceConfig, "runtime_env_config">>
      & { runtime_env_config?: Partial<PythonRuntimeEnvConfig> };
  };

/** Validates an init command. */
export const AgentBashCommandSchema = z.strictObject({
  "command": z.string({ error: "expected the command as a string" }).min(1, "must not be empty"),
  "timeout_seconds": seconds.default(300),
});

/** Validates `model_service_config`. */
export const AgentModelServiceConfigSchema = z.strictObject({
  "enabled": z.boolean().default(false),
  "type": z.enum(["local", "proxy"], { error: 'expected "local" or "proxy"' }).default("local"),
  "install_cmd": z.string().nullish(),
  "install_timeout": seconds.default(300),
  "runtime_env_config": PythonRuntimeEnvConfigSchema.extend({
    "type": z.literal("python", { error: 'expected "python"' }).default("python"),
  }).prefault({ type: "python" }),
  "start_cmd": z.string().default("rock model-service start --type ${type}"),
  "stop_cmd": z.string().default("rock model-service stop"),
  "config_ini_cmd": z.string().default("mkdir -p ~/.rock && touch ~/.rock/config.ini"),
  "watch_agent_cmd": z.string().default("rock model-service watch-agent --pid ${pid}"),
  "anti_call_llm_cmd": z.string().default(
    "PYTHONWARNINGS=ignore rock model-service anti-call-llm --index ${index} --response " +
      "${response_payload}",
  ),
  "anti_call_llm_cmd_no_response": z.string().default(
    "PYTHONWARNINGS=ignore rock model-service anti-call-llm --index ${index}",
  ),
  "logging_path": z.string().default("/data/logs"),
  "logging_file_name": z.string().default("model_service.log"),
});

/** Validates the whole `rock_agent_config.yaml` (keys documented on RockAgentConfig). */
export const RockAgentConfigSchema = z.strictObject({
  "agent_type": z.string().default("default"),
  "agent_name": z.string().default(hex),
  "version": z.string().default("default"),
  "agent_installed_dir": z.string().default("/tmp/installed_agent"),
  "instance_id": z.string().default(() => `instance-id-${hex()}`),
  "project_path": z.string().min(1).nullish(),
  "use_deploy_working_dir_as_fallback": z.boolean().default(true),
  "agent_session": z.string().min(1).default(() => `agent-session-${hex()}`),
  "env": EnvVariablesSchema.default({}),
  "pre_init_cmds": z.array(AgentBashCommandSchema).default([]),
  "post_init_cmds": z.array(AgentBashCommandSchema).default([]),
  "agent_install_timeout": seconds.default(600),
  "agent_run_timeout": seconds.default(1800),
  "agent_run_check_interval": seconds.default(30),
  "working_dir": z.string().min(1).nullish(),
  "run_cmd": z.string({
    error: (issue) =>
      issue.input === undefined
        ? 'required: the command that runs the agent, e.g. "claude -p ${prompt}"'
        : "expected a string",
  }).min(1, "must not be empty"),
  "skip_wrap_run_cmd": z.boolean().default(false),
  "runtime_env_config": RuntimeEnvConfigSchema.prefault({ type: "python" }),
  "model_service_config": AgentModelServiceConfigSchema.prefault({}),
}).superRefine((config, context) => {
  const { agent_run_check_interval: interval, agent_run_timeout: timeout } = config;
  if (interval > 0 && timeout > 0 && interval >= timeout) {
    context.addIssue({
      code: "custom",
      path: ["agent_run_check_interval"],
      message: `must be less than agent_run_timeout (${interval} >= ${timeout})`,
    });
  }
});

/** How an agent config is read. */
export interface AgentConfigOptions {
  /** Named in errors (the file). */
  source?: string | undefined;
  /** Relative `working_dir` and `pip` requirement paths resolve here (default: the cwd). */
  baseDir?: string | undefined;
  /** `pre_init_cmds` when the config has none (ROCK: $ROCK_AGENT_PRE_INIT_BASH_CMD_LIST). */
  preInitCmds?: AgentBashCommandInput[] | undefined;
}

function describe(issues: readonly z.core.$ZodIssue[]): string {
  return issues.flatMap((issue) => {
    const keys = issue.code === "unrecognized_keys" ? issue.keys : [undefined];
    return keys.map((extra) => {
      const key = [...issue.path, ...(extra === undefined ? [] : [extra])].join(".");
      const message = extra === undefined ? issue.message : "unknown key";
      return key ? `key "${key}": ${message}` : message;
    });
  }).join("; ");
}

function invalid(options: AgentConfigOptions, detail: string): ConfigError {
  const where = options.source ? ` "${options.source}"` : "";
  return new ConfigError(`Invalid agent config${where}: ${detail}`);
}

/**
 * Validates an agent config object: every key, `agent_run_check_interval` below
 * `agent_run_timeout`, and that `working_dir` is an existing directory. Relative local paths
 * become absolute (against `baseDir`).
 * @throws {ConfigError} naming the key path: `Invalid agent config "a.yaml": key "run_cmd": ...`.
 */
export async function parseAgentConfig(
  value: unknown,
  options: AgentConfigOptions = {},
): Promise<RockAgentConfig> {
  let input = value ?? {};
  if (
    options.preInitCmds && typeof input === "object" && !Array.isArray(input) &&
    !("pre_init_cmds" in input)
  ) {
    input = { ...input, pre_init_cmds: options.preInitCmds };
  }
  const result = RockAgentConfigSchema.safeParse(input);
  if (!result.success) throw invalid(options, describe(result.error.issues));
  const config: RockAgentConfig = result.data;
  const base = options.baseDir ?? process.cwd();
  if (config.working_dir) {
    config.working_dir = resolve(base, config.working_dir);
    const info = await stat(config.working_dir).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw invalid(
        options,
        `key "working_dir": "${config.working_dir}" ${
          info ? "is not a directory" : "does not exist"
        }`,
      );
    }
  }
  for (const env of [config.runtime_env_config, config.model_service_config.runtime_env_config]) {
    if (env.type === "python" && typeof env.pip === "string") env.pip = resolve(base, env.pip);
  }
  return config;
}

/**
 * Reads and validates `rock_agent_config.yaml`; relative paths in it resolve against its
 * directory.
 * @throws {ConfigError} naming the file and the key.
 */
export async function loadAgentConfig(
  path: string,
  options: Omit<AgentConfigOptions, "source" | "baseDir"> = {},
): Promise<RockAgentConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(`Cannot read agent config "${path}": ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`Cannot parse agent config "${path}": ${(error as Error).message}`);
  }
  if (
    value !== null && value !== undefined && (typeof value !== "object" || Array.isArray(value))
  ) {
    throw new ConfigError(`Invalid agent config "${path}": expected a mapping of keys`);
  }
  return await parseAgentConfig(value, {
    ...options,
    source: path,
    baseDir: dirname(resolve(path)),
  });
}
