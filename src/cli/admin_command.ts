/** The `rock admin` command tree: `start` (foreground or --daemon) and `stop` (admin.ts). */
import { type Command, Option } from "@commander-js/extra-typings";
import { parsePort } from "./options.ts";
import { BACKEND_CHOICES } from "../sandbox/backend.ts";

/** Adds `rock admin start|stop` to `program`. */
export function addAdmin(program: Command): void {
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
        .choices(BACKEND_CHOICES),
    )
    .option("--data-dir <dir>", "state, billing log and caches (default: config, else ~/.rock)")
    .option(
      "--db <url>",
      "libsql URL: file:PATH or a libsql server (default: file:<data-dir>/rock.db)",
    )
    .option("--daemon", "run detached; `rock admin stop` stops it", false)
    .action(async (options) => {
      const { runAdmin } = await import("./admin.ts");
      await runAdmin(options);
    });
  admin
    .command("stop")
    .description("stop the admin started with --daemon for the same data dir")
    .addOption(new Option("--env <name>", "config rock-conf/rock-<name>.yml").default("local"))
    .option("--config <file>", "config file")
    .option("--data-dir <dir>", "data dir of the admin to stop (default: config, else ~/.rock)")
    .action(async (options) => {
      const { stopAdmin } = await import("./admin.ts");
      await stopAdmin(options);
    });
}
