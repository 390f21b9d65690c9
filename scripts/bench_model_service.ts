/**
 * The model service section of `deno task bench`, against `rock model-service start --foreground`
 * child processes:
 * - proxy: a chat completion through the proxy beside the same call straight to the upstream (a
 *   Deno.serve stand-in in this process), both over keep-alive; the difference is the latency the
 *   proxy adds (routing, header filtering, JSON, and the trajectory record, written before the
 *   answer), with the trajectory in overwrite mode (ROCK's default) and in append mode;
 * - one trajectory record (redact, serialize, write) in process, for this small request and for
 *   a 100 KB one, beside the proxy's added latency;
 * - local mode: one turn agent -> trainer -> agent (the agent's HTTP call, answered by a
 *   TrainerSession in this process through the exchange file), beside the service's `/health`;
 *   and the same turn with the trainer running `anti-call-llm` as a process per turn (ROCK's way;
 *   ROCK's own turn takes 1 s or more: it polls the file every second).
 */
import { fileURLToPath } from "node:url";
import { pushResponse } from "../src/model_service/client.ts";
import { exchangeFilePath, trajectoryFilePath } from "../src/model_service/config.ts";
import { TrajectoryWriter } from "../src/model_service/traj.ts";
import { TrainerSession } from "../src/sdk/trainer_session.ts";
import type { BenchKit } from "./bench_admin.ts";

const ENTRY = fileURLToPath(new URL("../main.ts", import.meta.url));

interface Served {
  url: string;
  child: Deno.ChildProcess;
}

/** Starts `model-service start --foreground <args>` and waits for its address. */
async function serve(env: Record<string, string>, args: string[]): Promise<Served> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", ENTRY, "model-service", "start", "--foreground", ...args],
    env: { ...env, ROCK_LOGGING_LEVEL: "warn" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening on (http:\S+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`model service exited before listening: ${text}`);
    text += value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  const [, url = ""] = /listening on (http:\S+)/.exec(text) ?? [];
  return { url, child };
}

async function stop(served: Served): Promise<void> {
  served.child.kill("SIGTERM");
  await served.child.status;
}

const ANSWER = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1700000000,
  model: "bench",
  choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 20, completion_tokens: 1, total_tokens: 21 },
});
const REQUEST = JSON.stringify({
  model: "bench",
  messages: [
    { role: "system", content: "You are a coding agent." },
    { role: "user", content: "Run the tests and fix what fails." },
  ],
});

async function call(url: string): Promise<void> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-bench" },
    body: REQUEST,
  });
  if (!response.ok) {
    throw new Error(`bench call failed: ${response.status} ${await response.text()}`);
  }
  await response.arrayBuffer();
}

/** Lines in a trajectory file, checked to be records of the bench's answer. */
function trajectoryLines(dataDir: string): number {
  const lines = Deno.readTextFileSync(trajectoryFilePath(dataDir)).split("\n").filter((l) => l);
  if (!lines.every((line) => line.includes('"chatcmpl-bench"'))) {
    throw new Error(`unexpected trajectory lines in ${dataDir}`);
  }
  return lines.length;
}

/**
 * The proxy's added latency, trajectory on: one direct call and one through each service in
 * turn, so all see the same load and drift over the run favours none. Returns the added p50 (ms)
 * in overwrite mode.
 */
async function benchProxy(quick: boolean, kit: BenchKit, dir: string): Promise<number> {
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      await req.arrayBuffer();
      return new Response(ANSWER, { headers: { "content-type": "application/json" } });
    },
  );
  const base = `http://127.0.0.1:${upstream.addr.port}/v1`;
  const args = ["--type", "proxy", "--host", "127.0.0.1", "--port", "0", "--proxy-base-url", base];
  const modes = [
    { name: "overwrite", append: "false" },
    { name: "append", append: "true" },
  ].map((mode) => ({
    ...mode,
    dataDir: `${dir}/proxy-${mode.name}`,
    samples: [] as number[],
    served: undefined as Served | undefined,
  }));
  try {
    for (const mode of modes) {
      mode.served = await serve({
        ROCK_MODEL_SERVICE_DATA_DIR: mode.dataDir,
        ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE: mode.append,
        ROCK_MODEL_SERVICE_STATE_DIR: `${dir}/state-proxy-${mode.name}`,
      }, args);
    }
    const n = quick ? 500 : 3000;
    const warmup = 500;
    // The upstream's own route is `<base>/chat/completions`: call() adds `/v1/...` to a root.
    const root = base.replace(/\/v1$/, "");
    const directSamples: number[] = [];
    for (let i = -warmup; i < n; i++) {
      let begin = performance.now();
      await call(root);
      if (i >= 0) directSamples.push(performance.now() - begin);
      for (const mode of modes) {
        begin = performance.now();
        await call(mode.served!.url);
        if (i >= 0) mode.samples.push(performance.now() - begin);
      }
    }
    const baseline = kit.stats(directSamples);
    console.log(kit.row("baseline: chat completion straight to the upstream", baseline));
    let added = 0;
    for (const mode of modes) {
      const proxied = kit.stats(mode.samples);
      const lines = trajectoryLines(mode.dataDir);
      const expected = mode.append === "true" ? warmup + n : 1;
      if (lines !== expected) {
        throw new Error(`${mode.name} trajectory has ${lines} lines, expected ${expected}`);
      }
      console.log(
        kit.row(`proxy, record written before answer (${mode.name})`, proxied, baseline),
      );
      const difference = proxied.p50 - baseline.p50;
      if (mode.name === "overwrite") added = difference;
      console.log(
        `${`  proxy added latency, ${mode.name} (p50 difference)`.padEnd(52)} ${
          difference.toFixed(3).padStart(8)
        } ms  (target <= 0.5 ms; ${lines} trajectory line${lines === 1 ? "" : "s"} written)`,
      );
    }
    return added;
  } finally {
    for (const mode of modes) if (mode.served) await stop(mode.served);
    await upstream.shutdown();
  }
}

