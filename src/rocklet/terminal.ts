/**
 * `GET /pty` on the rocklet: a process attached over a WebSocket (protocol/terminal.ts), on a
 * terminal of its own (a person's: line editing, echo, Ctrl-C as a byte the terminal turns into
 * SIGINT for its foreground group; full-screen programs draw on it) or on pipes (`tty=0`, for
 * `exec -i`). The process leads a session of its own; when the client goes away the terminal
 * hangs up (or stdin closes) and whatever is left is killed a moment later.
 */
import { BadRequestError } from "../common/errors.ts";
import { parseWire } from "../protocol/validate.ts";
import {
  AttachQuery,
  Channel,
  ClientControl,
  type ExitMessage,
  frame,
} from "../protocol/terminal.ts";
import { openTerminalScript, Pty } from "../runtime/pty.ts";
import { signalProcess } from "../runtime/process_tree.ts";
import { isWebSocketUpgrade } from "./port_proxy.ts";

/** How many bytes may wait on the WebSocket before reading the process pauses. */
const HIGH_WATER = 1024 * 1024;
/** How long output may still arrive after the process exited. */
const DRAIN_MS = 100;
/** How long the process has after a hang-up before its group is killed. */
const HANGUP_GRACE_MS = 1000;

/** Where the attached process's bytes go and come from. */
interface Attached {
  readonly status: Promise<Deno.CommandStatus>;
  /** Output as it comes, tagged with its channel; ends when the process and its holders are gone. */
  output(send: (channel: number, data: Uint8Array) => Promise<void>): Promise<void>;
  write(data: Uint8Array): Promise<void>;
  control(message: ClientControl): void;
  /** The client is gone or the process ended: hang up, close, kill what is left later. */
  end(): void;
}

/** The program: `bash -c command`, or an interactive login bash. */
function argvOf(query: AttachQuery): string[] {
  return query.command === undefined ? ["/bin/bash", "-l"] : ["/bin/bash", "-c", query.command];
}

function spawnOnTerminal(query: AttachQuery, env: Record<string, string>): Attached {
  const pty = Pty.open({ cols: query.cols, rows: query.rows, mode: "terminal" });
  let child: Deno.ChildProcess;
  try {
    // Leader of a new session (detached), the child opens the terminal by path, which makes it
    // its controlling terminal, then becomes the program.
    child = new Deno.Command("/bin/bash", {
      args: [
        "-c",
        `${openTerminalScript(pty.path, { stderr: true })}exec "$@"`,
        "bash",
        ...argvOf(query),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
      env: { ...env, TERM: query.term },
      ...(query.cwd === undefined ? {} : { cwd: query.cwd }),
    }).spawn();
  } catch (error) {
    pty.close();
    throw error;
  }
  const pid = child.pid;
  return {
    status: child.status,
    async output(send) {
      for await (const chunk of pty.read()) await send(Channel.stdout, chunk);
    },
    write: (data) => pty.write(data),
    control(message) {
      if (message.type === "resize") pty.resize(message.cols, message.rows);
      else if (message.type === "signal") {
        signalProcess(-(pty.foregroundGroup() ?? pid), message.signal);
      }
      // `eof` means nothing to a terminal: Ctrl-D is a byte like any other.
    },
    end() {
      pty.close();
      setTimeout(() => signalProcess(-pid, "SIGKILL"), HANGUP_GRACE_MS);
    },
  };
}

function spawnOnPipes(query: AttachQuery, env: Record<string, string>): Attached {
  const [program = "/bin/bash", ...args] = argvOf(query);
  const child = new Deno.Command(program, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    detached: true,
    env: { ...env, TERM: query.term },
    ...(query.cwd === undefined ? {} : { cwd: query.cwd }),
  }).spawn();
  const stdin = child.stdin.getWriter();
  const pid = child.pid;
  const closeStdin = () => stdin.close().catch(() => {});
  return {
    status: child.status,
    async output(send) {
      const pump = async (stream: ReadableStream<Uint8Array>, channel: number) => {
        for await (const chunk of stream) await send(channel, chunk);
      };
      await Promise.all([pump(child.stdout, Channel.stdout), pump(child.stderr, Channel.stderr)]);
    },
    write: (data) => stdin.write(data),
    control(message) {
      if (message.type === "signal") signalProcess(-pid, message.signal);
      else if (message.type === "eof") void closeStdin();
      // A resize means nothing to pipes.
    },
    end() {
      void closeStdin();
      setTimeout(() => signalProcess(-pid, "SIGKILL"), HANGUP_GRACE_MS);
    },
  };
}

/**
 * Answers `GET /pty`: validates the query, starts the process, then upgrades.
 * @throws {BadRequestError} for a bad query or a request that is no WebSocket upgrade.
 */
export function attachTerminal(
  request: Request,
  search: string,
  env: Record<string, string>,
): Response {
  const query = parseWire(
    AttachQuery,
    Object.fromEntries(new URLSearchParams(search)),
    "pty request",
  );
  if (!isWebSocketUpgrade(request)) {
    throw new BadRequestError("Invalid pty request: it must be a WebSocket upgrade");
  }
  const tty = query.tty === "1" || query.tty === "true";
  const attached = tty ? spawnOnTerminal(query, env) : spawnOnPipes(query, env);
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.binaryType = "arraybuffer";
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    attached.end();
  };
  const open = new Promise<void>((resolve) => (socket.onopen = () => resolve()));
  const send = async (channel: number, data: Uint8Array) => {
    if (socket.readyState !== WebSocket.OPEN) return;
    socket.send(frame(channel, data));
    while (socket.bufferedAmount > HIGH_WATER && socket.readyState === WebSocket.OPEN) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  socket.onmessage = (event) => {
    if (typeof event.data === "string") {
      let message: ClientControl;
      try {
        message = parseWire(ClientControl, JSON.parse(event.data), "pty control message");
      } catch {
        return; // Not a control message: ignored, as a terminal ignores what it cannot parse.
      }
      attached.control(message);
      return;
    }
    const bytes = new Uint8Array(event.data as ArrayBuffer);
    if (bytes[0] === Channel.stdin && bytes.length > 1) {
      attached.write(bytes.subarray(1)).catch(() => {});
    }
  };
  socket.onclose = finish;
  socket.onerror = finish;
  void (async () => {
    await open;
    const reading = attached.output(send).catch(() => {});
    const status = await attached.status;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      reading,
      new Promise((resolve) => (timer = setTimeout(resolve, DRAIN_MS))),
    ]);
    clearTimeout(timer);
    // Deno reports a signal's death as 128 + its number, as shells do.
    const exit: ExitMessage = { type: "exit", exit_code: status.code };
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(exit));
      socket.close(1000, "exited");
    }
    finish();
  })();
  return response;
}
