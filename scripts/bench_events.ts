/**
 * The events section of `deno task bench`: `Sandbox.start()` until ready waiting on the admin's
 * event stream, beside the same start polling get_status (`events: false`, what the SDK does
 * against an admin without events), in one run against one in-process admin: starts alternate
 * between the two so both see the same machine. On the local backend, and on docker when an
 * engine and the test image are there; `--backend=local|docker` picks one.
 */
import { Sandbox } from "../src/sdk/mod.ts";
import { startAdminServer, type TestBackend } from "../tests/helpers/admin_server.ts";
import { checkDocker, TEST_IMAGE, testSandboxId } from "../tests/helpers/docker.ts";
import type { BenchKit } from "./bench_admin.ts";

/** Times `n` starts each way on `backend` and prints both, events beside polling. */
async function benchStarts(backend: TestBackend, n: number, kit: BenchKit): Promise<void> {
  await using admin = await startAdminServer(backend, { node: true });
  const config = {
    baseUrl: admin.url,
    image: TEST_IMAGE,
    pull: "never" as const,
    memory: "1g",
    cpus: 1,
  };
  const times = { events: [] as number[], polling: [] as number[] };
  const polls = { events: 0, polling: 0 };
  // One untimed start each way first: the launcher's bundle, the first docker run.
  for (let i = -1; i < n; i++) {
    for (const way of ["events", "polling"] as const) {
      let statusCalls = 0;
      const sandbox = new Sandbox({
        ...config,
        sandboxId: testSandboxId(`bench-${way}`),
        fetch: (input, init) => {
          if (String(input).includes("/get_status")) statusCalls++;
          return fetch(input, init);
        },
      });
      try {
        const begin = performance.now();
        await sandbox.start({ events: way === "events" });
        if (i >= 0) {
          times[way].push(performance.now() - begin);
          polls[way] += statusCalls;
        }
      } finally {
        await sandbox.stop().catch(() => {});
      }
    }
  }
  const polling = kit.stats(times.polling);
  console.log(
    kit.row(
      `baseline: Sandbox.start() polling get_status (${backend})`,
      polling,
    ) + `  ${(polls.polling / n).toFixed(1)} get_status/start`,
  );
  console.log(
    kit.row(`Sandbox.start() on the event stream (${backend})`, kit.stats(times.events), polling) +
      `  ${(polls.events / n).toFixed(1)} get_status/start`,
  );
}

/** Runs the section: `quick` for 3 starts each way, else 20. */
export async function eventsSection(
  options: { quick: boolean; kit: BenchKit; backend?: string | undefined },
): Promise<void> {
  const n = options.quick ? 3 : 20;
  console.log(`\n== events: Sandbox.start() -> ready (${options.quick ? "quick" : "full"} run) ==`);
  const backends: TestBackend[] = options.backend === "docker"
    ? ["docker"]
    : options.backend === "local"
    ? ["local"]
    : ["local", "docker"];
  for (const backend of backends) {
    if (backend === "docker") {
      const docker = await checkDocker();
      if (!docker.available) {
        console.log(`docker skipped: ${docker.reason}`);
        continue;
      }
    }
    await benchStarts(backend, n, options.kit);
  }
}
