/**
 * A persistent bash process that runs one command at a time and reports its exact output and
 * exit code.
 *
 * Where it runs: on a pseudo-terminal by default, as ROCK's sessions do (pexpect), so programs
 * see a tty: `tty` names a device, `ls` prints columns for 80x24, isatty() is true. The terminal
 * is raw (see pty.ts: no echo, lines of any length, output as written), and bash stays a
 * non-interactive shell reading the terminal (its stderr is not a tty when it starts), so no
 * prompt, history or job control gets in the way; every command runs in bash's own process
 * group, which is the terminal's foreground group. With `pty: false` (or where no
 * pseudo-terminal can be had) bash reads a pipe instead and a command's stdin is /dev/null.
 *
 * How a command runs: each command travels in a quoted here-document whose delimiter is a fresh
 * random nonce, is syntax-checked by parsing it as a function body that is never defined
 * (nothing runs), then runs through `source` of a tiny wrapper so `cd`, variables and functions
 * persist. Its stdin is the terminal, as for a person (on pipes: /dev/null, so a command that
 * reads stdin gets end-of-file instead of hanging the session; interactive mode and `expect`
 * give it the session's input, see #runForeground). After it, bash prints the nonce and the exit
 * code; the nonce never appears in anything the command can read, so output cannot forge it.
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
import type { OnOutput } from "../protocol/runtime.ts";
import { CappedText, stripAnsi } from "./output.ts";
import { openTerminalScript, Pty, PtyUnavailableError } from "./pty.ts";
import { shellQuote } from "./shell_words.ts";
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
  /**
   * Run on a pseudo-terminal: true requires one, false uses pipes, undefined uses one where
   * the system has it.
   */
  pty?: boolean | undefined;
}

/** The terminal size sessions get, as pexpect's default. */
export const SESSION_TERMINAL = { cols: 80, rows: 24 } as const;

/** How the rocklet talks to a session's shell: a pseudo-terminal or a pair of pipes. */
interface ShellIo {
  readonly kind: "pty" | "pipe";
  write(bytes: Uint8Array): Promise<void>;
  /** The shell's output until it and whatever holds the terminal are gone, or `end()`. */
  output(): AsyncIterable<Uint8Array>;
  /** No more input: a pipe's end of file, a terminal's hang-up. */
  end(): Promise<void>;
  /** Ends output() now, though processes the shell left may still hold the pipe or terminal. */
  stop(): void;
}

function pipeIo(process: Deno.ChildProcess): ShellIo {
  const stdin = process.stdin.getWriter();
  const stdout = process.stdout.getReader();
  return {
    kind: "pipe",
    write: (bytes) => stdin.write(bytes),
    output: async function* () {
      for (;;) {
        const { done, value } = await stdout.read();
        if (done) return;
        yield value;
      }
    },
    end: async () => {
      try {
        await stdin.close();
      } catch {
        // Already closed or broken.
      }
    },
    stop: () => void stdout.cancel().catch(() => {}),
  };
}

function ptyIo(pty: Pty): ShellIo {
  return {
    kind: "pty",
    write: (bytes) => pty.write(bytes),
    output: () => pty.read(),
    end: () => Promise.resolve(pty.close()),
    stop: () => pty.close(),
  };
}

/** How long output may still arrive after the shell exited before it is cut off. */
const DRAIN_AFTER_EXIT_MS = 100;

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

/**
 * `expect_string` when an interactive command ended at the shell's prompt rather than at one
 * of the caller's strings: ROCK's PS1, which is what ROCK answers there.
 */
const PROMPT_EXPECT_STRING = "SHELLPS1PREFIX";

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
class MarkerScanner implements OutputSink {
  readonly #nonce: string;
  readonly #text: CappedText;
  #live: ((text: string) => void) | undefined;
  /** With `live`: the line the wrapper prints once the syntax check passed; until then, none. */
  #startLine: string | undefined;
  #beforeStart = "";
  #window = "";
  #found = -1;
  readonly done: Promise<RawResult>;
  #resolve!: (result: RawResult) => void;

