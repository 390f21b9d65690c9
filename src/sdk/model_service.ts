/**
 * `ModelService`: the model service in a sandbox, driven through `sandbox.arun` with the rock
 * executable the sandbox already has (no install step; ROCK pip-installs a package first). Runs on
 * Deno and Node (web and node: APIs only).
 *
 * @example
 * ```ts
 * import { ModelService } from "./model_service.ts";
 * import { Sandbox } from "./sandbox.ts";
 * await using sandbox = await new Sandbox({ image: "python:3.11" }).start();
 * const service = new ModelService(sandbox, { type: "local" });
 * await service.start();
 * let request = await service.antiCallLlm(0);
 * for (let i = 1; request !== "SESSION_END"; i++) {
 *   request = await service.antiCallLlm(i, JSON.stringify({ choices: [] }));
 * }
 * await service.stop();
 * ```
 */
import { BadRequestError } from "../common/errors.ts";
import { type WithDefaults, withDefaults } from "../common/options.ts";
import type { ArunOptions, ArunResult } from "./sandbox.ts";
import { CommandRockError } from "./errors.ts";

/**
 * How the sandbox runs rock: `$ROCK_CLI`, which every sandbox's environment carries (a wrapper
 * around the full bundle, or the compiled executable), else `/rock/bin/rock` where containers
 * have it mounted.
 */
export const DEFAULT_SANDBOX_ROCK_COMMAND = '"${ROCK_CLI:-/rock/bin/rock}"';

/** What ModelService needs of a sandbox (a `Sandbox` has it). */
export interface ModelServiceSandbox {
  /** Runs a shell command (normal or nohup mode). */
  arun(command: string, options?: ArunOptions): Promise<ArunResult>;
  /** Writes a text file. */
  writeFile(path: string, content: string): Promise<void>;
}

/** How the model service runs in the sandbox; flags left out use the service's defaults. */
export interface ModelServiceOptions {
  /** "local" (a trainer answers) or "proxy" (default "local"). */
  type?: "local" | "proxy" | undefined;
  /** The command prefix that runs rock in the sandbox (default DEFAULT_SANDBOX_ROCK_COMMAND). */
  rockCommand?: string | undefined;
  /** ROCK_MODEL_SERVICE_DATA_DIR in the sandbox (exchange and trajectory; default /data/logs). */
  dataDir?: string | undefined;
  /** ROCK_MODEL_SERVICE_STATE_DIR in the sandbox (default ~/.rock/model-service). */
  stateDir?: string | undefined;
  /** ROCK_LOGGING_PATH for the server log (default "/data/logs", as ROCK). */
  loggingPath?: string | undefined;
  /** ROCK_LOGGING_FILE_NAME (default "model_service.log", as ROCK). */
  loggingFileName?: string | undefined;
  /** Other variables for every command. */
  env?: Record<string, string> | undefined;
  /** `--config-file`: a YAML file in the sandbox with ROCK's ModelServiceConfig keys. */
  configFile?: string | undefined;
  /** `--host`: address to bind (the service's default "0.0.0.0"). */
  host?: string | undefined;
  /** `--port`: TCP port (the service's default 8080). */
  port?: number | undefined;
  /** `--proxy-base-url`: one upstream for every model (proxy mode). */
  proxyBaseUrl?: string | undefined;
  /** `--retryable-status-codes`: upstream statuses to retry (proxy mode). */
  retryableStatusCodes?: number[] | undefined;
  /** Seconds per upstream attempt. */
  requestTimeout?: number | undefined;
  /** Seconds start/stop/watch may take (default 60). */
  commandTimeout?: number | undefined;
}

/** ModelServiceOptions with the defaults applied. */
export type ResolvedModelServiceOptions = WithDefaults<
  ModelServiceOptions,
  "type" | "rockCommand" | "loggingPath" | "loggingFileName" | "commandTimeout"
>;

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function randomHex(bytes = 6): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16))
    .map((h) => h.padStart(2, "0")).join("");
}

/** Responses above this size go through a file: one argv string may not exceed 128 KiB. */
const INLINE_RESPONSE_LIMIT = 16 * 1024;

/** The model service in one sandbox. */
export class ModelService {
  /** The options with defaults applied. */
  readonly options: Readonly<ResolvedModelServiceOptions>;
  #sandbox: ModelServiceSandbox;
  #started = false;

  /**
   * Creates the handle; nothing runs until start(). An option left out or given as undefined
   * takes its default.
   */
  constructor(sandbox: ModelServiceSandbox, options: ModelServiceOptions = {}) {
    this.#sandbox = sandbox;
    this.options = withDefaults({
      type: "local",
      rockCommand: DEFAULT_SANDBOX_ROCK_COMMAND,
      loggingPath: "/data/logs",
      loggingFileName: "model_service.log",
      commandTimeout: 60,
    }, options);
  }

