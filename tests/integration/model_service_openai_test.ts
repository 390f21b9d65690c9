/**
 * The official `openai` npm client against the model service: through the proxy to a local
 * upstream stand-in, and in local mode answered by a TrainerSession; plain and streamed.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { DEFAULT_MODEL_SERVICE_CONFIG } from "../../src/model_service/config.ts";
import { LocalExchange } from "../../src/model_service/local_exchange.ts";
import { LlmProxy } from "../../src/model_service/proxy.ts";
import { TrainerSession } from "../../src/sdk/trainer_session.ts";
import {
  chunk,
  completion,
  serveModelService,
  sseResponse,
  startFakeUpstream,
} from "../helpers/llm_upstream.ts";

function client(baseURL: string): OpenAI {
  return new OpenAI({ baseURL, apiKey: "sk-test-key", maxRetries: 0 });
}

Deno.test("openai client through the proxy: a completion and a streamed completion", async () => {
  await using upstream = startFakeUpstream((call, n) =>
    call.body.stream
      ? sseResponse([chunk({ role: "assistant", content: "str" }), chunk({ content: "eamed" }), {
        ...chunk({}, "stop"),
      }])
      : n === 1
      ? new Response("busy", { status: 429 })
      : Response.json(completion("plain answer"))
  );
  const proxy = new LlmProxy({
    config: { ...DEFAULT_MODEL_SERVICE_CONFIG, proxyBaseUrl: upstream.url, retryDelay: 0.001 },
  });
  await using served = serveModelService({ type: "proxy", proxy });
  const openai = client(`${served.url}/v1`);

  const answer = await openai.chat.completions.create({
    model: "test-model",
    messages: [{ role: "user", content: "hello" }],
  });
  assert.equal(answer.choices[0]?.message.content, "plain answer");
  assert.equal(upstream.calls[1]?.headers.get("authorization"), "Bearer sk-test-key");

  const stream = await openai.chat.completions.create({
    model: "test-model",
    messages: [{ role: "user", content: "hello" }],
    stream: true,
  });
  let text = "";
  let finish: string | null = null;
  for await (const part of stream) {
    text += part.choices[0]?.delta?.content ?? "";
    finish = part.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, "streamed");
  assert.equal(finish, "stop");
});

Deno.test("openai client in local mode: a trainer answers a completion and a streamed one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-openai-" });
  try {
    const file = `${dir}/LLMService.log`;
    const exchange = LocalExchange.open({ exchangeFile: file });
    await using served = serveModelService({ type: "local", exchange });
    const openai = client(`${served.url}/v1`);
    using session = TrainerSession.open(file);
    const trainer = (async () => {
      for await (const request of session) {
        const messages = request.body.messages as { content: string }[];
        session.respond(request.index, completion(`trainer says: ${messages[0]?.content}`));
        if (request.index === 2) return;
      }
    })();
    const answer = await openai.chat.completions.create({
      model: "policy",
      messages: [{ role: "user", content: "one" }],
    });
    assert.equal(answer.choices[0]?.message.content, "trainer says: one");
    const stream = await openai.chat.completions.create({
      model: "policy",
      messages: [{ role: "user", content: "two" }],
      stream: true,
    });
    let text = "";
    for await (const part of stream) text += part.choices[0]?.delta?.content ?? "";
    assert.equal(text, "trainer says: two");
    await trainer;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
