/**
 * Local mode over real HTTP and a real exchange file: an agent (HTTP client) and a trainer
 * (anti-call-llm / TrainerSession) take turns; SESSION_END, cancellation and bad requests.
 */
import assert from "node:assert/strict";
import { appendFileSync, readFileSync } from "node:fs";
import { antiCallLlm, pushResponse, waitForRequest } from "../../src/model_service/client.ts";
import { parseLine, responseLine } from "../../src/formats/file_protocol.ts";
import { LocalExchange } from "../../src/model_service/local_exchange.ts";
import { TrajectoryWriter } from "../../src/model_service/traj.ts";
import { TrainerSession } from "../../src/sdk/trainer_session.ts";
import { completion, serveModelService } from "../helpers/llm_upstream.ts";

interface Local {
  url: string;
  dataDir: string;
  file: string;
  exchange: LocalExchange;
}

async function withLocal(fn: (local: Local) => Promise<void>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "rock-ms-local-" });
  try {
    const file = `${dataDir}/LLMService.log`;
    const exchange = LocalExchange.open({ exchangeFile: file, agentCheckIntervalMs: 20 });
    const trajectory = new TrajectoryWriter(`${dataDir}/LLMTraj.jsonl`, { append: true });
    await using served = serveModelService({ type: "local", exchange, trajectory });
    await fn({ url: served.url, dataDir, file, exchange });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

function ask(url: string, content: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "policy", messages: [{ role: "user", content }] }),
    ...init,
  });
}

function fileLines(file: string) {
  return readFileSync(file, "utf8").split("\n").filter((l) => l).map((l) => parseLine(l)!);
}

const AGENT = `
const [url, n] = Deno.args;
for (let i = 1; i <= Number(n); i++) {
  const response = await fetch(url + "/v1/chat/completions", {
    method: "POST",
    body: JSON.stringify({ model: "policy", messages: [{ role: "user", content: "call " + i }] }),
  });
  const body = await response.json();
  console.log(response.status + " " + body.choices[0].message.content);
}
`;

