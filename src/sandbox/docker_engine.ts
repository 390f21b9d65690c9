/**
 * The docker Engine API over its unix socket: the calls the admin makes on every start and stop
 * (image and container inspect, create and start, rename, remove, list by label) without
 * starting a `docker` process each time. A CLI call costs a Go process start (tens of ms of
 * CPU, and more under a burst); the same call on the socket costs about a millisecond.
 *
 * Used only where it means the same engine the CLI would reach: the configured binary is plain
 * `docker`, DOCKER_HOST is unset or a unix socket, and no docker context other than the default
 * is selected (DOCKER_CONTEXT or the CLI's config). Elsewhere (podman, a remote host, a
 * wrapper script) rock keeps to the CLI. Failures are typed by HTTP status, never by text.
 */
import { join } from "node:path";
import { CancelledError, RockError, UnavailableError } from "../common/errors.ts";

/** The socket DOCKER_HOST names by default. */
const DEFAULT_SOCKET = "/var/run/docker.sock";

/** What one call returns: the status and the parsed JSON body (undefined when empty). */
export interface EngineAnswer {
  status: number;
  body: unknown;
}

/** Options of one Engine API call. */
export interface EngineCallOptions {
  /** JSON body. */
  body?: unknown;
  /** Query parameters. */
  query?: Record<string, string>;
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
}

/**
 * The socket of the engine the `docker` CLI would reach with this environment, when rock can
 * be sure of it; undefined otherwise (then the CLI is used).
 */
export function engineSocket(
  binary: string,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): string | undefined {
  if (binary !== "docker") return undefined;
  const host = env("DOCKER_HOST");
  if (host !== undefined && host !== "" && !host.startsWith("unix://")) return undefined;
  const context = env("DOCKER_CONTEXT");
  if (context !== undefined && context !== "" && context !== "default") return undefined;
  if (!host && selectedContext(env) !== "default") return undefined;
  const path = host ? host.slice("unix://".length) : DEFAULT_SOCKET;
  try {
    return Deno.statSync(path).isSocket ? path : undefined;
  } catch {
    return undefined;
  }
}

/** The CLI config's current context ("default" when none is set or the config is unreadable). */
function selectedContext(env: (name: string) => string | undefined): string {
  const dir = env("DOCKER_CONFIG") || (env("HOME") ? join(env("HOME")!, ".docker") : undefined);
  if (!dir) return "default";
  try {
    const config = JSON.parse(Deno.readTextFileSync(join(dir, "config.json")));
    return typeof config.currentContext === "string" && config.currentContext !== ""
      ? config.currentContext
      : "default";
  } catch {
    return "default";
  }
}

/** A client of the Engine API on a unix socket. */
export class DockerEngine {
  readonly #socket: string;
  readonly #client: Deno.HttpClient;
  readonly #timeoutMs: number;

  /** A client of the engine at unix socket `socket`; nothing is sent until the first call. */
  constructor(socket: string, options: { timeoutMs?: number } = {}) {
    this.#socket = socket;
    this.#client = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  /**
   * Sends one call and returns its status and JSON body, whatever the status.
   * @throws {CancelledError} when `options.signal` aborts.
   * @throws {UnavailableError} when the socket does not answer.
   * @throws {RockError} when the call runs past its timeout.
   */
  async call(method: string, path: string, options: EngineCallOptions = {}): Promise<EngineAnswer> {
    const what = `${method} ${path}`;
    if (options.signal?.aborted) throw new CancelledError(`Cannot call ${what}: cancelled`);
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const query = options.query ? `?${new URLSearchParams(options.query)}` : "";
    let response: Response;
    try {
      response = await fetch(`http://docker${path}${query}`, {
        method,
        client: this.#client,
        signal,
        headers: options.body === undefined ? {} : { "content-type": "application/json" },
        body: options.body === undefined ? null : JSON.stringify(options.body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? parseJson(text) : undefined };
    } catch (error) {
      if (options.signal?.aborted) throw new CancelledError(`Cannot call ${what}: cancelled`);
      if (timeout.aborted) {
        throw new RockError(
          `Cannot call ${what} on the docker engine: timed out after ${timeoutMs} ms`,
        );
      }
      throw new UnavailableError(
        `Cannot reach the docker engine at ${this.#socket}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /** True when the engine answers `GET /_ping`. */
  async ping(): Promise<boolean> {
    try {
      return (await this.call("GET", "/_ping", { timeoutMs: 5_000 })).status === 200;
    } catch {
      return false;
    }
  }

  /** Closes the client's connections. */
  close(): void {
    this.#client.close();
  }
}

/** JSON of `text`, or the text itself when it is not JSON (`/_ping` answers "OK"). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
