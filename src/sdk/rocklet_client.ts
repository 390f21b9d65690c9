/**
 * A typed HTTP client for a rocklet. It implements the same Runtime interface the rocklet
 * serves, so code (and the contract tests) can use an in-process runtime or a remote one alike.
 * Runtime failures come back as the same error classes the runtime threw.
 */
import {
  CancelledError,
  Codes,
  errorFromWire,
  RockError,
  UnavailableError,
  UnresponsiveError,
} from "../common/errors.ts";
import { withDefaults } from "../common/options.ts";
import { REQUEST_ID_HEADER } from "../common/request_id.ts";
import type {
  BashActionInput,
  BashInterruptAction,
  BashObservation,
  CloseResponse,
  CloseSessionRequest,
  CloseSessionResponse,
  Command,
  CommandResponse,
  CreateSessionRequest,
  CreateSessionResponse,
  EnvCloseRequest,
  EnvCloseResponse,
  EnvListResponse,
  EnvMakeRequest,
  EnvMakeResponse,
  EnvResetRequest,
  EnvResetResponse,
  EnvStepRequest,
  EnvStepResponse,
  IsAliveResponse,
  ReadFileRequest,
  ReadFileResponse,
  RockletExceptionBody,
  StatisticsResponse,
  UploadResponse,
  WriteFileRequest,
  WriteFileResponse,
} from "../protocol/rocklet.ts";
import { EVENT_STREAM, followLiveOutput, liveBody } from "../formats/live_output.ts";
import type {
  CallOptions,
  Download,
  OnOutput,
  Runtime,
  RuntimeClient,
  UploadOptions,
} from "../protocol/runtime.ts";
import type { z } from "zod";
import { multipartBody } from "./multipart_body.ts";

/** A rocklet's default address (`rock rocklet` serves on port 22555, ROCK's). */
export const DEFAULT_ROCKLET_URL = "http://127.0.0.1:22555";

/**
 * How long a call to a rocklet may take. A command's call may take its own timeout plus a margin;
 * a call without one (sessions, files) takes at most `defaultMs`. Independently of both, a call
 * still unanswered after `probeAfterMs` makes the client probe `/is_alive` on the side: a rocklet
 * that misses two probes in a row is not answering (stopped, frozen) and the call ends then.
 */
export interface RockletDeadlines {
  /** Added to a command's own timeout (run_in_session, execute), in ms. */
  marginMs: number;
  /** The most a call without a command timeout takes, in ms; uploads and downloads excepted. */
  defaultMs: number;
  /** How long a call waits before the rocklet is probed, in ms. */
  probeAfterMs: number;
  /** How long one probe may take, in ms. */
  probeTimeoutMs: number;
}

/** Deadlines a RockletClient uses unless told otherwise. */
export const DEFAULT_ROCKLET_DEADLINES: RockletDeadlines = {
  marginMs: 10_000,
  defaultMs: 300_000,
  probeAfterMs: 5_000,
  probeTimeoutMs: 5_000,
};

/** Options of a RockletClient. */
export interface RockletClientOptions {
  /** The fetch to use (default: globalThis.fetch, which keeps connections alive). */
  fetch?: ((input: Request) => Promise<Response>) | undefined;
  /** Headers sent with every request (e.g. `sandbox_id`, a trace id). */
  headers?: Record<string, string> | undefined;
  /** Bounds on every call (default DEFAULT_ROCKLET_DEADLINES). */
  deadlines?: Partial<RockletDeadlines> | undefined;
}

/** How one call is bounded: a whole-call limit in ms (undefined: none) and the caller's signal. */
interface CallBounds {
  limitMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Rebuilds the error a rocklet reported in a 511 reply (by its class path). */
export function errorFromRockletException(
  body: RockletExceptionBody["rockletexception"],
): RockError {
  return errorFromWire({
    ...body,
    message: body.message ?? "Rocklet error without a message",
    class_path: body.class_path ?? "builtins.RuntimeError",
  });
}

/** Client for one rocklet at `baseUrl` (e.g. `http://127.0.0.1:22555`). */
export class RockletClient implements RuntimeClient, Runtime {
  /** The rocklet's URL without a trailing slash. */
  readonly baseUrl: string;
  /** The fetch the caller gave, if any (else the global one, called without a Request). */
  readonly #fetch?: ((input: Request) => Promise<Response>) | undefined;
  readonly #headers: Record<string, string>;
  readonly #deadlines: RockletDeadlines;

