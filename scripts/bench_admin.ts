/**
 * The admin section of `deno task bench`, against an in-process admin on the docker backend:
 * - start_async until get_status says `is_alive`, beside a bare `docker run -d` of a Python HTTP
 *   server until its published port answers (the least any container start can cost);
 * - start_async until the first run_in_session (`true`) is answered, beside `docker run -d` of
 *   `sleep infinity` followed by `docker exec` of `true`;
 * - run_in_session (trivial command) through the admin, beside `docker exec <container> true`
 *   in the same sandbox container;
 * - get_status over HTTP keep-alive, beside `GET /` of the same admin (its cheapest route).
 * Skipped, with the reason, when no docker engine answers or the test image is missing.
 */
import { DockerCli } from "../src/sandbox/docker_cli.ts";
import { Sandbox } from "../src/sdk/mod.ts";
import {
  type AdminServer,
  type Envelope,
  get,
  post,
  startAdminServer,
} from "../tests/helpers/admin_server.ts";
import { checkDocker, TEST_IMAGE, testSandboxId } from "../tests/helpers/docker.ts";

/** Latency figures of one measurement, in milliseconds. */
export interface Stats {
  p50: number;
  p99: number;
  n: number;
}

/** The helpers of bench.ts this section prints and measures with. */
export interface BenchKit {
  /** Percentiles of `samples` (milliseconds). */
  stats(samples: number[]): Stats;
  /** Times `n` sequential calls of `fn` after `warmup` untimed ones. */
  measure(n: number, warmup: number, fn: () => Promise<unknown>): Promise<Stats>;
  /** One printed row: a figure beside its baseline, as a ratio, with its target. */
  row(name: string, s: Stats, baseline?: Stats, target?: string): string;
}

/** How long a start (or a bare container) may take to answer before the bench gives up. */
const START_TIMEOUT_MS = 60_000;

/** An in-process admin on the docker backend, as the bench drives it. */
type BenchAdmin = AdminServer;

/** True when sandbox `id`'s container is gone or stopped (false when docker cannot tell). */
function containerGone(docker: DockerCli, id: string): Promise<boolean> {
  // `docker rm -f` kills first and removes a moment later: a dying container counts as gone.
  return docker.inspectContainer(id).then((container) => !container?.State.Running, () => false);
}

/** The error for a bench sandbox whose container something else on the engine removed. */
function lostContainer(id: string, cause: string): Error {
  return new Error(
    `Bench sandbox "${id}" lost its container: another process stopped or removed it ` +
      `(an admin's reconcile removes every labelled container its store does not know): ${cause}`,
  );
}

/** Sleeps 5 ms, then twice as long each time, up to 20 ms: tight enough to time a start. */
function backoff(): () => Promise<void> {
  let delay = 5;
  return async () => {
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 20);
  };
}

/** The result of a Success envelope. */
export function resultOf(path: string, envelope: Envelope): Envelope["result"] {
  if (envelope.status !== "Success") {
    throw new Error(`Bench call ${path} failed: ${envelope.error ?? envelope.message}`);
  }
  return envelope.result;
}

/**
 * Starts sandbox `id` with start_async and polls get_status until it is alive; with `docker`
 * (a docker backend), fails fast when its container is removed under it.
 */
export async function startUntilAlive(api: string, id: string, docker?: DockerCli): Promise<void> {
  const begin = performance.now();
  resultOf("/start_async", await post(api, "/start_async", { sandbox_id: id, image: TEST_IMAGE }));
  const wait = backoff();
  let checked = false;
  while (true) {
    const status = resultOf("/get_status", await get(api, `/get_status?sandbox_id=${id}`));
    if (status.is_alive) return;
    if (status.state === "failed") {
      throw new Error(`Cannot start bench sandbox "${id}": ${status.failure_reason}`);
    }
    const elapsed = performance.now() - begin;
    // A start takes about a second; after 5 s, fail fast if the container (placed: it has ports)
    // was removed under us, as the manager would wait out its whole startup timeout.
    const placed = Object.keys(status.port_mapping ?? {}).length > 0;
    if (docker && elapsed > 5_000 && placed && !checked) {
      checked = true;
      if (await containerGone(docker, id)) {
        throw lostContainer(id, `not alive after ${elapsed.toFixed(0)} ms`);
      }
    }
    if (elapsed > START_TIMEOUT_MS) {
      throw new Error(`Cannot start bench sandbox "${id}": not alive after ${START_TIMEOUT_MS} ms`);
    }
    await wait();
  }
}

/** Runs a bare Python HTTP server container named `name` and polls it until GET / answers. */
export async function runBareUntilAnswering(docker: DockerCli, name: string): Promise<void> {
  const id = await docker.run([
    "-d",
    "--rm",
    "--name",
    name,
    "-p",
    "127.0.0.1::8000",
    TEST_IMAGE,
    "python3",
    "-m",
    "http.server",
    "8000",
  ]);
  const binding = (await docker.ports(id))["8000/tcp"]?.[0];
  if (!binding) throw new Error(`Cannot time bare container "${name}": port 8000 not published`);
  const url = `http://127.0.0.1:${binding.HostPort}/`;
  const wait = backoff();
  const deadline = performance.now() + START_TIMEOUT_MS;
  let last = "";
  while (true) {
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      if (response.ok) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      // docker-proxy accepts and then drops connections until the server listens.
      last = (error as Error).message;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `Bare container "${name}" did not answer within ${START_TIMEOUT_MS} ms: ${last}`,
      );
    }
    await wait();
  }
}

