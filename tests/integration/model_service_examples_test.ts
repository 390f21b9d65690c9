/** The model service examples run against a real service and print what their comments promise. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { DEFAULT_MODEL_SERVICE_CONFIG } from "../../src/model_service/config.ts";
import { LocalExchange } from "../../src/model_service/local_exchange.ts";
import { LlmProxy } from "../../src/model_service/proxy.ts";
import { TrajectoryWriter } from "../../src/model_service/traj.ts";
import {
  chunk,
  completion,
  serveModelService,
  sseResponse,
  startFakeUpstream,
} from "../helpers/llm_upstream.ts";

async function runExample(name: string, args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      fileURLToPath(new URL(`../../examples/model_service/${name}`, import.meta.url)),
      ...args,
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

Deno.test("examples/model_service/local_loop.ts: a trainer answers every agent call until the agent exits", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "rock-ms-example-" });
  try {
    const exchange = LocalExchange.open({
      exchangeFile: `${dataDir}/LLMService.log`,
      agentCheckIntervalMs: 20,
    });
    await using served = serveModelService({ type: "local", exchange });
    const stdout = await runExample("local_loop.ts", [served.url, dataDir, "4"]);
    assert.match(
      stdout,
      /^call 1: step 1 -> policy output for "step 1" \(context of 2 messages\)$/m,
    );
    assert.match(stdout, /^call 4: step 4 -> .*\(context of 8 messages\)$/m);
    assert.match(stdout, /^agent: done after 4 calls$/m);
    assert.match(stdout, /^session ended after 4 calls$/m);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("examples/model_service/proxy.ts: the openai client gets a completion and a stream through the proxy", async () => {
  await using upstream = startFakeUpstream((call) =>
    call.body.stream
      ? sseResponse([chunk({ role: "assistant", content: "one, " }), chunk({ content: "two" })])
      : Response.json(completion("hello from upstream"))
  );
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-example-" });
  try {
    const trajectory = new TrajectoryWriter(`${dir}/LLMTraj.jsonl`, { append: true });
    const proxy = new LlmProxy({
      config: { ...DEFAULT_MODEL_SERVICE_CONFIG, proxyBaseUrl: upstream.url },
    });
    await using served = serveModelService({ type: "proxy", proxy, trajectory });
    const stdout = await runExample("proxy.ts", [served.url, "test-model"], {
      OPENAI_API_KEY: "sk-example-secret",
    });
    assert.match(stdout, /^completion: hello from upstream$/m);
    assert.match(stdout, /^stream: one, two \(\d+ chunks\)$/m);
    assert.equal(upstream.calls[0]?.headers.get("authorization"), "Bearer sk-example-secret");
    const traj = await Deno.readTextFile(`${dir}/LLMTraj.jsonl`);
    assert.equal(traj.trim().split("\n").length, 2);
    assert.ok(!traj.includes("sk-example-secret"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
