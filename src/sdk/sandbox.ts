/**
 * `Sandbox`: one sandbox on a rock (or ROCK) admin, in TypeScript idiom (camelCase methods,
 * snake_case on the wire). Runs on Deno and Node.
 *
 * @example
 * ```ts
 * import { Sandbox } from "./mod.ts";
 * await using sandbox = await new Sandbox({ image: "python:3.11" }).start();
 * const result = await sandbox.arun("python3 --version");
 * console.log(result.exitCode, result.output);
 * ```
 */
import { type PtyOptions, Terminal } from "./terminal.ts";
import { basename } from "node:path";
import type { CommitStatus, Lease, SandboxEvent, StatusResponse } from "../protocol/admin.ts";
import { statusPollInterval } from "./status_poll.ts";
import type { CommandResponse, UploadResponse } from "../protocol/rocklet.ts";
import { type WithDefaults, withDefaults } from "../common/options.ts";
import { pollUntil } from "../common/poll.ts";
import { AdminClient, defaultAdminUrl } from "./admin_client.ts";
import {
  BadRequestRockError,
  CommandRockError,
  CommandTimeoutError,
  SandboxNotFoundError,
  SandboxStartError,
  SandboxStoppedRockError,
} from "./errors.ts";
import { fileStream, writeStreamToFile } from "./local_files.ts";
import { zipDirectory } from "../formats/zip_writer.ts";

/** How a Sandbox is created; every field has ROCK's default. */
export interface SandboxConfig {
  /** Admin URL (default: $ROCK_BASE_URL, else http://localhost:8080). */
  baseUrl?: string | undefined;
  /** Headers sent with every request. */
  extraHeaders?: Record<string, string> | undefined;
  /** Image (default "python:3.11"). */
  image?: string | undefined;
  /** Memory, e.g. "8g" (default). */
  memory?: string | undefined;
  /** CPUs (default 2). */
  cpus?: number | undefined;
  /** Pull policy (default "missing"). */
  pull?: "never" | "always" | "missing" | undefined;
  /** Stop after this many seconds without a keep-alive (default 300, sent in whole minutes). */
  autoClearSeconds?: number | undefined;
  /**
   * rock's extension (E2B's timeout): stop this many seconds after it runs, whatever keeps it
   * busy, instead of autoClearSeconds without a keep-alive; setTimeout() sets it again. Default:
   * none (ROCK's expiry).
   */
  timeoutSeconds?: number | undefined;
  /**
   * Keep the sandbox alive while this handle holds it (from start() until stop() or disposal):
   * a keep-alive every keepAliveIntervalSeconds, get_status for ROCK's expiry, setTimeout() with
   * the last timeout for a set one (default false).
   */
  keepAlive?: boolean | undefined;
  /** Seconds between keep-alives (default: a third of the lease, at most 60). */
  keepAliveIntervalSeconds?: number | undefined;
  /** How long start() waits for the sandbox to be alive, in seconds (default 180). */
  startupTimeout?: number | undefined;
  /** Owner, sent as X-User-Id (the admin's default "default"). */
  userId?: string | undefined;
  /** Experiment, sent as X-Experiment-Id. */
  experimentId?: string | undefined;
  /** Namespace, sent as X-Namespace. */
  namespace?: string | undefined;
  /** Cluster, sent as X-Cluster. */
  cluster?: string | undefined;
  /** A sandbox id to use instead of a generated one. */
  sandboxId?: string | undefined;
  /** The fetch to use. */
  fetch?: typeof fetch | undefined;
}

/** A sandbox's status (ROCK's StatusResp). */
export type SandboxStatus = StatusResponse;

/** Options of start() and restart(): what they report while they wait, and how to give up. */
export interface WaitOptions {
  /** Called with every status seen while waiting. */
  onStatus?: ((status: SandboxStatus) => void) | undefined;
  /** Aborts the wait (the sandbox is left as it is). */
  signal?: AbortSignal | undefined;
  /** Wait on the admin's event stream (default), or, false, by polling only. */
  events?: boolean | undefined;
}

