/**
 * The model service's HTTP routes (ROCK's wire): `GET /health`, `POST /v1/chat/completions`, and
 * in local mode `POST /v1/agent/watch`. Errors are mapped in one place: request errors carry
 * ROCK's `{"detail"}` and the OpenAI `{"error": {message, type, code}}` that OpenAI clients read;
 * unexpected ones get ROCK's `internal_error` body.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { z } from "zod";
import { BadRequestError, RockError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import {
  ChatCompletionRequest,
  type ModelServiceErrorBody,
  WatchAgentRequest,
} from "../protocol/model_service.ts";
import { parseWire } from "../protocol/validate.ts";
import type { LocalExchange } from "./local_exchange.ts";
import type { LlmProxy } from "./proxy.ts";
import { completionToSse } from "../formats/sse.ts";
import type { CallRecord, TrajectoryWriter } from "./traj.ts";

interface CommonDeps {
  /** Where calls are recorded (none: not recorded). */
  trajectory?: TrajectoryWriter;
  /** Where errors are logged. */
  logger?: Logger;
}

/** Local mode: a trainer answers each call through the exchange file. */
export interface LocalModelServiceDeps extends CommonDeps {
  type: "local";
  exchange: LocalExchange;
}

/** Proxy mode: calls are forwarded to LLM endpoints. */
export interface ProxyModelServiceDeps extends CommonDeps {
  type: "proxy";
  proxy: LlmProxy;
}

/** What the model service app needs, by mode. */
export type ModelServiceAppDeps = LocalModelServiceDeps | ProxyModelServiceDeps;

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  404: "not_found_error",
  499: "cancelled",
  502: "bad_gateway",
  503: "service_unavailable",
};

/** Converts any thrown value to the model service's error reply. */
export function modelServiceErrorResponse(error: unknown): Response {
  if (error instanceof RockError) {
    const body: ModelServiceErrorBody = {
      detail: error.message,
      error: {
        message: error.message,
        type: ERROR_TYPES[error.status] ?? (error.status >= 500 ? "internal_error" : "error"),
        code: error.status,
      },
    };
    return Response.json(body, { status: error.status });
  }
  const message = error instanceof Error ? error.message : String(error);
  const body: ModelServiceErrorBody = {
    error: { message, type: "internal_error", code: "internal_error" },
  };
  return Response.json(body, { status: 500 });
}

function parseBody<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  try {
    return parseWire(schema, value, what);
  } catch (error) {
    // OpenAI-compatible servers answer 400 to invalid requests (parseWire's default is 422).
    throw new BadRequestError((error as Error).message, { status: 400 });
  }
}

/** Reads a JSON object body, or throws a 400 saying what is wrong with it. */
async function jsonObject(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BadRequestError(`Invalid JSON body: ${(error as Error).message}`, { status: 400 });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BadRequestError(
      `Invalid request body: expected a JSON object, got ${
        Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`
      }`,
      { status: 400 },
    );
  }
  return value as Record<string, unknown>;
}

/**
 * Reads a chat request and validates the fields the service uses. The object is kept as the agent
 * sent it (zod's output would put known keys first): the exchange file and upstream see its order.
 */
async function chatRequest(c: Context): Promise<ChatCompletionRequest> {
  const body = await jsonObject(c);
  parseBody(ChatCompletionRequest, body, "chat request");
  return body as ChatCompletionRequest;
}

/** The reply to a local-mode call: the trainer's JSON as is, or as SSE when streaming was asked. */
function localReply(
  request: ChatCompletionRequest,
  answer: { index: number; payload: string },
  record: CallRecord | undefined,
): Response {
  let response: unknown;
  try {
    response = JSON.parse(answer.payload);
  } catch (error) {
    throw new RockError(
      `Invalid response from the trainer for call ${answer.index}: not JSON: ${
        (error as Error).message
      }`,
      { status: 502 },
    );
  }
  // Written before the reply exists: whoever has the answer finds the record in the file.
  record?.write(response);
  const completion = response as Record<string, unknown>;
  if (request.stream === true && Array.isArray(completion?.choices)) {
    return new Response(completionToSse(completion), {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  }
  return new Response(answer.payload, { headers: { "content-type": "application/json" } });
}

/** Builds the model service's Hono app for local or proxy mode. */
export function createModelServiceApp(deps: ModelServiceAppDeps): Hono {
  const logger = deps.logger ?? silentLogger;
  const { trajectory } = deps;
  const app = new Hono();

  app.onError((error, c) => {
    if (!(error instanceof RockError)) {
      logger.error("Unexpected error", { path: c.req.path, error: String(error) });
    }
    return modelServiceErrorResponse(error);
  });
  app.notFound((c) =>
    modelServiceErrorResponse(
      new RockError(`Not Found: ${c.req.method} ${c.req.path}`, { status: 404 }),
    )
  );

  app.get("/health", (c) => c.json({ status: "healthy" }));

  if (deps.type === "local") {
    const { exchange } = deps;
    app.post("/v1/chat/completions", async (c) => {
      const request = await chatRequest(c);
      // complete() writes the request line before its first await: the record's request part
      // is serialized while the trainer works on it.
      const answer = exchange.complete(request, c.req.raw.signal);
      const record = trajectory?.begin(request);
      record?.prepare();
      return localReply(request, await answer, record);
    });
    app.post("/v1/agent/watch", async (c) => {
      const body = await jsonObject(c);
      if (body.pid === undefined || body.pid === null) {
        throw new BadRequestError("Missing 'pid' in request body", { status: 400 });
      }
      const { pid } = parseBody(WatchAgentRequest, body, "watch request");
      exchange.watchAgent(pid);
      return c.json({ status: "watching", pid });
    });
  } else {
    const { proxy } = deps;
    app.post("/v1/chat/completions", async (c) => {
      const request = await chatRequest(c);
      return await proxy.forward(request, {
        headers: c.req.raw.headers,
        signal: c.req.raw.signal,
        trajectory,
      });
    });
  }
  return app;
}
