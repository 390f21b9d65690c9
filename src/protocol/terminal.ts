/**
 * The wire of a process attached over a WebSocket: a terminal (`rock sandbox shell`, the SDK's
 * `sandbox.pty()`) or plain pipes (`rock sandbox exec -i`). rock's own route, on the rocklet
 * (`GET /pty`) and the admin (`GET /apis/envs/sandbox/v1/sandboxes/{id}/pty`, relayed).
 *
 * Query: `cols`, `rows` (terminal size, default 80x24), `tty` (`0` for pipes, default a
 * terminal), `command` (run by `bash -c`; default an interactive login bash), `cwd`, `term`
 * (TERM, default `xterm-256color`).
 *
 * Binary frames carry bytes, the first byte naming the channel: from the client 0 (stdin); from
 * the server 1 (stdout; a terminal's whole output) and 2 (stderr, pipes only). Text frames carry
 * one JSON control message: from the client `resize`, `signal`, `eof` (pipes: close stdin); from
 * the server `exit` once the process has ended (then the socket closes).
 */
import * as z from "zod/mini";

/** The rocklet's path. */
export const PTY_PATH = "/pty";

/** Channel bytes. */
export const Channel = { stdin: 0, stdout: 1, stderr: 2 } as const;

/** Signals a client may send. */
export const TerminalSignal = z.enum([
  "SIGINT",
  "SIGTERM",
  "SIGKILL",
  "SIGHUP",
  "SIGQUIT",
  "SIGTSTP",
  "SIGCONT",
]);

/** A control message from the client. */
export const ClientControl = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("resize"),
    cols: z.int().check(z.gte(1), z.lte(1000)),
    rows: z.int().check(z.gte(1), z.lte(1000)),
  }),
  z.object({ type: z.literal("signal"), signal: TerminalSignal }),
  z.object({ type: z.literal("eof") }),
]);
/** Parsed client control message. */
export type ClientControl = z.output<typeof ClientControl>;

/** The server's last message. */
export interface ExitMessage {
  type: "exit";
  /** The exit code (128 + N for a signal N, as shells say). */
  exit_code: number;
}

const size = () => z.coerce.number().check(z.int(), z.gte(1), z.lte(1000));

/** The query of an attach. */
export const AttachQuery = z.object({
  cols: z._default(size(), 80),
  rows: z._default(size(), 24),
  tty: z._default(z.enum(["0", "1", "false", "true"]), "1"),
  command: z.optional(z.string().check(z.minLength(1))),
  cwd: z.optional(z.string().check(z.minLength(1))),
  term: z._default(z.string().check(z.minLength(1)), "xterm-256color"),
});
/** Parsed attach query. */
export type AttachQuery = z.output<typeof AttachQuery>;

/** A binary frame: `channel` then `data`. */
export function frame(channel: number, data: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(data.length + 1);
  out[0] = channel;
  out.set(data, 1);
  return out;
}