/** Options of arun(). */
export interface ArunOptions {
  /** Session to run in (default: one the Sandbox creates; nohup: a fresh one). */
  session?: string | undefined;
  /** "normal" (default): one call in the session; "nohup": in the background, waited for. */
  mode?: "normal" | "nohup" | undefined;
  /** Seconds to wait for the command (default 300). */
  waitTimeout?: number | undefined;
  /** Throw CommandRockError on a non-zero exit or a timeout (default false). */
  check?: boolean | undefined;
  /** nohup: where the output goes (default a temp file in the sandbox). */
  outputFile?: string | undefined;
  /** nohup: return a note instead of the output. */
  ignoreOutput?: boolean | undefined;
  /** nohup: return at most this many bytes of output. */
  responseLimitedBytes?: number | undefined;
  /**
   * Gets the output as the command prints it, stdout and stderr in order (the result is the
   * same). nohup mode reads its output file once, at the end, and hands it over then.
   */
  onOutput?: ((text: string) => void) | undefined;
}

/** A command whose output is read as it comes: iterate it, then await `result`. */
export interface ArunStream extends AsyncIterable<string> {
  /** What arun() would have returned; settles once the command has ended. */
  readonly result: Promise<ArunResult>;
}

type ArunDefaults = "mode" | "waitTimeout" | "check";

/** What arun() returns. */
export interface ArunResult {
  /** What the command printed, stdout and stderr in order (trimmed, as ROCK does). */
  output: string;
  /** The command's real exit code; null when it did not finish within waitTimeout. */
  exitCode: number | null;
  /** Why it failed, when it did. */
  failureReason: string;
  /** nohup: the background process id. */
  pid?: number;
  /** nohup: the file holding the full output (absent when it was a temp file, removed once read). */
  outputFile?: string;
}

/** Options of createSession(). */
export interface SessionOptions {
  /** Variables set in the session. */
  env?: Record<string, string> | undefined;
  /** Start from the rocklet's environment (default: an empty one, as in ROCK). */
  envEnable?: boolean | undefined;
  /** Files sourced when the session starts. */
  startupSource?: string[] | undefined;
  /** Run the session's shell as this user (the rocklet must run as root). */
  remoteUser?: string | undefined;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function randomHex(bytes = 6): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/** How long start() waits for the event stream's first event before it polls instead, in ms. */
const FIRST_EVENT_MS = 5_000;

/**
 * Whether a start is done, from status `status` of sandbox `id`: true once it is alive, false
 * while it is still on its way.
 * @throws {SandboxStartError} naming the phase, once a phase or the sandbox failed.
 */
function startOutcome(id: string, status: StatusResponse): boolean {
  if (status.is_alive) return true;
  const failed = Object.entries(status.status ?? {}).find(([, p]) =>
    p.status === "failed" || p.status === "timeout"
  );
  if (failed || status.state === "failed" || status.state === "stopped") {
    const [phase, info] = failed ??
      ["start", { message: status.stop_reason ?? status.failure_reason ?? status.state }];
    throw new SandboxStartError(
      `Sandbox "${id}" failed to start in phase ${phase}: ${info.message}`,
      { sandboxId: id, phase },
    );
  }
  return false;
}

/** A SandboxConfig with its defaults applied. */
export type ResolvedSandboxConfig = WithDefaults<
  SandboxConfig,
  | "baseUrl"
  | "extraHeaders"
  | "image"
  | "memory"
  | "cpus"
  | "pull"
  | "autoClearSeconds"
  | "startupTimeout"
>;

/** One sandbox. Create, then `await start()`; `await using` stops it. */
export class Sandbox implements AsyncDisposable {
  /** The configuration with defaults applied. */
  readonly config: ResolvedSandboxConfig;
  /** The admin client (for calls the Sandbox does not wrap). */
  readonly client: AdminClient;
  #id: string | undefined;
  #defaultSession: Promise<string> | undefined;
  /** The timeout last set (config or setTimeout()), which keep-alives set again. */
  #timeoutSeconds: number | undefined;
  #keepAlive: ReturnType<typeof setInterval> | undefined;

  /**
   * Creates the handle; nothing is sent until start() (or attach()). A field left out or given
   * as undefined takes its default.
   */
  constructor(config: SandboxConfig = {}) {
    this.config = withDefaults({
      baseUrl: defaultAdminUrl(),
      extraHeaders: {},
      image: "python:3.11",
      memory: "8g",
      cpus: 2,
      pull: "missing",
      autoClearSeconds: 300,
      startupTimeout: 180,
    }, config);
    this.client = new AdminClient(this.config.baseUrl, {
      headers: this.config.extraHeaders,
      fetch: this.config.fetch,
    });
    this.#id = this.config.sandboxId;
    this.#timeoutSeconds = this.config.timeoutSeconds;
  }