  /**
   * `live` gets the command's output as soon as it is known not to be part of the marker: after
   * the line `startLine` (the syntax check's diagnostics before it are not the command's output).
   */
  constructor(
    nonce: string,
    maxBytes: number,
    live?: { onText: (text: string) => void; startLine: string },
  ) {
    this.#nonce = nonce;
    this.#text = new CappedText(maxBytes);
    this.#live = live?.onText;
    this.#startLine = live?.startLine;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
  }

  #keep(text: string): void {
    if (!text) return;
    this.#text.push(text);
    this.#live?.(text);
  }

  /** Feeds decoded output; returns true once the marker line is complete. */
  push(chunk: string): boolean {
    if (this.#startLine !== undefined) {
      this.#beforeStart += chunk;
      const at = this.#beforeStart.indexOf(this.#startLine);
      if (at >= 0) {
        this.#text.push(this.#beforeStart.slice(0, at));
        chunk = this.#beforeStart.slice(at + this.#startLine.length);
      } else if (this.#beforeStart.includes(this.#nonce)) {
        // The command never ran (a syntax error): nothing of it is live output.
        this.#live = undefined;
        chunk = this.#beforeStart;
      } else {
        return false;
      }
      this.#startLine = undefined;
      this.#beforeStart = "";
    }
    this.#window += chunk;
    if (this.#found < 0) {
      const at = this.#window.indexOf(this.#nonce);
      if (at < 0) {
        // Hold back only a tail that could be the start of the marker, so live output is not
        // delayed (a line's end is not the start of a nonce).
        const keep = heldBack(this.#window, this.#nonce);
        this.#keep(this.#window.slice(0, this.#window.length - keep));
        this.#window = this.#window.slice(this.#window.length - keep);
        return false;
      }
      this.#keep(this.#window.slice(0, at));
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
    return this.#text.text() + this.#beforeStart + (this.#found < 0 ? this.#window : "");
  }

  /** Ends the command early with what arrived so far (the shell exited with `status`). */
  finish(status: string): void {
    this.#resolve({ output: this.partial(), status });
  }
}

/** The length of the longest end of `text` that is a start of `nonce` (shorter than it). */
function heldBack(text: string, nonce: string): number {
  for (let k = Math.min(text.length, nonce.length - 1); k > 0; k--) {
    if (text.endsWith(nonce.slice(0, k))) return k;
  }
  return 0;
}

/** Where a session's output goes while a command runs. */
interface OutputSink {
  /** Settles with the output before the end marker and the status after it. */
  readonly done: Promise<RawResult>;
  /** Feeds decoded output; returns true once the end marker line is complete. */
  push(chunk: string): boolean;
  /** Output received so far and not yet returned. */
  partial(): string;
  /** Ends the command early with what arrived so far (the shell exited with `status`). */
  finish(status: string): void;
}

/** What one step of a foreground program ended with. */
type Step =
  | { kind: "expect"; output: string; match: string }
  | { kind: "end"; result: RawResult };

/**
 * Collects the output of a program that stays in the foreground across calls (interactive
 * mode, or a normal command stopped at a caller's `expect` string). Each step returns the text
 * since the previous step, up to the first of the caller's strings or the end marker. A string
 * must match wholly before anything that could be the start of the marker, so output cannot
 * match inside it.
 */
class ForegroundScanner implements OutputSink {
  readonly #nonce: string;
  readonly #maxBytes: number;
  #buffer = "";
  #result: RawResult | undefined;
  #waiter: { expect: string[]; resolve: (step: Step) => void } | undefined;
  readonly done: Promise<RawResult>;
  #resolve!: (result: RawResult) => void;

  constructor(nonce: string, maxBytes: number) {
    this.#nonce = nonce;
    this.#maxBytes = maxBytes;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
  }

  push(chunk: string): boolean {
    if (this.#result) return true;
    this.#buffer += chunk;
    const at = this.#buffer.indexOf(this.#nonce);
    const end = at < 0 ? -1 : this.#buffer.indexOf("\n", at);
    if (end >= 0) {
      this.#end(this.#buffer.slice(at + this.#nonce.length, end), at);
      return true;
    }
    // Unread output beyond twice the cap keeps only its tail (a program printing while no
    // step reads it).
    if (this.#buffer.length > 2 * this.#maxBytes) {
      this.#buffer = this.#buffer.slice(-this.#maxBytes);
    }
    this.#check();
    return false;
  }

  partial(): string {
    return this.#buffer;
  }

  finish(status: string): void {
    if (!this.#result) this.#end(status, this.#buffer.length);
  }

  /** Waits for the next step: one of `expect` or the end marker, whichever comes first. */
  next(expect: string[]): Promise<Step> {
    const step = new Promise<Step>((resolve) => (this.#waiter = { expect, resolve }));
    this.#check();
    return step;
  }

  #end(status: string, markerAt: number): void {
    this.#buffer = this.#buffer.slice(0, markerAt);
    this.#result = { output: this.#buffer, status };
    this.#check();
    this.#resolve(this.#result);
  }

  #check(): void {
    const waiter = this.#waiter;
    if (!waiter) return;
    const searchable = this.#result ? this.#buffer : this.#buffer.slice(0, this.#safeEnd());
    let best: { at: number; match: string } | undefined;
    for (const match of waiter.expect) {
      if (!match) continue;
      const at = searchable.indexOf(match);
      if (at >= 0 && (!best || at < best.at)) best = { at, match };
    }
    if (best) {
      this.#waiter = undefined;
      const output = this.#buffer.slice(0, best.at);
      this.#buffer = this.#buffer.slice(best.at + best.match.length);
      waiter.resolve({ kind: "expect", output, match: best.match });
    } else if (this.#result) {
      this.#waiter = undefined;
      const output = this.#buffer;
      this.#buffer = "";
      waiter.resolve({ kind: "end", result: { output, status: this.#result.status } });
    }
  }

  /** Length of the buffer without the marker or a tail that could be its start. */
  #safeEnd(): number {
    const buffer = this.#buffer;
    const at = buffer.indexOf(this.#nonce);
    return at >= 0 ? at : buffer.length - heldBack(buffer, this.#nonce);
  }
}

/** A program left in the foreground of a session, reading the session's input. */
interface Foreground {
  scanner: ForegroundScanner;
  /** The shell's children before it started (spared by an interrupt); unknown without /proc. */
  earlierJobs: number[] | undefined;
  /** When it started (performance.now()). */
  started: number;
  command: string;
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
  readonly #io: ShellIo;
  readonly #options: BashSessionOptions;
  readonly #lock = new SessionLock();
  readonly #encoder = new TextEncoder();
  #scanner: OutputSink | undefined;
  /** A program started by an earlier call that is still running and reads the session's input. */
  #foreground: Foreground | undefined;
  /** Pid of bash itself, leader of the process group that interrupts go to. */
  #shellPid: number;
  #exitCode: number | undefined;
  #closed = false;
  #closedReason = "";
  readonly #exited: Promise<void>;

  private constructor(options: BashSessionOptions, process: Deno.ChildProcess, io: ShellIo) {
    this.name = options.name;
    this.#options = options;
    this.#process = process;
    this.#io = io;
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
    let pty: Pty | undefined;
    if (options.pty !== false) {
      try {
        pty = Pty.open({ ...SESSION_TERMINAL, mode: "raw" });
        if (BashSession.#switchesUser(options)) pty.giveTo(options.remoteUser ?? "");
      } catch (error) {
        pty?.close();
        pty = undefined;
        if (options.pty === true || !(error instanceof PtyUnavailableError)) throw error;
      }
    }
    let process: Deno.ChildProcess;
    try {
      process = BashSession.#spawnCommand(options, pty?.path).spawn();
    } catch (error) {
      pty?.close();
      throw new RockError(`Cannot start session "${options.name}": ${String(error)}`, {
        cause: error,
      });
    }
    const session = new BashSession(options, process, pty ? ptyIo(pty) : pipeIo(process));
    const sources = (options.startupSource ?? []).map((file) => `source ${shellQuote(file)}`);
    // Errors go to the same pipe as output, in order, as on a terminal.
    // The INT trap is there from the start: an interrupt that lands between commands (a cancel
    // that arrives while bash still reads the command) must not end a non-interactive shell.
    const script = ["exec 2>&1", INT_TRAP, ...sources.map((s) => `${s} < /dev/null`)].join("\n");
    try {
      const nonce = newNonce();
      // The marker also carries the shell's pid: under su the shell leads its own process group.
      const input = `${script}\nprintf '%s%s\\n' '${nonce}' "$?:$$"\n`;
      const result = await session.#exchange(input, nonce, {
        timeoutMs: options.startupTimeoutMs,
      });
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

  /**
   * The shell's command. On a terminal (`tty` is its path) the shell, leader of its own session,
   * opens it by path as stdin and stdout before it becomes the session's bash (which makes it
   * the session's controlling terminal); stderr stays /dev/null until start-up points it at
   * stdout, so bash does not turn interactive.
   */
  static #spawnCommand(options: BashSessionOptions, tty: string | undefined): Deno.Command {
    const common = {
      stdin: tty ? "null" : "piped",
      stdout: tty ? "null" : "piped",
      stderr: "null",
      clearEnv: true,
      env: options.env,
      detached: true, // own session and process group, so SIGINT reaches only this shell's jobs
    } as const;
    const open = tty ? openTerminalScript(tty, { stderr: false }) : "";
    if (BashSession.#switchesUser(options)) {
      // su starts the shell in a session of its own (util-linux), so the shell opens the
      // terminal itself, which the runtime gave to the user.
      return new Deno.Command("su", {
        ...common,
        args: [
          options.remoteUser ?? "",
          "-s",
          "/bin/bash",
          "-c",
          `${open}exec /bin/bash --noprofile --norc`,
        ],
      });
    }
    if (tty) {
      return new Deno.Command("/bin/bash", {
        ...common,
        args: ["-c", `${open}exec -a bash /bin/bash --noprofile --norc`],
      });
    }
    return new Deno.Command("/bin/bash", { ...common, args: ["--noprofile", "--norc"] });
  }

  /** True when the shell runs as another user, through su (only when running as root). */
  static #switchesUser(options: BashSessionOptions): boolean {
    const user = options.remoteUser;
    return !!user && user !== "root" && Deno.uid() === 0;
  }

  /** "pty" when the shell runs on a pseudo-terminal, else "pipe". */
  get terminal(): "pty" | "pipe" {
    return this.#io.kind;
  }

  /** True once the shell has exited or the session was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs one command. Check modes follow ROCK: `raise` throws NonZeroExitCodeError on a
   * non-zero exit, `silent` returns the code, `ignore` returns `exit_code: null`.
   *
   * Interactive mode (`is_interactive_command`, `is_interactive_quit`) and `expect` follow ROCK
   * too: the first such command runs with the session's input as its stdin and may stay in the
   * foreground; later interactive commands are sent to it as lines. See #runForeground. A
   * normal command while a program is still in the foreground first waits for it to end (that
   * wait counts against its timeout; when it runs out, the program is interrupted).
   *
   * `onOutput` gets a normal command's output as it is printed (the result is the same); an
   * interactive step or one with `expect` answers only at its end.
   * @throws {BashSyntaxError} when the command does not parse (nothing ran).
   * @throws {CommandTimeoutError} when `action.timeout` passes; the session stays usable.
   */
  async run(
    action: BashAction,
    options: { signal?: AbortSignal | undefined; onOutput?: OnOutput | undefined } = {},
  ): Promise<BashObservation> {
    const { signal, onOutput } = options;
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
    const remaining = () =>
      timeoutMs === undefined ? undefined : Math.max(1, timeoutMs - (performance.now() - started));
    try {
      this.#assertOpen();
      const interactive = action.is_interactive_command || action.is_interactive_quit;
      if (this.#foreground && !interactive) {
        await this.#awaitForeground(this.#foreground, action, remaining(), signal);
        this.#assertOpen();
      }
      if (interactive || action.expect.length > 0) {
        return await this.#runForeground(action, remaining(), signal);
      }
      const nonce = newNonce();
      const startLine = onOutput ? `${newNonce()}\n` : undefined;
      const input = this.#wrap(action.command, nonce, { startLine });
      // The shell is idle: its children now are the jobs of earlier commands, which an interrupt
      // of this one spares.
      const earlierJobs = childrenOf(this.#shellPid);
      const result = await this.#exchange(input, nonce, {
        timeoutMs: remaining(),
        signal,
        action,
        earlierJobs,
        live: onOutput && startLine !== undefined
          ? { onText: (text) => onOutput("output", this.#clean(text)), startLine }
          : undefined,
      });
      return this.#observe(action, result);
    } finally {
      release();
    }
  }

  /**
   * Interactive mode and `expect`, as ROCK has them. Without a program in the foreground, the
   * command runs as usual but with the session's input as its stdin (so `python3 -i` reads the
   * lines that follow); with one, the command is written to it as a line. Then it waits for the
   * first of the caller's `expect` strings or the command's end marker (the shell's prompt in
   * ROCK). A match returns the output before it (`exit_code` 0 in interactive mode, null in
   * normal mode) and leaves the program in the foreground; the end returns the output, with
   * the exit code in normal mode. `is_interactive_quit` then waits for the program to end, so
   * the next command reaches the shell. A timeout interrupts the program; the session stays
   * usable.
   */
  async #runForeground(
    action: BashAction,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<BashObservation> {
    const interactive = action.is_interactive_command || action.is_interactive_quit;
    let foreground: Foreground;
    let input: string;
    if (this.#foreground) {
      foreground = this.#foreground;
      input = `${action.command}\n`;
    } else {
      const nonce = newNonce();
      foreground = {
        scanner: new ForegroundScanner(nonce, this.#options.maxOutputBytes),
        earlierJobs: childrenOf(this.#shellPid),
        started: performance.now(),
        command: action.command,
      };
      this.#foreground = foreground;
      this.#scanner = foreground.scanner;
      input = this.#wrap(action.command, nonce, { sessionInput: true });
    }
    try {
      await this.#io.write(this.#encoder.encode(input));
    } catch {
      this.#foreground = undefined;
      this.#assertOpen();
      throw this.#gone("the shell does not accept input");
    }
    const step = await this.#within(foreground.scanner.next(action.expect), timeoutMs, signal);
    if (step === "timeout" || step === "abort") {
      throw await this.#interruptForeground(foreground, action, step);
    }
    if (step.kind === "expect") {
      if (action.is_interactive_quit) {
        await this.#awaitForeground(foreground, action, timeoutMs, signal);
      }
      return {
        session_type: "bash",
        output: this.#clean(stripAnsi(step.output)).trim(),
        exit_code: interactive ? 0 : null,
        failure_reason: "",
        expect_string: step.match,
      };
    }
    this.#foreground = undefined;
    if (!interactive || step.result.status === "syntax") return this.#observe(action, step.result);
    return {
      session_type: "bash",
      output: this.#clean(stripAnsi(step.result.output)).trim(),
      exit_code: 0,
      failure_reason: "",
      expect_string: PROMPT_EXPECT_STRING,
    };
  }

  /**
   * Waits for the program in the foreground to end, discarding what it prints; when `timeoutMs`
   * passes or `signal` aborts first, interrupts it and throws.
   */
  async #awaitForeground(
    foreground: Foreground,
    action: BashAction,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const outcome = await this.#within(foreground.scanner.done, timeoutMs, signal);
    if (outcome === "timeout" || outcome === "abort") {
      throw await this.#interruptForeground(foreground, action, outcome);
    }
    if (this.#foreground === foreground) this.#foreground = undefined;
  }

  /** Interrupts the program in the foreground and returns the error to throw. */
  async #interruptForeground(
    foreground: Foreground,
    action: BashAction,
    why: "timeout" | "abort",
  ): Promise<RockError> {
    await this.#interrupt(
      foreground.scanner,
      performance.now() - foreground.started,
      foreground.earlierJobs,
    );
    if (this.#foreground === foreground) this.#foreground = undefined;
    if (this.#scanner === foreground.scanner) this.#scanner = undefined;
    const output = stripAnsi(foreground.scanner.partial()).trim();
    const what = `Command '${action.command}'`;
    const program = foreground.command === action.command
      ? ""
      : ` while '${foreground.command}' ran in the foreground`;
    if (why === "abort") {
      return new CancelledError(
        `${what} was cancelled by the caller${program}; the session was interrupted`,
      );
    }
    return new CommandTimeoutError(
      `${what} timed out after ${action.timeout} s${program}` +
        (this.#closed ? `; ${this.#closedReason}` : "; the session was interrupted and is usable"),
      { extraInfo: { output } },
    );
  }

  /** Settles with `promise`, or "timeout" after `timeoutMs`, or "abort" when `signal` aborts. */
  async #within<T>(
    promise: Promise<T>,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<T | "timeout" | "abort"> {
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
      return await Promise.race([promise, stop]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * The text that runs `command` and prints the end marker. Its stdin is /dev/null, or with
   * `sessionInput` the session's own input, so an interactive program reads what follows.
   */
  #wrap(
    command: string,
    nonce: string,
    options: { sessionInput?: boolean; startLine?: string | undefined } = {},
  ): string {
    const dir = shellQuote(this.#options.scriptDir);
    const stdin = options.sessionInput || this.#io.kind === "pty" ? "" : " < /dev/null";
    // Live output starts after this line, so the syntax check's diagnostics are not part of it.
    const started = options.startLine === undefined
      ? ""
      : `printf '%s\\n' '${options.startLine.slice(0, -1)}'; `;
    // The here-document delimiter is the nonce too; its lines are taken literally.
    return [
      `IFS= read -r -d '' __rock_src <<'${nonce}'`,
      command,
      nonce,
      `if source ${dir}/check; then ${started}source ${dir}/run; __rock_ec=$?; ` +
      `else __rock_ec=syntax; fi` +
      `${stdin}; trap - DEBUG; source ${dir}/done '${nonce}'`,
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
    options: {
      timeoutMs?: number | undefined;
      signal?: AbortSignal | undefined;
      action?: BashAction | undefined;
      earlierJobs?: number[] | undefined;
      /** Gets the command's output as it arrives (see MarkerScanner). */
      live?: { onText: (text: string) => void; startLine: string } | undefined;
    },
  ): Promise<RawResult> {
    const { timeoutMs, signal, action, earlierJobs } = options;
    const scanner = new MarkerScanner(nonce, this.#options.maxOutputBytes, options.live);
    this.#scanner = scanner;
    const started = performance.now();
    try {
      await this.#io.write(this.#encoder.encode(input));
    } catch {
      this.#scanner = undefined;
      this.#assertOpen();
      throw this.#gone("the shell does not accept input");
    }
    try {
      const first = await this.#within(scanner.done, timeoutMs, signal);
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
    scanner: OutputSink,
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
    const reading = (async () => {
      try {
        for await (const chunk of this.#io.output()) {
          const text = decoder.decode(chunk, { stream: true });
          if (this.#scanner?.push(text)) this.#scanner = undefined;
        }
      } catch {
        // The pipe or terminal broke: handled as an exit below.
      }
    })();
    const status = await this.#process.status;
    // What the shell printed before it exited is already buffered; a job it left behind may
    // still hold the pipe or terminal, which must not keep the session's end waiting.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      reading.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, DRAIN_AFTER_EXIT_MS, false))),
    ]);
    clearTimeout(timer);
    if (!drained) {
      this.#io.stop();
      await reading;
    }
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
   * Ends the shell. An idle shell exits at end of input (on a terminal: at the hang-up), so
   * background jobs it started with nohup live on; a busy one is killed with its whole process
   * group. With `killGroup`, every
   * process in the group goes, background jobs included. Safe to call twice.
   */
  async close(options: { killGroup?: boolean } = {}): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#closedReason ||= "the session was closed";
    }
    if (options.killGroup) this.#killAll();
    await this.#io.end();
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
