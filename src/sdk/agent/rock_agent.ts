/**
 * RockAgent: installs a coding agent in a sandbox from `rock_agent_config.yaml` and runs it with
 * a prompt (ROCK's `rock/sdk/sandbox/agent/rock_agent.py`). install(): upload the working dir,
 * create the agent's session with `env`, pre-init commands, then the runtime env and the model
 * service in parallel, then post-init commands. run(): the agent in the background in its
 * session, the model service told its pid, and its real exit code and output once it ends.
 *
 * @example
 * ```ts
 * import { loadAgentConfig, RockAgent, Sandbox } from "../mod.ts";
 * await using sandbox = await new Sandbox({ image: "node:22" }).start();
 * const agent = new RockAgent(sandbox, await loadAgentConfig("rock_agent_config.yaml"));
 * await agent.install();
 * const result = await agent.run("Fix the failing test");
 * console.log(result.exitCode, result.output);
 * ```
 */
import type { ArunResult, Sandbox } from "../sandbox.ts";
import {
  BadRequestRockError,
  CommandRockError,
  RockSdkError,
  SessionExistsError,
} from "../errors.ts";
import { formatTemplate, shellQuote } from "../shell_text.ts";
import { createRuntimeEnv } from "../runtime_env/create_runtime_env.ts";
import type { RuntimeEnv, RuntimeEnvOptions } from "../runtime_env/runtime_env.ts";
import type { AgentModelService, AgentModelServiceFactory } from "./agent_model_service.ts";
import { defaultModelService } from "./default_model_service.ts";
import { type AgentRunResult, BackgroundProcess } from "./background_process.ts";
import {
  type AgentBashCommand,
  type AgentConfigOptions,
  loadAgentConfig,
  type RockAgentConfig,
} from "./config.ts";

export type { AgentRunResult } from "./background_process.ts";

/** How a RockAgent installs and what it plugs in. */
export interface RockAgentOptions {
  /** Install commands and pip index for runtime envs (see agentSettingsFromEnv()). */
  runtimeEnv?: RuntimeEnvOptions | undefined;
  /** Makes the model service (default: the SDK's ModelService, run by the sandbox's rock). */
  modelService?: AgentModelServiceFactory | undefined;
  /** Told each step as it starts ("uploading the working dir", "running the agent", ...). */
  onProgress?: ((step: string) => void) | undefined;
}

function hex(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 16);
}

function tail(text: string, length = 1000): string {
  const trimmed = text.trim();
  return trimmed.length > length ? `...${trimmed.slice(-length)}` : trimmed;
}

/** An agent in one sandbox: install() once, then run() per prompt. */
export class RockAgent implements AsyncDisposable {
  /** The validated config. */
  readonly config: RockAgentConfig;
  readonly #sandbox: Sandbox;
  readonly #options: RockAgentOptions;
  #workingDir: string | undefined;
  #runtimeEnv: RuntimeEnv | undefined;
  #modelService: AgentModelService | undefined;
  #installed = false;

  /**
   * Prepares an agent for `sandbox` (which need not be started yet); nothing is sent until
   * install().
   */
  constructor(sandbox: Sandbox, config: RockAgentConfig, options: RockAgentOptions = {}) {
    this.#sandbox = sandbox;
    this.config = config;
    this.#options = options;
  }

  /**
   * Reads `path` (rock_agent_config.yaml) and prepares an agent with it.
   * @throws {ConfigError} naming the file and the key that is wrong.
   */
  static async fromFile(
    sandbox: Sandbox,
    path: string,
    options: RockAgentOptions & Pick<AgentConfigOptions, "preInitCmds"> = {},
  ): Promise<RockAgent> {
    const config = await loadAgentConfig(path, { preInitCmds: options.preInitCmds });
    return new RockAgent(sandbox, config, options);
  }

  /** Where the working dir was uploaded in the sandbox (after install()). */
  get workingDir(): string | undefined {
    return this.#workingDir;
  }

  /** The runtime env (after install()). */
  get runtimeEnv(): RuntimeEnv | undefined {
    return this.#runtimeEnv;
  }

  /** The model service (after install(), when enabled). */
  get modelService(): AgentModelService | undefined {
    return this.#modelService;
  }

