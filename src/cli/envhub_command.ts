/**
 * The `rock envhub` command tree: `start` serves the registry (`envhub.ts`); `register`, `get`,
 * `ls` and `rm` are its CLI (`envhub_actions.ts`). Actions load their implementation on demand.
 * The global `--base-url` is accepted before or after the subcommand.
 */
import { type Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { parseLogLevel, parsePort } from "./options.ts";

/** Collects a repeated option's values. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Parses `--extra-spec`: a JSON object. */
export function parseExtraSpec(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new InvalidArgumentError(`expected a JSON object: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(`expected a JSON object, got ${value}`);
  }
  return parsed as Record<string, unknown>;
}

/** Adds `rock envhub ...` to `program`. */
export function addEnvHub(program: Command): void {
  const envhub = program
    .command("envhub")
    .description("the environment registry: serve it, or register, get, list and remove entries")
    .option(
      "--base-url <url>",
      "EnvHub URL for the client commands (default: $ROCK_ENVHUB_BASE_URL, else " +
        "http://localhost:8081)",
    );

  envhub
    .command("start")
    .description("serve EnvHub (foreground until SIGINT/SIGTERM)")
    .option("--host <host>", "address to bind", "0.0.0.0")
    .addOption(
      new Option("--port <port>", "TCP port (0 picks a free one)").argParser(parsePort).default(
        8081,
      ),
    )
    .option(
      "--db <url>",
      "libsql URL (file:PATH or a libsql server) or ROCK's sqlite:///PATH " +
        "(default: $ROCK_ENVHUB_DB_URL, else file:~/.rock/rock_envs.db)",
    )
    .addOption(
      new Option(
        "--log-level <level>",
        "debug, info, warn or error (default: $ROCK_LOGGING_LEVEL or info)",
      ).argParser(parseLogLevel),
    )
    .action(async (options) => {
      const { runEnvHub } = await import("./envhub.ts");
      await runEnvHub(options);
    });

  envhub
    .command("register")
    .description("create an environment, or replace one with the same name; prints its name")
    .requiredOption("--name <name>", "environment name")
    .requiredOption("--image <image>", "docker image")
    .option("--owner <owner>", "owner")
    .option("--description <text>", "description")
    .addOption(new Option("--tag <tag>", "tag, repeatable").argParser(collect))
    .addOption(
      new Option("--extra-spec <json>", "free-form settings as a JSON object").argParser(
        parseExtraSpec,
      ),
    )
    .action(async (options, command) => {
      const { registerEnv } = await import("./envhub_actions.ts");
      await registerEnv({ ...command.optsWithGlobals(), ...options });
    });

  envhub
    .command("get")
    .description("show an environment")
    .argument("<name>", "environment name")
    .option("--json", "print EnvHub's EnvInfo as JSON", false)
    .action(async (name, options, command) => {
      const { showEnv } = await import("./envhub_actions.ts");
      await showEnv(name, { ...command.optsWithGlobals(), ...options });
    });

  envhub
    .command("ls")
    .description("list environments")
    .option("--owner <owner>", "only this owner (exact)")
    .addOption(
      new Option("--tag <tag>", "only environments with any of these tags, repeatable")
        .argParser(collect),
    )
    .option("--json", "print the environments as a JSON array", false)
    .action(async (options, command) => {
      const { listEnvs } = await import("./envhub_actions.ts");
      await listEnvs({ ...command.optsWithGlobals(), ...options });
    });

  envhub
    .command("rm")
    .description("delete an environment; prints its name")
    .argument("<name>", "environment name")
    .action(async (name, _options, command) => {
      const { removeEnv } = await import("./envhub_actions.ts");
      await removeEnv(name, command.optsWithGlobals());
    });
}
