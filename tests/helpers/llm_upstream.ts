/**
 * A stand-in for an LLM endpoint (Deno.serve on 127.0.0.1:0) and a model service on a loopback
 * port, for tests.
 */
import { createModelServiceApp, type ModelServiceAppDeps } from "../../src/model_service/app.ts";

/** One call the upstream received. */
export interface UpstreamCall {
  path: string;
  headers: Headers;
  body: Record<string, unknown>;
}

/** A running stand-in upstream; `url` ends with `/v1`. */
export interface FakeUpstream extends AsyncDisposable {
  url: string;
  calls: UpstreamCall[];
}

/** Answers call number `n` (1-based). */
export type UpstreamHandler = (call: UpstreamCall, n: number) => Response | Promise<Response>;

/** Serves `handler` on a free loopback port. */
export function startFakeUpstream(handler: UpstreamHandler): FakeUpstream {
  const calls: UpstreamCall[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const call = {
      path: new URL(req.url).pathname,
      headers: req.headers,
      body: await req.json().catch(() => ({})),
    };
    calls.push(call);
    return await handler(call, calls.length);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/v1`,
    calls,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

/** A chat.completion answering `content`. */
export function completion(content: string, model = "test-model"): Record<string, unknown> {
  return {
    id: "chatcmpl-test",
    object: "chat.completion",
    created: 1700000000,
    model,
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  };
}

/** A chunk of a streamed chat completion. */
export function chunk(
  delta: Record<string, unknown>,
  finish: string | null = null,
): Record<string, unknown> {
  return {
    id: "chatcmpl-stream",
    object: "chat.completion.chunk",
    created: 1700000000,
    model: "test-model",
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
}

/**
 * An SSE response sending `events` (then `[DONE]`, unless `done` is false), waiting `delayMs`
 * before each and before the end, or until `gate` resolves before the event at `gateAt`.
 */
export function sseResponse(
  events: unknown[],
  options: { delayMs?: number; gate?: Promise<void>; gateAt?: number; done?: boolean } = {},
): Response {
  const encoder = new TextEncoder();
  let i = 0;
  let sendDone = options.done !== false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (options.gate && i === options.gateAt) await options.gate;
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      if (i < events.length) {
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(events[i++])}\n\n`));
      } else if (sendDone) {
        sendDone = false;
        controller.enqueue(encoder.encode("data: [DONE]\n\n"));
      } else {
        controller.close();
      }
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

/** A model service app on a free loopback port. */
export interface ServedModelService extends AsyncDisposable {
  url: string;
}

/** Serves `createModelServiceApp(deps)` on 127.0.0.1:0; dispose closes the exchange/proxy too. */
export function serveModelService(deps: ModelServiceAppDeps): ServedModelService {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    createModelServiceApp(deps).fetch,
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    async [Symbol.asyncDispose]() {
      if (deps.type === "local") await deps.exchange.close();
      else deps.proxy.close();
      await server.shutdown();
      deps.trajectory?.close();
    },
  };
}
