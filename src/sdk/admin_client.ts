/**
 * A typed client for the admin API under `/apis/envs/sandbox/v1` (rock's or ROCK's own): it
 * unwraps ROCK's envelope and turns a Failed one into the SDK error class of its code. Runs on
 * Deno and Node (web-standard fetch and streams only).
 */
import {
  type CommitStatus,
  type Lease,
  type ListResponse,
  type LogsResponse,
  type SandboxEvent,
  type StartResponse,
  statusFromWire,
  type StatusResponse,
} from "../protocol/admin.ts";
import { readSse } from "../formats/sse.ts";
import type {
  BashObservation,
  CommandResponse,
  CreateSessionResponse,
  ReadFileResponse,
  StatisticsResponse,
  UploadResponse,
  WriteFileResponse,
} from "../protocol/rocklet.ts";
import process from "node:process";
import { envelopeError, errorForCode, InternalServerRockError } from "./errors.ts";
import { multipartBody } from "./multipart_body.ts";
import { EVENT_STREAM, followLiveOutput, liveBody } from "../formats/live_output.ts";
import type { OnOutput } from "../protocol/runtime.ts";

/** Options of an AdminClient. */
export interface AdminClientOptions {
  /** Headers sent with every request (X-User-Id, ROUTE-KEY, ...). */
  headers?: Record<string, string> | undefined;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch | undefined;
}

/** The admin URL used when none is given: $ROCK_BASE_URL, else http://localhost:8080. */
export function defaultAdminUrl(): string {
  return process.env.ROCK_BASE_URL || "http://localhost:8080";
}

interface Envelope<T> {
  status: "Success" | "Failed";
  message: string;
  error: string | null;
  result: T | null;
}

/** The admin API, one method per route. */
export class AdminClient {
  /** `<baseUrl>/apis/envs/sandbox/v1` */
  readonly url: string;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;

