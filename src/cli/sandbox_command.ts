/**
 * The `rock sandbox` command tree (the user CLI over the SDK) and its flag parsers. Actions load
 * their implementation (`sandbox.ts`, `sandbox_shell.ts`, `sandbox_cp.ts`) on demand.
 * Global options (`--base-url`, `--extra-header`) are accepted before or after the subcommand.
 */
import { type Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { SANDBOX_STATES } from "../protocol/admin.ts";
import { splitKeyValue } from "./cli_config.ts";

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MEMORY = /^\d+(\.\d+)?(b|k|kb|m|mb|g|gb|t|tb)?$/i;

/** Parses a number above zero (cpus, seconds). */
export function parsePositive(value: string): number {
  const number = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(number > 0)) {
    throw new InvalidArgumentError(`expected a number above zero, got "${value}"`);
  }
  return number;
}

/** Parses a whole number above zero (minutes, lines, pages). */
export function parseCount(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) {
    throw new InvalidArgumentError(`expected a whole number above zero, got "${value}"`);
  }
  return Number(value);
}

/** Parses a duration (`90`, `90s`, `30m`, `2h`, `1d`, `1h30m`; a bare number is seconds), in seconds. */
export function parseDuration(value: string): number {
  const text = value.trim();
  const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
  let seconds = 0;
  if (/^\d+(\.\d+)?$/.test(text)) seconds = Number(text);
  else if (/^(\d+(\.\d+)?[smhd])+$/.test(text)) {
    for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)) {
      seconds += Number(amount) * units[unit!]!;
    }
  }
  if (!(seconds > 0)) {
    throw new InvalidArgumentError(`expected a duration such as 90s, 30m or 1h30m, got "${value}"`);
  }
  return seconds;
}

/** Checks a memory size as ROCK takes it (`8g`, `512m`, `1024`). */
export function parseMemory(value: string): string {
  if (!MEMORY.test(value.trim())) {
    throw new InvalidArgumentError(`expected a size such as 8g, 512m or 1024, got "${value}"`);
  }
  return value.trim();
}

/** Collects repeated `K=V` values (environment variables). */
export function collectKeyValue(value: string, previous: string[] | undefined): string[] {
  if (!splitKeyValue(value)) throw new InvalidArgumentError(`expected KEY=VALUE, got "${value}"`);
  return [...(previous ?? []), value];
}

/** Collects repeated `NAME=VALUE` headers, checking the name and value are valid in HTTP. */
export function collectHeader(value: string, previous: string[] | undefined): string[] {
  const pair = splitKeyValue(value);
  if (!pair || !HEADER_NAME.test(pair[0]) || /[\r\n\0]/.test(pair[1])) {
    throw new InvalidArgumentError(`expected NAME=VALUE with a valid header name, got "${value}"`);
  }
  return [...(previous ?? []), value];
}