  /** The sandbox id (set by start() or the config). */
  get sandboxId(): string {
    if (!this.#id) throw new BadRequestRockError("The sandbox has no id yet: call start() first");
    return this.#id;
  }

  /**
   * Starts the sandbox and waits until it is alive: on the admin's event stream, or, against an
   * admin without one (ROCK's) or when the stream breaks off, by polling get_status with a fast
   * backoff. `onStatus` sees each status on the way (`events: false`: polling only).
   * @throws {SandboxStartError} naming the phase that failed, or after startupTimeout.
   */
  async start(options: WaitOptions = {}): Promise<this> {
    const headers: Record<string, string> = {};
    if (this.config.userId) headers["X-User-Id"] = this.config.userId;
    if (this.config.experimentId) headers["X-Experiment-Id"] = this.config.experimentId;
    if (this.config.namespace) headers["X-Namespace"] = this.config.namespace;
    if (this.config.cluster) headers["X-Cluster"] = this.config.cluster;
    const deadline = performance.now() + this.config.startupTimeout * 1000;
    const started = await this.client.startAsync({
      image: this.config.image,
      memory: this.config.memory,
      cpus: this.config.cpus,
      pull: this.config.pull,
      auto_clear_time_minutes: Math.max(1, Math.ceil(this.config.autoClearSeconds / 60)),
      ...(this.#id ? { sandbox_id: this.#id } : {}),
      ...(this.config.timeoutSeconds ? { timeout_seconds: this.config.timeoutSeconds } : {}),
    }, headers);
    this.#id = started.sandbox_id;
    return await this.#waitAlive(this.#id, deadline, options);
  }

  /**
   * Places the stopped (or failed) sandbox again under its id, from the spec it was started with
   * (ROCK's later `restart`), and waits until it is alive as start() does. Files written in the
   * last run are gone: the sandbox starts afresh from its image.
   * @throws {BadRequestRockError} when it is pending or running, or does not exist.
   * @throws {SandboxStartError} naming the phase that failed, or after startupTimeout.
   */
  async restart(options: WaitOptions = {}): Promise<this> {
    const deadline = performance.now() + this.config.startupTimeout * 1000;
    await this.client.restart(this.sandboxId);
    // The last run's sessions went with it.
    this.#defaultSession = undefined;
    return await this.#waitAlive(this.sandboxId, deadline, options);
  }

  /**
   * Deletes the stopped (or failed) sandbox from the admin's history (ROCK's later `delete`):
   * get_status answers it then only with `includeAllStates`, in state `deleted`. Deleting an id
   * the admin does not know succeeds.
   * @throws {BadRequestRockError} when it is pending or running (stop it first).
   */
  async delete(): Promise<void> {
    await this.client.delete(this.sandboxId);
  }

  /**
   * Waits until sandbox `id` is alive, by `deadline` (performance.now()): on the event stream,
   * else by polling; then keeps it alive when the config asks.
   * @throws {SandboxStartError} naming the phase that failed, or after startupTimeout.
   */
  async #waitAlive(id: string, deadline: number, options: WaitOptions): Promise<this> {
    const alive = options.events === false
      ? undefined
      : await this.#waitByEvents(id, deadline, options);
    if (alive ?? await this.#waitByPolling(id, deadline, options)) {
      this.#startKeepAlive();
      return this;
    }
    throw new SandboxStartError(
      `Sandbox "${id}" was not alive within ${this.config.startupTimeout} s`,
      { sandboxId: id, phase: "startup" },
    );
  }

  /**
   * Waits for sandbox `id` on the admin's event stream until `deadline` (performance.now()):
   * true once it is alive, false when the time is up; undefined when the admin has no stream or
   * it broke off (the caller polls then).
   */
  async #waitByEvents(
    id: string,
    deadline: number,
    options: {
      onStatus?: ((status: SandboxStatus) => void) | undefined;
      signal?: AbortSignal | undefined;
    },
  ): Promise<boolean | undefined> {
    const timedOut = new AbortController();
    const timer = setTimeout(() => timedOut.abort(), Math.max(0, deadline - performance.now()));
    // The admin sends the sandbox's status as soon as the stream opens: nothing by then means
    // something between holds the stream back (a buffering proxy), and polling works there.
    const silent = new AbortController();
    const firstTimer = setTimeout(() => silent.abort(), FIRST_EVENT_MS);
    const signal = AbortSignal.any([
      timedOut.signal,
      silent.signal,
      ...(options.signal ? [options.signal] : []),
    ]);
    let events: AsyncGenerator<SandboxEvent> | undefined;
    try {
      events = await this.client.events({ sandboxId: id, signal });
      for await (const event of events) {
        clearTimeout(firstTimer);
        if (event.type !== "status") continue;
        options.onStatus?.(event);
        if (startOutcome(id, event)) return true;
      }
      return undefined;
    } catch (error) {
      options.signal?.throwIfAborted();
      if (timedOut.signal.aborted) return false;
      if (error instanceof SandboxStartError) throw error;
      // No stream here (ROCK's admin, an older rock), or it broke off: polling takes over.
      return undefined;
    } finally {
      clearTimeout(timer);
      clearTimeout(firstTimer);
      await events?.return(undefined).catch(() => {});
    }
  }

