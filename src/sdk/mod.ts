/**
 * rock's TypeScript SDK: sandboxes on a rock (or ROCK) admin, on Deno and Node.
 *
 * @example
 * ```ts
 * import { Sandbox } from "./mod.ts";
 * await using sandbox = await new Sandbox({ baseUrl: "http://127.0.0.1:8080" }).start();
 * console.log((await sandbox.arun("echo hi")).output);
 * ```
 * @module
 */
export { Sandbox } from "./sandbox.ts";
export { Terminal } from "./terminal.ts";
export type { PtyOptions, TerminalSignalName } from "./terminal.ts";
export type {
  ArunOptions,
  ArunResult,
  ArunStream,
  ResolvedSandboxConfig,
  SandboxConfig,
  SandboxStatus,
  SessionOptions,
  WaitOptions,
} from "./sandbox.ts";
export type { WithDefaults } from "../common/options.ts";
export { SandboxGroup } from "./group.ts";
export { GemEnv } from "./gem.ts";
export type { GemEnvOptions } from "./gem.ts";
export type { GroupMember, ResolvedSandboxGroupConfig, SandboxGroupConfig } from "./group.ts";
export { AdminClient, defaultAdminUrl } from "./admin_client.ts";
export type { AdminClientOptions } from "./admin_client.ts";
export {
  BadRequestError,
  BadRequestRockError,
  BashSyntaxError,
  CancelledError,
  CommandError,
  CommandRockError,
  CommandTimeoutError,
  errorForCode,
  FileOperationError,
  GemEnvError,
  GemEnvNotFoundError,
  GemUnavailableError,
  InternalServerError,
  InternalServerRockError,
  NonZeroExitCodeError,
  RockError,
  RockSdkError,
  SandboxNotFoundError,
  SandboxStartError,
  SandboxStoppedError,
  SandboxStoppedRockError,
  SessionExistsError,
  SessionNotFoundError,
  UnavailableError,
  UnresponsiveError,
} from "./errors.ts";
export type { FileErrorKind, RockErrorOptions } from "./errors.ts";
export type {
  CommitStatus,
  EventError,
  FailureKind,
  Lease,
  ListResponse,
  LogsResponse,
  PhaseInfo,
  SandboxEvent,
  SandboxState,
  StartResponse,
  StatusResponse,
  StopInfo,
} from "../protocol/admin.ts";
export type {
  BashObservation,
  CommandResponse,
  CreateSessionResponse,
  EnvResetResponse,
  EnvStepResponse,
  ReadFileResponse,
  StatisticsResponse,
  UploadResponse,
  WriteFileResponse,
} from "../protocol/rocklet.ts";
export type { OnOutput, OutputStream } from "../protocol/runtime.ts";
export { DEFAULT_ENVHUB_URL, EnvHubClient } from "./envhub_client.ts";
export type { EnvHubClientOptions, ListEnvsFilter, RegisterEnvOptions } from "./envhub_client.ts";
export type { EnvHubHealth, EnvInfo, ListEnvsResponse } from "../protocol/envhub.ts";
export { RockAgent } from "./agent/rock_agent.ts";
export type { AgentRunResult, RockAgentOptions } from "./agent/rock_agent.ts";
export { loadAgentConfig, parseAgentConfig } from "./agent/config.ts";
export type {
  AgentBashCommand,
  AgentBashCommandInput,
  AgentConfigOptions,
  AgentModelServiceConfig,
  RockAgentConfig,
  RockAgentConfigInput,
} from "./agent/config.ts";
export type {
  AgentModelService,
  AgentModelServiceContext,
  AgentModelServiceFactory,
} from "./agent/agent_model_service.ts";
export { agentSettingsFromEnv } from "./agent/settings.ts";
export type { AgentSettings } from "./agent/settings.ts";
export { createRuntimeEnv } from "./runtime_env/create_runtime_env.ts";
export { DEFAULT_INSTALL_COMMANDS, RUNTIME_VERSIONS } from "./runtime_env/runtime_env.ts";
export type {
  InstallCommandName,
  NodeRuntimeEnvConfig,
  PythonRuntimeEnvConfig,
  RuntimeEnv,
  RuntimeEnvBaseConfig,
  RuntimeEnvConfig,
  RuntimeEnvConfigInput,
  RuntimeEnvInitOptions,
  RuntimeEnvOptions,
  RuntimeEnvRunOptions,
  RuntimeEnvSandbox,
  RuntimeEnvType,
} from "./runtime_env/runtime_env.ts";
export { DEFAULT_SANDBOX_ROCK_COMMAND, ModelService } from "./model_service.ts";
export type {
  ModelServiceOptions,
  ModelServiceSandbox,
  ResolvedModelServiceOptions,
} from "./model_service.ts";
export { TrainerSession } from "./trainer_session.ts";
export type { TrainerRequest, TrainerSessionOptions } from "./trainer_session.ts";
