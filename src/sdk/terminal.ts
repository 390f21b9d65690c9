/**
 * A process in a sandbox attached over a WebSocket (see protocol/terminal.ts): a terminal of its
 * own (`sandbox.pty()`: full-screen programs draw, Ctrl-C interrupts) or plain pipes (`tty:
 * false`, stdin passed through, stdout and stderr apart). Needs a global WebSocket (Deno, Node 22
 * and later, browsers).
 */
import { Channel, type ExitMessage, frame } from "../protocol/terminal.ts";
import { RockSdkError } from "./errors.ts";

/** Options of Sandbox.pty(). */
export interface PtyOptions {
  /** Terminal columns (default 80). */
  cols?: number | undefined;
  /** Terminal rows (default 24). */
  rows?: number | undefined;
  /** A command for `bash -c` (default: an interactive login bash). */
  command?: string | undefined;
  /** Working directory. */
  cwd?: string | undefined;
  /** TERM (default xterm-256color). */
  term?: string | undefined;
  /** false: pipes instead of a terminal (stdout and stderr apart, `eof()` ends stdin). */
  tty?: boolean | undefined;
  /** Gets what the process prints, as it comes. */
  onData?: ((data: Uint8Array, stream: "stdout" | "stderr") => void) | undefined;
  /** Headers for the upgrade request (Deno and Node accept them). */
  headers?: Record<string, string> | undefined;
}

/** A signal a Terminal can send. */
export type TerminalSignalName =
  | "SIGINT"
  | "SIGTERM"
  | "SIGKILL"
  | "SIGHUP"
  | "SIGQUIT"
  | "SIGTSTP"
  | "SIGCONT";

const encoder = new TextEncoder();

/** An attached process. Create with `Sandbox.pty()` (or Terminal.open for a URL). */
export class Terminal {
  readonly #socket: WebSocket;
  /** Settles with the process's exit code (128 + N after signal N). */
  readonly exited: Promise<number>;

  private constructor(socket: WebSocket, exited: Promise<number>) {
    this.#socket = socket;
    this.exited = exited;
  }

  /**
   * Connects to `url` (an admin's `/sandboxes/{id}/pty` or a rocklet's `/pty`, http or ws).
   * @throws {RockSdkError} when the connection cannot be made.
   */
  static async open(url: string, options: PtyOptions = {}): Promise<Terminal> {
    if (typeof WebSocket === "undefined") {
      throw new RockSdkError("Cannot attach: this runtime has no WebSocket (Node 22+ has one)");
    }
    const query = new URLSearchParams();
    for (const key of ["cols", "rows", "command", "cwd", "term"] as const) {
      const value = options[key];
      if (value !== undefined) query.set(key, String(value));
    }
    if (options.tty === false) query.set("tty", "0");
    const target = `${url.replace(/^http/, "ws")}${query.size > 0 ? `?${query}` : ""}`;
    const headers = options.headers ?? {};
    // Deno and Node (undici) take headers in a second argument; the standard signature has none.
    const socket = Object.keys(headers).length > 0
      ? new (WebSocket as unknown as new (url: string, init: unknown) => WebSocket)(target, {
        headers,
      })
      : new WebSocket(target);
    socket.binaryType = "arraybuffer";
    let exitCode: number | undefined;
    const exited = new Promise<number>((resolve, reject) => {
      socket.onmessage = (event) => {
        if (typeof event.data === "string") {
          const message = JSON.parse(event.data) as Partial<ExitMessage>;
          if (message.type === "exit" && typeof message.exit_code === "number") {
            exitCode = message.exit_code;
          }
          return;
        }
        const bytes = new Uint8Array(event.data as ArrayBuffer);
        const stream = bytes[0] === Channel.stderr ? "stderr" : "stdout";
        options.onData?.(bytes.subarray(1), stream);
      };
      socket.onclose = (event) => {
        if (exitCode !== undefined) resolve(exitCode);
        else {
          reject(
            new RockSdkError(
              `The attached process's connection closed without its exit code (${event.code}${
                event.reason ? `: ${event.reason}` : ""
              })`,
            ),
          );
        }
      };
    });
    // Until the caller has the Terminal, a lost connection must not be an unhandled rejection.
    exited.catch(() => {});
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => {
        reject(new RockSdkError(`Cannot attach to ${url}: the WebSocket upgrade failed`));
      };
    });
    socket.onerror = null;
    return new Terminal(socket, exited);
  }

  /** Sends input (a terminal's keys, or a program's stdin). */
  write(data: string | Uint8Array): void {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    if (bytes.length > 0 && this.#socket.readyState === WebSocket.OPEN) {
      this.#socket.send(frame(Channel.stdin, bytes));
    }
  }

  /** Sets the terminal's size (the program gets SIGWINCH). */
  resize(cols: number, rows: number): void {
    this.#control({ type: "resize", cols, rows });
  }

  /** Sends a signal to the terminal's foreground program (on pipes: to the process). */
  signal(signal: TerminalSignalName): void {
    this.#control({ type: "signal", signal });
  }

  /** Ends stdin (pipes only; a terminal takes Ctrl-D, "\x04", as its end of input). */
  eof(): void {
    this.#control({ type: "eof" });
  }

  /** Disconnects: the terminal hangs up and the process is ended. */
  close(): void {
    if (this.#socket.readyState <= WebSocket.OPEN) this.#socket.close();
  }

  #control(message: Record<string, unknown>): void {
    if (this.#socket.readyState === WebSocket.OPEN) this.#socket.send(JSON.stringify(message));
  }
}
