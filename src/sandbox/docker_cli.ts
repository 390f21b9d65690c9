/**
 * The one wrapper around the docker CLI. Every docker call goes through `DockerCli.exec()`: dax
 * with `.noThrow()`, stdout and stderr captured, a timeout and an optional AbortSignal, arguments
 * passed as an array through dax's escaping (never concatenated into a shell string). A failure
 * becomes a RockError naming the docker command, the exit code and the tail of stderr. Secrets
 * travel on stdin only and are masked should docker ever echo them; registry logins live in a
 * private docker config for one pull, never in the user's.
 */
import $, { KillController } from "dax";
import { CancelledError, RockError, UnavailableError } from "../common/errors.ts";
import { withDefaults } from "../common/options.ts";

/** Options of a DockerCli. */
export interface DockerCliOptions {
  /** The docker executable (default "docker", found on PATH). */
  binary?: string;
  /** Timeout of one call in milliseconds (default 60 000). */
  timeoutMs?: number;
}

/** Options of one docker call. */
export interface DockerCallOptions {
  /** Timeout of this call in milliseconds (default: the CLI's). */
  timeoutMs?: number;
  /** Aborts the call: docker gets SIGKILL and the call throws a CancelledError. */
  signal?: AbortSignal;
  /** Text fed to docker's stdin (e.g. a password for `--password-stdin`); masked in errors. */
  stdin?: string;
  /** Environment variables set for this call only (on top of the process's). */
  env?: Record<string, string>;
}

/** Credentials for one pull from `registry` (Docker Hub when empty). */
export interface RegistryLogin {
  registry: string;
  username: string;
  password: string;
}

/** Options of a pull. */
export interface PullOptions extends DockerCallOptions {
  /** Log in for this pull only, through a private docker config removed afterwards. */
  login?: RegistryLogin;
}

/** What a docker call printed and how it exited. */
export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A published port as docker reports it. */
export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** The fields of `docker container inspect` rock reads. */
export interface ContainerInspect {
  Id: string;
  /** "/<name>" */
  Name: string;
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    OOMKilled?: boolean;
    Error?: string;
  };
  Config: { Image: string; Labels: Record<string, string> | null };
  HostConfig: { Memory: number; MemorySwap: number; NanoCpus: number };
  NetworkSettings: { Ports: Record<string, PortBinding[] | null> | null };
}

/** One line of `docker images`. */
export interface ImageSummary {
  repository: string;
  tag: string;
  id: string;
}

/** Name prefix of the private docker config directory of a pull with credentials. */
export const PRIVATE_CONFIG_PREFIX = "rock-docker-config-";

const DEFAULT_TIMEOUT_MS = 60_000;
const STDERR_TAIL_LINES = 10;
const MISSING = /No such (container|object|image)/i;

/** What docker says when a host port it is to publish is bound already (by it or another). */
const PORT_TAKEN = /port is already allocated|bind: address already in use/i;
/** What docker run says when it may not pull and the image is not here. */
const NO_SUCH_IMAGE = /No such image/i;

/** `docker run` could not publish a port: the host port was taken. */
export class PortTakenError extends RockError {}

/** `docker run --pull=never` found no such image here; it created nothing. */
export class ImageMissingError extends RockError {}

/** Docker's usage hint after a failure: noise in an error message. */
const HELP_HINT = /^Run '.*--help' for more information\.?$/;

/** Last `lines` non-empty lines of `text` (docker's usage hint left out). */
export function tail(text: string, lines = STDERR_TAIL_LINES): string {
  return text.trim().split("\n")
    .filter((line) => line.trim() !== "" && !HELP_HINT.test(line.trim()))
    .slice(-lines)
    .join("\n");
}

/** `": <evidence>"`, or nothing when there is no evidence. */
function colon(evidence: string): string {
  return evidence ? `: ${evidence}` : "";
}

/** A typed client for the docker CLI. */
export class DockerCli {
  readonly #binary: string;
  readonly #timeoutMs: number;

