/** The in-process runtime: bash sessions, processes and files on this machine. */
import { BadRequestError, SessionExistsError, SessionNotFoundError } from "../common/errors.ts";
import {
  BashAction,
  type BashInterruptAction,
  type BashObservation,
  type CloseResponse,
  type CloseSessionRequest,
  type CloseSessionResponse,
  type Command,
  type CommandResponse,
  CreateSessionRequest,
  type CreateSessionResponse,
  type EnvCloseRequest,
  type EnvCloseResponse,
  type EnvListResponse,
  type EnvMakeRequest,
  type EnvMakeResponse,
  type EnvResetRequest,
  type EnvResetResponse,
  type EnvStepRequest,
  type EnvStepResponse,
  type IsAliveResponse,
  type ReadFileRequest,
  type ReadFileResponse,
  type StatisticsResponse,
  type UploadResponse,
  type WriteFileRequest,
  type WriteFileResponse,
} from "../protocol/rocklet.ts";
import { parseWire } from "../protocol/validate.ts";
import { BashSession, writeSessionScripts } from "./bash_session.ts";
import { executeCommand } from "./execute.ts";
import { downloadFile, readTextFile, uploadStream, writeTextFile } from "./files.ts";
import { DEFAULT_MAX_OUTPUT_BYTES } from "./output.ts";
import type { CallOptions, Download, Runtime, UploadOptions } from "../protocol/runtime.ts";
import { readStatistics } from "./statistics.ts";
import { GemEnvs } from "./gem.ts";

/** Settings of a LocalRuntime. */
export interface LocalRuntimeOptions {
  /** Environment copied into sessions with `env_enable` and given to `/execute`. */
  baseEnv?: Record<string, string> | undefined;
  /** Cap on one command's output, in bytes (default 10 MiB). */
  maxOutputBytes?: number | undefined;
  /** The python GEM environments run with (default ROCK_GEM_PYTHON, else python3 or python). */
  gemPython?: string | undefined;
}

/** Runs everything on this machine as the current user. */
export class LocalRuntime implements Runtime {
  readonly #sessions = new Map<string, BashSession>();
  /** Session names being started, so two concurrent creates cannot both win. */
  readonly #starting = new Set<string>();
  readonly #baseEnv: Record<string, string>;
  readonly #maxOutputBytes: number;
  readonly #gem: GemEnvs;
  /** The calls in progress per session, each with its own interrupt. */
  readonly #running = new WeakMap<
    BashSession,
    Set<{ interrupt: AbortController; done: Promise<void> }>
  >();
  #scriptDir: Promise<string> | undefined;

  /** Creates a runtime; nothing starts until the first call. */
  constructor(options: LocalRuntimeOptions = {}) {
    this.#baseEnv = options.baseEnv ?? {};
    this.#maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    this.#gem = new GemEnvs({ python: options.gemPython });
  }

