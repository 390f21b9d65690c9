/**
 * `deno task bench --scale`: what a fleet on one host costs, each beside a baseline from the same
 * run (docker backend; skipped with the reason when docker is missing):
 * - bursts: N concurrent creates from one client, unpaced, until every sandbox answers, beside a
 *   burst of N bare `docker run`s of a Python HTTP server (the best of a few concurrency levels);
 *   rock's wall time, success count and create -> alive p50/p99;
 * - warm pool: create -> running from the pool, beside a cold create;
 * - churn: create/stop cycles, 20 at a time; what is left behind (containers, rows not stopped)
 *   and the admin's RSS at the start, middle and end.
 */
import { DockerCli } from "../src/sandbox/docker_cli.ts";
import { statusPollInterval } from "../src/sdk/status_poll.ts";
import { type AdminServer, get, post, startAdminServer } from "../tests/helpers/admin_server.ts";
import { checkDocker, TEST_IMAGE, testSandboxId } from "../tests/helpers/docker.ts";
import { type BenchKit, runBareUntilAnswering } from "./bench_admin.ts";

/** Runs `tasks` with at most `limit` at once. */
async function pooled<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, tasks.length) }, async () => {
      while (next < tasks.length) {
        const index = next++;
        const task = tasks[index];
        if (task === undefined) break;
        results[index] = await task();
      }
    }),
  );
  return results;
}

/**
 * Polls get_status until `id` is running (resolves true) or failed/stopped (false), paced as the
 * SDK's Sandbox.start() is (statusPollInterval: fast while placed, slower while queued).
 */
async function untilRunning(admin: AdminServer, id: string): Promise<boolean> {
  for (let attempt = 0;; attempt++) {
    const status = (await get(admin.api, `/get_status?sandbox_id=${id}`)).result;
    const state = status?.state;
    if (state === "running") return true;
    if (state === "failed" || state === "stopped") return false;
    await new Promise((resolve) => setTimeout(resolve, statusPollInterval(status, attempt)));
  }
}

/** A burst of `n` bare containers at `concurrency`; wall time in ms (all removed after). */
async function bareBurst(docker: DockerCli, n: number, concurrency: number): Promise<number> {
  const names = Array.from({ length: n }, (_, i) => testSandboxId(`bare-${concurrency}-${i}`));
  const begin = performance.now();
  try {
    await pooled(concurrency, names.map((name) => () => runBareUntilAnswering(docker, name)));
    return performance.now() - begin;
  } finally {
    for (let i = 0; i < names.length; i += 50) {
      await docker.remove(names.slice(i, i + 50)).catch(() => false);
    }
  }
}

/** A burst of `n` unpaced creates through the admin: wall ms, how many ran, create -> alive. */
async function rockBurst(admin: AdminServer, n: number, kit: BenchKit) {
  const ids = Array.from({ length: n }, (_, i) => testSandboxId(`burst-${i}`));
  const begin = performance.now();
  const alive: number[] = [];
  const ran = await Promise.all(ids.map(async (id) => {
    const created = performance.now();
    const answer = await post(admin.api, "/start_async", { sandbox_id: id, image: TEST_IMAGE });
    if (answer.status !== "Success") return false;
    const ok = await untilRunning(admin, id);
    if (ok) alive.push(performance.now() - created);
    return ok;
  }));
  const wall = performance.now() - begin;
  await pooled(20, ids.map((id) => () => post(admin.api, "/stop", { sandbox_id: id })));
  return { wall, running: ran.filter(Boolean).length, alive: kit.stats(alive) };
}

/** Containers on the engine whose name starts with rock's test prefix. */
async function testContainers(docker: DockerCli): Promise<number> {
  const out = await docker.exec(["ps", "-a", "--filter", "name=rock-test-", "--format", "{{.ID}}"]);
  return out.split("\n").filter(Boolean).length;
}

