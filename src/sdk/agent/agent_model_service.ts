/**
 * What RockAgent needs of a model service: start it (install included), tell it the agent's pid
 * so it ends the session when the agent exits, stop it. The SDK's model service satisfies this;
 * RockAgent gets one from a factory so the two stay independent.
 */
import type { Sandbox } from "../sandbox.ts";
import type { RuntimeEnvOptions } from "../runtime_env/runtime_env.ts";
import type { AgentModelServiceConfig } from "./config.ts";

/** A model service in the agent's sandbox. */
export interface AgentModelService {
  /** Installs (if needed) and starts the service; resolves once it answers. */
  start(): Promise<void>;
  /** Watches process `pid` (the agent): when it exits the service ends the session. */
  watchAgent(pid: number): Promise<void>;
  /** Stops the service. */
  stop(): Promise<void>;
}

/** What a factory gets besides the config. */
export interface AgentModelServiceContext {
  /** Install settings for the service's own runtime env. */
  runtimeEnv: RuntimeEnvOptions;
}

/** Makes the model service for `config` (`model_service_config`) in `sandbox`. */
export type AgentModelServiceFactory = (
  sandbox: Sandbox,
  config: AgentModelServiceConfig,
  context: AgentModelServiceContext,
) => AgentModelService;
