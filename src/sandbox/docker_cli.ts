/**
 * The one wrapper around the docker CLI. Every docker call goes through `DockerCli.exec()`: dax
 * with `.noThrow()`, stdout and stderr captured, a timeout and an optional AbortSignal, arguments
 * passed as an array through dax's escaping (never concatenated into a shell string). A failure
 * becomes a RockError naming the docker command, the exit code and the tail of stderr. Secrets
 * travel on stdin only and are masked should docker ever echo them; registry logins live in a
 * private docker config for one pull, never in the user's.
 */
import $ from "dax";
import { CancelledError, RockError, UnavailableError } from "../common/errors.ts";
import { withDefaults } from "../common/options.ts";
import { DockerEngine, engineSocket } from "./docker_engine.ts";
import { binaryExists, callKill, colon, followChild } from "./tool_process.ts";

/** Options of a DockerCli. */
export interface DockerCliOptions {
  /** The docker executable (default "docker", found on PATH). */
  binary?: string | undefined;
  /** Timeout of one call in milliseconds (default 60 000). */
  timeoutMs?: number | undefined;
  /**
   * The Engine API client for the frequent calls (inspect, create and start, rename, remove,
   * list), or false for the CLI only. Default: the engine socket the CLI would reach, when
   * rock can be sure which that is (see engineSocket()); the CLI when it does not answer.
   */
  engine?: DockerEngine | false;
}

/** A container to create and start: what `docker run -d` is given, in one structure. */
export interface ContainerRequest {
  name: string;
  image: string;
  entrypoint: string;
  command: string[];
  env: Record<string, string>;
  labels: Record<string, string>;
  /** Published container ports; a binding without hostPort lets the engine pick one. */
  ports: { containerPort: number; hostIp: string; hostPort?: number }[];
  memoryBytes: number;
  cpus: number;
  /** Bind mounts, read-only. */
  mounts: { source: string; target: string }[];
  /** Extra `docker run` arguments; a request with any goes through the CLI. */
  extraRunArgs: string[];
}

/** The `docker run` arguments (after `run`) for `request`: detached, `--init`, never pulling. */
export function runArgs(request: ContainerRequest): string[] {
  const args = ["-d", "--init", "--pull=never", "--name", request.name];
  for (const [key, value] of Object.entries(request.labels)) {
    args.push("--label", `${key}=${value}`);
  }
  for (const port of request.ports) {
    args.push("-p", `${port.hostIp}:${port.hostPort ?? ""}:${port.containerPort}`);
  }
  args.push(`--memory=${request.memoryBytes}b`, `--memory-swap=${request.memoryBytes}b`);
  args.push(`--cpus=${request.cpus}`);
  for (const [key, value] of Object.entries(request.env)) args.push("-e", `${key}=${value}`);
  for (const mount of request.mounts) args.push("-v", `${mount.source}:${mount.target}:ro`);
  args.push("--entrypoint", request.entrypoint, ...request.extraRunArgs, request.image);
  return [...args, ...request.command];
}

/** The Engine API's create body for `request` (the same container runArgs() describes). */
function createBody(request: ContainerRequest): Record<string, unknown> {
  const key = (port: number) => `${port}/tcp`;
  return {
    Image: request.image,
    Entrypoint: [request.entrypoint],
    Cmd: request.command,
    Env: Object.entries(request.env).map(([k, v]) => `${k}=${v}`),
    Labels: request.labels,
    ExposedPorts: Object.fromEntries(request.ports.map((p) => [key(p.containerPort), {}])),
    HostConfig: {
      Init: true,
      Memory: request.memoryBytes,
      MemorySwap: request.memoryBytes,
      NanoCpus: Math.round(request.cpus * 1e9),
      Binds: request.mounts.map((m) => `${m.source}:${m.target}:ro`),
      PortBindings: Object.fromEntries(request.ports.map((p) => [
        key(p.containerPort),
        [{ HostIp: p.hostIp, HostPort: p.hostPort === undefined ? "" : String(p.hostPort) }],
      ])),
    },
  };
}

