/**
 * A typed HTTP client for a rocklet. It implements the same Runtime interface the rocklet
 * serves, so code (and the contract tests) can use an in-process runtime or a remote one alike.
 * Runtime failures come back as the same error classes the runtime threw.
 */
import {
  BadRequestError,
  BashSyntaxError,
  CancelledError,
  CommandTimeoutError,
  FileOperationError,
  NonZeroExitCodeError,
  RockError,
  type RockErrorOptions,
  SessionExistsError,
  SessionNotFoundError,
  UnavailableError,
} from "../common/errors.ts";
import type {
  BashActionInput,
  BashObservation,
  CloseResponse,
  CloseSessionRequest,
  CloseSessionResponse,
  Command,
  CommandResponse,
  CreateSessionRequest,
  CreateSessionResponse,
  IsAliveResponse,
  ReadFileRequest,
  ReadFileResponse,
  RockletExceptionBody,
  StatisticsResponse,
  UploadResponse,
  WriteFileRequest,
  WriteFileResponse,
} from "../protocol/rocklet.ts";
import type { CallOptions, Download, Runtime, UploadOptions } from "../runtime/runtime.ts";
import type { z } from "zod";
import { multipartBody } from "./multipart_body.ts";

/** Options of a RockletClient. */
export interface RockletClientOptions {
  /** The fetch to use (default: globalThis.fetch, which keeps connections alive). */
  fetch?: (input: Request) => Promise<Response>;
  /** Headers sent with every request (e.g. `sandbox_id`, a trace id). */
  headers?: Record<string, string>;
}

type ErrorClass = new (message: string, options?: RockErrorOptions) => RockError;

/** Error classes by the class path a rocklet reports. */
const ERROR_CLASSES: Record<string, ErrorClass> = {
  "rock.rocklet.exceptions.SessionExistsError": SessionExistsError,
  "rock.rocklet.exceptions.SessionDoesNotExistError": SessionNotFoundError,
  "rock.rocklet.exceptions.CommandTimeoutError": CommandTimeoutError,
  "rock.rocklet.exceptions.NonZeroExitCodeError": NonZeroExitCodeError,
  "rock.rocklet.exceptions.BashIncorrectSyntaxError": BashSyntaxError,
  "asyncio.exceptions.CancelledError": CancelledError,
  // What ROCK's subprocess.run raises for an empty argv.
  "builtins.IndexError": BadRequestError,
};

/** Rebuilds the error a rocklet reported in a 511 reply. */
export function errorFromRockletException(
  body: RockletExceptionBody["rockletexception"],
): RockError {
  const classPath = body.class_path ?? "builtins.RuntimeError";
  const type = ERROR_CLASSES[classPath] ??
    (/^builtins\.\w*(Error)$/.test(classPath) &&
        /File|Directory|Permission|OS|Unicode/.test(classPath)
      ? FileOperationError
      : RockError);
  return new type(body.message ?? "Rocklet error without a message", {
    classPath,
    extraInfo: body.extra_info ?? {},
  });
}

/** Client for one rocklet at `baseUrl` (e.g. `http://127.0.0.1:22555`). */
export class RockletClient implements Runtime {
  readonly #base: string;
  readonly #fetch: (input: Request) => Promise<Response>;
  readonly #headers: Record<string, string>;

  /** Creates a client; nothing is sent until the first call. */
  constructor(baseUrl: string, options: RockletClientOptions = {}) {
    this.#base = baseUrl.replace(/\/+$/, "");
    this.#fetch = options.fetch ?? ((request) => fetch(request));
    this.#headers = options.headers ?? {};
  }

  async #send(path: string, init: RequestInit = {}): Promise<Response> {
    const request = new Request(`${this.#base}${path}`, {
      ...init,
      headers: { ...this.#headers, ...(init.headers as Record<string, string> | undefined) },
    });
    let response: Response;
    try {
      response = await this.#fetch(request);
    } catch (error) {
      if (init.signal?.aborted) throw new CancelledError(`Call to rocklet ${path} was cancelled`);
      throw new UnavailableError(
        `Cannot reach rocklet at ${this.#base}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    if (response.ok) return response;
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (
      response.status === 511 && parsed && typeof parsed === "object" &&
      "rockletexception" in parsed
    ) {
      throw errorFromRockletException((parsed as RockletExceptionBody).rockletexception);
    }
    const detail = parsed && typeof parsed === "object" && "detail" in parsed
      ? String((parsed as { detail: unknown }).detail)
      : text.slice(0, 500);
    if (response.status >= 400 && response.status < 500) {
      throw new BadRequestError(detail, { status: response.status });
    }
    throw new UnavailableError(
      `Rocklet at ${this.#base} answered ${path} with HTTP ${response.status}: ${detail}`,
    );
  }

  async #get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return await (await this.#send(path, { signal })).json() as T;
  }

  async #post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.#send(path, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "content-type": "application/json" },
      signal,
    });
    return await response.json() as T;
  }

  /** GET /is_alive; `options.signal` bounds a probe (a published port may accept and hang). */
  isAlive(options: CallOptions = {}): Promise<IsAliveResponse> {
    return this.#get("/is_alive", options.signal);
  }

  /** GET /get_statistics */
  getStatistics(): Promise<StatisticsResponse> {
    return this.#get("/get_statistics");
  }

  /** POST /create_session */
  createSession(request: z.input<typeof CreateSessionRequest>): Promise<CreateSessionResponse> {
    return this.#post("/create_session", request);
  }

  /** POST /run_in_session */
  runInSession(action: BashActionInput, options: CallOptions = {}): Promise<BashObservation> {
    return this.#post("/run_in_session", action, options.signal);
  }

  /** POST /close_session */
  closeSession(request: z.input<typeof CloseSessionRequest>): Promise<CloseSessionResponse> {
    return this.#post("/close_session", request);
  }

  /** POST /execute */
  execute(command: z.input<typeof Command>, options: CallOptions = {}): Promise<CommandResponse> {
    return this.#post("/execute", command, options.signal);
  }

  /** POST /read_file */
  readFile(request: z.input<typeof ReadFileRequest>): Promise<ReadFileResponse> {
    return this.#post("/read_file", request);
  }

  /** POST /write_file */
  writeFile(request: z.input<typeof WriteFileRequest>): Promise<WriteFileResponse> {
    return this.#post("/write_file", request);
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
    return this.#post("/close", {});
  }
}
