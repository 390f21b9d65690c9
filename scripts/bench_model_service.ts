/**
 * The model service section of `deno task bench`, against `rock model-service start --foreground`
 * child processes:
 * - proxy: a chat completion through the proxy beside the same call straight to the upstream (a
 *   Deno.serve stand-in in this process), both over keep-alive; the difference is the latency the
 *   proxy adds (routing, header filtering, JSON, trajectory write);
 * - local mode: one turn agent -> trainer -> agent (the agent's HTTP call, answered by a
 *   TrainerSession in this process through the exchange file), beside the service's `/health`;
 *   and the same turn with the trainer running `anti-call-llm` as a process per turn (ROCK's way;
 *   ROCK's own turn takes 1 s or more: it polls the file every second).
 */
import { fileURLToPath } from "node:url";
import { pushResponse } from "../src/model_service/client.ts";
import { exchangeFilePath } from "../src/model_service/config.ts";
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
  return { url: /listening on (http:\S+)/.exec(text)![1], child };
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

async function benchProxy(
  quick: boolean,
  kit: BenchKit,
  env: Record<string, string>,
): Promise<void> {
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      await req.arrayBuffer();
      return new Response(ANSWER, { headers: { "content-type": "application/json" } });
    },
  );
  const base = `http://127.0.0.1:${upstream.addr.port}/v1`;
  const proxy = await serve(env, [
    "--type",
    "proxy",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--proxy-base-url",
    base,
  ]);
  try {
    const n = quick ? 500 : 3000;
    // The upstream's own route is `<base>/chat/completions`: call() adds `/v1/...` to a root.
    const root = base.replace(/\/v1$/, "");
    // Warm up both paths (JIT, connection pools), then alternate one direct and one proxied call,
    // so both see the same load and drift over the run favours neither.
    for (let i = 0; i < 500; i++) {
      await call(root);
      await call(proxy.url);
    }
    const directSamples: number[] = [];
    const proxiedSamples: number[] = [];
    for (let i = 0; i < n; i++) {
      let begin = performance.now();
      await call(root);
      directSamples.push(performance.now() - begin);
      begin = performance.now();
      await call(proxy.url);
      proxiedSamples.push(performance.now() - begin);
    }
    const baseline = kit.stats(directSamples);
    const proxied = kit.stats(proxiedSamples);
    console.log(kit.row("baseline: chat completion straight to the upstream", baseline));
    console.log(kit.row("chat completion through the proxy", proxied, baseline));
    console.log(
      `${"proxy added latency (p50 difference)".padEnd(52)} ${
        (proxied.p50 - baseline.p50).toFixed(3).padStart(8)
      } ms  (target <= 0.5 ms)`,
    );
  } finally {
    await stop(proxy);
    await upstream.shutdown();
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
    const env = {
      ROCK_MODEL_SERVICE_DATA_DIR: `${dir}/data`,
      ROCK_MODEL_SERVICE_STATE_DIR: `${dir}/state-proxy`,
    };
    await benchProxy(quick, kit, env);
    await benchLocal(
      quick,
      kit,
      { ...env, ROCK_MODEL_SERVICE_STATE_DIR: `${dir}/state-local` },
      `${dir}/data`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