/** Options of one docker call. */
export interface DockerCallOptions {
  /** Timeout of this call in milliseconds (default: the CLI's). */
  timeoutMs?: number;
  /** Aborts the call: docker gets SIGKILL and the call throws a CancelledError. */
  signal?: AbortSignal | undefined;
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
  login?: RegistryLogin | undefined;
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

/** `docker run` could not publish a port: the host port was taken. */
export class PortTakenError extends RockError {}

/** `docker login` refused the credentials (or could not reach the registry). */
export class RegistryLoginError extends RockError {}

/** `docker run --pull=never` found no such image here; it created nothing. */
export class ImageMissingError extends RockError {}

/** Words dax's shell parser refuses as bare arguments even where a shell takes them. */
const RESERVED_WORDS = new Set([
  "case",
  "do",
  "done",
  "elif",
  "else",
  "esac",
  "fi",
  "for",
  "if",
  "in",
  "then",
  "until",
  "while",
]);

/**
 * `args` for dax's template escaping: dax leaves a plain word unquoted, and its parser then
 * throws on a shell reserved word (`docker run --name done`), so those go single-quoted.
 */
export function daxArgs(args: string[]): (string | ReturnType<typeof $.rawArg>)[] {
  return args.map((arg) => RESERVED_WORDS.has(arg) ? $.rawArg(`'${arg}'`) : arg);
}

/** Docker's usage hint after a failure: noise in an error message. */
const HELP_HINT = /^Run '.*--help' for more information\.?$/;

/** Last `lines` non-empty lines of `text` (docker's usage hint left out). */
export function tail(text: string, lines = STDERR_TAIL_LINES): string {
  return text.trim().split("\n")
    .filter((line) => line.trim() !== "" && !HELP_HINT.test(line.trim()))
    .slice(-lines)
    .join("\n");
}

/** A typed client for the docker CLI. */
export class DockerCli {
  readonly #binary: string;
  readonly #timeoutMs: number;
  /** The engine client once it answered, false when the CLI serves alone (see #engine()). */
  #engineChoice: Promise<DockerEngine | false> | undefined;

  /** Creates a client; nothing runs until the first call. */
  constructor(options: DockerCliOptions = {}) {
    this.#binary = options.binary ?? "docker";
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (options.engine !== undefined) this.#engineChoice = Promise.resolve(options.engine);
  }

  /** The binary this client runs. */
  get binary(): string {
    return this.#binary;
  }

  /**
   * The Engine API client when there is one that answers (decided once), else undefined: the
   * frequent calls then go through the CLI.
   */
  #engine(): Promise<DockerEngine | undefined> {
    this.#engineChoice ??= (async () => {
      const socket = engineSocket(this.#binary);
      if (!socket) return false;
      const engine = new DockerEngine(socket, { timeoutMs: this.#timeoutMs });
      if (await engine.ping()) return engine;
      engine.close();
      return false;
    })();
    return this.#engineChoice.then((engine) => engine || undefined);
  }

  /** True when the frequent calls go to the Engine API (for diagnostics and tests). */
  async usesEngine(): Promise<boolean> {
    return (await this.#engine()) !== undefined;
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
    const kill = callKill(timeoutMs, signal);
    try {
      let command = $`${this.#binary} ${daxArgs(args)}`
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
      if (kill.timedOut) {
        throw new RockError(
          `Cannot run "${name}": timed out after ${timeoutMs} ms${colon(tail(stderr))}`,
        );
      }
      return await this.#found(args, { code: result.code, stdout: result.stdout, stderr });
    } finally {
      kill.done();
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
    let rest = "";
    return await followChild(child, (text) => {
      const lines = (rest + text).split("\n");
      rest = lines.pop()!;
      for (const line of lines) if (line.trim() !== "") onLine(line);
    }, options.signal);
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
    if (result.code !== 0) throw await this.#failure(args, result);
    return result.stdout;
  }

  /**
   * The error for `docker <args>` that exited non-zero: an UnavailableError when the engine does
   * not answer `docker version` now (docker's exit code says no more than "failed"), else a
   * RockError; both with the exit code and docker's stderr tail.
   */
  async #failure(args: string[], result: DockerResult): Promise<RockError> {
    const message = `Cannot run "${commandName(args)}": exit code ${result.code}${
      colon(tail(result.stderr))
    }`;
    const extraInfo = { exit_code: result.code, stderr: tail(result.stderr) };
    return await this.#serverAnswers()
      ? new RockError(message, { extraInfo })
      : new UnavailableError(message, { extraInfo });
  }

  /** True when the engine answers `docker version` (its server part) within 10 s. */
  async #serverAnswers(): Promise<boolean> {
    try {
      const version = ["version", "--format", "{{.Server.Version}}"];
      return (await this.call(version, { timeoutMs: 10_000 })).code === 0;
    } catch {
      return false;
    }
  }

