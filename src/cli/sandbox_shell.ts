/**
 * `rock sandbox shell ID`: reads lines from stdin (a terminal or a pipe) and runs each in one
 * persistent bash session, so `cd` and variables carry over. A line that bash finds incomplete
 * (an open `if`, a trailing `\`) waits for the next ones. `exit [N]` or end of input ends with N,
 * else the last line's exit code, as bash does. The prompt shows only on a terminal.
 */
import { BashSyntaxError, CommandRockError } from "../sdk/errors.ts";
import type { Sandbox } from "../sdk/sandbox.ts";
import type { ConnectionFlags } from "./cli_config.ts";
import { runCli } from "./exit.ts";
import { attach, ensureSession, keyValues } from "./sandbox.ts";
import { LiveOutput } from "./terminal.ts";

/** Options of `rock sandbox shell`. */
export interface ShellOptions extends ConnectionFlags {
  session?: string;
  timeout: number;
  env?: string[];
  /** false: line mode even on a terminal. */
  tty?: boolean;
}

/** Lines of stdin, as they arrive (without their newline). */
async function* stdinLines(): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of Deno.stdin.readable) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
    }
  }
  buffer += decoder.decode();
  if (buffer !== "") yield buffer;
}

/**
 * True when bash ran out of input: an open quote or here-document, or a syntax error past the
 * command's last line (a tried command is wrapped in braces, so an open `if` fails at the closing
 * brace).
 */
function incomplete(error: BashSyntaxError, command: string): boolean {
  if (error.unexpectedEnd) return true;
  const line = error.line;
  return error.unexpectedToken === "}" && line !== null && line > command.split("\n").length;
}

/**
 * Runs one command and returns its exit code (2 with the reason on stderr when bash rejects it),
 * or undefined when bash found it incomplete and `final` is false: more lines may complete it.
 * Until `final`, the command runs as `{ :; command` + newline + `}`: bash runs a script whose
 * here-document has no end line, but here the document swallows the closing brace, so an open
 * here-document reads as incomplete, as at an interactive prompt.
 */
async function runLine(
  sandbox: Sandbox,
  session: string,
  command: string,
  options: { timeout: number; final: boolean },
): Promise<number | undefined> {
  const text = options.final ? command : `{ :; ${command}\n}`;
  try {
    const live = new LiveOutput();
    const result = await sandbox.arun(text, {
      session,
      waitTimeout: options.timeout,
      onOutput: (chunk) => live.write("stdout", chunk),
    });
    if (!live.wrote && result.output) live.write("stdout", result.output);
    await live.finish({ newline: true });
    if (result.exitCode === null) {
      console.error(`error: ${result.failureReason}`);
      return 124;
    }
    return result.exitCode;
  } catch (error) {
    const syntax = error instanceof BashSyntaxError;
    if (!options.final && syntax) {
      if (incomplete(error, command)) return undefined;
      // Nothing ran: run it as typed so bash's message quotes the command, not the braces.
      return runLine(sandbox, session, command, { ...options, final: true });
    }
    // A line bash rejects ends that line only; anything else (the sandbox is gone) ends the shell.
    if (error instanceof CommandRockError || syntax) {
      console.error(`error: ${(error as Error).message.replace(/\s*\n\s*/g, " | ")}`);
      return 2;
    }
    throw error;
  }
}

/** `rock sandbox shell ID`. */
export async function runShell(id: string, options: ShellOptions): Promise<void> {
  await runCli(async () => {
    const sandbox = await attach(id, options);
    if (Deno.stdin.isTerminal() && options.tty !== false && options.session === undefined) {
      const { attachProcess } = await import("./sandbox_terminal.ts");
      return await attachProcess(sandbox, { tty: true, env: keyValues(options.env) });
    }
    const own = options.session === undefined;
    const session = options.session ?? `shell-${crypto.randomUUID().slice(0, 8)}`;
    await ensureSession(sandbox, session, keyValues(options.env));
    const interactive = Deno.stdin.isTerminal();
    const timeout = options.timeout;
    const prompt = (more: boolean) => {
      if (interactive) {
        Deno.stderr.writeSync(new TextEncoder().encode(more ? "> " : `rock:${id}$ `));
      }
    };
    let status = 0;
    let pending: string[] = [];
    try {
      prompt(false);
      for await (const line of stdinLines()) {
        const exit = /^\s*exit(?:\s+(\d+))?\s*;?\s*$/.exec(line);
        if (pending.length === 0 && exit) {
          return exit[1] === undefined ? status : Number(exit[1]) & 0xff;
        }
        if (pending.length === 0 && line.trim() === "") {
          prompt(false);
          continue;
        }
        pending.push(line);
        const command = pending.join("\n");
        if (line.endsWith("\\")) {
          prompt(true);
          continue;
        }
        const code = await runLine(sandbox, session, command, { timeout, final: false });
        if (code !== undefined) {
          status = code;
          pending = [];
        }
        prompt(pending.length > 0);
      }
      if (pending.length > 0) {
        // End of input inside an unfinished command: let bash say what is wrong with it.
        status = (await runLine(sandbox, session, pending.join("\n"), { timeout, final: true }))!;
      }
      if (interactive) console.error();
      return status;
    } finally {
      if (own) await sandbox.closeSession(session).catch(() => {});
    }
  });
  // A read of stdin may still be pending (a terminal after `exit`): do not wait for it.
  Deno.exit(0);
}