  /** Waits for sandbox `id` by polling get_status until `deadline`: true once it is alive. */
  async #waitByPolling(
    id: string,
    deadline: number,
    options: {
      onStatus?: ((status: SandboxStatus) => void) | undefined;
      signal?: AbortSignal | undefined;
    },
  ): Promise<boolean> {
    let last: StatusResponse | undefined;
    const alive = await pollUntil(async () => {
      const status = last = await this.client.getStatus(id);
      options.onStatus?.(status);
      return startOutcome(id, status) || undefined;
    }, {
      intervalMs: 10,
      // Fast while it is placed, slower while it waits in the admin's start queue.
      nextIntervalMs: (attempt) => statusPollInterval(last, attempt),
      timeoutMs: Math.max(0, deadline - performance.now()),
      signal: options.signal,
    });
    return alive === true;
  }

  /**
   * Sets the sandbox's lease (rock's extension, E2B's shape): it is stopped `seconds` from now,
   * keep-alives or not; with keepAlive, the keep-alives set it again. Returns when and why it
   * will be stopped.
   * @example
   * ```ts
   * import { Sandbox } from "./mod.ts";
   * await using sandbox = await new Sandbox({ image: "python:3.11" }).start();
   * const lease = await sandbox.setTimeout(1800);
   * console.log(lease.expire_time);
   * ```
   */
  async setTimeout(seconds: number): Promise<Lease> {
    const lease = await this.client.setTimeout(this.sandboxId, seconds);
    this.#timeoutSeconds = seconds;
    this.#startKeepAlive();
    return lease;
  }

