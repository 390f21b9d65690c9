/**
 * The `rock agent` command tree: `rock agent run` installs a coding agent from
 * rock_agent_config.yaml in a fresh sandbox and runs it with a prompt. The action loads
 * `agent.ts` on demand.
 */
import { type Command, Option } from "@commander-js/extra-typings";
import { collectHeader, parseMemory, parsePositive } from "./sandbox_command.ts";

/** Adds `rock agent ...` to `program`. */
export function addAgent(program: Command): void {
  const agent = program
    .command("agent")
    .description("install and run coding agents (Claude Code, iFlow CLI, SWE-agent) in sandboxes");

  agent
    .command("run")
    .summary("start a sandbox, install the agent, run it with a prompt, stop the sandbox")
    .description(
      "start a sandbox, install the agent of --config in it, run it with --prompt, print its " +
        "output and exit with its exit code; the sandbox is stopped unless --keep. A bad config " +
        "exits 2 before any sandbox starts",
    )
    .requiredOption("--config <file>", "the agent's rock_agent_config.yaml")
    .requiredOption("--prompt <text>", "the prompt (${prompt} in run_cmd, shell-quoted)")
    .option("--image <image>", "image of the sandbox", "python:3.11")
    .addOption(new Option("--memory <size>", "memory limit").argParser(parseMemory).default("8g"))
    .addOption(new Option("--cpus <n>", "cpu limit").argParser(parsePositive).default(2))
    .addOption(
      new Option("--startup-timeout <seconds>", "how long to wait until the sandbox runs")
        .argParser(parsePositive).default(180),
    )
    .option("--keep", "leave the sandbox running (its id is printed on stderr)", false)
    .option(
      "--base-url <url>",
      "admin URL (default: $ROCK_BASE_URL, else [rock] base_url in the config file, else " +
        "http://localhost:8080)",
    )
    .addOption(
      new Option("--extra-header <name=value>", "header sent with every request, repeatable")
        .argParser(collectHeader),
    )
    .action(async (options) => {
      const { runAgent } = await import("./agent.ts");
      await runAgent(options);
    });
}
