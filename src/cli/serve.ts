/**
 * How the roles serve HTTP. `listen()` is the one way a role binds a port: a busy port is a
 * one-line error, and every connection is bounded (header read, idle keep-alive, request body,
 * a cap on open connections), which Deno.serve cannot do; so it serves on `node:http` through
 * Hono's node adapter. Shutdown drains in-flight calls for a grace period, then answers the ones
 * still running with the role's error and closes every connection.
 */
import http from "node:http";
import { getRequestListener } from "@hono/node-server";
import { DEFAULT_SERVER_LIMITS } from "../common/config.ts";
import { type Handler, listenError, type ListenOptions, type RockServer } from "./server.ts";

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
      reject(listenError(options, error.code ?? "", error) ?? error);
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
