/**
 * What every agent example does: start a sandbox, install the agent of a rock_agent_config.yaml
 * in it, run it with a prompt, print its output, stop the sandbox.
 * Arguments: [ADMIN_URL (default $ROCK_BASE_URL, else http://localhost:8080)] [IMAGE] [PROMPT].
 * The ROCK_RTENV_*_INSTALL_CMD, ROCK_PIP_INDEX_URL and ROCK_AGENT_PRE_INIT_BASH_CMD_LIST
 * variables are honoured as in ROCK.
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { RockAgent } from "../../src/sdk/agent/rock_agent.ts";
import { agentSettingsFromEnv } from "../../src/sdk/agent/settings.ts";
import { Sandbox } from "../../src/sdk/sandbox.ts";

/** Runs the agent configured in `config` (a file URL); returns its exit code (1 on a timeout). */
export async function runAgentExample(
  config: URL,
  args: string[],
  defaults: { image: string; prompt: string } = { image: "python:3.11", prompt: "Hello" },
): Promise<number> {
  const [baseUrl, image = defaults.image, prompt = defaults.prompt] = args;
  const settings = agentSettingsFromEnv(process.env);
  await using sandbox = new Sandbox({ baseUrl, image, memory: "2g", cpus: 1 });
  // Reading the config first: a bad one fails before any sandbox starts.
  const agent = await RockAgent.fromFile(sandbox, fileURLToPath(config), {
    runtimeEnv: settings.runtimeEnv,
    preInitCmds: settings.preInitCmds,
    onProgress: (step) => console.error(`[agent] ${step}`),
  });
  await sandbox.start();
  console.error(`[agent] sandbox ${sandbox.sandboxId} is running`);
  await agent.install();
  const result = await agent.run(prompt);
  console.log(result.output);
  console.log(`[agent] exit code: ${result.exitCode ?? `none (${result.failureReason})`}`);
  return result.exitCode ?? 1;
}
