/**
 * Proxy mode: forwards OpenAI chat completions to real LLM endpoints.
 * - Routing as ROCK: `proxy_base_url`, else `proxy_rules[model]`, else `proxy_rules.default`.
 * - Retries on retryable statuses, timeouts and connection errors: attempts as ROCK (6), delay
 *   2 s doubling, each delay jittered to 0.5-1.5x and capped (`retry_max_delay`); a Retry-After
 *   header lengthens it. Other statuses are passed through with their body.
 * - Each attempt has `request_timeout` (an AbortSignal): for the whole answer when not
 *   streaming; for the headers and then each gap between chunks when streaming.
 * - Streaming (`stream: true`; ROCK rejects it) is relayed chunk by chunk while the chunks are
 *   assembled into the one completion the trajectory records.
 * Hop-by-hop headers are dropped; Authorization is forwarded and never logged.
 */
import { BadRequestError, CancelledError, RockError, UnavailableError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import type { ChatCompletionRequest } from "../protocol/model_service.ts";
import type { ModelServiceConfig } from "./config.ts";
import { dropHeaders, loggableUrl, RESPONSE_DROP, upstreamHeaders } from "./headers.ts";
import { relay, replyStream } from "./stream_relay.ts";
import type { TrajectoryWriter } from "./traj.ts";

/** The configuration keys the proxy uses. */
export type ProxyConfig = Pick<
  ModelServiceConfig,
  | "proxyBaseUrl"
  | "proxyRules"
  | "retryableStatusCodes"
  | "requestTimeout"
  | "retryMaxAttempts"
  | "retryDelay"
  | "retryMaxDelay"
>;

/** What the proxy needs. */
export interface LlmProxyOptions {
  /** Routing, retry and timeout settings. */
  config: ProxyConfig;
  /** The upstream seam (default: global fetch). */
  fetch?: typeof fetch;
  /** Where attempts are logged (model, upstream origin and path, status; never headers). */
  logger?: Logger;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
}

/** Seconds of a Retry-After header (delta or HTTP date), or undefined. */
function retryAfterSeconds(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}

/**
 * The delay in ms before retry number `retry` (1 for the first): `retryDelay * 2^(retry-1)`,
 * jittered to 0.5-1.5x, at least Retry-After, capped at `retryMaxDelay`.
 */
export function retryDelayMs(
  retry: number,
  config: Pick<ProxyConfig, "retryDelay" | "retryMaxDelay">,
  random: () => number = Math.random,
  retryAfter?: number,
): number {
  const base = Math.min(config.retryMaxDelay, config.retryDelay * 2 ** (retry - 1));
  const seconds = Math.max(base * (0.5 + random()), retryAfter ?? 0);
  return Math.round(Math.min(config.retryMaxDelay, seconds) * 1000);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

type Attempt =
  | { kind: "answer"; status: number; headers: Headers; text: string }
  | { kind: "stream"; response: Response }
  | { kind: "retryable"; status: number; body: string; retryAfter?: number | undefined }
  | { kind: "failed"; error: string };

/** Forwards chat completions with routing, retries, timeouts and streaming. */
export class LlmProxy {
  #config: ProxyConfig;
  #fetch: typeof fetch;
  #logger: Logger;
  #random: () => number;
  #retryable: Set<number>;
  #closing = new AbortController();
  #loggable = new Map<string, string>();

  /** Creates the proxy. */
  constructor(options: LlmProxyOptions) {
    this.#config = options.config;
    this.#fetch = options.fetch ?? fetch;
    this.#logger = options.logger ?? silentLogger;
    this.#random = options.random ?? Math.random;
    this.#retryable = new Set(options.config.retryableStatusCodes);
  }

  /**
   * The upstream base URL for `model` (no trailing slash).
   * @throws {BadRequestError} (400) without a model, or without a rule for it and no "default".
   */
  route(model: string | undefined): string {
    if (this.#config.proxyBaseUrl) return this.#config.proxyBaseUrl.replace(/\/+$/, "");
    if (!model) {
      throw new BadRequestError("Model name is required for routing.", { status: 400 });
    }
    const rules = this.#config.proxyRules;
    const base = (Object.hasOwn(rules, model) ? rules[model] : undefined) ?? rules["default"];
    if (!base) {
      throw new BadRequestError(
        `Model '${model}' is not configured and no 'default' rule found.`,
        { status: 400 },
      );
    }
    return base.replace(/\/+$/, "");
  }

  /**
   * Forwards one call and returns the answer to send back. An answered call is written to
   * `trajectory` before the answer is returned (for a stream, before its final event).
   * @throws {CancelledError} when `signal` aborts; {RockError} (500) when every attempt failed
   * without an answer; {UnavailableError} when the proxy is closing.
   */
  async forward(
    request: ChatCompletionRequest,
    options: {
      headers: Headers;
      signal?: AbortSignal | undefined;
      trajectory?: TrajectoryWriter | undefined;
    },
  ): Promise<Response> {
    const url = `${this.route(request.model)}/chat/completions`;
    const streaming = request.stream === true;
    // As ROCK, a non-streaming call is sent with an explicit `stream: false`.
    const body = streaming ? request : { ...request, stream: false };
    const payload = JSON.stringify(body);
    const headers = upstreamHeaders(options.headers);
    const record = options.trajectory?.begin(body);
    // The request's part of the record is serialized while the upstream works, not after it has
    // answered (a task, so that the request is on its way first).
    const preparing = record && setTimeout(() => record.prepare(), 0);
    // One signal for the call: the client leaving or the proxy closing.
    const call = new AbortController();
    const onAbort = () => call.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    this.#closing.signal.addEventListener("abort", onAbort, { once: true });
    try {
      const max = this.#config.retryMaxAttempts;
      let last: Attempt | undefined;
      for (let attempt = 1; attempt <= max; attempt++) {
        if (attempt > 1) {
          const retryAfter = last?.kind === "retryable" ? last.retryAfter : undefined;
          await sleep(
            retryDelayMs(attempt - 1, this.#config, this.#random, retryAfter),
            call.signal,
          );
        }
        this.#throwIfStopped(call.signal);
        const started = performance.now();
        last = await this.#attempt(url, headers, payload, { signal: call.signal, streaming });
        let upstream = this.#loggable.get(url);
        if (upstream === undefined) this.#loggable.set(url, upstream = loggableUrl(url));
        const fields = {
          model: request.model,
          upstream,
          attempt,
          ms: Math.round(performance.now() - started),
        };
        if (last.kind === "stream") {
          this.#logger.info("Upstream streams", { ...fields, status: last.response.status });
          return replyStream(last.response, record);
        }
        if (last.kind === "answer") {
          this.#logger.info("Upstream answered", { ...fields, status: last.status });
          // Parsed for the record only (not at all without one): the client gets the text.
          record?.write(parseOrText(last.text));
          return new Response(last.text, {
            status: last.status,
            headers: dropHeaders(last.headers, RESPONSE_DROP),
          });
        }
        this.#throwIfStopped(call.signal);
        this.#logger.warn(
          attempt < max ? "Upstream attempt failed; retrying" : "Upstream attempt failed",
          last.kind === "retryable" ? { ...fields, status: last.status } : {
            ...fields,
            error: last.error,
          },
        );
      }
      if (last?.kind === "retryable") {
        const error = {
          error: {
            message: `LLM backend error: ${last.body}`,
            type: "proxy_retry_failed",
            code: last.status,
          },
        };
        record?.write(error);
        return Response.json(error, { status: last.status });
      }
      throw new RockError(
        `Cannot get an answer from the LLM backend ${loggableUrl(url)} after ${max} attempts: ${
          last?.kind === "failed" ? last.error : "no attempt made"
        }`,
        { status: 500 },
      );
    } finally {
      clearTimeout(preparing);
      options.signal?.removeEventListener("abort", onAbort);
      this.#closing.signal.removeEventListener("abort", onAbort);
    }
  }

  /** Aborts every call in flight (they answer 503) and refuses new ones. */
  close(): void {
    this.#closing.abort();
  }

  #throwIfStopped(signal: AbortSignal): void {
    if (this.#closing.signal.aborted) throw new UnavailableError("The model service is stopping");
    if (signal.aborted) throw new CancelledError("The client closed the request");
  }

  /** One upstream attempt under its own timeout. */
  async #attempt(
    url: string,
    headers: Headers,
    payload: string,
    options: { signal: AbortSignal; streaming: boolean },
  ): Promise<Attempt> {
    const timeoutMs = this.#config.requestTimeout * 1000;
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, timeoutMs);
    const onAbort = () => abort.abort();
    options.signal.addEventListener("abort", onAbort, { once: true });
    // fetch's messages quote the URL, which may carry a key in its query: log the safe form.
    const describe = (error: unknown) =>
      timedOut
        ? `timed out after ${this.#config.requestTimeout} s`
        : (error as Error).message.split(url).join(loggableUrl(url));
    try {
      const response = await this.#fetch(url, {
        method: "POST",
        headers,
        body: payload,
        signal: abort.signal,
      });
      if (this.#retryable.has(response.status)) {
        const body = await response.text().catch((error) =>
          `(body unreadable: ${describe(error)})`
        );
        return {
          kind: "retryable",
          status: response.status,
          body,
          retryAfter: retryAfterSeconds(response.headers.get("retry-after")),
        };
      }
      const eventStream = (response.headers.get("content-type") ?? "").includes("event-stream");
      if (options.streaming && response.ok && eventStream && response.body) {
        // Headers came in time; from here the idle timer of relay() applies.
        return {
          kind: "stream",
          response: relay(response, abort, { idleMs: timeoutMs, stop: this.#closing.signal }),
        };
      }
      const text = await response.text();
      return { kind: "answer", status: response.status, headers: response.headers, text };
    } catch (error) {
      return { kind: "failed", error: describe(error) };
    } finally {
      clearTimeout(timer);
      options.signal.removeEventListener("abort", onAbort);
    }
  }
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON (a gateway's HTML page): recorded as text.
    return text;
  }
}