  /**
   * Creates a client for the admin at `baseUrl` (e.g. `http://127.0.0.1:8080`; default
   * defaultAdminUrl()). Options left out or given as undefined take their defaults.
   */
  constructor(baseUrl: string = defaultAdminUrl(), options: AdminClientOptions = {}) {
    this.url = `${baseUrl.replace(/\/+$/, "")}/apis/envs/sandbox/v1`;
    this.#headers = options.headers ?? {};
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /**
   * Sends a call and unwraps its envelope. With `onOutput`, asks for live output and hands it
   * the chunks until the envelope arrives as the stream's last event (an admin that answers
   * plainly just gives the envelope).
   */
  async #call<T>(
    path: string,
    init: RequestInit,
    sandboxId?: string,
    onOutput?: OnOutput,
  ): Promise<T> {
    const unreachable = (error: unknown) =>
      new InternalServerRockError(
        `Cannot reach the admin at ${this.url}: ${(error as Error).message}`,
        { sandboxId, cause: error },
      );
    let response: Response;
    try {
      response = await this.#fetch(`${this.url}${path}`, {
        ...init,
        headers: {
          ...this.#headers,
          ...(init.headers as Record<string, string> | undefined),
          ...(onOutput ? { accept: `${EVENT_STREAM}, application/json` } : {}),
        },
      });
    } catch (error) {
      throw unreachable(error);
    }
    const live = onOutput ? liveBody(response) : undefined;
    if (live && onOutput) {
      let envelope: Envelope<T> | undefined;
      try {
        envelope = (await followLiveOutput(live, onOutput))?.body as Envelope<T> | undefined;
      } catch (error) {
        if (init.signal?.aborted) throw error;
        throw unreachable(error);
      }
      if (!envelope) {
        throw new InternalServerRockError(`The admin ended ${path}'s stream without a result`, {
          sandboxId,
        });
      }
      if (envelope.status === "Success") return envelope.result as T;
      throw envelopeError(envelope, sandboxId);
    }
    const text = await response.text();
    let envelope: Envelope<T>;
    try {
      envelope = JSON.parse(text);
    } catch {
      throw new InternalServerRockError(
        `The admin answered ${path} with HTTP ${response.status} and no JSON: ${
          text.slice(0, 200)
        }`,
        { sandboxId },
      );
    }
    if (envelope.status === "Success") return envelope.result as T;
    throw envelopeError(envelope, sandboxId);
  }

  #post<T>(
    path: string,
    body: Record<string, unknown>,
    signal?: AbortSignal,
    onOutput?: OnOutput,
  ): Promise<T> {
    return this.#call(
      path,
      {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
        signal: signal ?? null,
      },
      typeof body.sandbox_id === "string" ? body.sandbox_id : undefined,
      onOutput,
    );
  }

  #get<T>(path: string, query: Record<string, string | number | undefined>): Promise<T> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, String(value));
    }
    const id = typeof query.sandbox_id === "string" ? query.sandbox_id : undefined;
    return this.#call(`${path}?${params}`, { method: "GET" }, id);
  }

  /** POST /start_async */
  startAsync(
    request: Record<string, unknown>,
    headers: Record<string, string> = {},
  ): Promise<StartResponse> {
    return this.#call("/start_async", {
      method: "POST",
      body: JSON.stringify(request),
      headers: { "content-type": "application/json", ...headers },
    }, typeof request.sandbox_id === "string" ? request.sandbox_id : undefined);
  }

  /**
   * GET /get_status; `includeAllStates` also answers a deleted sandbox (sent only when true, so
   * admins without the flag are asked as before).
   */
  async getStatus(
    sandboxId: string,
    options: { includeAllStates?: boolean | undefined } = {},
  ): Promise<StatusResponse> {
    return statusFromWire(
      await this.#get("/get_status", {
        sandbox_id: sandboxId,
        include_all_states: options.includeAllStates ? "true" : undefined,
      }),
    );
  }

  /**
   * POST /sandboxes/{id}/timeout (rock's extension, E2B's shape): the sandbox is stopped
   * `seconds` from now, keep-alives or not; answers when and why it will be.
   */
  setTimeout(sandboxId: string, seconds: number): Promise<Lease & { sandbox_id: string }> {
    return this.#call(`/sandboxes/${encodeURIComponent(sandboxId)}/timeout`, {
      method: "POST",
      body: JSON.stringify({ timeout_seconds: seconds }),
      headers: { "content-type": "application/json" },
    }, sandboxId);
  }

  /**
   * GET /events (rock's extension): lifecycle events as they happen, of one sandbox (starting
   * with its status now) or of all. The stream ends when `signal` aborts, when the admin ends it,
   * or when the iteration stops (break).
   * @throws {RockError} the envelope's error class when the admin refuses (an unknown sandbox;
   *   an admin without events: ROCK's, or an older rock), or when it cannot be reached.
   */
  async events(
    options: {
      sandboxId?: string | undefined;
      signal?: AbortSignal | undefined;
      /** A stream silent this long (no event, no heartbeat) is taken as broken (ms). */
      idleMs?: number | undefined;
    } = {},
  ): Promise<AsyncGenerator<SandboxEvent>> {
    const { sandboxId, signal } = options;
    const query = sandboxId === undefined
      ? ""
      : `?${new URLSearchParams({ sandbox_id: sandboxId })}`;
    let response: Response;
    try {
      response = await this.#fetch(`${this.url}/events${query}`, {
        headers: { ...this.#headers, accept: "text/event-stream" },
        signal: signal ?? null,
      });
    } catch (error) {
      throw new InternalServerRockError(
        `Cannot reach the admin at ${this.url}: ${(error as Error).message}`,
        { sandboxId, cause: error },
      );
    }
    const type = response.headers.get("content-type") ?? "";
    if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
      const text = await response.text().catch(() => "");
      let envelope: Envelope<unknown> | undefined;
      try {
        envelope = JSON.parse(text);
      } catch { /* not an envelope: ROCK's own 404, a proxy's page */ }
      if (envelope?.status === "Failed") throw envelopeError(envelope, sandboxId);
      throw errorForCode(
        4000,
        `The admin at ${this.url} has no event stream: HTTP ${response.status} ${
          text.slice(0, 200)
        }`,
        { sandboxId },
      );
    }
    return parseEvents(watchIdle(response.body, options.idleMs ?? EVENTS_IDLE_MS, signal));
  }

  /** GET /is_alive */
  isAlive(sandboxId: string): Promise<{ is_alive: boolean; message: string }> {
    return this.#get("/is_alive", { sandbox_id: sandboxId });
  }

  /** POST /stop */
  stop(sandboxId: string): Promise<string> {
    return this.#post("/stop", { sandbox_id: sandboxId });
  }

  /** POST /restart: a stopped sandbox placed again under its id (pending at once). */
  restart(sandboxId: string): Promise<StartResponse> {
    return this.#post("/restart", { sandbox_id: sandboxId });
  }

  /** POST /delete: a stopped sandbox deleted from the history (an unknown id succeeds). */
  delete(sandboxId: string): Promise<string> {
    return this.#post("/delete", { sandbox_id: sandboxId });
  }

  /**
   * POST /commit: an image of the sandbox named `imageTag`, pushed when the tag names a registry
   * (logged in with `credentials` for that push only). Resolves with its status when it is done.
   */
  commit(
    sandboxId: string,
    imageTag: string,
    credentials?: { username: string; password: string },
  ): Promise<CommitStatus> {
    return this.#post("/commit", { sandbox_id: sandboxId, image_tag: imageTag, ...credentials });
  }

  /** POST /commit with `async`: starts the commit and answers its status at once. */
  commitAsync(
    sandboxId: string,
    imageTag: string,
    credentials?: { username: string; password: string },
  ): Promise<CommitStatus> {
    return this.#post("/commit", {
      sandbox_id: sandboxId,
      image_tag: imageTag,
      ...credentials,
      async: true,
    });
  }

  /** GET /commit/{sandbox_id}: the sandbox's last commit. */
  getCommitStatus(sandboxId: string): Promise<CommitStatus> {
    return this.#call(`/commit/${encodeURIComponent(sandboxId)}`, { method: "GET" }, sandboxId);
  }

  /** POST /sandboxes/batch */
  batch(sandboxIds: string[]): Promise<{ statuses: StatusResponse[] }> {
    return this.#post("/sandboxes/batch", { sandbox_ids: sandboxIds });
  }

  /** GET /sandboxes */
  list(query: Record<string, string | number | undefined> = {}): Promise<ListResponse> {
    return this.#get("/sandboxes", query);
  }

  /** GET /get_sandbox_statistics */
  statistics(sandboxId: string): Promise<StatisticsResponse> {
    return this.#get("/get_sandbox_statistics", { sandbox_id: sandboxId });
  }

  /**
   * GET /get_logs: the last `tail` lines the sandbox's rocklet wrote, and its state, stop reason
   * and stop time (rock's extension).
   * @throws {SandboxStoppedRockError} when the sandbox stopped and its logs went with it.
   */
  getLogs(sandboxId: string, tail = 200): Promise<LogsResponse> {
    return this.#get("/get_logs", { sandbox_id: sandboxId, tail });
  }

  /** POST /execute */
  execute(
    request: Record<string, unknown>,
    signal?: AbortSignal,
    onOutput?: OnOutput,
  ): Promise<CommandResponse> {
    return this.#post("/execute", request, signal, onOutput);
  }

  /** POST /create_session */
  createSession(request: Record<string, unknown>): Promise<CreateSessionResponse> {
    return this.#post("/create_session", request);
  }

  /** POST /run_in_session */
  runInSession(
    request: Record<string, unknown>,
    signal?: AbortSignal,
    onOutput?: OnOutput,
  ): Promise<BashObservation> {
    return this.#post("/run_in_session", request, signal, onOutput);
  }

  /** POST /close_session */
  closeSession(request: Record<string, unknown>): Promise<{ session_type: "bash" }> {
    return this.#post("/close_session", request);
  }

  /** POST /read_file */
  readFile(request: Record<string, unknown>): Promise<ReadFileResponse> {
    return this.#post("/read_file", request);
  }

  /** POST /write_file */
  writeFile(request: Record<string, unknown>): Promise<WriteFileResponse> {
    return this.#post("/write_file", request);
  }

  /**
   * POST /upload, streamed: the fields first, then the file, so neither side holds it in memory.
   */
  upload(
    sandboxId: string,
    data: ReadableStream<Uint8Array>,
    options: { targetPath: string; unzip?: boolean; fileName?: string },
  ): Promise<UploadResponse> {
    const { body, contentType } = multipartBody(
      {
        sandbox_id: sandboxId,
        target_path: options.targetPath,
        unzip: options.unzip ? "true" : "false",
      },
      data,
      options.fileName ?? options.targetPath.split("/").pop() ?? "file",
    );
    return this.#call("/upload", {
      method: "POST",
      body,
      headers: { "content-type": contentType },
      // Streaming request bodies need half-duplex mode.
      ...({ duplex: "half" } as RequestInit),
    }, sandboxId);
  }

  /** GET /download: the file's bytes as a stream (rock's extension). */
  async download(
    sandboxId: string,
    path: string,
  ): Promise<{ body: ReadableStream<Uint8Array>; size: number }> {
    const params = new URLSearchParams({ sandbox_id: sandboxId, path });
    let response: Response;
    try {
      response = await this.#fetch(`${this.url}/download?${params}`, { headers: this.#headers });
    } catch (error) {
      throw new InternalServerRockError(
        `Cannot reach the admin at ${this.url}: ${(error as Error).message}`,
        {
          sandboxId,
        },
      );
    }
    if (
      response.ok && response.body &&
      response.headers.get("content-type") === "application/octet-stream"
    ) {
      return { body: response.body, size: Number(response.headers.get("content-length") ?? -1) };
    }
    const envelope = await response.json().catch(() => undefined) as Envelope<unknown> | undefined;
    if (envelope?.status === "Failed") throw envelopeError(envelope, sandboxId);
    throw errorForCode(5000, `Cannot download "${path}": HTTP ${response.status}`, { sandboxId });
  }
}