/** Runs a bare `sleep infinity` container named `name`, then `docker exec`s `true` in it. */
async function runBareThenExec(docker: DockerCli, name: string): Promise<void> {
  await docker.run(["-d", "--rm", "--name", name, TEST_IMAGE, "sleep", "infinity"]);
  await docker.exec(["exec", name, "true"]);
}

/**
 * Times start_async -> alive beside a bare `docker run` until its server answers, and start_async
 * -> the first run_in_session answered beside `docker run` + `docker exec` of the same command,
 * interleaved so all see the same load.
 */
async function benchStart(
  admin: BenchAdmin,
  docker: DockerCli,
  options: { n: number; kit: BenchKit; started: string[]; bare: string[] },
): Promise<Stats> {
  const { n, kit, started, bare } = options;
  const samples = { bare: [] as number[], alive: [] as number[], exec: [] as number[] };
  const firstSamples: number[] = [];
  // One untimed round first: it warms the page cache, the bundle cache and docker's image layers.
  for (let i = -1; i < n; i++) {
    const name = testSandboxId("bench-bare");
    bare.push(name);
    let begin = performance.now();
    await runBareUntilAnswering(docker, name);
    if (i >= 0) samples.bare.push(performance.now() - begin);
    await docker.remove([name]);

    const execName = testSandboxId("bench-bare-exec");
    bare.push(execName);
    begin = performance.now();
    await runBareThenExec(docker, execName);
    if (i >= 0) samples.exec.push(performance.now() - begin);
    await docker.remove([execName]);

    const id = testSandboxId("bench-start");
    started.push(id);
    begin = performance.now();
    await startUntilAlive(admin.api, id, docker);
    const alive = performance.now();
    resultOf("/create_session", await post(admin.api, "/create_session", { sandbox_id: id }));
    const body = { sandbox_id: id, command: "true" };
    resultOf("/run_in_session", await post(admin.api, "/run_in_session", body));
    if (i >= 0) {
      samples.alive.push(alive - begin);
      firstSamples.push(performance.now() - begin);
    }
    resultOf("/stop", await post(admin.api, "/stop", { sandbox_id: id }));
  }
  const baseline = kit.stats(samples.bare);
  console.log(kit.row("baseline: bare `docker run -d` until port answers", baseline));
  console.log(
    kit.row(
      "start_async -> alive (docker backend)",
      kit.stats(samples.alive),
      baseline,
      "<= 1.25x slower",
    ),
  );
  const exec = kit.stats(samples.exec);
  console.log(kit.row("baseline: `docker run -d` + `docker exec <c> true`", exec));
  console.log(
    kit.row("start_async -> first run_in_session answered", kit.stats(firstSamples), exec),
  );
  return baseline;
}

/**
 * Times start_async -> alive when the warm pool holds a matching sandbox (the pool refills
 * between starts, untimed), beside the same bare baseline.
 */
