/**
 * Proxy mode: an OpenAI client talks to the model service, which forwards to the real endpoint
 * (with retries on 429/500 and timeouts) and records each call in LLMTraj.jsonl. Start a proxy:
 *
 *   rock model-service start --type proxy --port 8080 --proxy-base-url https://api.openai.com/v1
 *
 * then:
 *
 *   OPENAI_API_KEY=sk-... deno run -A examples/model_service/proxy.ts http://127.0.0.1:8080 [MODEL]
 *
 * The key is forwarded to the endpoint as the Authorization header, never logged or recorded.
 */
import OpenAI from "openai";

const [url = "http://127.0.0.1:8080", model = "gpt-4o-mini"] = Deno.args;
const openai = new OpenAI({
  baseURL: `${url}/v1`,
  apiKey: Deno.env.get("OPENAI_API_KEY") ?? "sk-example",
  maxRetries: 0, // the proxy retries
});

const completion = await openai.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Say hello" }],
});
console.log(`completion: ${completion.choices[0].message.content}`);

// Streaming is relayed chunk by chunk (ROCK's proxy refuses stream: true).
const stream = await openai.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Count to three" }],
  stream: true,
});
let text = "";
let chunks = 0;
for await (const part of stream) {
  text += part.choices[0]?.delta?.content ?? "";
  chunks++;
}
console.log(`stream: ${text} (${chunks} chunks)`);
