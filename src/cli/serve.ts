/** Serving helpers shared by the roles' CLI commands. */
import { RockError } from "../common/errors.ts";

/** Where and how a role serves. */
export interface ListenOptions {
  hostname: string;
  port: number;
  /** Called once the socket is bound (with the real port when `port` was 0). */
  onListen?: (addr: Deno.NetAddr) => void;
}

/**
 * Serves `handler` on `options.hostname:port`.
 * @throws {RockError} `Cannot listen on HOST:PORT: address already in use` (or the reason the
 *   address cannot be bound), a one-line failure for the CLI.
 */
export function listen(
  options: ListenOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Deno.HttpServer<Deno.NetAddr> {
  try {
    return Deno.serve({
      hostname: options.hostname,
      port: options.port,
      onListen: options.onListen ?? (() => {}),
    }, handler);
  } catch (error) {
    const reason = error instanceof Deno.errors.AddrInUse
      ? "address already in use"
      : error instanceof Deno.errors.AddrNotAvailable
      ? "no such address on this machine"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : undefined;
    if (reason === undefined) throw error;
    throw new RockError(`Cannot listen on ${options.hostname}:${options.port}: ${reason}`, {
      cause: error,
    });
  }
}

/**
 * Waits until `server` finishes; SIGINT or SIGTERM first runs `beforeShutdown(signal)`, then shuts
 * the server down gracefully.
 */
export async function serveUntilSignal(
  server: Deno.HttpServer,
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
