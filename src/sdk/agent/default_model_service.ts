/**
 * RockAgent's default model service: the SDK's ModelService, which runs the rock executable the
 * sandbox already has (`$ROCK_CLI`), so nothing is installed, unlike ROCK's `pip install`.
 */
import { ModelService } from "../model_service.ts";
import type { Sandbox } from "../sandbox.ts";
import type { AgentModelService, AgentModelServiceFactory } from "./agent_model_service.ts";
import type { AgentModelServiceConfig } from "./config.ts";

/**
 * Makes a ModelService from `model_service_config`: its `type`, `logging_path` and
 * `logging_file_name`, and a `--proxy-base-url URL` written into ROCK's `start_cmd` template.
 * The trajectory keeps every call of the agent's run (append mode; ROCK keeps only the latest).
 */
export const defaultModelService: AgentModelServiceFactory = (
  sandbox: Sandbox,
  config: AgentModelServiceConfig,
): AgentModelService => {
  const proxyBaseUrl = /--proxy-base-url[ =](\S+)/.exec(config.start_cmd)?.[1]?.replace(
    /^['"]|['"]$/g,
    "",
  );
  return new ModelService(sandbox, {
    type: config.type,
    loggingPath: config.logging_path,
    loggingFileName: config.logging_file_name,
    env: { ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE: "true" },
    ...(proxyBaseUrl ? { proxyBaseUrl } : {}),
  });
};