  /**
   * Creates a client for the rocklet at `baseUrl` (default DEFAULT_ROCKLET_URL); nothing is sent
   * until the first call.
   */
  constructor(baseUrl: string = DEFAULT_ROCKLET_URL, options: RockletClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#fetch = options.fetch;
    this.#headers = options.headers ?? {};
    this.#deadlines = withDefaults(DEFAULT_ROCKLET_DEADLINES, options.deadlines ?? {});
  }

  /**
   * This client with `X-Request-Id: requestId` on every call (same rocklet, fetch, headers and
   * deadlines): how the admin passes a client's request id on to the rocklet.
   */
  withRequestId(requestId: string): RockletClient {
    return new RockletClient(this.baseUrl, {
      fetch: this.#fetch,
      headers: { ...this.#headers, [REQUEST_ID_HEADER]: requestId },
      deadlines: this.#deadlines,
    });
  }

  /** The whole-call limit of a command whose own timeout is `seconds` (null: none). */
  #commandLimit(seconds: number | null | undefined): number | undefined {
    return seconds === null || seconds === undefined
      ? undefined
      : seconds * 1000 + this.#deadlines.marginMs;
  }

  /**
   * Sends a call and reads its answer with `read` (default: the response as it is), both within
   * the call's bounds; an error status becomes the error it reports.
   */
  async #send<T = Response>(
    path: string,
    init: RequestInit = {},
    bounds: CallBounds = {},
    read: (response: Response) => Promise<T> = (response) => Promise.resolve(response as T),
  ): Promise<T> {
    // One controller ends the call: the limit, a probe watch that finds the rocklet frozen, or
    // the caller's signal (followed by a listener: cheaper than AbortSignal.any per call).
    const ended = new AbortController();
    let failure: Error | undefined;
    const fail = (error: Error) => {
      failure ??= error;
      ended.abort(error);
    };
    const caller = bounds.signal;
    const onCallerAbort = () => ended.abort(caller?.reason);
    if (caller?.aborted) onCallerAbort();
    else caller?.addEventListener("abort", onCallerAbort, { once: true });
    const { limitMs } = bounds;
    const onLimit = () =>
      fail(
        new UnresponsiveError(
          `Rocklet at ${this.baseUrl} did not answer ${path} within ${limitMs! / 1000} s`,
        ),
      );
    // One timer per call: the limit, or first the moment probing starts (most calls end before
    // either, so a watch is only built for a call still waiting then).
    const { probeAfterMs } = this.#deadlines;
    let watch: { stop(): void } | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (path !== "/is_alive" && (limitMs === undefined || limitMs > probeAfterMs)) {
      timer = setTimeout(() => {
        watch = this.#watch(path, fail);
        if (limitMs !== undefined) timer = setTimeout(onLimit, limitMs - probeAfterMs);
      }, probeAfterMs);
    } else if (limitMs !== undefined) {
      timer = setTimeout(onLimit, limitMs);
    }
    try {
      const response = await this.#fetchPath(path, {
        ...init,
        headers: { ...this.#headers, ...(init.headers as Record<string, string> | undefined) },
        signal: ended.signal,
      });
      if (!response.ok) {
        throw this.#errorOf(path, response.status, await response.text());
      }
      return await read(response);
    } catch (error) {
      if (error instanceof RockError) throw error;
      if (failure) throw failure;
      if (caller?.aborted) throw new CancelledError(`Call to rocklet ${path} was cancelled`);
      throw new UnavailableError(
        `Cannot reach rocklet at ${this.baseUrl}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    } finally {
      clearTimeout(timer);
      watch?.stop();
      caller?.removeEventListener("abort", onCallerAbort);
    }
  }

  /** The error a rocklet's answer with HTTP `status` and body `text` reports. */
  #errorOf(path: string, status: number, text: string): RockError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (
      status === 511 && parsed && typeof parsed === "object" &&
      "rockletexception" in parsed
    ) {
      return errorFromRockletException((parsed as RockletExceptionBody).rockletexception);
    }
    const reply = (parsed && typeof parsed === "object" ? parsed : {}) as {
      detail?: unknown;
      class_path?: string;
      extra_info?: Record<string, unknown>;
    };
    const detail = "detail" in reply ? String(reply.detail) : text.slice(0, 500);
    if (status >= 400 && status < 500) {
      // rock's rocklet names the class beside `detail`; ROCK's (and a 404) do not.
      return errorFromWire({
        message: detail,
        class_path: reply.class_path,
        extra_info: reply.extra_info,
        code: Codes.BAD_REQUEST,
      }, { status: status });
    }
    return new UnavailableError(
      `Rocklet at ${this.baseUrl} answered ${path} with HTTP ${status}: ${detail}`,
    );
  }

  /** GET or POST `path` with the caller's fetch (as a Request) or the global one (no Request). */
  #fetchPath(path: string, init: RequestInit): Promise<Response> {
    const url = `${this.baseUrl}${path}`;
    return this.#fetch ? this.#fetch(new Request(url, init)) : fetch(url, init);
  }

  /**
   * Probes the rocklet while the call `path` waits (once it has waited probeAfterMs): at once,
   * then probeAfterMs after each probe ends; two probes in a row without an answer end the call
   * (`fail`) with UnresponsiveError.
   */
  #watch(path: string, fail: (error: Error) => void): { stop(): void } {
    const { probeAfterMs, probeTimeoutMs } = this.#deadlines;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let missed = 0;
    const probe = async () => {
      if (stopped) return;
      try {
        const response = await this.#fetchPath("/is_alive", {
          headers: this.#headers,
          signal: AbortSignal.timeout(probeTimeoutMs),
        });
        await response.body?.cancel();
        missed = 0;
      } catch {
        missed++;
      }
      if (stopped) return;
      if (missed >= 2) {
        fail(
          new UnresponsiveError(
            `Rocklet at ${this.baseUrl} stopped answering while ${path} ran: ` +
              `2 health probes in a row got no answer within ${probeTimeoutMs / 1000} s`,
          ),
        );
        return;
      }
      timer = setTimeout(probe, probeAfterMs);
    };
    void probe();
    return {
      stop() {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  #get<T>(path: string, bounds: CallBounds): Promise<T> {
    return this.#send(path, {}, bounds, (response) => response.json() as Promise<T>);
  }

  /**
   * POSTs `body` as JSON. With `onOutput`, asks for live output (an event stream) and hands it
   * the chunks; a rocklet that answers plainly (ROCK's) just gives the result.
   */
  #post<T>(path: string, body: unknown, bounds: CallBounds, onOutput?: OnOutput): Promise<T> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (onOutput) headers.accept = `${EVENT_STREAM}, application/json`;
    return this.#send(path, { method: "POST", body: JSON.stringify(body), headers }, bounds, (
      response,
    ) => {
      const live = onOutput ? liveBody(response) : undefined;
      return live && onOutput
        ? this.#readLive<T>(path, live, onOutput)
        : response.json() as Promise<T>;
    });
  }

  /** Reads a live-output stream to its last event: the result, or the error it reports. */
  async #readLive<T>(
    path: string,
    body: ReadableStream<Uint8Array>,
    onOutput: OnOutput,
  ): Promise<T> {
    const end = await followLiveOutput(body, onOutput);
    if (end?.kind === "result") return end.body as T;
    if (end) throw this.#errorOf(path, end.status, JSON.stringify(end.body));
    throw new UnavailableError(
      `Rocklet at ${this.baseUrl} ended ${path}'s stream without a result`,
    );
  }

