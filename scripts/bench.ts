/**
 * `deno task bench`: latency and memory figures, each beside a baseline measured in the same run.
 *
 * Rocklet section:
 * - run_in_session round trip (trivial command) over HTTP keep-alive on loopback, against a
 *   `rock rocklet` child process, beside spawning `bash -c true` (the cheapest way to run a
 *   command without a session);
 * - create_session + close_session time;
 * - run_in_session on a terminal (the default) beside pipes (`pty: false`), `true` and 10 MiB;
 * - peak memory of the rocklet while 1 GiB is uploaded through it.
 *
 * Admin section (scripts/bench_admin.ts; skipped with the reason when docker is missing):
 * start_async -> alive beside a bare `docker run`, start_async -> first command beside `docker
 * run` + `docker exec`, run_in_session through the admin beside `docker exec`, get_status beside
 * the admin's `GET /`.
 *
 * Data-plane section (scripts/bench_data_plane.ts), local backend and docker, against a real
 * admin process: one trivial command layer by layer (raw bash, the rocklet's /is_alive, the
 * rocklet directly, the admin's `GET /`, the admin); with `--scale`, commands per second across
 * 50 sandboxes through one admin beside the admin's `GET /` at the same concurrency.
 *
 * Memory section (scripts/bench_memory.ts, only with `--scale`): host memory per idle sandbox
 * over 50 sandboxes beside 50 bare `sleep infinity` containers.
 *
 * Kubernetes section (scripts/bench_kubernetes.ts; skipped with the reason without docker or
 * kubectl): start_async -> alive and run_in_session on the kubernetes backend (a stand-in API
 * server, pods on the local docker engine) in both access modes, beside the docker backend.
 *
 * Model service section (scripts/bench_model_service.ts): proxy and local-mode latency.
 *
 * Events section (scripts/bench_events.ts): `Sandbox.start()` -> ready on the admin's event
 * stream beside the same start polling get_status, on the local backend and on docker
 * (`--backend=local|docker` for one).
 *
 * Scale section (scripts/bench_scale.ts, with `--scale`): bursts of creates beside bare docker
 * bursts, warm-pool starts, create/stop churn.
 *
 * Options: `--quick` for fewer iterations; `--scale` adds the long runs (50-sandbox throughput,
 * memory, bursts, churn);
 * `--only=rocklet|admin|data-plane|kubernetes|memory|model-service|events|scale` for one section.
 */
import { LocalRuntime } from "../src/runtime/local_runtime.ts";
import { BashAction, CreateSessionRequest } from "../src/protocol/rocklet.ts";
import { parseWire } from "../src/protocol/validate.ts";
import { RockletClient } from "../src/sdk/rocklet_client.ts";
import { spawnRocklet } from "../tests/helpers/process.ts";
import { modelServiceSection } from "./bench_model_service.ts";
import { adminSection } from "./bench_admin.ts";
import { dataPlaneSection } from "./bench_data_plane.ts";
import { kubernetesSection } from "./bench_kubernetes.ts";
import { scaleMemorySection } from "./bench_memory.ts";
import { scaleSection } from "./bench_scale.ts";
import { eventsSection } from "./bench_events.ts";

const quick = Deno.args.includes("--quick");
const scale = Deno.args.includes("--scale");
const only = Deno.args.find((arg) => arg.startsWith("--only="))?.slice("--only=".length);
const SECTIONS = [
  "rocklet",
  "admin",
  "data-plane",
  "kubernetes",
  "memory",
  "model-service",
  "events",
  "scale",
];
if (only && !SECTIONS.includes(only)) {
  console.error(`Unknown section "${only}": expected one of ${SECTIONS.join(", ")}`);
  Deno.exit(2);
}

interface Stats {
  p50: number;
  p99: number;
  n: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const pick = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: pick(0.5), p99: pick(0.99), n: sorted.length };
}

async function measure(n: number, warmup: number, fn: () => Promise<unknown>): Promise<Stats> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return stats(samples);
}

/** "12.3x faster than baseline" or "1.08x slower than baseline" (two decimals below 10x). */
function ratio(s: Stats, baseline: Stats): string {
  const faster = baseline.p50 / s.p50;
  const factor = faster >= 1 ? faster : 1 / faster;
  return `${factor.toFixed(factor < 10 ? 2 : 1)}x ${
    faster >= 1 ? "faster" : "slower"
  } than baseline`;
}

function row(name: string, s: Stats, baseline?: Stats, target?: string): string {
  return `${name.padEnd(52)} p50 ${s.p50.toFixed(3).padStart(8)} ms  p99 ${
    s.p99.toFixed(3).padStart(8)
  } ms  n=${String(s.n).padEnd(5)} ${baseline ? ratio(s, baseline) : "baseline"}${
    target ? `  (target ${target})` : ""
  }`;
}

async function peakRssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function currentRssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

