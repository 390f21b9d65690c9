/**
 * The `rock` executable: builds the command tree and dispatches each role to `src/cli/`.
 * Usage errors (unknown options, bad values) exit with code 2 and one line on stderr.
 */
import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import { VERSION } from "./src/version.ts";
import { ConfigError, RockError } from "./src/common/errors.ts";
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

  const admin = program.command("admin").description(
    "the orchestrator: sandbox lifecycle API and data plane",
  );
  admin
    .command("start")
    .description("serve the admin API (foreground until SIGINT/SIGTERM; sandboxes keep running)")
    .addOption(new Option("--env <name>", "config rock-conf/rock-<name>.yml").default("local"))
    .option("--config <file>", "config file (default: $ROCK_CONFIG or the --env file)")
    .option("--host <host>", "address to bind (default: config, else 127.0.0.1)")
    .addOption(
      new Option("--port <port>", "TCP port, 0 picks a free one (default: config, else 8080)")
        .argParser(parsePort),
    )
    .addOption(
      new Option(
        "--backend <type>",
        "auto: docker when an engine answers, else local (default: config, else auto)",
      )
        .choices(["auto", "docker", "local"] as const),
    )
    .option("--data-dir <dir>", "state, billing log and caches (default: config, else ~/.rock)")
    .option(
      "--db <url>",
      "libsql URL: file:PATH or a libsql server (default: file:<data-dir>/rock.db)",
    )
    .option("--daemon", "run detached; `rock admin stop` stops it", false)
    .action(async (options) => {
      const { runAdmin } = await import("./src/cli/admin.ts");
      await runAdmin(options);
    });
  admin
    .command("stop")
    .description("stop the admin started with --daemon for the same data dir")
    .addOption(new Option("--env <name>", "config rock-conf/rock-<name>.yml").default("local"))
    .option("--config <file>", "config file")
    .option("--data-dir <dir>", "data dir of the admin to stop (default: config, else ~/.rock)")
    .action(async (options) => {
      const { stopAdmin } = await import("./src/cli/admin.ts");
      await stopAdmin(options);
    });

  return program;
}

if (import.meta.main) {
  try {
    await buildProgram().parseAsync(Deno.args, { from: "user" });
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