  /** A bounds object for a call without a command timeout of its own. */
  #plain(signal?: AbortSignal): CallBounds {
    return { limitMs: this.#deadlines.defaultMs, signal };
  }

  /** GET /is_alive; `options.signal` bounds a probe (a published port may accept and hang). */
  isAlive(options: CallOptions = {}): Promise<IsAliveResponse> {
    return this.#get("/is_alive", this.#plain(options.signal));
  }

  /** GET /get_statistics */
  getStatistics(): Promise<StatisticsResponse> {
    return this.#get("/get_statistics", this.#plain());
  }

  /** POST /create_session */
  createSession(request: z.input<typeof CreateSessionRequest>): Promise<CreateSessionResponse> {
    return this.#post("/create_session", request, this.#plain());
  }

  /** POST /run_in_session: bounded by the action's own timeout plus the margin. */
  runInSession(action: BashActionInput, options: CallOptions = {}): Promise<BashObservation> {
    return this.#post("/run_in_session", action, {
      limitMs: this.#commandLimit(action.timeout),
      signal: options.signal,
    }, options.onOutput);
  }

  /** POST /run_in_session with `action_type: "bash_interrupt"`. */
  interruptSession(
    action: z.input<typeof BashInterruptAction> = { action_type: "bash_interrupt" },
  ): Promise<BashObservation> {
    return this.#post("/run_in_session", action, this.#plain());
  }

  /** POST /close_session */
  closeSession(request: z.input<typeof CloseSessionRequest>): Promise<CloseSessionResponse> {
    return this.#post("/close_session", request, this.#plain());
  }

  /** POST /execute: bounded by the command's timeout (ROCK's default 1200 s) plus the margin. */
  execute(command: z.input<typeof Command>, options: CallOptions = {}): Promise<CommandResponse> {
    return this.#post("/execute", command, {
      limitMs: this.#commandLimit(command.timeout === undefined ? 1200 : command.timeout),
      signal: options.signal,
    }, options.onOutput);
  }

  /** POST /read_file */
  readFile(request: z.input<typeof ReadFileRequest>): Promise<ReadFileResponse> {
    return this.#post("/read_file", request, this.#plain());
  }

  /** POST /write_file */
  writeFile(request: z.input<typeof WriteFileRequest>): Promise<WriteFileResponse> {
    return this.#post("/write_file", request, this.#plain());
  }

  /**
   * POST /upload as multipart/form-data, streamed: the fields go first, then the file part,
   * so the rocklet can write straight to disk.
   */
  async upload(data: ReadableStream<Uint8Array>, options: UploadOptions): Promise<UploadResponse> {
    const { body, contentType } = multipartBody(
      { target_path: options.targetPath, unzip: options.unzip ? "true" : "false" },
      data,
      options.fileName ?? options.targetPath.split("/").pop() ?? "file",
    );
    const response = await this.#send("/upload", {
      method: "POST",
      body,
      headers: { "content-type": contentType },
      // Streaming request bodies need half-duplex mode.
      ...({ duplex: "half" } as RequestInit),
    });
    return await response.json() as UploadResponse;
  }

  /** GET /download?path=: the file's bytes as a stream. */
  async download(path: string): Promise<Download> {
    const response = await this.#send(`/download?path=${encodeURIComponent(path)}`);
    if (!response.body) {
      throw new UnavailableError(`Rocklet sent no body for download of "${path}"`);
    }
    return { body: response.body, size: Number(response.headers.get("content-length") ?? -1) };
  }

  /** POST /close */
  close(): Promise<CloseResponse> {
    return this.#post("/close", {}, this.#plain());
  }

  /** POST /env/make */
  envMake(request: EnvMakeRequest): Promise<EnvMakeResponse> {
    return this.#post("/env/make", request, this.#plain());
  }

  /** POST /env/step */
  envStep(request: EnvStepRequest): Promise<EnvStepResponse> {
    return this.#post("/env/step", request, this.#plain());
  }

  /** POST /env/reset */
  envReset(request: EnvResetRequest): Promise<EnvResetResponse> {
    return this.#post("/env/reset", request, this.#plain());
  }

  /** POST /env/close */
  envClose(request: EnvCloseRequest): Promise<EnvCloseResponse> {
    return this.#post("/env/close", request, this.#plain());
  }

  /** POST /env/list */
  envList(): Promise<EnvListResponse> {
    return this.#post("/env/list", {}, this.#plain());
  }
}
