/**
 * A persistent bash process that runs one command at a time and reports its exact output and
 * exit code.
 *
 * How a command runs: bash reads its input from a pipe (no terminal). Each command travels in a
 * quoted here-document whose delimiter is a fresh random nonce, is syntax-checked by parsing it
 * as a function body that is never defined (nothing runs), then runs through `source` of a tiny
 * wrapper so `cd`, variables and functions persist. Its stdin is /dev/null, so a command that
 * reads stdin gets end-of-file instead of hanging the session. After it, bash prints the nonce and
 * the exit code; the nonce never appears in anything the command can read, so output cannot
 * forge it.
 *
 * How a timeout interrupts: bash runs in its own process group with an INT trap that returns
 * from the sourced command (and a DEBUG trap that keeps returning through enclosing functions
 * and loops). SIGINT goes to the whole group; children that ignore it are killed; if bash still
 * does not come back, the session is ended and says so.
 */
import {
  BashSyntaxError,
  CancelledError,
  CommandTimeoutError,
  NonZeroExitCodeError,
  RockError,
  SessionNotFoundError,
} from "../common/errors.ts";
import type { BashAction, BashObservation } from "../protocol/rocklet.ts";
import { CappedText, stripAnsi } from "./output.ts";
import {
  childrenOf,
  killDescendants,
  killDescendantsExcept,
  signalProcess,
} from "./process_tree.ts";

/** How a session is started. */
export interface BashSessionOptions {
  /** Session name, used in messages. */
  name: string;
  /** The complete environment of the shell. */
  env: Record<string, string>;
  /** Files sourced at start. */
  startupSource?: string[];
  /** Run the shell as this user (through `su`); only when the rocklet runs as root. */
  remoteUser?: string | null | undefined;
  /** How long start-up may take, in milliseconds. */
  startupTimeoutMs: number;
  /** Cap on one command's output, in bytes. */
  maxOutputBytes: number;
  /** Directory holding the `check` and `run` wrappers (see writeSessionScripts). */
  scriptDir: string;
}

/** Result of one command before check-mode handling. */
interface RawResult {
  output: string;
  /** What followed the marker: the exit code, "syntax", or at start-up "<code>:<shell pid>". */
  status: string;
}

/**
 * The INT trap: return from the sourced command, and keep returning (DEBUG trap) through the
 * functions and loops that enclose the point where the interrupt landed.
 */
const INT_TRAP = `trap 'trap "return 130 2>/dev/null" DEBUG; return 130 2>/dev/null' INT`;

/** How long to wait for bash after each escalation step of an interrupt. */
const INTERRUPT_GRACE_MS = 300;

/**
 * Writes the wrapper scripts every session sources (`check`, `run`, `done`); `dir` must be
 * readable by all users. They keep what each command sends down the pipe short: bash reads a
 * pipe one byte per system call, which made the wrapper cost more than a trivial command.
 */