/** The scale section; `sizes` are the burst sizes. */
export async function scaleSection(kit: BenchKit, sizes: number[], cycles: number): Promise<void> {
  console.log(
    `\n== scale (docker backend; load ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}) ==`,
  );
  const availability = await checkDocker();
  if (!availability.available) {
    console.log(`skipped: ${availability.reason}`);
    return;
  }
  const docker = new DockerCli();
  for (const n of sizes) {
    const levels = [8, 16, 32];
    const bare: [number, number][] = [];
    for (const level of levels) bare.push([level, await bareBurst(docker, n, level)]);
    const [bestLevel, bestWall] = bare.reduce((a, b) => (b[1] < a[1] ? b : a));
    await using admin = await startAdminServer("docker");
    const burst = await rockBurst(admin, n, kit);
    console.log(
      `burst of ${n}: rock ${burst.running}/${n} running, wall ${
        (burst.wall / 1000).toFixed(1)
      } s = ` +
        `${(burst.wall / bestWall).toFixed(2)}x the best bare burst (${
          (bestWall / 1000).toFixed(1)
        } s ` +
        `at ${bestLevel} at once; ${
          bare.map(([l, w]) => `${l}: ${(w / 1000).toFixed(1)} s`).join(", ")
        }); create -> alive p50 ${(burst.alive.p50 / 1000).toFixed(2)} s, p99 ${
          (burst.alive.p99 / 1000).toFixed(2)
        } s  [target: 100% running, wall <= 1.2x]`,
    );
  }

  // Warm pool: a pooled start beside a cold one.
  {
    await using admin = await startAdminServer("docker", {
      pool: [{ image: TEST_IMAGE, memory: "8g", cpus: 2, size: 4 }],
    });
    const pooledTimes: number[] = [];
    const coldTimes: number[] = [];
    for (let i = 0; i < 10; i++) {
      while ((admin.pool?.readyCount ?? 0) === 0) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const id = testSandboxId(`pool-${i}`);
      const begin = performance.now();
      await post(admin.api, "/start_async", { sandbox_id: id, image: TEST_IMAGE });
      await untilRunning(admin, id);
      pooledTimes.push(performance.now() - begin);
      await post(admin.api, "/stop", { sandbox_id: id });
    }
    for (let i = 0; i < 3; i++) {
      const id = testSandboxId(`cold-${i}`);
      const begin = performance.now();
      await post(admin.api, "/start_async", { sandbox_id: id, image: TEST_IMAGE, memory: "1g" });
      await untilRunning(admin, id);
      coldTimes.push(performance.now() - begin);
      await post(admin.api, "/stop", { sandbox_id: id });
    }
    console.log(
      kit.row(
        "create -> running from the warm pool",
        kit.stats(pooledTimes),
        kit.stats(coldTimes),
        "p50 <= 20 ms",
      ),
    );
  }

  // Churn: create/stop cycles, 20 at a time.
  {
    const before = await testContainers(docker);
    await using admin = await startAdminServer("docker");
    const rss: number[] = [];
    const mark = () => rss.push(Deno.memoryUsage().rss / 1024 / 1024);
    mark();
    let failed = 0;
    const cycle = (i: number) => async () => {
      const id = testSandboxId(`churn-${i}`);
      const answer = await post(admin.api, "/start_async", { sandbox_id: id, image: TEST_IMAGE });
      if (answer.status !== "Success" || !(await untilRunning(admin, id))) failed++;
      await post(admin.api, "/stop", { sandbox_id: id });
      if (i === Math.floor(cycles / 2)) mark();
    };
    const begin = performance.now();
    await pooled(20, Array.from({ length: cycles }, (_, i) => cycle(i)));
    const wall = performance.now() - begin;
    mark();
    const active = (await admin.store.sandboxes.listByState(["pending", "running"])).length;
    const left = (await testContainers(docker)) - before;
    console.log(
      `churn: ${cycles} create/stop cycles, 20 at a time, in ${(wall / 1000).toFixed(1)} s; ` +
        `${failed} failed; left behind: ${left} containers, ${active} active rows; admin RSS ` +
        `${rss.map((r) => r.toFixed(0)).join(" -> ")} MiB (start, middle, end)`,
    );
  }
}
