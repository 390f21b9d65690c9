/** Starts the rocklet app on a real loopback socket (port 0) for tests. */
import { createRockletApp } from "../../src/rocklet/app.ts";
import { LocalRuntime, type LocalRuntimeOptions } from "../../src/runtime/local_runtime.ts";

/** A running rocklet; dispose to stop it and close its sessions. */
export interface RockletServer extends AsyncDisposable {
  url: string;
  runtime: LocalRuntime;
}

/** Serves a fresh LocalRuntime on 127.0.0.1 at a free port. */
export function startRockletServer(options: LocalRuntimeOptions = {}): RockletServer {
  const runtime = new LocalRuntime(options);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    createRockletApp({ runtime }).fetch,
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    runtime,
    async [Symbol.asyncDispose]() {
      await runtime.close();
      await server.shutdown();
    },
  };
}
