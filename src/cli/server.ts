/**
 * What every role's server is, whichever way it serves (`serve.ts`: node:http with connection
 * bounds; `serve_native.ts`: Deno.serve, the rocklet's): the handler and options, the running
 * server, the one-line failure to bind, and the wait for SIGINT/SIGTERM. Nothing here loads
 * Node's compatibility layer, so the rocklet starts without it.
 */
import { RockError } from "../common/errors.ts";
import type { ServerLimits } from "../common/config.ts";

/** A role's request handler. */
export type Handler = (request: Request) => Response | Promise<Response>;

/**
 * Where a connection upgrade (a WebSocket) goes: the http URL of a server to splice the raw
 * connection to (the request is sent there as it came, with that URL's path and host), or an
 * answer refusing it.
 */
export type UpgradeHandler = (request: Request) => Promise<string | Response>;

/** Where and how a role serves. */
export interface ListenOptions {
  hostname: string;
  port: number;
  /** Called once the socket is bound (with the real port when `port` was 0). */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Connection bounds and the shutdown grace (defaults: DEFAULT_SERVER_LIMITS). */
  limits?: ServerLimits;
  /** The answer to a call still running when the shutdown grace ends (default: a plain 503). */
  shutdownResponse?: (request: Request) => Response;
  /** Where upgrade requests go (default: refused with a 404); `listen()` only. */
  upgrade?: UpgradeHandler;
}

/** A running server. */
export interface RockServer {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** Settles once the server has shut down. */
  readonly finished: Promise<void>;
  /**
   * Stops accepting, closes idle connections, waits for calls in flight up to the grace, then
   * answers those still running with `shutdownResponse` and closes every connection.
   */
  shutdown(): Promise<void>;
}

/** What a failure to bind means, by node's error code. */
const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EADDRNOTAVAIL: "no such address on this machine",
  EACCES: "permission denied",
};

/**
 * The one-line error for an address that cannot be bound, by node's error code (EADDRINUSE,
 * EADDRNOTAVAIL, EACCES) of `failure`; undefined for any other failure.
 */
export function listenError(
  address: Pick<ListenOptions, "hostname" | "port">,
  failure: { code: string; cause: unknown },
): RockError | undefined {
  const reason = LISTEN_ERRORS[failure.code];
  return reason === undefined ? undefined : new RockError(
    `Cannot listen on ${address.hostname}:${address.port}: ${reason}`,
    { cause: failure.cause },
  );
}

/**
 * Waits until `server` finishes; SIGINT or SIGTERM first runs `beforeShutdown(signal)`, then shuts
 * the server down (draining within its grace).
 */
export async function serveUntilSignal(
  server: Pick<RockServer, "finished" | "shutdown">,
  beforeShutdown: (signal: Deno.Signal) => Promise<void> | void,
): Promise<void> {
  const stop = async (signal: Deno.Signal) => {
    await beforeShutdown(signal);
    await server.shutdown();
  };
  const onInt = () => stop("SIGINT");
  const onTerm = () => stop("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  await server.finished;
  Deno.removeSignalListener("SIGINT", onInt);
  Deno.removeSignalListener("SIGTERM", onTerm);
}