  /** With keepAlive, (re)starts the keep-alives at the interval the lease calls for. */
  #startKeepAlive(): void {
    if (!this.config.keepAlive) return;
    clearInterval(this.#keepAlive);
    const leaseSeconds = this.#timeoutSeconds ?? this.config.autoClearSeconds;
    const seconds = this.config.keepAliveIntervalSeconds ?? Math.min(60, leaseSeconds / 3);
    const id = this.sandboxId;
    this.#keepAlive = setInterval(() => {
      const timeout = this.#timeoutSeconds;
      const call = timeout === undefined
        ? this.client.getStatus(id)
        : this.client.setTimeout(id, timeout);
      // A failed keep-alive is tried again at the next interval; one the sandbox is gone for
      // ends them.
      call.catch((error) => {
        if (error instanceof SandboxStoppedRockError || error instanceof SandboxNotFoundError) {
          this.#stopKeepAlive();
        }
      });
    }, seconds * 1000);
  }

  #stopKeepAlive(): void {
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
  }

  /** Stops the sandbox (and its keep-alives). */
  async stop(): Promise<void> {
    this.#stopKeepAlive();
    if (!this.#id) return;
    await this.client.stop(this.#id);
  }

  /**
   * Makes image `imageTag` of the sandbox as it is now; pushed when the tag names a registry,
   * logged in with `credentials` for that push only. Resolves with its status when it is done.
   */
  commit(
    imageTag: string,
    credentials?: { username: string; password: string },
  ): Promise<CommitStatus> {
    return this.client.commit(this.sandboxId, imageTag, credentials);
  }

  /** Starts a commit (as commit()) and returns its status at once; see getCommitStatus(). */
  commitAsync(
    imageTag: string,
    credentials?: { username: string; password: string },
  ): Promise<CommitStatus> {
    return this.client.commitAsync(this.sandboxId, imageTag, credentials);
  }

  /** The status of the sandbox's last commit. */
  getCommitStatus(): Promise<CommitStatus> {
    return this.client.getCommitStatus(this.sandboxId);
  }

  /** Stops the sandbox, ignoring errors (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop().catch(() => {});
  }

  /**
   * The sandbox's status; also a keep-alive. A deleted sandbox is answered only with
   * `includeAllStates` (as in ROCK's SDKs).
   */
  getStatus(includeAllStates = false): Promise<SandboxStatus> {
    return this.client.getStatus(this.sandboxId, { includeAllStates });
  }

  /**
   * Attaches a process over a WebSocket: by default an interactive login bash on a terminal of
   * its own (`write()` keys, `resize()`, `signal()`, `await exited` for its exit code), or with
   * `tty: false` a command on pipes (stdin passed through, `eof()` ends it).
   * @throws {RockSdkError} when the admin refuses or cannot be reached.
   */
  pty(options: PtyOptions = {}): Promise<Terminal> {
    return Terminal.open(`${this.client.url}/sandboxes/${encodeURIComponent(this.sandboxId)}/pty`, {
      ...options,
      headers: { ...this.config.extraHeaders, ...options.headers },
    });
  }

  /** True when the sandbox runs. */
  async isAlive(): Promise<boolean> {
    return (await this.client.isAlive(this.sandboxId)).is_alive;
  }

  /**
   * Runs one process (argv, or a shell string with `shell: true`), stdout and stderr apart;
   * `onOutput` gets both as they are printed.
   */
  execute(
    command: string | string[],
    options: {
      timeout?: number | undefined;
      env?: Record<string, string> | undefined;
      cwd?: string | undefined;
      shell?: boolean | undefined;
      check?: boolean | undefined;
      onOutput?: ((stream: "stdout" | "stderr", text: string) => void) | undefined;
    } = {},
  ): Promise<CommandResponse> {
    const { onOutput, ...request } = options;
    return this.client.execute(
      { sandbox_id: this.sandboxId, command, ...request },
      undefined,
      onOutput && ((stream, text) => onOutput(stream === "stderr" ? "stderr" : "stdout", text)),
    );
  }

  /** Creates a bash session. */
  async createSession(session: string, options: SessionOptions = {}): Promise<void> {
    await this.client.createSession({
      sandbox_id: this.sandboxId,
      session,
      env: options.env,
      env_enable: options.envEnable ?? false,
      startup_source: options.startupSource ?? [],
      remote_user: options.remoteUser,
    });
  }

  /** Closes a bash session. */
  async closeSession(session: string): Promise<void> {
    await this.client.closeSession({ sandbox_id: this.sandboxId, session });
  }

  /** The session arun() uses when none is given (created once, env inherited). */
  #session(): Promise<string> {
    this.#defaultSession ??= (async () => {
      const name = `sdk-${randomHex()}`;
      await this.createSession(name, { envEnable: true });
      return name;
    })();
    return this.#defaultSession;
  }

  /**
   * Runs a shell command as arun() does and yields its output as it is printed:
   * `for await (const text of sandbox.arunStream("make")) process.stdout.write(text)`, then
   * `await stream.result` for the exit code. Errors (with `check`) reject `result` and end the
   * iteration with the same error.
   */
  arunStream(command: string, options: Omit<ArunOptions, "onOutput"> = {}): ArunStream {
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const result = this.arun(command, {
      ...options,
      onOutput: (text) => {
        queue.push(text);
        wake?.();
      },
    }).finally(() => {
      ended = true;
      wake?.();
    });
    // Not awaiting `result` before iterating must not be an unhandled rejection.
    result.catch(() => {});
    return {
      result,
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const next = queue.shift();
          if (next !== undefined) {
            yield next;
            continue;
          }
          if (ended) {
            await result;
            return;
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      },
    };
  }

  /**
   * Runs a shell command and returns its output and real exit code. "normal" runs it in a
   * session; "nohup" runs it in the background and waits with `wait`, so the exit code is the
   * command's own and completion is noticed at once (no polling).
   * @throws {CommandRockError} with `check` when it exits non-zero or does not finish in time.
   */
  async arun(command: string, options: ArunOptions = {}): Promise<ArunResult> {
    const resolved = withDefaults(
      { mode: "normal", waitTimeout: 300, check: false },
      options,
    );
    const result = resolved.mode === "nohup"
      ? await this.#nohup(command, resolved)
      : await this.#normal(command, resolved);
    if (resolved.mode === "nohup" && result.output) resolved.onOutput?.(result.output);
    if (resolved.check && result.exitCode !== 0) {
      throw new CommandRockError(
        `Command '${command}' ${
          result.exitCode === null ? "did not finish" : `failed with exit code ${result.exitCode}`
        }: ${result.failureReason || result.output.slice(-2000)}`,
        { sandboxId: this.#id, extraInfo: { exit_code: result.exitCode } },
      );
    }
    return result;
  }

  async #normal(
    command: string,
    options: WithDefaults<ArunOptions, ArunDefaults>,
  ): Promise<ArunResult> {
    const session = options.session ?? await this.#session();
    try {
      const onOutput = options.onOutput;
      const observation = await this.client.runInSession(
        {
          sandbox_id: this.sandboxId,
          session,
          command,
          check: "silent",
          timeout: options.waitTimeout,
        },
        undefined,
        onOutput && ((_stream, text) => onOutput(text)),
      );
      return { output: observation.output, exitCode: observation.exit_code, failureReason: "" };
    } catch (error) {
      if (error instanceof CommandTimeoutError) {
        return { output: "", exitCode: null, failureReason: error.message };
      }
      throw error;
    }
  }

  async #nohup(
    command: string,
    options: WithDefaults<ArunOptions, ArunDefaults>,
  ): Promise<ArunResult> {
    const started = Date.now();
    const waitSeconds = options.waitTimeout;
    const own = options.session === undefined;
    const session = options.session ?? `arun-${randomHex()}`;
    if (own) await this.createSession(session, { envEnable: true });
    try {
      const outputFile = options.outputFile ?? `/tmp/rock-arun-${randomHex()}.out`;
      const dir = outputFile.slice(0, outputFile.lastIndexOf("/")) || "/";
      const launched = await this.client.runInSession({
        sandbox_id: this.sandboxId,
        session,
        command: `mkdir -p ${shellQuote(dir)} && nohup bash -c ${shellQuote(command)} > ${
          shellQuote(outputFile)
        } 2>&1 < /dev/null & echo "$!"`,
        check: "raise",
        timeout: 30,
      });
      const pid = Number(launched.output.trim().split("\n").pop());
      const left = Math.max(0.05, waitSeconds - (Date.now() - started) / 1000);
      let exitCode: number | null = null;
      let failureReason = "";
      try {
        // The job is a child of this session's shell: `wait` returns its exit status as soon as
        // it ends. On timeout the shell is interrupted; the job ignores SIGINT and runs on.
        const waited = await this.client.runInSession({
          sandbox_id: this.sandboxId,
          session,
          command: `wait ${pid}; echo "__rock_exit__$?"`,
          check: "silent",
          timeout: left,
        });
        exitCode = Number(/__rock_exit__(\d+)/.exec(waited.output)?.[1] ?? Number.NaN);
        if (Number.isNaN(exitCode)) {
          exitCode = null;
          failureReason = `Cannot read the exit status of process ${pid}: ${waited.output}`;
        }
      } catch (error) {
        if (!(error instanceof CommandRockError)) throw error;
        failureReason = `Process ${pid} did not complete within ${waitSeconds} s; it keeps running`;
      }
      let output: string;
      let removed = false;
      if (options.ignoreOutput) {
        output = `output of process ${pid} is in ${outputFile}`;
      } else {
        const limit = options.responseLimitedBytes;
        const file = shellQuote(outputFile);
        // A temp file of our own goes once read, unless the command still runs and writes to it.
        removed = options.outputFile === undefined && exitCode !== null;
        const cleanup = removed ? `; rm -f ${file}` : "";
        const read = await this.client.runInSession({
          sandbox_id: this.sandboxId,
          session,
          command: (limit ? `head -c ${Math.floor(limit)} ${file}` : `cat ${file}`) + cleanup,
          check: "silent",
          timeout: 60,
        });
        output = read.output;
      }
      return { output, exitCode, failureReason, pid, ...(removed ? {} : { outputFile }) };
    } finally {
      if (own) await this.closeSession(session).catch(() => {});
    }
  }

  /** Reads a text file. */
  async readFile(path: string, options: { encoding?: string } = {}): Promise<string> {
    return (await this.client.readFile({
      sandbox_id: this.sandboxId,
      path,
      encoding: options.encoding,
    })).content;
  }

  /** Writes a text file (parents created). */
  async writeFile(path: string, content: string): Promise<void> {
    await this.client.writeFile({ sandbox_id: this.sandboxId, path, content });
  }

  /** Uploads bytes (binary-safe, streamed) to `targetPath`. */
  upload(
    data: Uint8Array | Blob | ReadableStream<Uint8Array>,
    targetPath: string,
    options: { unzip?: boolean; fileName?: string } = {},
  ): Promise<UploadResponse> {
    const stream = data instanceof ReadableStream
      ? data
      : data instanceof Blob
      ? data.stream()
      : new Blob([data as Uint8Array<ArrayBuffer>]).stream();
    return this.client.upload(this.sandboxId, stream, { targetPath, ...options });
  }

  /** Uploads the local file `localPath` to `targetPath`, streamed. */
  async uploadByPath(localPath: string, targetPath: string): Promise<UploadResponse> {
    return await this.upload(await fileStream(localPath), targetPath, {
      fileName: basename(localPath),
    });
  }

  /** Uploads the local directory `localDir` into `targetDir` (zipped on the way, extracted there). */
  uploadDir(localDir: string, targetDir: string): Promise<UploadResponse> {
    return this.upload(zipDirectory(localDir), targetDir, {
      unzip: true,
      fileName: `${basename(localDir)}.zip`,
    });
  }

  /** Downloads a file's bytes (binary-safe). */
  async download(path: string): Promise<Uint8Array> {
    const { body } = await this.client.download(this.sandboxId, path);
    return new Uint8Array(await new Response(body).arrayBuffer());
  }

  /** Downloads a file to `localPath`, streamed; returns the bytes written. */
  async downloadToPath(
    path: string,
    localPath: string,
    onProgress?: (bytes: number, total: number) => void,
  ): Promise<number> {
    const { body, size } = await this.client.download(this.sandboxId, path);
    return await writeStreamToFile(
      body,
      localPath,
      onProgress ? (bytes) => onProgress(bytes, size) : undefined,
    );
  }

  /** File-system helpers run as commands in the sandbox. */
  readonly fs = {
    /** `chown [-R] owner path`. */
    chown: (path: string, owner: string, options: { recursive?: boolean } = {}) =>
      this.#checked(["chown", ...(options.recursive ? ["-R"] : []), owner, path]),
    /** `chmod [-R] mode path`. */
    chmod: (path: string, mode: string, options: { recursive?: boolean } = {}) =>
      this.#checked(["chmod", ...(options.recursive ? ["-R"] : []), mode, path]),
  };

  /** Process helpers. */
  readonly process = {
    /**
     * Writes `content` to a script in /tmp and runs it with bash in nohup mode; the script is
     * removed afterwards unless `cleanup` is false.
     */
    executeScript: async (
      content: string,
      options: {
        name?: string | undefined;
        waitTimeout?: number | undefined;
        cleanup?: boolean | undefined;
        check?: boolean | undefined;
      } = {},
    ): Promise<ArunResult> => {
      const path = `/tmp/${options.name ?? `rock-script-${randomHex()}.sh`}`;
      await this.writeFile(path, content);
      try {
        return await this.arun(`bash ${shellQuote(path)}`, {
          mode: "nohup",
          waitTimeout: options.waitTimeout ?? 300,
          check: options.check,
        });
      } finally {
        if (options.cleanup ?? true) await this.execute(["rm", "-f", path]).catch(() => {});
      }
    },
  };

  async #checked(argv: string[]): Promise<void> {
    const result = await this.execute(argv);
    if (result.exit_code !== 0) {
      throw new CommandRockError(
        `Command ${
          JSON.stringify(argv)
        } failed with exit code ${result.exit_code}: ${result.stderr.trim()}`,
        { sandboxId: this.#id, extraInfo: { exit_code: result.exit_code } },
      );
    }
  }
}