export async function writeSessionScripts(dir: string): Promise<void> {
  // check: first sets the INT trap again, in case the previous command replaced it (a sourced
  // file sets it for the whole shell). Then it parses the command as the body of a function
  // that is never defined (bash parses a compound command whole before running any of it, and
  // `if false` runs none of it). The `:` line keeps an empty or comment-only body valid; it
  // sits on its own line so a trailing comment or here-document cannot swallow it, and the two
  // closers mean a stray `}` or `fi` alone cannot end the check early. Only when that fails
  // does `bash -n` parse the text as a script: it accepts what bash would run (a here-document
  // without its end line) and reports errors with the command's own line numbers.
  await Deno.writeTextFile(
    `${dir}/check`,
    [
      INT_TRAP,
      `eval "if false; then __rock_chk() {"$'\\n'"$__rock_src"$'\\n:\\n}; fi' 2>/dev/null ||`,
      `  { __rock_err=$(exec -a bash /bin/bash -n 2>&1 <<<"\${__rock_src%$'\\n'}") ||`,
      `    { printf '%s\\n' "$__rock_err"; false; }; }`,
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(`${dir}/run`, `eval "$__rock_src"\n`);
  // done: prints the marker (its argument is the nonce) and the exit code. Sourced at the top
  // level after the DEBUG trap is gone, so an interrupt's returns cannot skip it.
  await Deno.writeTextFile(
    `${dir}/done`,
    `printf '%s%s\\n' "$1" "$__rock_ec"; unset __rock_src __rock_ec __rock_err\n`,
  );
  for (const name of ["check", "run", "done"]) await Deno.chmod(`${dir}/${name}`, 0o644);
  await Deno.chmod(dir, 0o755);
}

/** Returns a nonce that no command can know in advance. */
function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `__rock_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}_`;
}

/** Quotes `text` for bash in single quotes. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Where bash's syntax check stopped, as BashSyntaxError's `extra_info`: bash says it only in
 * words (`bash: line 3: syntax error near unexpected token `fi'`, `... unexpected end of file`),
 * so they are read here, once, where they arise. This is the one place in rock that reads a
 * tool's or an error's words: everything downstream decides on the error's type and extra_info.
 */
export function syntaxDetails(
  diagnostics: string,
): { line: number | null; unexpected_token: string | null; unexpected_end: boolean } {
  const near = /line (\d+): syntax error near unexpected token [`']([^\n]*)'/.exec(diagnostics);
  const first = /line (\d+):/.exec(diagnostics);
  return {
    line: near ? Number(near[1]) : first ? Number(first[1]) : null,
    unexpected_token: near?.[2] ?? null,
    unexpected_end: /unexpected (EOF|end of file)/.test(diagnostics),
  };
}

/**
 * Collects the output of one command until its end marker (nonce, then status, then newline).
 * Only a short window at the end is re-scanned per chunk, so large outputs stay linear.
 */
class MarkerScanner {
  readonly #nonce: string;
  readonly #text: CappedText;
  #window = "";
  #found = -1;
  readonly done: Promise<RawResult>;
  #resolve!: (result: RawResult) => void;

  constructor(nonce: string, maxBytes: number) {
    this.#nonce = nonce;
    this.#text = new CappedText(maxBytes);
    this.done = new Promise((resolve) => (this.#resolve = resolve));
  }

  /** Feeds decoded output; returns true once the marker line is complete. */
  push(chunk: string): boolean {
    this.#window += chunk;
    if (this.#found < 0) {
      const at = this.#window.indexOf(this.#nonce);
      if (at < 0) {
        const keep = this.#nonce.length - 1;
        if (this.#window.length > keep) {
          this.#text.push(this.#window.slice(0, this.#window.length - keep));
          this.#window = this.#window.slice(this.#window.length - keep);
        }
        return false;
      }
      this.#text.push(this.#window.slice(0, at));
      this.#window = this.#window.slice(at + this.#nonce.length);
      this.#found = 0;
    }
    const end = this.#window.indexOf("\n");
    if (end < 0) return false;
    const code = this.#window.slice(0, end);
    this.#resolve({ output: this.#text.text(), status: code });
    return true;
  }

  /** Output received so far (for timeout errors). */
  partial(): string {
    return this.#text.text() + (this.#found < 0 ? this.#window : "");
  }

  /** Ends the command early with what arrived so far (the shell exited with `status`). */
  finish(status: string): void {
    this.#resolve({ output: this.partial(), status });
  }
}

/** A one-slot lock: commands in one session run one after another. */
class SessionLock {
  #tail: Promise<void> = Promise.resolve();

  /** Waits for the slot; rejects with `onTimeout()` if it is not free within `timeoutMs`. */
  async acquire(timeoutMs: number | undefined, onTimeout: () => Error): Promise<() => void> {
    let release!: () => void;
    const previous = this.#tail;
    this.#tail = new Promise((resolve) => (release = resolve));
    if (timeoutMs === undefined) {
      await previous;
      return release;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), timeoutMs);
    });
    const outcome = await Promise.race([previous.then(() => "ok" as const), expired]);
    clearTimeout(timer);
    if (outcome === "expired") {
      // Keep the chain intact: our slot is released as soon as the previous one is.
      previous.then(release);
      throw onTimeout();
    }
    return release;
  }
}

/** A persistent bash shell. Create with `BashSession.start()`. */
export class BashSession {
  readonly name: string;
  readonly #process: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #options: BashSessionOptions;
  readonly #lock = new SessionLock();
  readonly #encoder = new TextEncoder();
  #scanner: MarkerScanner | undefined;
  /** Pid of bash itself, leader of the process group that interrupts go to. */
  #shellPid: number;
  #exitCode: number | undefined;
  #closed = false;
  #closedReason = "";
  readonly #exited: Promise<void>;

  private constructor(options: BashSessionOptions, process: Deno.ChildProcess) {
    this.name = options.name;
    this.#options = options;
    this.#process = process;
    this.#stdin = process.stdin.getWriter();
    this.#shellPid = process.pid;
    this.#exited = this.#readOutput();
  }

  /**
   * Starts bash, sources the start-up files and returns the session with their output.
   * @throws {RockError} when bash cannot start or start-up does not finish in time.
   */
  static async start(
    options: BashSessionOptions,
  ): Promise<{ session: BashSession; output: string }> {
    const command = BashSession.#spawnCommand(options);
    let process: Deno.ChildProcess;
    try {
      process = command.spawn();
    } catch (error) {
      throw new RockError(`Cannot start session "${options.name}": ${String(error)}`, {
        cause: error,
      });
    }
    const session = new BashSession(options, process);
    const sources = (options.startupSource ?? []).map((file) => `source ${shellQuote(file)}`);
    // Errors go to the same pipe as output, in order, as on a terminal.
    // The INT trap is there from the start: an interrupt that lands between commands (a cancel
    // that arrives while bash still reads the command) must not end a non-interactive shell.
    const script = ["exec 2>&1", INT_TRAP, ...sources.map((s) => `${s} < /dev/null`)].join("\n");
    try {
      const nonce = newNonce();
      // The marker also carries the shell's pid: under su the shell leads its own process group.
      const input = `${script}\nprintf '%s%s\\n' '${nonce}' "$?:$$"\n`;
      const result = await session.#exchange(input, nonce, options.startupTimeoutMs, undefined);
      session.#shellPid = Number(result.status.split(":")[1]) || process.pid;
      return { session, output: stripAnsi(result.output).trim() };
    } catch (error) {
      await session.close();
      if (error instanceof CommandTimeoutError) {
        throw new CommandTimeoutError(
          `Cannot start session "${options.name}": start-up did not finish within ${
            options.startupTimeoutMs / 1000
          } s`,
          { extraInfo: { output: error.output } },
        );
      }
      throw error;
    }
  }

  static #spawnCommand(options: BashSessionOptions): Deno.Command {
    const user = options.remoteUser;
    const common = {
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
      clearEnv: true,
      env: options.env,
      detached: true, // own session and process group, so SIGINT reaches only this shell's jobs
    } as const;
    if (user && user !== "root" && Deno.uid() === 0) {
      return new Deno.Command("su", {
        ...common,
        args: [user, "-s", "/bin/bash", "-c", "exec /bin/bash --noprofile --norc"],
      });
    }
    return new Deno.Command("/bin/bash", { ...common, args: ["--noprofile", "--norc"] });
  }

  /** True once the shell has exited or the session was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs one command. Check modes follow ROCK: `raise` throws NonZeroExitCodeError on a
   * non-zero exit, `silent` returns the code, `ignore` returns `exit_code: null`.
   * @throws {BashSyntaxError} when the command does not parse (nothing ran).
   * @throws {CommandTimeoutError} when `action.timeout` passes; the session stays usable.
   */
  async run(action: BashAction, signal?: AbortSignal): Promise<BashObservation> {
    if (action.is_interactive_command || action.is_interactive_quit || action.expect.length > 0) {
      throw new RockError(
        "Cannot run command: interactive mode (is_interactive_command, is_interactive_quit, " +
          "expect) is not supported; run the program non-interactively or in nohup mode",
        { code: 4000, status: 511, classPath: "builtins.NotImplementedError" },
      );
    }
    const timeoutMs = typeof action.timeout === "number" ? action.timeout * 1000 : undefined;
    const started = performance.now();
    const release = await this.#lock.acquire(
      timeoutMs,
      () =>
        new CommandTimeoutError(
          `Command timed out after ${action.timeout} s while waiting for session "${this.name}", ` +
            "which is busy with another command",
        ),
    );
    try {
      this.#assertOpen();
      const remaining = timeoutMs === undefined
        ? undefined
        : Math.max(1, timeoutMs - (performance.now() - started));
      const nonce = newNonce();
      const input = this.#wrap(action.command, nonce);
      // The shell is idle: its children now are the jobs of earlier commands, which an interrupt
      // of this one spares.
      const earlierJobs = childrenOf(this.#shellPid);
      const result = await this.#exchange(input, nonce, remaining, signal, action, earlierJobs);
      return this.#observe(action, result);
    } finally {
      release();
    }
  }

  #wrap(command: string, nonce: string): string {
    const dir = shellQuote(this.#options.scriptDir);
    // The here-document delimiter is the nonce too; its lines are taken literally.
    return [
      `IFS= read -r -d '' __rock_src <<'${nonce}'`,
      command,
      nonce,
      `if source ${dir}/check; then source ${dir}/run; __rock_ec=$?; else __rock_ec=syntax; fi ` +
      `< /dev/null; trap - DEBUG; source ${dir}/done '${nonce}'`,
      "",
    ].join("\n");
  }

  /**
   * Sends `input` (which ends by printing a marker with the last nonce in it) and waits for the
   * marker. On timeout or abort, interrupts the command and waits for the shell to come back.
   */
  async #exchange(
    input: string,
    nonce: string,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    action?: BashAction,
    earlierJobs?: number[],
  ): Promise<RawResult> {
    const scanner = new MarkerScanner(nonce, this.#options.maxOutputBytes);
    this.#scanner = scanner;
    const started = performance.now();
    try {
      await this.#stdin.write(this.#encoder.encode(input));
    } catch {
      this.#scanner = undefined;
      this.#assertOpen();
      throw this.#gone("the shell does not accept input");
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const stop = new Promise<"timeout" | "abort">((resolve) => {
      if (timeoutMs !== undefined) timer = setTimeout(() => resolve("timeout"), timeoutMs);
      if (signal) {
        onAbort = () => resolve("abort");
        if (signal.aborted) onAbort();
        else signal.addEventListener("abort", onAbort, { once: true });
      }
    });
    try {
      const first = await Promise.race([scanner.done, stop]);
      if (first !== "timeout" && first !== "abort") return first;
      await this.#interrupt(scanner, performance.now() - started, earlierJobs);
      const output = stripAnsi(scanner.partial()).trim();
      const what = action ? `Command '${action.command}'` : "Start-up";
      if (first === "abort") {
        throw new CancelledError(
          `${what} was cancelled by the caller; the session was interrupted`,
        );
      }
      const limit = action?.timeout ?? (timeoutMs ?? 0) / 1000;
      throw new CommandTimeoutError(
        `${what} timed out after ${limit} s` +
          (this.#closed
            ? `; ${this.#closedReason}`
            : "; the session was interrupted and is usable"),
        { extraInfo: { output } },
      );
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener("abort", onAbort);
      if (this.#scanner === scanner) this.#scanner = undefined;
    }
  }

  /**
   * Interrupts the running command and waits until the shell prints its marker again. Whatever
   * the command started is killed too (background jobs ignore SIGINT): everything below the
   * shell but `earlierJobs` and their descendants; without that list (no /proc children file),
   * the processes started while the command ran.
   */
  async #interrupt(
    scanner: MarkerScanner,
    runningForMs: number,
    earlierJobs: number[] | undefined,
  ): Promise<void> {
    const pgid = this.#shellPid;
    const backAtPrompt = () =>
      Promise.race([
        scanner.done.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), INTERRUPT_GRACE_MS)),
      ]);
    const killStarted = () =>
      earlierJobs
        ? killDescendantsExcept(pgid, earlierJobs, runningForMs + INTERRUPT_GRACE_MS + 50)
        : killDescendants(pgid, runningForMs + INTERRUPT_GRACE_MS + 50);
    signalProcess(-pgid, "SIGINT");
    const back = await backAtPrompt();
    // Children that ignore SIGINT (background jobs, nohup, setsid): kill those of this command.
    await killStarted();
    if (back) return;
    signalProcess(-pgid, "SIGINT");
    if (await backAtPrompt()) return;
    this.#closedReason = "the shell did not return after an interrupt, so the session was ended";
    this.#closed = true;
    this.#killAll();
    await this.#exited;
  }

  #observe(action: BashAction, result: RawResult): BashObservation {
    const output = this.#clean(stripAnsi(result.output)).trim();
    if (result.status === "syntax") {
      throw new BashSyntaxError(
        `Cannot run command in session "${this.name}": bash reports a syntax error: ${output}`,
        { extraInfo: { bash_stdout: "", bash_stderr: output, ...syntaxDetails(output) } },
      );
    }
    const exitCode = Number(result.status);
    if (action.check === "raise" && exitCode !== 0) {
      const prefix = action.error_msg ? `${action.error_msg}: ` : "";
      throw new NonZeroExitCodeError(
        `${prefix}Command '${action.command}' failed with exit code ${exitCode}. ` +
          `Here is the output:\n'${output}'`,
        { extraInfo: { exit_code: exitCode, output } },
      );
    }
    return {
      session_type: "bash",
      output,
      exit_code: action.check === "ignore" ? null : exitCode,
      failure_reason: "",
      expect_string: "",
    };
  }

  /** Makes bash's messages about the running command name "bash" instead of the `run` wrapper. */
  #clean(output: string): string {
    const dir = this.#options.scriptDir;
    if (!output.includes(dir)) return output;
    return output.replace(
      new RegExp(
        `${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/run: (?:eval: )?line (\\d+): `,
        "g",
      ),
      "bash: line $1: ",
    );
  }

  #gone(reason: string): SessionNotFoundError {
    return new SessionNotFoundError(`Cannot use session "${this.name}": ${reason}`, {
      extraInfo: { session: this.name },
    });
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw this.#gone(
        this.#closedReason ||
          `the shell has exited with code ${this.#exitCode}; create the session again`,
      );
    }
  }

  async #readOutput(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.#process.stdout) {
        const text = decoder.decode(chunk, { stream: true });
        if (this.#scanner?.push(text)) this.#scanner = undefined;
      }
    } catch {
      // The pipe broke: handled as an exit below.
    }
    const status = await this.#process.status;
    this.#exitCode = status.code;
    if (!this.#closed) {
      this.#closed = true;
      this.#closedReason =
        `the shell has exited with code ${status.code}; create the session again`;
    }
    // A command that ended the shell (`exit 4`) still gets its output and exit code.
    this.#scanner?.finish(String(status.code));
    this.#scanner = undefined;
  }

  /**
   * Ends the shell. An idle shell exits at end of input, so background jobs it started with
   * nohup live on; a busy one is killed with its whole process group. With `killGroup`, every
   * process in the group goes, background jobs included. Safe to call twice.
   */
  async close(options: { killGroup?: boolean } = {}): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#closedReason ||= "the session was closed";
    }
    if (options.killGroup) this.#killAll();
    try {
      await this.#stdin.close();
    } catch {
      // Already closed or broken.
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      this.#exited.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 200))),
    ]);
    clearTimeout(timer);
    if (!exited) {
      this.#killAll();
      await this.#exited;
    }
  }

  /** Kills the shell's process group (and su's, when the shell runs under su). */
  #killAll(): void {
    signalProcess(-this.#shellPid, "SIGKILL");
    signalProcess(-this.#process.pid, "SIGKILL");
  }
}
