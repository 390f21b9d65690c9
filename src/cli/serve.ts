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
import type { Duplex } from "node:stream";
import { type Handler, listenError, type ListenOptions, type RockServer } from "./server.ts";
import { serveUpgrade } from "./serve_upgrade.ts";

/** A call in progress: its request, how to answer it early, its signal once read. */
interface Call {
  request: Request;
  answer: (response: Response) => void;
  abort?: AbortController;
}

/** Why calls still running when the grace ends are aborted. */
const GRACE_OVER = new Error("The server is shutting down");

/**
 * Serves `handler` on `options.hostname:port`.
 * @throws {RockError} `Cannot listen on HOST:PORT: address already in use` (or the reason the
 *   address cannot be bound), a one-line failure for the CLI.
 */
export async function listen(options: ListenOptions, handler: Handler): Promise<RockServer> {
  const limits = options.limits ?? DEFAULT_SERVER_LIMITS;
  const calls = new Set<Call>();
  let graceEnded = false;
  const listener = getRequestListener((request: Request) => {
    const early = Promise.withResolvers<Response>();
    const call: Call = { request, answer: early.resolve };
    // The handler's request.signal must also end when the grace does. The adapter's request is
    // lazy and costly to copy, so its `signal` is replaced by one made only when read (most
    // calls never read it): it follows the adapter's (the client went away) and the grace.
    const adapterSignal = () => Reflect.get(Object.getPrototypeOf(request), "signal", request);
    Object.defineProperty(request, "signal", {
      get: () => {
        if (!call.abort) {
          const controller = call.abort = new AbortController();
          const client: AbortSignal = adapterSignal();
          if (client.aborted) controller.abort(client.reason);
          else client.addEventListener("abort", () => controller.abort(client.reason));
          if (graceEnded) controller.abort(GRACE_OVER);
        }
        return call.abort.signal;
      },
    });
    calls.add(call);
    const done = () => calls.delete(call);
    // A call still running when the grace ends gets the role's error instead of its answer.
    const answer = Promise.race([handler(request), early.promise]);
    answer.then(done, done);
    return answer;
  }, { overrideGlobalObjects: false });
  const server = http.createServer({
    // How often node checks the header and request deadlines (its default is 30 s).
    connectionsCheckingInterval: Math.min(1000, limits.headerTimeoutMs),
    headersTimeout: limits.headerTimeoutMs,
    requestTimeout: limits.bodyTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
  }, listener);
  server.maxConnections = limits.maxConnections;
  // Upgraded connections (WebSockets) leave node's bookkeeping: shutdown ends them from here.
  const upgraded = new Set<Duplex>();
  server.on("upgrade", (message, socket, head) => {
    const { upgrade } = options;
    if (!upgrade) {
      socket.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      return;
    }
    serveUpgrade(upgrade, { message, socket, head }, upgraded).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: Error & { code?: string }) => {
      reject(listenError(options, { code: error.code ?? "", cause: error }) ?? error);
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
        // Relayed WebSockets have no call to finish: they end with the server.
        for (const socket of upgraded) socket.destroy();
        const drained = await Promise.race([finished, graceOver]) !== "grace";
        clearTimeout(timer);
        clearInterval(sweep);
        if (drained) return;
        // Calls still running get the role's error, and have a moment to send it.
        graceEnded = true;
        for (const call of calls) {
          call.answer(
            options.shutdownResponse?.(call.request) ??
              Response.json({
                detail: `The server is shutting down: the call did not finish within the ${
                  limits.shutdownGraceMs / 1000
                } s grace`,
              }, { status: 503 }),
          );
          call.abort?.abort(GRACE_OVER);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
        server.closeAllConnections();
        for (const socket of upgraded) socket.destroy();
        await finished;
      })();
      return shutdown;
    },
  };
}