/** A chat request of about `bytes` bytes: a history of tool outputs. */
function requestOf(bytes: number): unknown {
  const request = JSON.parse(REQUEST);
  while (JSON.stringify(request).length < bytes) {
    request.messages.push({ role: "tool", content: "test output line\n".repeat(64) });
  }
  return request;
}

/**
 * One trajectory record in process, as a share of the proxy's added p50: in all (redact,
 * serialize, write), and the part left after the answer when the request was prepared while the
 * call waited for it (as the proxy and local mode do).
 */
function benchRecord(quick: boolean, kit: BenchKit, dir: string, added: number): void {
  const answer = JSON.parse(ANSWER);
  const us = (ms: number) => `${(ms * 1000).toFixed(1)} us (${(ms / added * 100).toFixed(0)}%)`;
  for (const request of [requestOf(0), requestOf(100_000)]) {
    const size = JSON.stringify(request).length;
    const label = size < 1024 ? `${size} B` : `${Math.round(size / 1024)} KiB`;
    // Fewer large records: in append mode each one grows the file.
    const n = size < 1024 ? (quick ? 500 : 3000) : (quick ? 200 : 500);
    for (const append of [false, true]) {
      const path = `${dir}/record-${append ? "append" : "overwrite"}.jsonl`;
      const writer = new TrajectoryWriter(path, { append });
      const all: number[] = [];
      const afterAnswer: number[] = [];
      for (let i = -50; i < n; i++) {
        const begin = performance.now();
        const record = writer.begin(request);
        record.prepare();
        const answered = performance.now();
        record.write(answer);
        const end = performance.now();
        if (i >= 0) {
          all.push(end - begin);
          afterAnswer.push(end - answered);
        }
      }
      writer.close();
      Deno.removeSync(path);
      console.log(
        `${`  one record, ${label} request (${append ? "append" : "overwrite"})`.padEnd(52)} p50 ${
          us(kit.stats(all).p50)
        } in all, ${us(kit.stats(afterAnswer).p50)} after the answer`,
      );
    }
  }
}

async function benchLocal(
  quick: boolean,
  kit: BenchKit,
  env: Record<string, string>,
  dataDir: string,
): Promise<void> {
  const local = await serve(env, ["--type", "local", "--host", "127.0.0.1", "--port", "0"]);
  try {
    const health = await kit.measure(quick ? 200 : 2000, 50, async () => {
      await (await fetch(`${local.url}/health`)).arrayBuffer();
    });
    console.log(kit.row("baseline: local service GET /health", health));

    const session = TrainerSession.forDataDir(dataDir);
    const stopTrainer = new AbortController();
    const trainer = (async () => {
      while (true) {
        const request = await session.next(stopTrainer.signal);
        if (!request) return;
        session.respond(request.index, ANSWER);
      }
    })();
    const turn = await kit.measure(quick ? 200 : 2000, 20, () => call(local.url));
    stopTrainer.abort();
    await trainer;
    session.close();
    console.log(
      kit.row(
        "local turn agent -> trainer -> agent (TrainerSession)",
        turn,
        health,
        "p50 <= 10 ms; ROCK >= 1 s",
      ),
    );

    // The trainer as ROCK runs it: one `anti-call-llm` process per turn. Calls 1..K are answered;
    // the first process re-sends answer K (skipped, as ROCK) and waits for request K+1.
    let index = turn.n + 20;
    const cli = (answer: number) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          ENTRY,
          "model-service",
          "anti-call-llm",
          "--index",
          String(answer),
          "--response",
          ANSWER,
        ],
        env,
        stdout: "null",
        stderr: "inherit",
      }).output();
    const samples: number[] = [];
    let trainerStep = cli(index);
    for (let i = 0; i < (quick ? 5 : 20); i++) {
      const begin = performance.now();
      const answered = call(local.url);
      await trainerStep;
      trainerStep = cli(++index);
      await answered;
      samples.push(performance.now() - begin);
    }
    // The last process waits for one more request: send it and answer it in this process.
    const last = call(local.url);
    await trainerStep;
    pushResponse(exchangeFilePath(dataDir), ++index, ANSWER);
    await last;
    console.log(
      kit.row("local turn with anti-call-llm as a process per turn", kit.stats(samples), health),
    );
  } finally {
    await stop(local);
  }
}

/** Runs the model service section (fewer iterations when `quick`). */
export async function modelServiceSection(quick: boolean, kit: BenchKit): Promise<void> {
  console.log(`\n== model service (${quick ? "quick" : "full"} run) ==`);
  const dir = await Deno.makeTempDir({ prefix: "rock-bench-ms-" });
  try {
    const added = await benchProxy(quick, kit, dir);
    benchRecord(quick, kit, dir, added);
    const env = {
      ROCK_MODEL_SERVICE_DATA_DIR: `${dir}/data`,
      ROCK_MODEL_SERVICE_STATE_DIR: `${dir}/state-local`,
    };
    await benchLocal(quick, kit, env, `${dir}/data`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
