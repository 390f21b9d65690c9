/**
 * The ROCK_* variables that shape agents and runtime envs, read from an environment object the
 * caller passes (the SDK never reads the process environment itself).
 */
import { z } from "zod";
import { ConfigError } from "../../common/errors.ts";
import type { InstallCommandName, RuntimeEnvOptions } from "../runtime_env/runtime_env.ts";
import { type AgentBashCommandInput, AgentBashCommandSchema } from "./config.ts";

/** What ROCK takes from the environment for agents. */
export interface AgentSettings {
  /** Install commands ($ROCK_RTENV_*_INSTALL_CMD) and the pip index ($ROCK_PIP_INDEX_URL). */
  runtimeEnv: RuntimeEnvOptions;
  /** Default `pre_init_cmds` ($ROCK_AGENT_PRE_INIT_BASH_CMD_LIST, a JSON list). */
  preInitCmds: AgentBashCommandInput[];
}

const INSTALL_COMMAND_NAMES: InstallCommandName[] = [
  "ROCK_RTENV_PYTHON_V31114_INSTALL_CMD",
  "ROCK_RTENV_PYTHON_V31212_INSTALL_CMD",
  "ROCK_RTENV_NODE_V22180_INSTALL_CMD",
];

/**
 * Reads the agent settings from `env` (e.g. `process.env`). Unset variables keep the SDK's
 * defaults; unlike ROCK there is no default pip index (ROCK's is an Aliyun mirror).
 * @throws {ConfigError} naming the variable when ROCK_AGENT_PRE_INIT_BASH_CMD_LIST is not a JSON
 * list of `{command, timeout_seconds}`.
 */
export function agentSettingsFromEnv(env: Record<string, string | undefined>): AgentSettings {
  const installCommands: Partial<Record<InstallCommandName, string>> = {};
  for (const name of INSTALL_COMMAND_NAMES) {
    if (env[name]) installCommands[name] = env[name];
  }
  const runtimeEnv: RuntimeEnvOptions = { installCommands };
  if (env.ROCK_PIP_INDEX_URL) runtimeEnv.pipIndexUrl = env.ROCK_PIP_INDEX_URL;
  let preInitCmds: AgentBashCommandInput[] = [];
  const list = env.ROCK_AGENT_PRE_INIT_BASH_CMD_LIST;
  if (list?.trim()) {
    let value: unknown;
    try {
      value = JSON.parse(list);
    } catch (error) {
      throw new ConfigError(
        `Invalid ROCK_AGENT_PRE_INIT_BASH_CMD_LIST: not JSON: ${(error as Error).message}`,
      );
    }
    const parsed = z.array(AgentBashCommandSchema).safeParse(value);
    if (!parsed.success) {
      const [issue] = parsed.error.issues;
      throw new ConfigError(
        `Invalid ROCK_AGENT_PRE_INIT_BASH_CMD_LIST: item "${issue?.path.join(".") ?? ""}": ${
          issue?.message ?? parsed.error.message
        }`,
      );
    }
    preInitCmds = parsed.data;
  }
  return { runtimeEnv, preInitCmds };
}
