/** One-shot processes for `/execute`: argv or shell string, env, cwd, timeout over the whole tree. */
import type { OnOutput } from "../protocol/runtime.ts";
import {
  BadRequestError,
  CancelledError,
  CommandTimeoutError,
  fileOperationError,
  NonZeroExitCodeError,
  RockError,
} from "../common/errors.ts";
import type { Command, CommandResponse } from "../protocol/rocklet.ts";
import { CappedText, stripAnsi } from "./output.ts";
import { killDescendants, signalProcess } from "./process_tree.ts";

/** What executeCommand needs besides the request. */
export interface ExecuteOptions {
  /** Environment used when the request gives none, and PATH when the given one lacks it. */
  baseEnv: Record<string, string>;
  /** Cap on each of stdout and stderr, in bytes. */
  maxOutputBytes: number;
  /** Aborts the call and kills the process tree. */
  signal?: AbortSignal | undefined;
  /** Gets stdout and stderr as they are printed. */
  onOutput?: OnOutput | undefined;
}

/**
 * Builds argv as ROCK's `subprocess.run` does: a string with `shell: false` is one executable
 * name; with `shell` the string (or the list) follows `/bin/sh -c`, so an empty string is an
 * empty script and an empty list leaves `-c` without its argument (sh exits 2).
 * @throws {RockError} `builtins.IndexError` for an empty list without `shell`, as ROCK raises.
 */
function argvOf(command: Command): [string, ...string[]] {
  const { shell } = command;
  if (typeof command.command === "string") {
    return shell ? ["/bin/sh", "-c", command.command] : [command.command];
  }
  if (shell) return ["/bin/sh", "-c", ...command.command];
  const [program, ...args] = command.command;
  if (program === undefined) {
    throw new BadRequestError("Cannot execute command: the argument list is empty", {
      status: 511,
      classPath: "builtins.IndexError",
    });
  }
  return [program, ...args];
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  into: CappedText,
  live: ((text: string) => void) | undefined,
): Promise<void> {
  const decoder = new TextDecoder();
  const push = (text: string) => {
    into.push(text);
    if (text) live?.(text);
  };
  for await (const chunk of stream) push(decoder.decode(chunk, { stream: true }));
  push(decoder.decode());
}

/**
 * Runs a process to completion in its own process group.
 * @throws {CommandTimeoutError} after `timeout` seconds, with the whole tree killed.
 * @throws {NonZeroExitCodeError} when `check` is set and the exit code is not 0.
 * @throws {FileOperationError} when the executable or the working directory does not exist.
 */
export async function executeCommand(
  command: Command,
  options: ExecuteOptions,
): Promise<CommandResponse> {
  const named = argvOf(command);
  // merge_output_streams: one pipe for both, so their lines keep the order they were written
  // in. Deno gives a child two pipes or none, so a shell joins them (`exec 2>&1`) and then
  // becomes the command itself.
  const argv: [string, ...string[]] = command.merge_output_streams
    ? ["/bin/sh", "-c", 'exec 2>&1; exec "$@"', "rock-execute", ...named]
    : named;
  const env = command.env
    ? { PATH: options.baseEnv.PATH ?? "/usr/bin:/bin", ...command.env }
    : options.baseEnv;
  if (command.cwd) {
    const info = await Deno.stat(command.cwd).catch(() => undefined);
    if (!info?.isDirectory) {
      throw fileOperationError(
        `Cannot execute command: working directory "${command.cwd}" does not exist`,
        info ? "NotADirectoryError" : "FileNotFoundError",
        command.cwd,
      );
    }
  }
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      ...(command.cwd === null || command.cwd === undefined ? {} : { cwd: command.cwd }),
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw fileOperationError(
        `Cannot execute "${argv[0]}": no such executable`,
        "FileNotFoundError",
        argv[0],
      );
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw fileOperationError(
        `Cannot execute "${argv[0]}": permission denied`,
        "PermissionError",
        argv[0],
      );
    }
    throw new RockError(`Cannot execute "${argv[0]}": ${String(error)}`, { cause: error });
  }
  const stdout = new CappedText(options.maxOutputBytes);
  const stderr = new CappedText(options.maxOutputBytes);
  const live = options.onOutput;
  const streams = Promise.all([
    collect(child.stdout, stdout, live && ((text) => live("stdout", text))),
    collect(child.stderr, stderr, live && ((text) => live("stderr", text))),
  ]);
  const started = performance.now();
  let reason: "timeout" | "abort" | undefined;
  const killTree = async (why: "timeout" | "abort") => {
    reason ??= why;
    await killDescendants(child.pid, performance.now() - started + 1000);
    signalProcess(-child.pid, "SIGKILL");
  };
  const timer = command.timeout === null || command.timeout === undefined
    ? undefined
    : setTimeout(() => killTree("timeout"), command.timeout * 1000);
  const onAbort = () => killTree("abort");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let status: Deno.CommandStatus;
  try {
    status = await child.status;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
  // Grandchildren may hold the pipes open after the main process exits; stop waiting for them.
  const drained = await Promise.race([
    streams.then(() => true),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), 100)),
  ]);
  if (!drained) {
    signalProcess(-child.pid, "SIGKILL");
    await streams;
  }
  const out = stripAnsi(stdout.text());
  const err = stripAnsi(stderr.text());
  if (reason === "timeout") {
    throw new CommandTimeoutError(
      `Command ${
        JSON.stringify(named)
      } timed out after ${command.timeout} s; its process tree was killed`,
      { extraInfo: { output: out + err, stdout: out, stderr: err } },
    );
  }
  if (reason === "abort") {
    throw new CancelledError(`Command ${JSON.stringify(named)} was cancelled by the caller`);
  }
  // Deno reports a signal death as 128 + the signal number, as shells do.
  const exitCode = status.code;
  if (command.check && exitCode !== 0) {
    const prefix = command.error_msg ? `${command.error_msg}: ` : "";
    throw new NonZeroExitCodeError(
      `${prefix}Command ${JSON.stringify(named)} failed with exit code ${exitCode}: ${
        err.slice(-2000)
      }`,
      { extraInfo: { exit_code: exitCode, stdout: out, stderr: err } },
    );
  }
  return { stdout: out, stderr: err, exit_code: exitCode };
}