  /**
   * Which of `containers` (names, ids or id prefixes) exist, from one `docker ps --all`.
   * @throws {RockError} when docker fails (an UnavailableError when the engine does not answer).
   */
  async #existing(containers: string[], options: DockerCallOptions): Promise<string[]> {
    const out = await this.exec(
      ["ps", "--all", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
      options,
    );
    const rows = out.split("\n").filter((line) => line.trim() !== "").map((line) => {
      const [id = "", names = ""] = line.trim().split(" ");
      return { id, names: names.split(",") };
    });
    return containers.filter((wanted) =>
      rows.some((row) => row.names.includes(wanted) || row.id.startsWith(wanted))
    );
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
    const engine = await this.#engine();
    if (engine) {
      const answer = await engine.call("GET", `/images/${image}/json`, options);
      if (answer.status === 200) return true;
      if (answer.status === 404) return false;
      throw engineFailure(`GET /images/${image}/json`, answer.status, answer.body);
    }
    const result = await this.call(["image", "inspect", "--format", "{{.Id}}", image], options);
    if (result.code === 0) return true;
    // An inspect fails for a missing image, or when the engine does not answer: tell which.
    const error = await this.#failure(["image", "inspect"], result);
    if (error instanceof UnavailableError) throw error;
    return false;
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
   * Pulls `image` (default timeout 30 minutes), with `options.login` as #withRegistry says.
   * @throws {RegistryLoginError} when the login fails (password masked).
   * @throws {RockError} with docker's stderr tail when the pull fails.
   */
  async pull(image: string, options: PullOptions = {}): Promise<void> {
    await this.#withRegistry(["pull", "--quiet", image], options);
  }

  /**
   * Pushes `image` (default timeout 30 minutes), with `options.login` as #withRegistry says.
   * @throws {RegistryLoginError} when the login fails (password masked).
   * @throws {RockError} with docker's stderr tail when the push fails.
   */
  async push(image: string, options: PullOptions = {}): Promise<void> {
    await this.#withRegistry(["push", "--quiet", image], options);
  }

  /**
   * Makes image `image` of container `container`'s file system as it is now (`docker commit`).
   * @throws {RockError} with docker's stderr tail when it fails.
   */
  async commit(container: string, image: string, options: DockerCallOptions = {}): Promise<void> {
    await this.exec(["commit", container, image], options);
  }

  /**
   * Runs `args` (a pull or push) against a registry. With `options.login`, `docker login` and the
   * call run with a private docker config (DOCKER_CONFIG: a fresh temporary directory, mode
   * 0700, removed afterwards whatever happens), so the credentials serve this call only and
   * never reach the user's docker config. The password goes through stdin only.
   */
  async #withRegistry(args: string[], options: PullOptions): Promise<void> {
    const { login, ...call } = options;
    if (!login) {
      await this.exec(args, withDefaults({ timeoutMs: 30 * 60_000 }, call));
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
      const loginArgs = ["login", "--username", login.username, "--password-stdin"];
      if (login.registry) loginArgs.push(login.registry);
      try {
        await this.exec(loginArgs, { ...call, env, stdin: login.password });
      } catch (error) {
        const passOn = !(error instanceof RockError) || error instanceof UnavailableError ||
          error instanceof CancelledError;
        if (passOn) throw error;
        throw new RegistryLoginError(error.message, { extraInfo: error.extraInfo, cause: error });
      }
      await this.exec(args, withDefaults({ timeoutMs: 30 * 60_000 }, { ...call, env }));
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
  run(args: string[], options: DockerCallOptions = {}): Promise<string> {
    return this.#run(args, runTarget(args), options);
  }

  /**
   * `docker run <args>` for a container that publishes `target.ports` from `target.image`. After
   * a failure the host decides, not docker's words: a host port that cannot be bound now was
   * taken; with `--pull=never`, an image that is not here was missing.
   */
  async #run(args: string[], target: RunTarget, options: DockerCallOptions): Promise<string> {
    const result = await this.call(["run", ...args], options);
    if (result.code === 0) return result.stdout.trim().split("\n").pop() ?? "";
    const error = await this.#failure(["run"], result);
    if (error instanceof UnavailableError) throw error;
    const taken = target.ports.some((port) => port.hostPort !== undefined && !bindable(port));
    const missing = !taken && target.pullNever && target.image !== undefined &&
      !(await this.imageExists(target.image, options));
    const type = taken ? PortTakenError : missing ? ImageMissingError : undefined;
    throw type ? new type(error.message, { extraInfo: error.extraInfo }) : error;
  }

  /**
   * Creates and starts the container `request` describes and returns its id: on the Engine API
   * (create, then start) when there is one and the request has no extra run arguments, else with
   * `docker run -d`. Throws as run() does; a container whose start failed is left behind, as
   * `docker run` leaves it.
   */
  async runContainer(request: ContainerRequest, options: DockerCallOptions = {}): Promise<string> {
    const engine = request.extraRunArgs.length === 0 ? await this.#engine() : undefined;
    if (!engine) {
      return await this.#run(runArgs(request), {
        ports: request.ports,
        image: request.image,
        pullNever: true,
      }, options);
    }
    const create = await engine.call("POST", "/containers/create", {
      ...options,
      query: { name: request.name },
      body: createBody(request),
    });
    if (create.status === 404) {
      throw new ImageMissingError(
        `Cannot create container "${request.name}": image "${request.image}" is not here`,
        { extraInfo: { http_status: 404 } },
      );
    }
    if (create.status >= 300) {
      throw engineFailure("POST /containers/create", create.status, create.body);
    }
    const id = (create.body as { Id: string }).Id;
    const start = await engine.call("POST", `/containers/${id}/start`, options);
    if (start.status < 300) return id;
    const error = engineFailure(`POST /containers/${id}/start`, start.status, start.body);
    // The engine says "port taken" in words only: look at the ports instead.
    if (request.ports.some((port) => port.hostPort !== undefined && !bindable(port))) {
      throw new PortTakenError(error.message, { extraInfo: error.extraInfo });
    }
    throw error;
  }

