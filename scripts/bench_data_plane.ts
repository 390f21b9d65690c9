/**
 * The data-plane section of `deno task bench`: one trivial command's round trip, layer by layer,
 * on the local backend and on docker, against a real admin (`rock admin start` from source, in
 * its own process, serving on node:http). The layers are measured in rounds (one call of each per round), so all of them
 * see the same load:
 * - a raw persistent bash that reads a command from a here-document and `eval`s it (the floor
 *   of any session);
 * - the rocklet's `GET /is_alive` (its HTTP floor);
 * - run_in_session `true` straight to the sandbox's rocklet;
 * - the admin's `GET /` (its HTTP floor);
 * - run_in_session `true` through the admin.
 * With `--scale`: throughput of trivial commands across 50 sessions in 50 sandboxes through one
 * admin, beside the admin's `GET /` at the same client concurrency.
 */
import type { BenchKit, Stats } from "./bench_admin.ts";
import { checkDocker, testSandboxId } from "../tests/helpers/docker.ts";
import { join } from "node:path";
import { type Envelope, get, post, type TestBackend } from "../tests/helpers/admin_server.ts";
import { spawnAdmin } from "../tests/helpers/process.ts";

/** The test configuration: the test image by default, a 60 s startup timeout. */
const CONFIG = new URL("../rock-conf/rock-test.yml", import.meta.url).pathname;

/** A `rock admin start` child process on a fresh data dir. */
export interface AdminProcess extends AsyncDisposable {
  url: string;
  api: string;
}

/** Starts a real admin; disposing stops it (SIGTERM) and removes its data dir. */
export async function startAdmin(type: TestBackend): Promise<AdminProcess> {
  const dataDir = await Deno.makeTempDir({ prefix: "rock-bench-admin-" });
  const served = await spawnAdmin(join(dataDir, "data"), {
    config: CONFIG,
    extra: ["--backend", type],
  });
  return {
    url: served.url,
    api: `${served.url}/apis/envs/sandbox/v1`,
    async [Symbol.asyncDispose]() {
      served.child.kill("SIGTERM");
      await served.child.status;
      await served.stderr;
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

/** A persistent bash reading each command from a here-document and `eval`ing it. */
class RawBash implements AsyncDisposable {
  readonly #child = new Deno.Command("bash", {
    args: ["--noprofile", "--norc"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  readonly #writer = this.#child.stdin.getWriter();
  readonly #reader = this.#child.stdout.getReader();
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder();

  /** Runs `command` and returns once bash has printed its exit code. */
  async run(command: string): Promise<void> {
    const marker = "__bench_marker_";
    await this.#writer.write(this.#encoder.encode(
      `IFS= read -r -d '' __c <<'__BENCH_END'\n${command}\n__BENCH_END\n` +
        `eval "$__c"; printf '%s%s\\n' '${marker}' "$?"\n`,
    ));
    let text = "";
    while (!/__bench_marker_\d+\n/.test(text)) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("the raw bash ended");
      text += this.#decoder.decode(value, { stream: true });
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close().catch(() => {});
    this.#reader.releaseLock();
    await this.#child.stdout.cancel().catch(() => {});
    await this.#child.status;
  }
}

/** Times one call of each layer per round, `rounds` rounds after `warmup` untimed ones. */
async function measureRounds(
  kit: BenchKit,
  rounds: number,
  warmup: number,
  layers: Record<string, () => Promise<unknown>>,
): Promise<Record<string, Stats>> {
  const samples: Record<string, number[]> = {};
  for (let round = -warmup; round < rounds; round++) {
    for (const [name, call] of Object.entries(layers)) {
      const start = performance.now();
      await call();
      if (round >= 0) (samples[name] ??= []).push(performance.now() - start);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, kit.stats(s)]));
}

/** The result of a Success envelope, or an error naming the call. */
function resultOf(path: string, envelope: Envelope): Envelope["result"] {
  if (envelope.status !== "Success") {
    throw new Error(`Bench call ${path} failed: ${envelope.error ?? envelope.message}`);
  }
  return envelope.result;
}

/** POSTs `body` as JSON to `url` and reads the whole answer. */
async function postJson(url: string, body: string): Promise<void> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  if (!response.ok) throw new Error(`HTTP ${response.status} from ${url}`);
  await response.arrayBuffer();
}

/** GETs `url` and reads the whole answer. */
async function getText(url: string): Promise<void> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status} from ${url}`);
  await response.arrayBuffer();
}

/** Starts sandbox `id` (waiting until it runs); returns its rocklet's URL. */
async function startSandbox(admin: AdminProcess, id: string): Promise<string> {
  resultOf("/start", await post(admin.api, "/start", { sandbox_id: id }));
  const status = resultOf("/get_status", await get(admin.api, `/get_status?sandbox_id=${id}`));
  return `http://${status.host_ip}:${status.port_mapping["22555"]}`;
}

/** How many calls per second `call(i)` (i = 0..concurrency-1, each in its own loop) manages. */
async function throughput(
  concurrency: number,
  seconds: number,
  call: (i: number) => Promise<unknown>,
): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
    while (performance.now() < end) {
      await call(i);
      done++;
    }
  }));
  return done / ((performance.now() - started) / 1000);
}