/** The events of an SSE body; a `dropped` event (the admin gave up on a slow reader) throws. */
/**
 * How long an event stream may be silent before it is taken as broken: the admin sends a
 * heartbeat every 15 s, so three missed ones mean a connection that died without a word (a NAT
 * or a proxy dropping it); the stream then ends with an error and Sandbox.start() polls instead.
 */
export const EVENTS_IDLE_MS = 45_000;

/** `body`, failing once no bytes came for `idleMs`. */
function watchIdle(
  body: ReadableStream<Uint8Array>,
  idleMs: number,
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  signal?.addEventListener("abort", () => clearTimeout(timer), { once: true });
  let controller: TransformStreamDefaultController<Uint8Array> | undefined;
  const arm = () => {
    clearTimeout(timer);
    if (signal?.aborted) return;
    timer = setTimeout(() => {
      controller?.error(
        new InternalServerRockError(`The admin's event stream was silent for ${idleMs / 1000} s`),
      );
    }, idleMs);
  };
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      start(c) {
        controller = c;
        arm();
      },
      transform(chunk, c) {
        arm();
        c.enqueue(chunk);
      },
      flush() {
        clearTimeout(timer);
      },
      cancel() {
        clearTimeout(timer);
      },
    }),
  );
}

async function* parseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SandboxEvent> {
  for await (const event of readSse(body)) {
    const data = JSON.parse(event.data);
    if (event.event === "dropped") {
      throw new InternalServerRockError(`The admin ended the event stream: ${data.reason}`);
    }
    yield data as SandboxEvent;
  }
}