  /** Creates a client; nothing runs until the first call. */
  constructor(options: DockerCliOptions = {}) {
    this.#binary = options.binary ?? "docker";
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * Runs `docker <args>` and returns its output whatever the exit code.
   * @throws {CancelledError} when `options.signal` aborts the call (docker gets SIGKILL).
   * @throws {RockError} when docker cannot be started or runs past the timeout.
   */
  async call(args: string[], options: DockerCallOptions = {}): Promise<DockerResult> {
    const name = commandName(args);
    const { signal, stdin, env } = options;
    if (signal?.aborted) throw new CancelledError(`Cannot run "${name}": cancelled before start`);
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const kill = new KillController();
    // SIGKILL, not SIGTERM: docker lets some calls (a login waiting on a silent registry) run
    // on after SIGTERM, and dax passes only the first signal on to the process.
    const stop = () => kill.kill("SIGKILL");
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, timeoutMs);
    signal?.addEventListener("abort", stop, { once: true });
    try {
      let command = $`${this.#binary} ${args}`
        .signal(kill.signal)
        .stdout("piped")
        .stderr("piped")
        .noThrow();
      if (env) command = command.env(env);
      command = stdin === undefined ? command.stdin("null") : command.stdinText(stdin);
      const result = await command;
      const secret = stdin?.trim();
      const stderr = secret ? result.stderr.replaceAll(secret, "***") : result.stderr;
      if (signal?.aborted) {
        throw new CancelledError(`Cannot run "${name}": cancelled${colon(tail(stderr))}`);
      }
      if (timedOut) {
        throw new RockError(
          `Cannot run "${name}": timed out after ${timeoutMs} ms${colon(tail(stderr))}`,
        );
      }
      return await this.#found(args, { code: result.code, stdout: result.stdout, stderr });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", stop);
    }
  }