/** Adds `rock sandbox ...` to `program`. */
export function addSandbox(program: Command): void {
  const sandbox = program
    .command("sandbox")
    .description("start, use and stop sandboxes on an admin (the user CLI)")
    .option(
      "--base-url <url>",
      "admin URL (default: $ROCK_BASE_URL, else [rock] base_url in the config file, else " +
        "http://localhost:8080)",
    )
    .addOption(
      new Option(
        "--extra-header <name=value>",
        "header sent with every request, repeatable (adds to [rock.extra_headers] of " +
          "$ROCK_CLI_DEFAULT_CONFIG_PATH or ~/.rock/config.ini)",
      ).argParser(collectHeader),
    );

  sandbox
    .command("start")
    .description("start a sandbox, wait until it runs, print its id")
    .option("--image <image>", "image to run", "python:3.11")
    .addOption(new Option("--memory <size>", "memory limit").argParser(parseMemory).default("8g"))
    .addOption(new Option("--cpus <n>", "cpu limit").argParser(parsePositive).default(2))
    .addOption(
      new Option("--pull <policy>", "image pull policy")
        .choices(["never", "always", "missing"] as const).default("missing" as const),
    )
    .addOption(
      new Option("--auto-clear <minutes>", "stop after this many minutes without a keep-alive")
        .argParser(parseCount).default(5),
    )
    .addOption(
      new Option(
        "--timeout <duration>",
        "stop it this long after it runs, busy or not, instead of --auto-clear (30m, 2h; " +
          "`rock sandbox extend` sets it again)",
      ).argParser(parseDuration),
    )
    .addOption(
      new Option("--startup-timeout <seconds>", "how long to wait until it runs")
        .argParser(parsePositive).default(180),
    )
    .option("--user <id>", "user id (X-User-Id)")
    .option("--experiment <id>", "experiment id (X-Experiment-Id)")
    .option("--namespace <name>", "namespace (X-Namespace)")
    .option("--cluster <name>", "cluster (X-Cluster)")
    .option("--sandbox-id <id>", "id to use instead of a generated one")
    .addOption(
      new Option(
        "--env <key=value>",
        "not supported: ROCK's start request carries no environment; use `exec --env` or " +
          "`shell --env`",
      ).argParser(collectKeyValue),
    )
    .action(async (options, command) => {
      const { startSandbox } = await import("./sandbox.ts");
      await startSandbox({ ...command.optsWithGlobals(), ...options });
    });

  sandbox
    .command("ls")
    .summary("list sandboxes")
    .description(
      "list live sandboxes (pending, running); --all adds the stopped and failed ones (history)",
    )
    .option("-a, --all", "also the stopped and failed sandboxes", false)
    .addOption(new Option("--state <state>", "only this state").choices(SANDBOX_STATES))
    .option("--user <id>", "only this user id")
    .option("--experiment <id>", "only this experiment id")
    .option("--namespace <name>", "only this namespace")
    .option("--image <image>", "only this image")
    .addOption(new Option("--page <n>", "page number").argParser(parseCount).default(1))
    .addOption(
      new Option("--page-size <n>", "sandboxes per page").argParser(parseCount).default(100),
    )
    .option("--json", "print the page's items as a JSON array", false)
    .action(async (options, command) => {
      const { listSandboxes } = await import("./sandbox.ts");
      await listSandboxes({ ...command.optsWithGlobals(), ...options });
    });

  sandbox
    .command("status")
    .description("show a sandbox's state, phases and placement")
    .argument("<id>", "sandbox id (or a unique prefix of one, as everywhere)")
    .option("--json", "print ROCK's StatusResp as JSON", false)
    .action(async (id, options, command) => {
      const { showStatus } = await import("./sandbox.ts");
      await showStatus(id, { ...command.optsWithGlobals(), ...options });
    });

  sandbox
    .command("exec")
    .summary("run a command; its exit code becomes rock's")
    .description(
      "run a command; its exit code becomes rock's. Put `--` before the command: " +
        "`rock sandbox exec ID -- ls -la`",
    )
    .argument("<id>", "sandbox id")
    .argument("<command...>", "argv (or, with --session, words joined into one bash command)")
    .option("--session <name>", "run in this bash session (created if missing), keeping its state")
    .option("-i, --interactive", "pass stdin through to the command")
    .option("-t, --tty", "run the command on a terminal (with -i on a terminal: keys go to it raw)")
    .addOption(
      new Option("--timeout <seconds>", "give up after this long (default: 1200, session 300)")
        .argParser(parsePositive),
    )
    .addOption(
      new Option("--env <key=value>", "extra environment, repeatable (not with --session)")
        .argParser(collectKeyValue),
    )
    .action(async (id, argv, options, command) => {
      const { execCommand } = await import("./sandbox.ts");
      await execCommand(id, argv, { ...command.optsWithGlobals(), ...options });
    });

  sandbox
    .command("shell")
    .summary("a shell in the sandbox: a real terminal, or lines from a pipe")
    .description(
      "on a terminal: an interactive bash on a terminal in the sandbox (raw keys, Ctrl-C " +
        "interrupts the program there, full-screen programs work; its exit code becomes rock's). " +
        "Piped stdin (or --no-tty, or --session): lines run in one bash session; `exit [N]` or " +
        "EOF ends",
    )
    .argument("<id>", "sandbox id")
    .option("--no-tty", "line mode even on a terminal")
    .option("--session <name>", "line mode in this session, kept (default: a fresh one, closed)")
    .addOption(
      new Option("--timeout <seconds>", "give up on one line after this long").argParser(
        parsePositive,
      ).default(300),
    )
    .addOption(
      new Option("--env <key=value>", "extra environment of a fresh session, repeatable")
        .argParser(collectKeyValue),
    )
    .action(async (id, options, command) => {
      const { runShell } = await import("./sandbox_shell.ts");
      await runShell(id, { ...command.optsWithGlobals(), ...options });
    });

  sandbox
    .command("cp")
    .summary("copy a file or a directory between here and a sandbox")
    .description(
      "copy a file or a directory's contents between here and a sandbox; one side is ID:PATH " +
        "(write ./a:b for a local path with a colon)",
    )
    .argument("<src>", "local path or ID:PATH")
    .argument("<dst>", "local path or ID:PATH (a directory's contents land in it, created)")
    .action(async (src, dst, _options, command) => {
      const { copyFiles } = await import("./sandbox_cp.ts");
      await copyFiles(src, dst, command.optsWithGlobals());
    });

  sandbox
    .command("stop")
    .description("stop sandboxes; exit 1 if any could not be stopped")
    .argument("<ids...>", "sandbox ids")
    .action(async (ids, _options, command) => {
      const { stopSandboxes } = await import("./sandbox.ts");
      await stopSandboxes(ids, command.optsWithGlobals());
    });

  sandbox
    .command("extend")
    .summary("set when a sandbox is stopped: DURATION from now")
    .description(
      "set when a sandbox is stopped: DURATION from now (30m, 2h, 1h30m, 90s), busy or not; " +
        "keep-alives no longer move it. Prints the new expiry",
    )
    .argument("<id>", "sandbox id")
    .argument("<duration>", "how long from now, e.g. 30m", parseDuration)
    .action(async (id, seconds, _options, command) => {
      const { extendSandbox } = await import("./sandbox.ts");
      await extendSandbox(id, seconds, command.optsWithGlobals());
    });

  sandbox
    .command("restart")
    .description(
      "place a stopped or failed sandbox again under its id (a fresh start from its image) and " +
        "wait until it runs",
    )
    .argument("<id>", "sandbox id")
    .addOption(
      new Option("--startup-timeout <seconds>", "how long to wait until it runs")
        .argParser(parsePositive).default(180),
    )
    .action(async (id, options, command) => {
      const { restartSandbox } = await import("./sandbox.ts");
      await restartSandbox(id, { ...command.optsWithGlobals(), ...options });
    });

  sandbox
    .command("rm")
    .description(
      "delete stopped or failed sandboxes from the admin's history; exit 1 if any could not be " +
        "deleted",
    )
    .argument("<ids...>", "sandbox ids")
    .option("-f, --force", "stop running ones first", false)
    .action(async (ids, options, command) => {
      const { removeSandboxes } = await import("./sandbox.ts");
      await removeSandboxes(ids, { ...command.optsWithGlobals(), ...options });
    });

  sandbox
    .command("prune")
    .description("delete the stopped and failed sandboxes that ended longer ago than a duration")
    .requiredOption(
      "--older-than <duration>",
      "how long ago they ended: 90s, 30m, 2h, 7d, 1h30m",
      parseDuration,
    )
    .action(async (options, command) => {
      const { pruneSandboxes } = await import("./sandbox.ts");
      await pruneSandboxes({ ...command.optsWithGlobals(), ...options });
    });

  sandbox
    .command("commit")
    .description(
      "make an image of the sandbox as it is now; pushed when the tag names a registry",
    )
    .argument("<id>", "sandbox id")
    .argument("<tag>", "image tag, e.g. 127.0.0.1:5000/team/env:v2")
    .option("--username <user>", "registry user for the push")
    .option("--password-stdin", "read the registry password from stdin", false)
    .action(async (id, tag, _options, command) => {
      const { commitSandbox } = await import("./sandbox.ts");
      await commitSandbox(id, tag, command.optsWithGlobals());
    });

  sandbox
    .command("logs")
    .description("print the last lines the sandbox's rocklet wrote")
    .argument("<id>", "sandbox id")
    .addOption(new Option("--tail <n>", "lines from the end").argParser(parseCount).default(200))
    .action(async (id, options, command) => {
      const { showLogs } = await import("./sandbox.ts");
      await showLogs(id, { ...command.optsWithGlobals(), ...options });
    });

  sandbox
    .command("port-forward")
    .description(
      "listen on 127.0.0.1:LOCAL and carry each connection to port REMOTE in the sandbox " +
        "(through the admin and the sandbox's rocklet)",
    )
    .argument("<id>", "sandbox id")
    .argument("<ports>", "LOCAL:REMOTE, or PORT for both")
    .action(async (id, ports, _options, command) => {
      const { runPortForward } = await import("./sandbox_port_forward.ts");
      await runPortForward(id, ports, command.optsWithGlobals());
    });
}
