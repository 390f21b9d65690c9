/** `rock rocklet`: serves the in-sandbox runtime over HTTP until SIGINT or SIGTERM. */
import {
  DEFAULT_SERVER_LIMITS,
  processEnvironment,
  readLogSettings,
  readServerLimits,
} from "../common/config.ts";
import { createLogger } from "../common/log.ts";
import { createRockletApp } from "../rocklet/app.ts";
import { LocalRuntime } from "../runtime/local_runtime.ts";
import { type RockServer, serveUntilSignal } from "./server.ts";
import { serveNative } from "./serve_native.ts";

import type { RockletOptions } from "./rocklet_flags.ts";

/** Runs the rocklet in the foreground; resolves after a clean shutdown. */
export async function runRocklet(options: RockletOptions): Promise<void> {
  const settings = readLogSettings();
  const logger = createLogger("rocklet", {
    level: options.logLevel ?? settings.logLevel,
    timeZone: settings.timeZone,
  });
  const runtime = new LocalRuntime({
    baseEnv: processEnvironment(),
    maxOutputBytes: options.maxOutputBytes,
  });
  const app = createRockletApp({ runtime, logger });
  // Once the first call (the admin's first health probe) is in, the runtime warms up for the
  // first session while the caller gets on: a sandbox answers as soon as it can, and its first
  // create_session is not the one to pay the one-time costs.
  let prepared = false;
  const handler = (request: Request) => {
    if (!prepared) {
      prepared = true;
      runtime.prepare().catch((error) =>
        logger.warn("Cannot prepare sessions", { error: String(error) })
      );
    }
    return app.fetch(request);
  };
  let server: RockServer;
  try {
    server = serveNative({
      hostname: options.host,
      port: options.port,
      onListen: ({ hostname, port }) => {
        // One line on stdout that scripts (and `--port 0` users) can read the address from.
        console.log(`rocklet listening on http://${hostname}:${port}`);
      },
      limits: readServerLimits(DEFAULT_SERVER_LIMITS),
      onGraceOver: async () => {
        await runtime.close();
      },
    }, handler);
  } catch (error) {
    await runtime.close();
    throw error;
  }
  try {
    // Calls in flight may finish within the grace; then the sessions still running are ended.
    await serveUntilSignal(server, (signal) => logger.info("Stopping", { signal }));
  } finally {
    await runtime.close();
  }
}
