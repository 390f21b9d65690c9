/**
 * The rocklet's server: Deno.serve, for the fastest start and round trip inside a sandbox. It
 * imports nothing of Node's, so a rocklet never loads Node's compatibility layer.
 */
import { DEFAULT_SERVER_LIMITS } from "../common/config.ts";
import { type Handler, listenError, type ListenOptions, type RockServer } from "./server.ts";

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
    const code = error instanceof Deno.errors.AddrInUse
      ? "EADDRINUSE"
      : error instanceof Deno.errors.AddrNotAvailable
      ? "EADDRNOTAVAIL"
      : error instanceof Deno.errors.PermissionDenied
      ? "EACCES"
      : "";
    throw listenError(options, { code, cause: error }) ?? error;
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
