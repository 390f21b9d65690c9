/**
 * How the roles serve HTTP. `listen()` is the one way a role binds a port: a busy port is a
 * one-line error, and every connection is bounded (header read, idle keep-alive, request body,
 * a cap on open connections), which Deno.serve cannot do; so it serves on `node:http` through
 * Hono's node adapter. Shutdown drains in-flight calls for a grace period, then answers the ones
 * still running with the role's error and closes every connection.
 */
import http from "node:http";
import { getRequestListener } from "@hono/node-server";
import { RockError } from "../common/errors.ts";
import { DEFAULT_SERVER_LIMITS, type ServerLimits } from "../common/config.ts";

/** A role's request handler. */
export type Handler = (request: Request) => Response | Promise<Response>;

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

/**
 * Serves `handler` on `options.hostname:port`.
 * @throws {RockError} `Cannot listen on HOST:PORT: address already in use` (or the reason the
 *   address cannot be bound), a one-line failure for the CLI.
 */
export async function listen(options: ListenOptions, handler: Handler): Promise<RockServer> {
  const limits = options.limits ?? DEFAULT_SERVER_LIMITS;
  const deadline = Promise.withResolvers<void>();
  // Aborts every call still running when the grace ends, so what it waits on stops too.
  const callsAbort = new AbortController();
  const listener = getRequestListener((incoming: Request) => {
    // The adapter's request is lazy and cannot be copied: build one with a signal that also
    // ends when the grace does.
    const request = new Request(incoming.url, {
      method: incoming.method,
      headers: incoming.headers,
      body: incoming.body,
      signal: AbortSignal.any([incoming.signal, callsAbort.signal]),
      duplex: "half",
    } as RequestInit);
    // A call still running when the grace ends gets the role's error instead of its answer.
    return Promise.race([
      handler(request),
      deadline.promise.then(() =>
        options.shutdownResponse?.(request) ??
          Response.json({
            detail: `The server is shutting down: the call did not finish within the ${
              limits.shutdownGraceMs / 1000
            } s grace`,
          }, { status: 503 })
      ),
    ]);
  }, { overrideGlobalObjects: false });
  const server = http.createServer({
    // How often node checks the header and request deadlines (its default is 30 s).
    connectionsCheckingInterval: Math.min(1000, limits.headerTimeoutMs),
    headersTimeout: limits.headerTimeoutMs,
    requestTimeout: limits.bodyTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
  }, listener);
  server.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: Error & { code?: string }) => {
      const reason = LISTEN_ERRORS[error.code ?? ""];
      reject(
        reason === undefined ? error : new RockError(
          `Cannot listen on ${options.hostname}:${options.port}: ${reason}`,
          { cause: error },
        ),
      );
    });
    server.listen(options.port, options.hostname, () => resolve());
  });
  const bound = server.address() as { address: string; port: number };
  const addr: Deno.NetAddr = { transport: "tcp", hostname: bound.address, port: bound.port };
  options.onListen?.(addr);
  const finished = new Promise<void>((resolve) => server.once("close", () => resolve()));
  let shutdown: Promise<void> | undefined;
  return {
    addr,
    finished,
    shutdown() {
      shutdown ??= (async () => {
        server.close();
        // Connections go idle as their calls end; close each as it does.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        server.closeIdleConnections();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const graceOver = new Promise<"grace">((resolve) => {
          timer = setTimeout(() => resolve("grace"), limits.shutdownGraceMs);
        });
        const drained = await Promise.race([finished, graceOver]) !== "grace";
        clearTimeout(timer);
        clearInterval(sweep);
        if (drained) return;
        // Calls still running get the role's error, and have a moment to send it.
        deadline.resolve();
        callsAbort.abort(new Error("The server is shutting down"));
        await new Promise((resolve) => setTimeout(resolve, 100));
        server.closeAllConnections();
        await finished;
      })();
      return shutdown;
    },
  };
}

/** What a failure to bind means, by node's error code. */
const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EADDRNOTAVAIL: "no such address on this machine",
  EACCES: "permission denied",
};

/**
 * Serves `handler` with Deno.serve: the rocklet's way, for the fastest start and round trip
 * inside a sandbox. Deno.serve has no connection bounds; the rocklet's only client is the admin,
 * whose every call carries its own deadline. Shutdown waits for calls in flight up to the
 * grace, then runs `onGraceOver` (the rocklet ends its sessions, which answers the calls waiting
 * on them) and waits for the last answers.
 * @throws {RockError} `Cannot listen on HOST:PORT: ...` when the address cannot be bound.
 */
export function serveNative(
  options: Omit<ListenOptions, "shutdownResponse"> & {
    onGraceOver: () => Promise<void> | void;
  },
  handler: Handler,
): RockServer {
  const grace = (options.limits ?? DEFAULT_SERVER_LIMITS).shutdownGraceMs;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      onListen: options.onListen ?? (() => {}),
    }, handler);
  } catch (error) {
    const reason = error instanceof Deno.errors.AddrInUse
      ? LISTEN_ERRORS.EADDRINUSE
      : error instanceof Deno.errors.AddrNotAvailable
      ? LISTEN_ERRORS.EADDRNOTAVAIL
      : error instanceof Deno.errors.PermissionDenied
      ? LISTEN_ERRORS.EACCES
      : undefined;
    if (reason === undefined) throw error;
    throw new RockError(`Cannot listen on ${options.hostname}:${options.port}: ${reason}`, {
      cause: error,
    });
  }
  let shutdown: Promise<void> | undefined;
  return {
    addr: server.addr,
    finished: server.finished,
    shutdown() {
      shutdown ??= (async () => {
        const drained = server.shutdown().then(() => "drained" as const);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const graceOver = new Promise<"grace">((resolve) => {
          timer = setTimeout(() => resolve("grace"), grace);
        });
        if (await Promise.race([drained, graceOver]) === "grace") await options.onGraceOver();
        clearTimeout(timer);
        await drained;
      })();
      return shutdown;
    },
  };
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