  /**
   * Runs `docker <args>`, a command that keeps printing (such as `docker events`), and calls
   * `onLine` with each line of its stdout until docker exits or `options.signal` aborts it
   * (docker gets SIGKILL). There is no timeout: it runs as long as docker prints.
   * @returns how docker exited, with its stderr (stdout went to `onLine`).
   * @throws {UnavailableError} when docker is not found on PATH.
   */
  async follow(
    args: string[],
    onLine: (line: string) => void,
    options: Pick<DockerCallOptions, "signal"> = {},
  ): Promise<DockerResult> {
    if (options.signal?.aborted) return { code: 124, stdout: "", stderr: "" };
    // Deno.Command, not dax: a stream runs for minutes, and dax can miss a kill that arrives
    // while it is still starting the process; a spawned child can always be killed.
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(this.#binary, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new UnavailableError(
          `Cannot run "${commandName(args)}": "${this.#binary}" not found on PATH`,
        );
      }
      throw error;
    }
    const stop = () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    };
    options.signal?.addEventListener("abort", stop, { once: true });
    try {
      const stderr = new Response(child.stderr).text();
      const decoder = new TextDecoder();
      let rest = "";
      for await (const bytes of child.stdout) {
        const lines = (rest + decoder.decode(bytes, { stream: true })).split("\n");
        rest = lines.pop()!;
        for (const line of lines) if (line.trim() !== "") onLine(line);
      }
      const status = await child.status;
      return { code: status.signal ? 128 : status.code, stdout: "", stderr: await stderr };
    } finally {
      options.signal?.removeEventListener("abort", stop);
    }
  }

  /**
   * `result` of `docker <args>`.
   * @throws {UnavailableError} when it says docker was not found.
   */
  async #found(args: string[], result: DockerResult): Promise<DockerResult> {
    // 127 is also what `docker run` exits with when the container's command is missing: only
    // a binary that cannot be found on PATH makes it "docker not found".
    if (result.code === 127 && !(await binaryExists(this.#binary))) {
      throw new UnavailableError(
        `Cannot run "${commandName(args)}": "${this.#binary}" not found on PATH`,
      );
    }
    return result;
  }

  /**
   * Runs `docker <args>` and returns its stdout.
   * @throws {RockError} `Cannot run "docker <cmd>": exit code N: <stderr tail>` on failure
   * (an UnavailableError when the engine does not answer).
   */
  async exec(args: string[], options: DockerCallOptions = {}): Promise<string> {
    const result = await this.call(args, options);
    if (result.code !== 0) throw failure(args, result);
    return result.stdout;
  }

  /** True when the docker engine answers. */
  async available(): Promise<boolean> {
    try {
      return (await this.call(["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 10_000 }))
        .code === 0;
    } catch {
      return false;
    }
  }

  /**
   * The engine's `docker info` as JSON.
   * @throws {UnavailableError} when the engine does not answer.
   */
  async info(): Promise<Record<string, unknown>> {
    return JSON.parse(await this.exec(["info", "--format", "{{json .}}"]));
  }

  /** True when `image` is present locally. */
  async imageExists(image: string, options: DockerCallOptions = {}): Promise<boolean> {
    const result = await this.call(["image", "inspect", "--format", "{{.Id}}", image], options);
    if (result.code === 0) return true;
    if (MISSING.test(result.stderr)) return false;
    throw failure(["image", "inspect"], result);
  }

  /** Lists local images. */
  async images(options: DockerCallOptions = {}): Promise<ImageSummary[]> {
    const out = await this.exec(["images", "--format", "{{json .}}"], options);
    return out.split("\n").filter((line) => line.trim() !== "").map((line) => {
      const row = JSON.parse(line);
      return { repository: row.Repository, tag: row.Tag, id: row.ID };
    });
  }

  /**
   * Pulls `image` (default timeout 30 minutes). With `options.login`, `docker login` and the pull
   * run with a private docker config (DOCKER_CONFIG: a fresh temporary directory, mode 0700,
   * removed afterwards whatever happens), so the credentials serve this pull only and never
   * reach the user's docker config. The password goes through stdin only.
   * @throws {RockError} with docker's stderr tail (password masked) when login or pull fails.
   */
  async pull(image: string, options: PullOptions = {}): Promise<void> {
    const { login, ...call } = options;
    const pull = ["pull", "--quiet", image];
    if (!login) {
      await this.exec(pull, withDefaults({ timeoutMs: 30 * 60_000 }, call));
      return;
    }
    // Without the user's config the CLI would not know its context: name the engine directly.
    const host = (await this.exec(
      ["context", "inspect", "--format", "{{.Endpoints.docker.Host}}"],
      call,
    )).trim();
    const config = await Deno.makeTempDir({ prefix: PRIVATE_CONFIG_PREFIX });
    try {
      await Deno.chmod(config, 0o700);
      const env = { ...call.env, DOCKER_CONFIG: config, DOCKER_HOST: host };
      const args = ["login", "--username", login.username, "--password-stdin"];
      if (login.registry) args.push(login.registry);
      await this.exec(args, { ...call, env, stdin: login.password });
      await this.exec(pull, withDefaults({ timeoutMs: 30 * 60_000 }, { ...call, env }));
    } finally {
      await Deno.remove(config, { recursive: true });
    }
  }

  /**
   * Runs `docker run <args>` (put `-d` in `args`) and returns the container id it prints.
   * @throws {PortTakenError} when a host port to publish is taken (docker leaves the container
   *   it created behind).
   * @throws {ImageMissingError} when the run may not pull (`--pull=never`) and the image is not
   *   here (nothing is created).
   * @throws {RockError} with docker's exit code and stderr tail when the run fails otherwise.
   */
  async run(args: string[], options: DockerCallOptions = {}): Promise<string> {
    const result = await this.call(["run", ...args], options);
    if (result.code === 0) return result.stdout.trim().split("\n").pop() ?? "";
    const error = failure(["run"], result);
    if (error instanceof UnavailableError) throw error;
    const type = PORT_TAKEN.test(result.stderr)
      ? PortTakenError
      : NO_SUCH_IMAGE.test(result.stderr)
      ? ImageMissingError
      : undefined;
    throw type ? new type(error.message, { extraInfo: error.extraInfo }) : error;
  }

  /**
   * `docker container inspect` of each container that exists; missing ones are left out.
   * @throws {RockError} when docker fails for another reason.
   */
  async inspectContainers(
    containers: string[],
    options: DockerCallOptions = {},
  ): Promise<ContainerInspect[]> {
    if (containers.length === 0) return [];
    const result = await this.call(["container", "inspect", ...containers], options);
    if (result.code === 0) return JSON.parse(result.stdout);
    // With several ids docker prints the ones it found and names the missing ones on stderr.
    const onlyMissing = tail(result.stderr, 1000).split("\n").every((line) => MISSING.test(line));
    if (!onlyMissing) throw failure(["container", "inspect"], result);
    return result.stdout.trim() ? JSON.parse(result.stdout) : [];
  }

  /** `docker container inspect` of one container, or undefined when it does not exist. */
  async inspectContainer(
    container: string,
    options: DockerCallOptions = {},
  ): Promise<ContainerInspect | undefined> {
    return (await this.inspectContainers([container], options))[0];
  }

  /**
   * Host ports a container publishes: container port (e.g. "22555/tcp") to host bindings.
   * @throws {RockError} when the container does not exist.
   */
  async ports(
    container: string,
    options: DockerCallOptions = {},
  ): Promise<Record<string, PortBinding[]>> {
    const inspect = await this.inspectContainer(container, options);
    if (!inspect) {
      throw new RockError(`Cannot read ports of container "${container}": no such container`);
    }
    return publishedPorts(inspect);
  }

  /** The last `lines` lines a container wrote to stdout and stderr (empty when it is gone). */
  async logs(container: string, lines = 20, options: DockerCallOptions = {}): Promise<string> {
    const result = await this.call(["logs", "--tail", String(lines), container], options);
    if (result.code !== 0) return "";
    return `${result.stdout}${result.stderr}`.trim();
  }

  /** Ids of all containers (running or not) carrying label `label` (`key` or `key=value`). */
  async psByLabel(label: string, options: DockerCallOptions = {}): Promise<string[]> {
    const out = await this.exec(
      ["ps", "--all", "--quiet", "--no-trunc", "--filter", `label=${label}`],
      options,
    );
    return out.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  }

  /**
   * Removes containers with `docker rm -f`; returns false when none of them existed.
   * @throws {RockError} with docker's stderr tail when removal fails for another reason.
   */
  async remove(containers: string[], options: DockerCallOptions = {}): Promise<boolean> {
    if (containers.length === 0) return false;
    const result = await this.call(["rm", "--force", ...containers], options);
    if (result.code === 0) return true;
    const lines = tail(result.stderr, 1000).split("\n");
    if (lines.every((line) => MISSING.test(line))) return result.stdout.trim() !== "";
    throw failure(["rm"], result);
  }
}

/** Published ports of an inspected container: "22555/tcp" to its host bindings. */
export function publishedPorts(inspect: ContainerInspect): Record<string, PortBinding[]> {
  const ports: Record<string, PortBinding[]> = {};
  for (const [port, bindings] of Object.entries(inspect.NetworkSettings.Ports ?? {})) {
    if (bindings?.length) ports[port] = bindings;
  }
  return ports;
}

/** True when `binary` (a name looked up on PATH, or a path) names a file. */
async function binaryExists(binary: string): Promise<boolean> {
  if (!binary.includes("/")) return await $.which(binary) !== undefined;
  try {
    await Deno.stat(binary);
    return true;
  } catch {
    return false;
  }
}

/** "docker run", "docker image inspect": the docker command an argv runs, without arguments. */
function commandName(args: string[]): string {
  const groups = new Set([
    "image",
    "container",
    "context",
    "network",
    "volume",
    "system",
    "builder",
  ]);
  const words = args.filter((arg) => !arg.startsWith("-"));
  const count = groups.has(words[0]) ? 2 : 1;
  return ["docker", ...words.slice(0, count)].join(" ");
}

/** The RockError for a docker call that exited non-zero. */
function failure(args: string[], result: DockerResult): RockError {
  const message = `Cannot run "${commandName(args)}": exit code ${result.code}${
    colon(tail(result.stderr))
  }`;
  const extraInfo = { exit_code: result.code, stderr: tail(result.stderr) };
  if (/Cannot connect to the Docker daemon|Is the docker daemon running/i.test(result.stderr)) {
    return new UnavailableError(message, { extraInfo });
  }
  return new RockError(message, { extraInfo });
}
