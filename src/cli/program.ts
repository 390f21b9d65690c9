/**
 * The parts of the command tree shared by the `rock` executable (main.ts) and the slim rocklet
 * entry (rocklet_main.ts): program settings, the `rocklet` command, and running a program with
 * rock's exit codes (2 for usage errors, 1 for failures, one line each).
 */
import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import { ConfigError, RockError } from "../common/errors.ts";
import { VERSION } from "../version.ts";
import { parseLogLevel, parsePort, parseSize } from "./options.ts";

/** The root command with rock's name, version and error behaviour. */
export function createProgram(): Command {
  return new Command()
    .name("rock")
    .description("Sandboxes for coding agents: admin, rocklet, model service, envhub and CLI")
    .version(VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    .exitOverride();
}

/** Adds `rock rocklet` to `program`. */
export function addRocklet(program: Command): void {
  program
    .command("rocklet")
    .description("serve bash sessions, commands and files inside a sandbox over HTTP")
    .option("--host <host>", "address to bind", "0.0.0.0")
    .addOption(
      new Option("--port <port>", "TCP port (0 picks a free one)").argParser(parsePort).default(
        22555,
      ),
    )
    .addOption(
      new Option("--max-output-bytes <size>", "cap on one command's output, e.g. 10m")
        .argParser(parseSize)
        .default(10 * 1024 * 1024, "10m"),
    )
    .addOption(
      new Option(
        "--log-level <level>",
        "debug, info, warn or error (default: $ROCK_LOGGING_LEVEL or info)",
      )
        .argParser(parseLogLevel),
    )
    .action(async (options) => {
      const { runRocklet } = await import("./rocklet.ts");
      await runRocklet(options);
    });
}

/** Parses Deno.args with `program` and runs the command; exits 2 on usage errors, 1 on failures. */
export async function runProgram(program: Command): Promise<void> {
  try {
    await program.parseAsync(Deno.args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) Deno.exit(error.exitCode === 0 ? 0 : 2);
    // Expected failures: one line, no stack. Bad configuration is a usage error (2).
    if (error instanceof RockError) {
      console.error(`error: ${error.message}`);
      Deno.exit(error instanceof ConfigError ? 2 : 1);
    }
    throw error;
  }
}