  /** The wrappers every session sources live in one private directory per runtime. */
  #scripts(): Promise<string> {
    this.#scriptDir ??= (async () => {
      const dir = await Deno.makeTempDir({ prefix: "rock-bash-" });
      await writeSessionScripts(dir);
      return dir;
    })();
    return this.#scriptDir;
  }

  /**
   * Does now what the first session would do first: writes the session scripts, and warms what
   * a first session and command load on first use (about 20 ms in a fresh process: the timer
   * machinery, zod's compiled checks of these requests). The rocklet calls it once it has
   * answered, so the first create_session does not pay for it.
   */
  async prepare(): Promise<void> {
    // An I/O first: whatever call started this is answered before the rest runs.
    await this.#scripts();
    clearTimeout(setTimeout(() => {}, 0));
    parseWire(CreateSessionRequest, {}, "create_session request");
    parseWire(BashAction, { command: ":" }, "run_in_session request");
  }

  /** Always alive while the process runs. */
  isAlive(): Promise<IsAliveResponse> {
    return Promise.resolve({ is_alive: true, message: "" });
  }

  /** Reads cpu, memory, disk and network figures. */
  getStatistics(): Promise<StatisticsResponse> {
    return readStatistics();
  }

  /** Starts a bash session named `request.session`. */
  async createSession(request: CreateSessionRequest): Promise<CreateSessionResponse> {
    const name = request.session;
    const existing = this.#sessions.get(name);
    if ((existing && !existing.closed) || this.#starting.has(name)) {
      throw new SessionExistsError(
        `Cannot create session "${name}": a session with this name exists`,
        {
          extraInfo: { session: name },
        },
      );
    }
    if (request.remote_user && request.remote_user !== "root" && Deno.uid() !== 0) {
      throw new BadRequestError(
        `Cannot create session "${name}" as user "${request.remote_user}": ` +
          "switching users needs the runtime to run as root",
      );
    }
    this.#starting.add(name);
    try {
      const env = { ...(request.env_enable ? this.#baseEnv : {}), ...(request.env ?? {}) };
      const { session, output } = await BashSession.start({
        name,
        env,
        startupSource: request.startup_source,
        remoteUser: request.remote_user,
        startupTimeoutMs: request.startup_timeout * 1000,
        maxOutputBytes: this.#maxOutputBytes,
        scriptDir: await this.#scripts(),
        pty: request.pty ?? undefined,
      });
      this.#sessions.set(name, session);
      return { output, session_type: "bash" };
    } finally {
      this.#starting.delete(name);
    }
  }

  #session(name: string): BashSession {
    const session = this.#sessions.get(name);
    if (!session) {
      throw new SessionNotFoundError(
        `Cannot use session "${name}": no such session; create it first`,
        {
          extraInfo: { session: name },
        },
      );
    }
    return session;
  }

  /** Runs a command in an existing session. */
  async runInSession(action: BashAction, options: CallOptions = {}): Promise<BashObservation> {
    const session = this.#session(action.session);
    // Each call can be interrupted from another one (bash_interrupt) as well as by its caller.
    const interrupt = new AbortController();
    const signal = options.signal
      ? AbortSignal.any([options.signal, interrupt.signal])
      : interrupt.signal;
    const calls = this.#running.get(session) ?? new Set();
    this.#running.set(session, calls);
    const call = { interrupt, done: Promise.resolve() };
    const run = session.run(action, { signal, onOutput: options.onOutput });
    call.done = run.then(() => {}, () => {});
    calls.add(call);
    try {
      return await run;
    } finally {
      calls.delete(call);
    }
  }

  /**
   * Interrupts the calls running or waiting in a session and waits until they have ended; the
   * session stays usable. Answers as an empty, successful command (SWE-ReX's bash_interrupt).
   */
  async interruptSession(action: BashInterruptAction): Promise<BashObservation> {
    const session = this.#session(action.session);
    const calls = [...(this.#running.get(session) ?? [])];
    for (const call of calls) call.interrupt.abort();
    await Promise.all(calls.map((call) => call.done));
    return {
      session_type: "bash",
      output: "",
      exit_code: 0,
      failure_reason: "",
      expect_string: "",
    };
  }

  /** Closes a session. */
  async closeSession(request: CloseSessionRequest): Promise<CloseSessionResponse> {
    const session = this.#session(request.session);
    this.#sessions.delete(request.session);
    await session.close();
    return { session_type: "bash" };
  }

  /** Runs one process. */
  execute(command: Command, options: CallOptions = {}): Promise<CommandResponse> {
    return executeCommand(command, {
      baseEnv: this.#baseEnv,
      maxOutputBytes: this.#maxOutputBytes,
      signal: options.signal,
      onOutput: options.onOutput,
    });
  }

  /** Reads a text file. */
  readFile(request: ReadFileRequest): Promise<ReadFileResponse> {
    return readTextFile(request);
  }

  /** Writes a text file. */
  writeFile(request: WriteFileRequest): Promise<WriteFileResponse> {
    return writeTextFile(request);
  }

  /** Streams bytes into a file or extracts a zip. */
  upload(data: ReadableStream<Uint8Array>, options: UploadOptions): Promise<UploadResponse> {
    return uploadStream(data, options);
  }

  /** Streams a file out. */
  download(path: string): Promise<Download> {
    return downloadFile(path);
  }

  /** Makes a GEM environment (see GemEnvs). */
  envMake(request: EnvMakeRequest): Promise<EnvMakeResponse> {
    return this.#gem.make(request.env_id, request.sandbox_id);
  }

  /** Steps a GEM environment. */
  envStep(request: EnvStepRequest): Promise<EnvStepResponse> {
    return this.#gem.step(request.sandbox_id, request.action);
  }

  /** Resets a GEM environment. */
  envReset(request: EnvResetRequest): Promise<EnvResetResponse> {
    return this.#gem.reset(request.sandbox_id, request.seed);
  }

  /** Closes a GEM environment. */
  envClose(request: EnvCloseRequest): Promise<EnvCloseResponse> {
    return this.#gem.close(request.sandbox_id);
  }

  /** The ids gem registers. */
  envList(): Promise<EnvListResponse> {
    return this.#gem.list();
  }

  /**
   * Closes every session, killing all processes they started (background jobs too), and every
   * GEM environment, and removes the runtime's private files.
   */
  async close(): Promise<CloseResponse> {
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all([
      ...sessions.map((s) => s.close({ killGroup: true })),
      this.#gem.closeAll(),
    ]);
    const dir = this.#scriptDir;
    this.#scriptDir = undefined;
    if (dir) await Deno.remove(await dir, { recursive: true }).catch(() => {});
    return {};
  }
}
