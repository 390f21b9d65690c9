/**
 * The command tree of the `rock` executable: the root command and every group, each from its
 * `<group>_command.ts` (commander) whose actions load `<group>.ts` on demand, so a role loads
 * only its own code; and running it with rock's exit codes (exit.ts).
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import { VERSION } from "../version.ts";
import { addAdmin } from "./admin_command.ts";
import { addAgent } from "./agent_command.ts";
import { addEnvHub } from "./envhub_command.ts";
import { exitOnFailure, USAGE_EXIT } from "./exit.ts";
import { addImage } from "./image_command.ts";
import { addModelService } from "./model_service_command.ts";
import { addRocklet } from "./rocklet_command.ts";
import { addSandbox } from "./sandbox_command.ts";

/** The root command with rock's name, version and error behaviour, and every command group. */
export function buildProgram(): Command {
  const program = new Command()
    .name("rock")
    .description("Sandboxes for coding agents: admin, rocklet, model service, envhub and CLI")
    .version(VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    .exitOverride();
  addRocklet(program);
  addModelService(program);
  addAdmin(program);
  addSandbox(program);
  addEnvHub(program);
  addAgent(program);
  addImage(program);
  return program;
}

/**
 * Parses `args` with `program` and runs the command. Usage errors (commander's) exit 2 with
 * commander's one line; failures go to exitOnFailure().
 */
export async function runProgram(program: Command, args: string[]): Promise<void> {
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) Deno.exit(error.exitCode === 0 ? 0 : USAGE_EXIT);
    exitOnFailure(error);
  }
}
