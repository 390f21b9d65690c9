/** Serving helpers shared by the roles' CLI commands. */

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