  /**
   * Gives container `container` the name `name`.
   * @throws {RockError} when it does not exist or the name is taken.
   */
  async rename(container: string, name: string, options: DockerCallOptions = {}): Promise<void> {
    const engine = await this.#engine();
    if (!engine) {
      await this.exec(["rename", container, name], options);
      return;
    }
    const path = `/containers/${container}/rename`;
    const answer = await engine.call("POST", path, { ...options, query: { name } });
    if (answer.status >= 300) throw engineFailure(`POST ${path}`, answer.status, answer.body);
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
    const engine = await this.#engine();
    if (engine) {
      const found = await Promise.all(containers.map(async (container) => {
        const path = `/containers/${container}/json`;
        const answer = await engine.call("GET", path, options);
        if (answer.status === 404) return undefined;
        if (answer.status >= 300) throw engineFailure(`GET ${path}`, answer.status, answer.body);
        return answer.body as ContainerInspect;
      }));
      return found.filter((c): c is ContainerInspect => c !== undefined);
    }
    const result = await this.call(["container", "inspect", ...containers], options);
    if (result.code === 0) return JSON.parse(result.stdout);
    // It fails when any is missing: inspect again the ones that exist (once; a failure then is
    // docker's, or a container removed in between).
    const existing = await this.#existing(containers, options);
    if (existing.length === containers.length) {
      throw await this.#failure(["container", "inspect"], result);
    }
    if (existing.length === 0) return [];
    return JSON.parse(await this.exec(["container", "inspect", ...existing], options));
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
    const engine = await this.#engine();
    if (engine) {
      const answer = await engine.call("GET", "/containers/json", {
        ...options,
        query: { all: "true", filters: JSON.stringify({ label: [label] }) },
      });
      if (answer.status >= 300) {
        throw engineFailure("GET /containers/json", answer.status, answer.body);
      }
      return (answer.body as { Id: string }[]).map((container) => container.Id);
    }
    const out = await this.exec(
      ["ps", "--all", "--quiet", "--no-trunc", "--filter", `label=${label}`],
      options,
    );
    return out.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  }