function zeroStream(bytes: number, chunk = 1024 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  const block = new Uint8Array(chunk);
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      const size = Math.min(chunk, bytes - sent);
      controller.enqueue(size === chunk ? block.slice() : block.slice(0, size));
      sent += size;
    },
  });
}

async function rockletSection(): Promise<void> {
  const n = quick ? 50 : 2000;
  console.log(`\n== rocklet (${quick ? "quick" : "full"} run) ==`);

  const spawn = await measure(
    quick ? 20 : 300,
    5,
    () =>
      new Deno.Command("bash", { args: ["-c", "true"], stdout: "null", stderr: "null" }).output(),
  );
  console.log(row("baseline: spawn `bash -c true`", spawn));

  const { url, child } = await spawnRocklet();
  try {
    const client = new RockletClient(url);
    await client.createSession({ session: "bench" });
    const http = await measure(
      n,
      100,
      () => client.runInSession({ session: "bench", command: "true" }),
    );
    console.log(row("run_in_session `true` over HTTP keep-alive", http, spawn, "p50 <= 1 ms"));
    // Sessions run on a terminal by default; the same on pipes (`pty: false`) beside it.
    await client.createSession({ session: "pipes", pty: false });
    const pipes = await measure(
      n,
      100,
      () => client.runInSession({ session: "pipes", command: "true" }),
    );
    console.log(row("  the same on a session with pty: false", pipes, http));
    const big = "head -c 10485760 /dev/zero | tr '\\0' x";
    const bigRuns = quick ? 3 : 10;
    const bigPipes = await measure(
      bigRuns,
      1,
      () => client.runInSession({ session: "pipes", command: big }),
    );
    const bigPty = await measure(
      bigRuns,
      1,
      () => client.runInSession({ session: "bench", command: big }),
    );
    console.log(row("10 MiB of output, session on a terminal", bigPty, bigPipes));

    const names = Array.from({ length: quick ? 10 : 100 }, (_, i) => `c${i}`);
    let next = 0;
    const create = await measure(
      names.length,
      0,
      () => client.createSession({ session: names[next++] }),
    );
    console.log(row("create_session over HTTP", create, spawn, "p50 <= 10 ms"));
    next = 0;
    const close = await measure(
      names.length,
      0,
      () => client.closeSession({ session: names[next++] }),
    );
    console.log(row("close_session over HTTP", close, spawn));

    const size = (quick ? 64 : 1024) * 1024 * 1024;
    const before = await currentRssKiB(child.pid);
    const dir = await Deno.makeTempDir({ prefix: "rock-bench-" });
    try {
      const started = performance.now();
      await client.upload(zeroStream(size), { targetPath: `${dir}/big.bin` });
      const seconds = (performance.now() - started) / 1000;
      const peak = await peakRssKiB(child.pid);
      console.log(
        `${`upload ${size / 1024 / 1024} MiB through the rocklet`.padEnd(52)} ${
          (size / 1024 / 1024 / seconds).toFixed(0)
        } MiB/s; rocklet RSS before ${(before / 1024).toFixed(0)} MiB, peak ${
          (peak / 1024).toFixed(0)
        } MiB ` +
          `(growth ${((peak - before) / 1024).toFixed(0)} MiB = ${
            ((peak - before) * 1024 / size * 100).toFixed(1)
          }% of the upload)`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    await client.close();
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }

  const runtime = new LocalRuntime();
  try {
    await runtime.createSession(parseWire(CreateSessionRequest, { session: "bench" }, "bench"));
    // Validated once, as the rocklet's route would: the runtime itself parses nothing.
    const action = parseWire(BashAction, { session: "bench", command: "true" }, "bench");
    const local = await measure(n, 100, () => runtime.runInSession(action));
    console.log(row("run_in_session `true` in process (no HTTP)", local, spawn));
  } finally {
    await runtime.close();
  }
}

console.log(`rock bench on ${Deno.build.os}/${Deno.build.arch}, deno ${Deno.version.deno}`);
const kit = { stats, measure, row };
if (!only || only === "rocklet") await rockletSection();
if (!only || only === "admin") await adminSection(quick, kit);
if (!only || only === "data-plane") await dataPlaneSection({ quick, scale, kit });
if (!only || only === "kubernetes") await kubernetesSection(quick, kit);
if (scale && (!only || only === "memory")) await scaleMemorySection();
if (!only || only === "model-service") await modelServiceSection(quick, kit);
if (!only || only === "events") {
  const backend = Deno.args.find((arg) => arg.startsWith("--backend="))?.slice("--backend=".length);
  await eventsSection({ quick, kit, backend });
}
// The fleet figures take minutes: only with --scale (or --only=scale).
if ((scale && !only) || only === "scale") {
  await scaleSection(kit, quick ? [20] : [100, 300], quick ? 40 : 1000);
}