async function benchPooledStart(
  docker: DockerCli,
  options: { n: number; kit: BenchKit; baseline: Stats; started: string[] },
): Promise<void> {
  const { n, kit, baseline, started } = options;
  const dataDir = await Deno.makeTempDir({ prefix: "rock-bench-pool-" });
  try {
    await using admin = await startAdminServer("docker", {
      dataDir,
      startupTimeoutMs: START_TIMEOUT_MS,
      pool: [{ image: TEST_IMAGE, memory: "8g", cpus: 2, size: 1 }],
    });
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const ready = performance.now();
      while (admin.pool!.readyCount < 1) {
        if (performance.now() - ready > START_TIMEOUT_MS) {
          throw new Error("the warm pool did not fill");
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const id = testSandboxId("bench-pool");
      started.push(id);
      const begin = performance.now();
      await startUntilAlive(admin.api, id, docker);
      samples.push(performance.now() - begin);
      resultOf("/stop", await post(admin.api, "/stop", { sandbox_id: id }));
    }
    console.log(
      kit.row(
        "start_async -> alive, warm pool (docker backend)",
        kit.stats(samples),
        baseline,
        "<= 1.25x slower",
      ),
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

/**
 * The SDK on docker: `Sandbox.start()` until ready beside the bare baseline, and `arun` of a
 * trivial command (normal mode) beside the raw run_in_session call it wraps.
 */
async function benchSdk(
  admin: BenchAdmin,
  options: { quick: boolean; kit: BenchKit; baseline: Stats; started: string[] },
): Promise<void> {
  const { quick, kit, baseline, started } = options;
  const config = { baseUrl: admin.url, image: TEST_IMAGE, pull: "never" as const };
  const starts: number[] = [];
  for (let i = 0; i < (quick ? 3 : 10); i++) {
    const sandbox = new Sandbox({ ...config, sandboxId: testSandboxId("bench-sdk") });
    started.push(sandbox.config.sandboxId!);
    const begin = performance.now();
    await sandbox.start();
    starts.push(performance.now() - begin);
    await sandbox.stop();
  }
  console.log(
    kit.row(
      "SDK Sandbox.start() -> ready (docker backend)",
      kit.stats(starts),
      baseline,
      "<= 1.25x slower",
    ),
  );
  const sandbox = new Sandbox({ ...config, sandboxId: testSandboxId("bench-sdk-arun") });
  started.push(sandbox.config.sandboxId!);
  await sandbox.start();
  try {
    await sandbox.createSession("raw");
    const body = { sandbox_id: sandbox.sandboxId, session: "raw", command: "true" };
    const raw = await kit.measure(
      quick ? 100 : 1000,
      50,
      async () => resultOf("/run_in_session", await post(admin.api, "/run_in_session", body)),
    );
    console.log(kit.row("baseline: raw run_in_session `true` (fetch)", raw));
    const arun = await kit.measure(quick ? 100 : 1000, 50, () => sandbox.arun("true"));
    console.log(kit.row('SDK arun("true") normal mode', arun, raw));
    const nohup = await kit.measure(
      quick ? 10 : 50,
      2,
      () => sandbox.arun("true", { mode: "nohup" }),
    );
    console.log(kit.row('SDK arun("true", nohup) with its real exit code', nohup, raw));
  } finally {
    await sandbox.stop().catch(() => {});
  }
}

/** Times run_in_session and get_status through the admin, each beside its baseline. */
async function benchRunning(
  admin: BenchAdmin,
  docker: DockerCli,
  options: { quick: boolean; kit: BenchKit; started: string[] },
): Promise<void> {
  const { quick, kit, started } = options;
  const { api, url } = admin;
  const id = testSandboxId("bench-session");
  started.push(id);
  resultOf("/start", await post(api, "/start", { sandbox_id: id, image: TEST_IMAGE }));
  try {
    resultOf(
      "/create_session",
      await post(api, "/create_session", { sandbox_id: id, session: "b" }),
    );
    // The sandbox id is also its container's name.
    const exec = await kit.measure(quick ? 5 : 30, 2, () => docker.exec(["exec", id, "true"]));
    console.log(kit.row("baseline: `docker exec <sandbox> true`", exec));
    const body = { sandbox_id: id, session: "b", command: "true" };
    const run = await kit.measure(
      quick ? 100 : 1000,
      50,
      async () => resultOf("/run_in_session", await post(api, "/run_in_session", body)),
    );
    console.log(
      kit.row("run_in_session `true` through the admin", run, exec, ">= 50x faster"),
    );

    const n = quick ? 200 : 2000;
    const root = await kit.measure(n, 100, async () => {
      const response = await fetch(`${url}/`);
      await response.text();
    });
    console.log(kit.row("baseline: admin `GET /` over HTTP keep-alive", root));
    const status = await kit.measure(
      n,
      100,
      async () => resultOf("/get_status", await get(api, `/get_status?sandbox_id=${id}`)),
    );
    console.log(kit.row("get_status over HTTP keep-alive", status, root, "p50 <= 0.5 ms"));
  } catch (error) {
    if (await containerGone(docker, id)) throw lostContainer(id, (error as Error).message);
    throw error;
  }
}

/** Runs the admin section (fewer iterations when `quick`), or says why it is skipped. */
export async function adminSection(quick: boolean, kit: BenchKit): Promise<void> {
  console.log(`\n== admin, docker backend (${quick ? "quick" : "full"} run) ==`);
  const docker = new DockerCli();
  const availability = await checkDocker(docker);
  if (!availability.available) {
    console.log(
      `admin section skipped: ${availability.reason}; run scripts/setup_docker.sh to enable it`,
    );
    return;
  }
  const started: string[] = [];
  const bare: string[] = [];
  const dataDir = await Deno.makeTempDir({ prefix: "rock-bench-admin-" });
  try {
    // Its own deployment id scopes reconcile() to its own containers on a shared engine.
    const admin = await startAdminServer("docker", { dataDir, startupTimeoutMs: START_TIMEOUT_MS });
    try {
      const baseline = await benchStart(admin, docker, { n: quick ? 3 : 10, kit, started, bare });
      await benchPooledStart(docker, { n: quick ? 3 : 10, kit, baseline, started });
      await benchSdk(admin, { quick, kit, baseline, started });
      await benchRunning(admin, docker, { quick, kit, started });
    } finally {
      for (const id of started) await admin.manager.stop(id).catch(() => {});
      // Whatever the admin could not stop, and every bare container, goes by name.
      await docker.remove([...started, ...bare]).catch((error) =>
        console.error(`Cannot remove bench containers: ${(error as Error).message}`)
      );
      await admin[Symbol.asyncDispose]();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}