/** Prints each layer, and what the admin and the rocklet add, against their targets. */
function printLayers(kit: BenchKit, label: string, layers: Record<string, Stats>): void {
  const { bash, alive, direct, root, admin } = layers;
  if (!bash || !alive || !direct || !root || !admin) {
    throw new Error(`Bench layers missing: got ${Object.keys(layers).join(", ")}`);
  }
  console.log(kit.row("raw bash: here-document + eval", bash));
  console.log(kit.row("rocklet GET /is_alive", alive));
  console.log(kit.row("rocklet run_in_session `true` (direct)", direct, alive));
  console.log(kit.row("admin GET /", root));
  console.log(kit.row("admin run_in_session `true`", admin, direct));
  const adds = admin.p50 - direct.p50;
  const rocklet = direct.p50 - alive.p50 - bash.p50;
  console.log(
    `${label}: the admin adds ${adds.toFixed(3)} ms to a direct call (target <= 0.3 ms); ` +
      `the rocklet's command takes ${rocklet >= 0 ? "+" : ""}${
        rocklet.toFixed(3)
      } ms over /is_alive + raw bash (target <= 0.2 ms)`,
  );
}

/** Layers of one backend. */
async function benchLayers(
  type: TestBackend,
  options: { quick: boolean; kit: BenchKit },
): Promise<void> {
  const { quick, kit } = options;
  await using admin = await startAdmin(type);
  await using bash = new RawBash();
  const id = testSandboxId(`bench-layers-${type}`);
  try {
    const rocklet = await startSandbox(admin, id);
    resultOf(
      "/create_session",
      await post(admin.api, "/create_session", { sandbox_id: id, session: "a" }),
    );
    await postJson(`${rocklet}/create_session`, JSON.stringify({ session: "d" }));
    const viaAdmin = JSON.stringify({ sandbox_id: id, session: "a", command: "true" });
    const direct = JSON.stringify({ session: "d", command: "true" });
    const layers = await measureRounds(kit, quick ? 200 : 2000, quick ? 20 : 200, {
      bash: () => bash.run("true"),
      alive: () => getText(`${rocklet}/is_alive`),
      direct: () => postJson(`${rocklet}/run_in_session`, direct),
      root: () => getText(`${admin.url}/`),
      admin: () => postJson(`${admin.api}/run_in_session`, viaAdmin),
    });
    printLayers(kit, type, layers);
  } finally {
    await post(admin.api, "/stop", { sandbox_id: id }).catch(() => {});
  }
}

/**
 * Commands per second across `count` sandboxes (one session each, one client loop each) through
 * one admin, beside the admin's `GET /` at the same concurrency.
 */
async function benchThroughput(
  type: TestBackend,
  options: { quick: boolean; count: number },
): Promise<void> {
  const { count } = options;
  const seconds = options.quick ? 2 : 5;
  await using admin = await startAdmin(type);
  const ids = Array.from({ length: count }, (_, i) => testSandboxId(`bench-tput-${type}-${i}`));
  try {
    // Started a few at a time: all at once would time a start storm, not the data plane.
    for (let i = 0; i < ids.length; i += 5) {
      await Promise.all(
        ids.slice(i, i + 5).map(async (id) => {
          await startSandbox(admin, id);
          resultOf(
            "/create_session",
            await post(admin.api, "/create_session", { sandbox_id: id, session: "t" }),
          );
        }),
      );
    }
    const bodies = ids.map((id) =>
      JSON.stringify({ sandbox_id: id, session: "t", command: "true" })
    );
    const run = (i: number) => postJson(`${admin.api}/run_in_session`, bodies[i] ?? "");
    await throughput(count, 0.5, run);
    const commands = await throughput(count, seconds, run);
    const root = await throughput(count, seconds, () => getText(`${admin.url}/`));
    console.log(
      `${type}: run_in_session \`true\` across ${count} sandboxes through one admin: ` +
        `${commands.toFixed(0)}/s (target >= 1500/s); admin GET / at ${count} concurrent: ` +
        `${root.toFixed(0)}/s`,
    );
  } finally {
    for (const id of ids) await post(admin.api, "/stop", { sandbox_id: id }).catch(() => {});
  }
}

/** Runs the data-plane section; `scale` adds the 50-sandbox throughput. */
export async function dataPlaneSection(
  options: { quick: boolean; scale: boolean; kit: BenchKit },
): Promise<void> {
  const { quick, scale, kit } = options;
  const docker = await checkDocker();
  const types: TestBackend[] = docker.available ? ["local", "docker"] : ["local"];
  for (const type of types) {
    console.log(`\n== data plane, ${type} backend (${quick ? "quick" : "full"} run) ==`);
    await benchLayers(type, { quick, kit });
    if (scale) await benchThroughput(type, { quick, count: 50 });
  }
  if (!docker.available) {
    console.log(`data plane on docker skipped: ${docker.reason}; run scripts/setup_docker.sh`);
  }
}
