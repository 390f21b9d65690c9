/**
 * The `rock` executable: builds the command tree and dispatches each role to `src/cli/`.
 * Usage errors (unknown options, bad values) exit with code 2 and one line on stderr.
 */
import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import { VERSION } from "./src/version.ts";
import { parseLogLevel, parsePort, parseSize } from "./src/cli/options.ts";

function buildProgram() {
  const program = new Command()
    .name("rock")
    .description("Sandboxes for coding agents: admin, rocklet, model service, envhub and CLI")
    .version(VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    .exitOverride();

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
      const { runRocklet } = await import("./src/cli/rocklet.ts");
      await runRocklet(options);
    });

  return program;
}

if (import.meta.main) {
  try {
    await buildProgram().parseAsync(Deno.args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) Deno.exit(error.exitCode === 0 ? 0 : 2);
    throw error;
  }
}
