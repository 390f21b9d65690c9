/**
 * `rock agent run`: validates the agent config (exit 2 on a bad one, before any sandbox
 * starts), starts a sandbox, installs and runs the agent, prints its output, stops the sandbox
 * (unless --keep) and exits with the agent's exit code (1 when it did not finish in time).
 */
import { processEnvironment } from "../common/config.ts";
import { RockError } from "../common/errors.ts";
import { loadAgentConfig } from "../sdk/agent/config.ts";
import { RockAgent } from "../sdk/agent/rock_agent.ts";
import type { AgentModelServiceFactory } from "../sdk/agent/agent_model_service.ts";
import { agentSettingsFromEnv } from "../sdk/agent/settings.ts";
import { Sandbox } from "../sdk/sandbox.ts";
import type { ConnectionFlags } from "./cli_config.ts";
import { runCli } from "./exit.ts";
import { connection } from "./sandbox.ts";
import { LiveOutput, StatusLine } from "./terminal.ts";

/** Options of `rock agent run`. */
export interface AgentRunOptions extends ConnectionFlags {
  config: string;
  prompt: string;
  image: string;
  memory: string;
  cpus: number;
  startupTimeout: number;
  keep: boolean;
}

/** What `rock agent run` plugs into agents: none yet for the model service. */
export interface AgentCliDeps {
  /** Makes the model service of configs with `model_service_config.enabled`. */
  modelService?: AgentModelServiceFactory;
}

/** `rock agent run --config F --prompt TEXT`. */
export function runAgent(options: AgentRunOptions, deps: AgentCliDeps = {}): Promise<void> {
  return runCli(async () => {
    const settings = agentSettingsFromEnv(processEnvironment());
    const config = await loadAgentConfig(options.config, { preInitCmds: settings.preInitCmds });
    const { baseUrl, headers } = await connection(options);
    const sandbox = new Sandbox({
      baseUrl,
      extraHeaders: headers,
      image: options.image,
      memory: options.memory,
      cpus: options.cpus,
      startupTimeout: options.startupTimeout,
      // The agent's run keeps the sandbox alive; this covers the gaps around it.
      autoClearSeconds: 600,
    });
    const line = new StatusLine();
    // Checked here too: a config the agent cannot serve fails before any sandbox starts.
    const agent = new RockAgent(sandbox, config, {
      runtimeEnv: settings.runtimeEnv,
      modelService: deps.modelService,
      onProgress: (step) => line.set(step),
    });
    const onInterrupt = () => {
      line.clear();
      const stopping = options.keep ? Promise.resolve() : sandbox.stop().catch(() => {});
      stopping.finally(() => Deno.exit(130));
    };
    Deno.addSignalListener("SIGINT", onInterrupt);
    line.spin(`starting ${options.image}`);
    try {
      await sandbox.start({
        onStatus: (status) => line.set(`${status.sandbox_id} ${status.state}`),
      });
      await agent.install();
      const live = new LiveOutput();
      const result = await agent.run(options.prompt, {
        onOutput: (text) => {
          line.clear();
          live.write("stdout", text);
        },
      });
      line.clear();
      if (!live.wrote && result.output) live.write("stdout", result.output);
      await live.finish({ newline: true });
      if (result.exitCode === null) throw new RockError(result.failureReason);
      return result.exitCode;
    } finally {
      line.clear();
      Deno.removeSignalListener("SIGINT", onInterrupt);
      let id: string | undefined;
      try {
        id = sandbox.sandboxId;
      } catch { /* never started */ }
      if (options.keep && id) {
        console.error(`sandbox ${id} kept running`);
      } else {
        await agent.stop().catch(() => {});
        await sandbox.stop().catch(() => {});
      }
    }
  });
}