  /**
   * Installs the agent once, within agent_install_timeout: working dir, session, pre-init
   * commands, runtime env and model service in parallel, post-init commands.
   * @throws {CommandRockError} naming the step that failed, with its exit code and output.
   */
  async install(): Promise<void> {
    if (this.#installed) return;
    const config = this.config;
    const deadline = Date.now() + config.agent_install_timeout * 1000;
    if (config.working_dir) {
      this.#progress("uploading the working dir");
      const target = `/tmp/rock_workdir_${hex()}`;
      await this.#sandbox.uploadDir(config.working_dir, target);
      this.#workingDir = target;
    }
    await this.#sandbox.createSession(config.agent_session, { envEnable: true, env: config.env })
      .catch((error) => {
        // A second install() after a failed one finds the session there: keep using it.
        if (!(error instanceof SessionExistsError)) throw error;
      });
    await this.#initCommands("pre-init", config.pre_init_cmds, deadline);

    this.#progress(`installing the ${config.runtime_env_config.type} runtime env`);
    const runtimeEnv = createRuntimeEnv(
      this.#sandbox,
      config.runtime_env_config,
      this.#options.runtimeEnv,
    );
    this.#runtimeEnv = runtimeEnv;
    const steps = [runtimeEnv.init({ deadline })];
    const factory = this.#options.modelService ?? defaultModelService;
    if (config.model_service_config.enabled && factory) {
      this.#progress("starting the model service");
      steps.push((async () => {
        this.#modelService = factory(this.#sandbox, config.model_service_config, {
          runtimeEnv: this.#options.runtimeEnv ?? {},
        });
        await this.#modelService.start();
      })());
    }
    // Wait for both before failing, so nothing of install() runs on after it has thrown.
    const settled = await Promise.allSettled(steps);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) throw failed.reason;

    await this.#initCommands("post-init", config.post_init_cmds, deadline);
    this.#installed = true;
  }

  /**
   * The command run() starts for `prompt`: run_cmd with `${prompt}` (shell-quoted), `${bin_dir}`
   * and `${working_dir}` filled, wrapped as `bash -c 'export PATH=<bin_dir>:$PATH && ...'` (plain
   * `bash -c` with skip_wrap_run_cmd), after `mkdir -p P && cd P` when there is a project path.
   */
  runCommand(prompt: string): string {
    const runtimeEnv = this.#requireInstalled();
    const config = this.config;
    const path = config.project_path ??
      (config.use_deploy_working_dir_as_fallback ? this.#workingDir : undefined);
    const command = formatTemplate(config.run_cmd, {
      prompt: shellQuote(prompt),
      bin_dir: runtimeEnv.binDir,
      working_dir: this.#workingDir,
    });
    const wrapped = config.skip_wrap_run_cmd
      ? `bash -c ${shellQuote(command)}`
      : runtimeEnv.wrappedCmd(command);
    return path ? `mkdir -p ${shellQuote(path)} && cd ${shellQuote(path)} && ${wrapped}` : wrapped;
  }

  /**
   * Runs the agent with `prompt` and waits up to agent_run_timeout for it to end; checks every
   * agent_run_check_interval that the sandbox still runs (which also keeps it from expiring).
   * With a model service, the service is told the agent's pid before the wait.
   * @returns the output and the agent's real exit code (null after a timeout, when the agent is
   * stopped).
   * @throws {RockSdkError} when the agent cannot be started or the sandbox stops meanwhile.
   */
  async run(
    prompt: string,
    options: {
      /** Gets the agent's output as it prints it (the result still holds all of it). */
      onOutput?: ((text: string) => void) | undefined;
    } = {},
  ): Promise<AgentRunResult> {
    const command = this.runCommand(prompt);
    this.#progress("running the agent");
    const agent = await BackgroundProcess.start(this.#sandbox, {
      session: this.config.agent_session,
      command,
    });
    if (this.#modelService) {
      try {
        await this.#modelService.watchAgent(agent.pid);
      } catch (error) {
        await agent.stop();
        throw error;
      }
    }
    return await agent.wait({
      timeout: this.config.agent_run_timeout,
      checkInterval: this.config.agent_run_check_interval,
      onOutput: options.onOutput,
    });
  }

  /** Stops the model service, if there is one. */
  async stop(): Promise<void> {
    const service = this.#modelService;
    this.#modelService = undefined;
    await service?.stop();
  }

  /** Stops the model service, ignoring errors (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop().catch(() => {});
  }

  #progress(step: string): void {
    this.#options.onProgress?.(step);
  }

  #requireInstalled(): RuntimeEnv {
    if (!this.#installed || !this.#runtimeEnv) {
      throw new BadRequestRockError("Cannot run the agent: call install() first");
    }
    return this.#runtimeEnv;
  }

  /** Init commands, in order, each with `bash -c` in the agent's session (so they see `env`). */
  async #initCommands(
    step: "pre-init" | "post-init",
    commands: AgentBashCommand[],
    deadline: number,
  ): Promise<void> {
    for (const [index, item] of commands.entries()) {
      this.#progress(`${step} command ${index + 1} of ${commands.length}`);
      const left = (deadline - Date.now()) / 1000;
      if (left <= 0) throw this.#installTimeout(`${step} command ${index + 1}`);
      const command = formatTemplate(item.command, {
        working_dir: this.#workingDir,
        bin_dir: step === "post-init" ? this.#runtimeEnv?.binDir : undefined,
      });
      const result: ArunResult = await this.#sandbox.arun(`bash -c ${shellQuote(command)}`, {
        session: this.config.agent_session,
        mode: "nohup",
        waitTimeout: Math.min(item.timeout_seconds, left),
      });
      if (result.exitCode !== 0) {
        const how = result.exitCode === null
          ? result.failureReason
          : `exit code ${result.exitCode}`;
        throw new CommandRockError(
          `Cannot install the agent in sandbox "${this.#sandbox.sandboxId}": ${step} command ` +
            `${index + 1} failed with ${how}: ${tail(result.output)}`,
          { sandboxId: this.#sandbox.sandboxId, extraInfo: { exit_code: result.exitCode } },
        );
      }
    }
  }

  #installTimeout(what: string): RockSdkError {
    return new RockSdkError(
      `Cannot install the agent in sandbox "${this.#sandbox.sandboxId}": agent_install_timeout ` +
        `(${this.config.agent_install_timeout} s) passed before ${what}`,
      { sandboxId: this.#sandbox.sandboxId },
    );
  }
}