  /** True after start() succeeded and until stop(). */
  get started(): boolean {
    return this.#started;
  }

  /** `VAR=value ... <rock> model-service <args>` with this service's environment. */
  command(args: string): string {
    const o = this.options;
    const env: Record<string, string> = {
      ...(o.dataDir ? { ROCK_MODEL_SERVICE_DATA_DIR: o.dataDir } : {}),
      ...(o.stateDir ? { ROCK_MODEL_SERVICE_STATE_DIR: o.stateDir } : {}),
      ...(o.loggingPath ? { ROCK_LOGGING_PATH: o.loggingPath } : {}),
      ...(o.loggingFileName ? { ROCK_LOGGING_FILE_NAME: o.loggingFileName } : {}),
      ...o.env,
    };
    const prefix = Object.entries(env).map(([key, value]) => `${key}=${shellQuote(value)} `);
    return `${prefix.join("")}${o.rockCommand} model-service ${args}`;
  }

  async #run(what: string, command: string, options: ArunOptions = {}): Promise<string> {
    const result = await this.#sandbox.arun(
      command,
      withDefaults(
        { waitTimeout: this.options.commandTimeout },
        options,
      ),
    );
    if (result.exitCode !== 0) {
      throw new CommandRockError(
        `Cannot ${what} the model service: exit code ${result.exitCode}: ${
          (result.failureReason || result.output).slice(-2000)
        }`,
        { extraInfo: { exit_code: result.exitCode } },
      );
    }
    return result.output;
  }

  /**
   * (Re)starts the service and waits until it answers `/health` (stop first, as ROCK does).
   * @throws {CommandRockError} with the command's output when it fails.
   */
  async start(): Promise<void> {
    const o = this.options;
    const flags = [`--type ${o.type}`];
    if (o.configFile) flags.push(`--config-file ${shellQuote(o.configFile)}`);
    if (o.host) flags.push(`--host ${shellQuote(o.host)}`);
    if (o.port !== undefined) flags.push(`--port ${o.port}`);
    if (o.proxyBaseUrl) flags.push(`--proxy-base-url ${shellQuote(o.proxyBaseUrl)}`);
    if (o.retryableStatusCodes) {
      flags.push(`--retryable-status-codes ${o.retryableStatusCodes.join(",")}`);
    }
    if (o.requestTimeout !== undefined) flags.push(`--request-timeout ${o.requestTimeout}`);
    const mkdir = o.loggingPath ? `mkdir -p ${shellQuote(o.loggingPath)} && ` : "";
    await this.#run(
      "start",
      `${mkdir}${this.command("stop")} && ${this.command(`start ${flags.join(" ")}`)}`,
    );
    this.#started = true;
  }

  /** Stops the service (nothing running is not an error). */
  async stop(): Promise<void> {
    await this.#run("stop", this.command("stop"));
    this.#started = false;
  }

  /** Ends the session (SESSION_END) when the agent process `pid` exits. */
  async watchAgent(pid: number): Promise<void> {
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new BadRequestError(`Cannot watch agent: invalid pid ${pid}`);
    }
    await this.#run("watch an agent with", this.command(`watch-agent --pid ${pid}`));
  }

  /**
   * Answers call `index` with `response` (none for index 0) and returns the next request's JSON,
   * or "SESSION_END". Runs in nohup mode: waiting for the agent may take long.
   * @throws {CommandRockError} when the command fails or does not finish within `callTimeout` s.
   */
  async antiCallLlm(
    index: number,
    response?: string,
    options: { callTimeout?: number } = {},
  ): Promise<string> {
    let args = `anti-call-llm --index ${index}`;
    let responseFile: string | undefined;
    if (response !== undefined && response.length > INLINE_RESPONSE_LIMIT) {
      responseFile = `/tmp/rock-model-service-response-${index}-${randomHex()}.json`;
      await this.#sandbox.writeFile(responseFile, response);
      args += ` --response-file ${shellQuote(responseFile)}`;
    } else if (response !== undefined) {
      args += ` --response ${shellQuote(response)}`;
    }
    // Only the result goes to the output: stderr is shown only when the command fails.
    const err = `/tmp/rock-model-service-${randomHex()}.err`;
    const cleanup = responseFile ? ` ${shellQuote(responseFile)}` : "";
    const command = `{ ${this.command(args)}; } 2>${err}; s=$?; ` +
      `[ $s -eq 0 ] || cat ${err}; rm -f ${err}${cleanup}; exit $s`;
    const output = await this.#run("call anti-call-llm on", command, {
      mode: "nohup",
      waitTimeout: options.callTimeout ?? 600,
    });
    return output.trim();
  }
}