  /**
   * Removes containers (`docker rm -f`); quiet about ones that do not exist.
   * @throws {RockError} with docker's answer when removal fails for another reason.
   */
  async remove(containers: string[], options: DockerCallOptions = {}): Promise<void> {
    if (containers.length === 0) return;
    const engine = await this.#engine();
    if (engine) {
      await Promise.all(containers.map(async (container) => {
        const path = `/containers/${container}`;
        const answer = await engine.call("DELETE", path, { ...options, query: { force: "true" } });
        if (answer.status >= 300 && answer.status !== 404) {
          throw engineFailure(`DELETE ${path}`, answer.status, answer.body);
        }
      }));
      return;
    }
    const result = await this.call(["rm", "--force", ...containers], options);
    if (result.code === 0) return;
    // It fails when any is missing: what counts is that none of them is left.
    if ((await this.#existing(containers, options)).length > 0) {
      throw await this.#failure(["rm"], result);
    }
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
  const count = groups.has(words[0] ?? "") ? 2 : 1;
  return ["docker", ...words.slice(0, count)].join(" ");
}

/** The RockError for an Engine API call answered with error `status`. */
function engineFailure(what: string, status: number, body: unknown): RockError {
  const message = body && typeof body === "object" && "message" in body
    ? String((body as { message: unknown }).message)
    : "";
  return new RockError(`Cannot call ${what} on the docker engine: ${status}${colon(message)}`, {
    extraInfo: { http_status: status, stderr: message },
  });
}

/** True when this process can bind `port.hostIp:port.hostPort` now. */
function bindable(port: { hostIp: string; hostPort?: number }): boolean {
  try {
    Deno.listen({ hostname: port.hostIp, port: port.hostPort ?? 0 }).close();
    return true;
  } catch {
    return false;
  }
}

/** What a `docker run` publishes, runs and may pull: what decides its failure's type. */
interface RunTarget {
  ports: { hostIp: string; hostPort?: number }[];
  image?: string;
  /** `--pull=never`: a missing image fails the run. */
  pullNever: boolean;
}

/** Flags of `docker run` that take no value. */
const RUN_SWITCHES = new Set([
  "-d",
  "--detach",
  "--init",
  "--rm",
  "-i",
  "--interactive",
  "-t",
  "--tty",
  "--privileged",
  "--read-only",
  "-P",
  "--publish-all",
  "-q",
  "--quiet",
  "--no-healthcheck",
  "--oom-kill-disable",
  "--sig-proxy",
  "--disable-content-trust",
]);

/**
 * The published host ports, the image and the pull policy of `docker run <args>`, read from the
 * arguments rock wrote (`-p [IP:]HOST:CONTAINER`, the first word after the options).
 */
export function runTarget(args: string[]): RunTarget {
  const target: RunTarget = { ports: [], pullNever: false };
  const option = (name: string, value: string) => {
    if (name === "-p" || name === "--publish") {
      const parts = value.split(":");
      if (parts.length < 2) return;
      const host = parts.at(-2)!;
      const ip = parts.length > 2 ? parts.slice(0, -2).join(":").replace(/^\[|\]$/g, "") : "";
      if (/^\d+$/.test(host)) {
        target.ports.push({ hostIp: ip || "0.0.0.0", hostPort: Number(host) });
      }
    }
    if (name === "--pull") target.pullNever = value === "never";
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === undefined) break;
    if (!arg.startsWith("-")) {
      target.image = arg;
      break;
    }
    const equals = arg.indexOf("=");
    if (equals > 0) option(arg.slice(0, equals), arg.slice(equals + 1));
    else if (
      /^-[a-zA-Z]{2,}$/.test(arg) && [...arg.slice(1)].every((c) => RUN_SWITCHES.has(`-${c}`))
    ) {
      continue; // -dit
    } else if (/^-p./.test(arg)) option("-p", arg.slice(2));
    else if (!RUN_SWITCHES.has(arg)) option(arg, args[++i] ?? "");
  }
  return target;
}
