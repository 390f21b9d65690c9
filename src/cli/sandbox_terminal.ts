/**
 * Attached processes for the CLI: `rock sandbox shell ID` on a terminal (a real one: raw mode,
 * Ctrl-C interrupts the program in the sandbox, full-screen programs draw, the window size
 * follows), and `rock sandbox exec -i [-t] ID -- cmd` (stdin passed through; `-t` a terminal).
 */
import type { Sandbox } from "../sdk/sandbox.ts";
import { shellQuote } from "../sdk/shell_text.ts";
import type { Terminal } from "../sdk/terminal.ts";
import { LiveOutput } from "./terminal.ts";

/** How to attach. */
export interface AttachOptions {
  /** For `bash -c`; default an interactive login bash. */
  command?: string | undefined;
  /** A terminal (else pipes). */
  tty: boolean;
  /** Variables exported before the command runs. */
  env?: Record<string, string> | undefined;
}

/** `argv` as one command for `bash -c` that runs exactly it. */
export function commandOf(argv: string[]): string {
  return `exec ${argv.map(shellQuote).join(" ")}`;
}

/** The command with `env` exported first (for a login shell: `exec bash -l` after it). */
function withEnv(
  command: string | undefined,
  env: Record<string, string> | undefined,
): string | undefined {
  const entries = Object.entries(env ?? {});
  if (entries.length === 0) return command;
  const exports = entries.map(([k, v]) => `export ${k}=${shellQuote(v)}`).join("; ");
  return `${exports}; ${command ?? "exec /bin/bash -l"}`;
}

/**
 * Attaches a process in `sandbox` to this process's stdin, stdout and stderr and returns its exit
 * code. On a terminal (`tty` with stdin a terminal) stdin is raw, so every key goes to the
 * sandbox's terminal, and its size follows this window's.
 */
export async function attachProcess(sandbox: Sandbox, options: AttachOptions): Promise<number> {
  const local = options.tty && Deno.stdin.isTerminal();
  const size = local ? Deno.consoleSize() : { columns: 80, rows: 24 };
  const output = new LiveOutput();
  const terminal: Terminal = await sandbox.pty({
    tty: options.tty,
    cols: size.columns,
    rows: size.rows,
    command: withEnv(options.command, options.env),
    onData: (data, stream) => output.write(stream, data.slice()),
  });
  const onResize = () => {
    const now = Deno.consoleSize();
    terminal.resize(now.columns, now.rows);
  };
  if (local) {
    Deno.stdin.setRaw(true);
    Deno.addSignalListener("SIGWINCH", onResize);
  }
  // stdin until its end (pipes: then end the process's stdin). A read left pending when the
  // process exits is abandoned: the caller exits.
  void (async () => {
    try {
      for await (const chunk of Deno.stdin.readable) terminal.write(chunk);
    } catch {
      // stdin closed under us.
    }
    if (!options.tty) terminal.eof();
  })();
  try {
    const code = await terminal.exited;
    await output.finish();
    return code;
  } finally {
    if (local) {
      Deno.removeSignalListener("SIGWINCH", onResize);
      Deno.stdin.setRaw(false);
    }
  }
}
