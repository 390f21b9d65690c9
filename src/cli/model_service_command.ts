/**
 * The `rock model-service` command group (flags as ROCK's, plus `--foreground`, `--timeout` and
 * `--response-file`). Each action imports its implementation lazily, so other roles never load it.
 */
import { type Command, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { parsePort } from "./options.ts";

/** Parses comma-separated HTTP status codes such as `429,500,502`. */
export function parseStatusCodes(value: string): number[] {
  const codes = value.split(",").map((part) => part.trim()).filter((part) => part !== "");
  if (codes.length === 0 || codes.some((code) => !/^[1-5]\d\d$/.test(code))) {
    throw new InvalidArgumentError(
      `expected comma-separated HTTP status codes such as 429,500, got "${value}"`,
    );
  }
  return codes.map(Number);
}

/** Parses a positive number of seconds (fractions allowed). */
export function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(seconds > 0)) {
    throw new InvalidArgumentError(`expected a positive number of seconds, got "${value}"`);
  }
  return seconds;
}

/** Parses a non-negative integer (a call index). */
export function parseIndex(value: string): number {
  if (!/^\d+$/.test(value.trim())) {
    throw new InvalidArgumentError(`expected an integer of 0 or more, got "${value}"`);
  }
  return Number(value);
}

/** Parses a process id. */
export function parsePid(value: string): number {
  if (!/^[1-9]\d*$/.test(value.trim())) {
    throw new InvalidArgumentError(`expected a process id, got "${value}"`);
  }
  return Number(value);
}

/** Parses an http(s) URL. */
export function parseHttpUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === "http:" || url.protocol === "https:") return value;
  } catch {
    // Reported below.
  }
  throw new InvalidArgumentError(`expected an http or https URL, got "${value}"`);
}

/** Adds `rock model-service start|stop|watch-agent|anti-call-llm` to `program`. */
export function addModelService(program: Command): void {
  const service = program.command("model-service").description(
    "agent <-> LLM bridge: local mode (a trainer answers each call) or a proxy to LLM endpoints",
  );
  service
    .command("start")
    .description(
      "start the server in the background and wait for /health (--foreground: serve in place)",
    )
    .addOption(
      new Option(
        "--type <type>",
        "local: a trainer answers through the exchange file; proxy: forward to LLM endpoints",
      ).choices(["local", "proxy"] as const).default("local" as const),
    )
    .option("--config-file <file>", "YAML with ROCK's ModelServiceConfig keys")
    .option("--host <host>", 'address to bind (default: config, else "0.0.0.0")')
    .addOption(
      new Option("--port <port>", "TCP port, 0 picks a free one (default: config, else 8080)")
        .argParser(parsePort),
    )
    .addOption(
      new Option(
        "--proxy-base-url <url>",
        "proxy: one upstream for every model, e.g. https://host/v1 (default: config, else the rules)",
      ).argParser(parseHttpUrl),
    )
    .addOption(
      new Option(
        "--retryable-status-codes <codes>",
        "proxy: upstream statuses to retry (default: config, else 429,500)",
      ).argParser(parseStatusCodes),
    )
    .addOption(
      new Option(
        "--request-timeout <seconds>",
        "proxy: seconds per upstream attempt (default: config, else 120)",
      ).argParser(parseSeconds),
    )
    .option("--foreground", "serve in this process until SIGINT/SIGTERM", false)
    .addOption(
      new Option("--startup-timeout <seconds>", "how long a background start waits for /health")
        .argParser(parseSeconds)
        .default(30),
    )
    .action(async (options) => {
      const { startModelService } = await import("./model_service.ts");
      await startModelService(options);
    });
  service
    .command("stop")
    .description("stop the background server (nothing running is not an error)")
    .action(async () => {
      const { stopModelService } = await import("./model_service.ts");
      await stopModelService();
    });
  service
    .command("watch-agent")
    .description("end the session (SESSION_END) when the agent process exits")
    .requiredOption("--pid <pid>", "the agent's process id", parsePid)
    .option("--host <host>", "the service's host (default: the running one's, else 127.0.0.1)")
    .addOption(
      new Option("--port <port>", "the service's port (default: the running one's, else 8080)")
        .argParser(parsePort),
    )
    .action(async (options) => {
      const { watchAgent } = await import("./model_service.ts");
      await watchAgent(options);
    });
  service
    .command("anti-call-llm")
    .description(
      "answer call N and print only the next request's JSON, or SESSION_END (index 0: the first)",
    )
    .requiredOption("--index <n>", "index of the call answered (0 before the first)", parseIndex)
    .option("--response <json>", "the LLM response to call N (required when N > 0)")
    .option("--response-file <file>", "read the response from a file (for large responses)")
    .addOption(
      new Option("--timeout <seconds>", "give up waiting after this long (default: no limit)")
        .argParser(parseSeconds),
    )
    .action(async (options) => {
      const { antiCallLlmCommand } = await import("./model_service.ts");
      await antiCallLlmCommand(options);
    });
}