Deno.test("local mode: 100 agent calls and anti-call-llm turns lose and repeat no index; the agent's exit ends the session", async () => {
  await withLocal(async ({ url, dataDir, file }) => {
    const agent = new Deno.Command(Deno.execPath(), {
      args: ["eval", AGENT, url, "100"],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = Promise.all([
      new Response(agent.stdout).text(),
      new Response(agent.stderr).text(),
      agent.status,
    ]);
    const watch = await fetch(`${url}/v1/agent/watch`, {
      method: "POST",
      body: JSON.stringify({ pid: agent.pid }),
    });
    assert.deepEqual(await watch.json(), { status: "watching", pid: agent.pid });

    let request = await antiCallLlm(file, 0);
    let index = 0;
    while (request !== "SESSION_END") {
      index++;
      const asked = JSON.parse(request).messages[0].content;
      assert.equal(asked, `call ${index}`, "requests come in order, none lost");
      request = await antiCallLlm(file, index, JSON.stringify(completion(`answer to ${asked}`)));
    }
    assert.equal(index, 100);
    const [stdout, stderr, status] = await output;
    assert.equal(status.code, 0, stderr);
    const answers = stdout.trim().split("\n");
    assert.deepEqual(answers, Array.from({ length: 100 }, (_, i) => `200 answer to call ${i + 1}`));

    const lines = fileLines(file);
    const indexes = (kind: string) =>
      lines.filter((l) => l.kind === kind).map((l) => (l as { index: number }).index);
    const expected = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.deepEqual(indexes("request"), expected);
    assert.deepEqual(indexes("response"), expected);
    assert.equal(lines.at(-1)?.kind, "session_end");
    const traj = (await Deno.readTextFile(`${dataDir}/LLMTraj.jsonl`)).trim().split("\n");
    assert.equal(traj.length, 100);
    assert.equal(JSON.parse(traj[41] ?? "").request.messages[0].content, "call 42");
  });
});

Deno.test("local mode: concurrent calls get distinct indexes and each its own answer", async () => {
  await withLocal(async ({ url, file }) => {
    const calls = Array.from({ length: 8 }, (_, i) => ask(url, `parallel ${i}`));
    using session = TrainerSession.open(file);
    const seen = new Set<number>();
    for await (const request of session) {
      seen.add(request.index);
      const content = (request.body.messages as { content: string }[])[0]?.content;
      session.respond(request.index, completion(`re: ${content}`));
      if (seen.size === 8) break;
    }
    const answers = await Promise.all(calls.map(async (c) => (await (await c).json()).choices[0]));
    for (const [i, choice] of answers.entries()) {
      assert.equal(choice.message.content, `re: parallel ${i}`);
    }
    assert.deepEqual([...seen].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

Deno.test("local mode: a cancelled call keeps its index; the next call takes the next one", async () => {
  await withLocal(async ({ url, file, exchange }) => {
    const abort = new AbortController();
    const cancelled = ask(url, "first", { signal: abort.signal }).catch((e) => e);
    assert.equal((await waitForRequest(file, 1)).kind, "request");
    abort.abort();
    assert.ok((await cancelled) instanceof Error);
    // The trainer answers the cancelled call (dropped), then waits for call 2.
    const trainer = antiCallLlm(file, 1, JSON.stringify(completion("too late")));
    const second = ask(url, "second");
    assert.equal(JSON.parse(await trainer).messages[0].content, "second");
    pushResponse(file, 2, JSON.stringify(completion("for the second")));
    assert.equal((await (await second).json()).choices[0].message.content, "for the second");
    assert.equal(exchange.nextIndex, 3);
    const requests = fileLines(file).filter((l) => l.kind === "request");
    assert.deepEqual(requests.map((l) => (l as { index: number }).index), [1, 2]);
  });
});

Deno.test("local mode: SESSION_END answers waiting and later calls with ROCK's 500", async () => {
  await withLocal(async ({ url, file }) => {
    const waiting = ask(url, "never answered");
    await waitForRequest(file, 1);
    appendFileSync(file, "SESSION_END\n");
    const response = await waiting;
    assert.equal(response.status, 500);
    const body = await response.json();
    assert.equal(body.detail, "No response received from Roll process");
    assert.equal(body.error.message, "No response received from Roll process");
    const later = await ask(url, "after the end");
    assert.equal(later.status, 500);
    await later.body?.cancel();
    assert.equal(fileLines(file).filter((l) => l.kind === "request").length, 1);
  });
});

Deno.test("local mode: stream: true gets the trainer's answer as server-sent events", async () => {
  await withLocal(async ({ url, file }) => {
    const call = fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "p", stream: true, messages: [] }),
    });
    await waitForRequest(file, 1);
    appendFileSync(file, responseLine(JSON.stringify(completion("streamed")), 1, Date.now()));
    const response = await call;
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    const text = await response.text();
    assert.match(text, /"delta":\{"role":"assistant","content":"streamed"\}/);
    assert.ok(text.endsWith("data: [DONE]\n\n"));
  });
});

Deno.test("local mode: bad requests get a clear 400; a non-JSON answer gets 502", async () => {
  await withLocal(async ({ url, file }) => {
    const post = async (path: string, body: string) => {
      const response = await fetch(`${url}${path}`, { method: "POST", body });
      return { status: response.status, body: await response.json() };
    };
    const cases: [string, string, RegExp][] = [
      ["/v1/chat/completions", "{not json", /^Invalid JSON body/],
      ["/v1/chat/completions", "[1,2]", /expected a JSON object, got an array/],
      ["/v1/chat/completions", '{"model": 12}', /field "model"/],
      ["/v1/chat/completions", '{"stream": "yes"}', /field "stream"/],
      ["/v1/agent/watch", "{}", /^Missing 'pid' in request body$/],
      ["/v1/agent/watch", '{"pid": "abc"}', /field "pid"/],
    ];
    for (const [path, body, pattern] of cases) {
      const result = await post(path, body);
      assert.equal(result.status, 400, `${path} ${body}`);
      assert.match(result.body.detail, pattern);
      assert.equal(result.body.error.type, "invalid_request_error");
    }
    assert.deepEqual(await (await fetch(`${url}/health`)).json(), { status: "healthy" });
    const missing = await fetch(`${url}/v1/nothing`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();

    const call = ask(url, "answered badly");
    await waitForRequest(file, 1);
    appendFileSync(file, responseLine("not json at all", 1, Date.now()));
    const bad = await call;
    assert.equal(bad.status, 502);
    assert.match((await bad.json()).detail, /Invalid response from the trainer for call 1/);
  });
});

Deno.test("local mode: the request line keeps the agent's JSON as sent, key order included", async () => {
  await withLocal(async ({ url, file }) => {
    const sent = '{"messages":[{"role":"user","content":"x"}],"temperature":0.2,"model":"m"}';
    const call = fetch(`${url}/v1/chat/completions`, { method: "POST", body: sent });
    const found = await waitForRequest(file, 1);
    assert.equal(found.kind === "request" && found.payload, sent);
    pushResponse(file, 1, JSON.stringify(completion("ok")));
    await (await call).body?.cancel();
  });
});
