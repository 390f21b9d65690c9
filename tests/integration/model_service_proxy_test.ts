/**
 * Proxy mode against real local upstreams (Deno.serve): retries, timeouts, streaming, routing,
 * header forwarding, bad requests, and secrets kept out of trajectories and logs.
 */
import assert from "node:assert/strict";
import { DEFAULT_MODEL_SERVICE_CONFIG } from "../../src/model_service/config.ts";
import { LlmProxy, type ProxyConfig, retryDelayMs } from "../../src/model_service/proxy.ts";
import { TrajectoryWriter } from "../../src/model_service/traj.ts";
import {
  chunk,
  completion,
  serveModelService,
  sseResponse,
  startFakeUpstream,
} from "../helpers/llm_upstream.ts";

interface Proxied {
  url: string;
  traj: () => Promise<{ request: Record<string, unknown>; response: Record<string, unknown> }[]>;
  logs: string[];
}

async function withProxy(
  config: Partial<ProxyConfig>,
  fn: (proxied: Proxied) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-proxy-" });
  const logs: string[] = [];
  const logger = {
    debug: (m: string, f?: object) => logs.push(`${m} ${JSON.stringify(f)}`),
    info: (m: string, f?: object) => logs.push(`${m} ${JSON.stringify(f)}`),
    warn: (m: string, f?: object) => logs.push(`${m} ${JSON.stringify(f)}`),
    error: (m: string, f?: object) => logs.push(`${m} ${JSON.stringify(f)}`),
  };
  try {
    const proxy = new LlmProxy({
      config: {
        ...DEFAULT_MODEL_SERVICE_CONFIG,
        retryDelay: 0.005,
        retryMaxDelay: 0.02,
        ...config,
      },
      logger,
    });
    const trajectory = new TrajectoryWriter(`${dir}/LLMTraj.jsonl`, { append: true, logger });
    await using served = serveModelService({ type: "proxy", proxy, trajectory, logger });
    await fn({
      url: served.url,
      logs,
      traj: async () => {
        const text = await Deno.readTextFile(`${dir}/LLMTraj.jsonl`).catch(() => "");
        return text.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
      },
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

const ASK = { model: "test-model", messages: [{ role: "user", content: "hi" }] };

Deno.test("proxy retries 429 and 500, then returns the 200 answer and records the call", async () => {
  await using upstream = startFakeUpstream((_, n) =>
    n === 1
      ? Response.json({ error: "slow down" }, { status: 429 })
      : n === 2
      ? new Response("boom", { status: 500 })
      : Response.json(completion("third time lucky"))
  );
  await withProxy({ proxyBaseUrl: upstream.url + "/" }, async ({ url, traj }) => {
    const response = await post(url, ASK);
    assert.equal(response.status, 200);
    assert.equal((await response.json()).choices[0].message.content, "third time lucky");
    assert.equal(upstream.calls.length, 3);
    assert.equal(upstream.calls[0]?.path, "/v1/chat/completions");
    assert.equal(upstream.calls[0]?.body.stream, false, "sent with stream: false, as ROCK");
    const [record] = await traj();
    assert.ok(record);
    assert.deepEqual(record.request, { ...ASK, stream: false });
    assert.equal((record.response as ReturnType<typeof completion>).id, "chatcmpl-test");
  });
});

Deno.test("proxy gives up after the attempts with the last retryable status and ROCK's body", async () => {
  await using upstream = startFakeUpstream(() => new Response("overloaded", { status: 429 }));
  await withProxy({ proxyBaseUrl: upstream.url, retryMaxAttempts: 3 }, async ({ url }) => {
    const response = await post(url, ASK);
    assert.equal(response.status, 429);
    assert.deepEqual(await response.json(), {
      error: { message: "LLM backend error: overloaded", type: "proxy_retry_failed", code: 429 },
    });
    assert.equal(upstream.calls.length, 3);
  });
});

Deno.test("proxy passes other statuses through at once, with their body", async () => {
  await using upstream = startFakeUpstream(() =>
    Response.json({ error: { message: "context length exceeded" } }, {
      status: 400,
      headers: { "x-request-id": "req-7" },
    })
  );
  await withProxy({ proxyBaseUrl: upstream.url }, async ({ url }) => {
    const response = await post(url, ASK);
    assert.equal(response.status, 400);
    assert.equal(response.headers.get("x-request-id"), "req-7");
    assert.equal((await response.json()).error.message, "context length exceeded");
    assert.equal(upstream.calls.length, 1);
  });
});

Deno.test("proxy retries an answer slower than request_timeout, and fails clearly when all are", async () => {
  const slow = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await using upstream = startFakeUpstream(async (call) => {
    // Far slower than the 0.1 s request timeout, so an attempt that was not abandoned shows.
    if (call.body.model === "always-slow" || upstream.calls.length === 1) await slow(3000);
    return Response.json(completion("in time"));
  });
  await withProxy(
    { proxyBaseUrl: upstream.url, requestTimeout: 0.1, retryMaxAttempts: 2 },
    async ({ url }) => {
      const started = performance.now();
      const response = await post(url, ASK);
      assert.equal(response.status, 200);
      assert.equal((await response.json()).choices[0].message.content, "in time");
      assert.ok(performance.now() - started < 2500, "the slow attempt was abandoned at 0.1 s");

      const failed = await post(url, { ...ASK, model: "always-slow" });
      assert.equal(failed.status, 500);
      assert.match(
        (await failed.json()).detail,
        /^Cannot get an answer from the LLM backend http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions after 2 attempts: timed out after 0\.1 s$/,
      );
    },
  );
});

Deno.test("proxy retries connection errors and reports them after the last attempt", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  await withProxy(
    { proxyBaseUrl: `http://127.0.0.1:${port}/v1?api-key=sk-in-query`, retryMaxAttempts: 2 },
    async ({ url, logs }) => {
      const response = await post(url, ASK);
      assert.equal(response.status, 500);
      const detail = (await response.json()).detail;
      assert.match(detail, /after 2 attempts/);
      assert.ok(!detail.includes("sk-in-query"), detail);
      assert.equal(logs.filter((l) => l.startsWith("Upstream attempt failed")).length, 2);
      assert.ok(!logs.join("\n").includes("sk-in-query"), logs.join("\n"));
    },
  );
});

Deno.test("proxy relays a stream chunk by chunk and records the assembled answer", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await using upstream = startFakeUpstream(() =>
    sseResponse([
      chunk({ role: "assistant", content: "Hel" }),
      chunk({ content: "lo" }),
      chunk({}, "stop"),
    ], { gate, gateAt: 1 })
  );
  await withProxy({ proxyBaseUrl: upstream.url }, async ({ url, traj }) => {
    const response = await post(url, { ...ASK, stream: true });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    // The first chunk arrives while the upstream still holds the rest.
    const first = await reader.read();
    assert.match(first.value ?? "", /"content":"Hel"/);
    release();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += r.value;
    assert.match(rest, /"content":"lo"/);
    assert.ok(rest.endsWith("data: [DONE]\n\n"));
    assert.equal(upstream.calls[0]?.body.stream, true);
    const [record] = await traj();
    assert.ok(record);
    assert.deepEqual((record.response as { choices: unknown[] }).choices, [
      { index: 0, message: { role: "assistant", content: "Hello" }, finish_reason: "stop" },
    ]);
  });
});

Deno.test("proxy ends a stream whose upstream goes silent past request_timeout", async () => {
  await using upstream = startFakeUpstream(() =>
    sseResponse([chunk({ content: "a" }), chunk({ content: "b" })], { delayMs: 60 })
  );
  await withProxy({ proxyBaseUrl: upstream.url, requestTimeout: 0.4 }, async ({ url }) => {
    const fast = await (await post(url, { ...ASK, stream: true })).text();
    assert.match(fast, /\[DONE\]/, "gaps under the timeout are fine");
  });
  await withProxy({ proxyBaseUrl: upstream.url, requestTimeout: 0.02 }, async ({ url, traj }) => {
    const text = await (await post(url, { ...ASK, stream: true })).text();
    assert.match(
      text,
      /data: \{"error":\{"message":"The LLM backend sent nothing for 0\.02 s mid-stream"/,
    );
    assert.ok(!text.includes("[DONE]"));
    assert.deepEqual(await traj(), [], "a broken stream is not recorded");
  });
});

Deno.test("proxy routes by proxy_rules, then default; proxy_base_url wins over both", async () => {
  await using a = startFakeUpstream(() => Response.json(completion("from a")));
  await using fallback = startFakeUpstream(() => Response.json(completion("from default")));
  const rules = { "model-a": a.url, default: fallback.url };
  await withProxy({ proxyRules: rules }, async ({ url }) => {
    const content = async (model: string) =>
      (await (await post(url, { ...ASK, model })).json()).choices[0].message.content;
    assert.equal(await content("model-a"), "from a");
    assert.equal(await content("model-b"), "from default");
  });
  await withProxy({ proxyRules: rules, proxyBaseUrl: fallback.url }, async ({ url }) => {
    const response = await post(url, { ...ASK, model: "model-a" });
    assert.equal((await response.json()).choices[0].message.content, "from default");
  });
});

Deno.test("proxy answers 400 with ROCK's messages without a model, rule, or valid body", async () => {
  await withProxy({ proxyRules: { "only-this": "http://127.0.0.1:9/v1" } }, async ({ url }) => {
    const cases: [unknown, RegExp][] = [
      [{ messages: [] }, /^Model name is required for routing\.$/],
      [{ model: "other" }, /^Model 'other' is not configured and no 'default' rule found\.$/],
      ["{bad json", /^Invalid JSON body/],
      ['"a string"', /expected a JSON object, got a string/],
      [{ model: ["x"] }, /field "model"/],
    ];
    for (const [body, pattern] of cases) {
      const response = await post(url, body);
      assert.equal(response.status, 400, JSON.stringify(body));
      const json = await response.json();
      assert.match(json.detail, pattern);
      assert.match(json.error.message, pattern);
    }
  });
});

Deno.test("proxy forwards Authorization, drops hop-by-hop headers, keeps secrets out of records and logs", async () => {
  await using upstream = startFakeUpstream(() => Response.json(completion("ok")));
  await withProxy({ proxyBaseUrl: upstream.url }, async ({ url, traj, logs }) => {
    const response = await post(url, { ...ASK, api_key: "sk-body-secret" }, {
      authorization: "Bearer sk-header-secret",
      "proxy-authorization": "Basic cHJveHk6cGFzcw==",
      "keep-alive": "timeout=5",
      "x-custom": "kept",
    });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const headers = upstream.calls[0]?.headers;
    assert.ok(headers);
    assert.equal(headers.get("authorization"), "Bearer sk-header-secret");
    assert.equal(headers.get("x-custom"), "kept");
    assert.equal(headers.get("proxy-authorization"), null);
    assert.equal(headers.get("keep-alive"), null);
    assert.equal(headers.get("content-type"), "application/json");
    const recorded = JSON.stringify(await traj());
    assert.ok(!recorded.includes("sk-"), recorded);
    assert.ok(logs.length > 0);
    assert.ok(!logs.join("\n").includes("sk-"), logs.join("\n"));
  });
});

Deno.test("retryDelayMs() doubles from retry_delay, jitters 0.5-1.5x, honours Retry-After, and is capped", () => {
  const config = { retryDelay: 2, retryMaxDelay: 30 };
  assert.equal(retryDelayMs(1, config, () => 0.5), 2000);
  assert.equal(retryDelayMs(3, config, () => 0.5), 8000);
  assert.equal(retryDelayMs(1, config, () => 0), 1000);
  assert.equal(retryDelayMs(10, config, () => 0.99), 30000);
  assert.equal(retryDelayMs(1, config, () => 0.5, 7), 7000);
  assert.equal(retryDelayMs(1, config, () => 0.5, 600), 30000);
});
