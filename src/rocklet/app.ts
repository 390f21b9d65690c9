/**
 * The rocklet's HTTP routes over a Runtime, with ROCK's wire format: raw JSON replies, runtime
 * failures as HTTP 511 `{"rockletexception": {...}}`, malformed requests as HTTP 422.
 *
 * Beside them, `/proxy/{port}/...` and `/portforward` reach ports inside the sandbox (see
 * port_proxy.ts). Its fixed routes are looked up in a map by method and path, without a router library:
 * the rocklet starts in every sandbox and answers every data-plane call, so it loads and runs
 * only what it needs (as Hono would: HEAD is answered as GET without a body, anything else
 * unknown is a 404 naming the method and path).
 */
import { BadRequestError, Codes, RockError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { REQUEST_ID_HEADER, requestIdOf, requestLogLevel } from "../common/request_id.ts";
import type { z } from "zod";
import {
  BashAction,
  BashInterruptAction,
  CloseSessionRequest,
  Command,
  CreateSessionRequest,
  EnvCloseRequest,
  EnvMakeRequest,
  EnvResetRequest,
  EnvStepRequest,
  isInterruptAction,
  ReadFileRequest,
  type RockletExceptionBody,
  UploadFields,
  WriteFileRequest,
} from "../protocol/rocklet.ts";
import { parseJsonObject, parseWire } from "../protocol/validate.ts";
import type { CallOptions, Runtime } from "../protocol/runtime.ts";
import { PTY_PATH } from "../protocol/terminal.ts";
import { processEnvironment } from "../common/config.ts";
import { attachTerminal } from "./terminal.ts";
import { liveOutputResponse, outcomeOf, wantsLiveOutput } from "../formats/live_output.ts";
import { receiveUpload } from "../runtime/upload_form.ts";
import { forwardToPort, PORT_FORWARD_PATH, PORT_PROXY_PREFIX, portForward } from "./port_proxy.ts";

/** What the rocklet app needs. */
export interface RockletAppDeps {
  /** The runtime the routes call. */
  runtime: Runtime;
  /** Where errors are logged. */
  logger?: Logger;
  /** The environment of processes attached over `GET /pty` (default: the rocklet's own). */
  terminalEnv?: Record<string, string>;
}

/** The rocklet's app: one fetch handler for every route. */
export interface RockletApp {
  /** Answers one request. */
  fetch(request: Request): Promise<Response>;
}

/** One route: the request and its URL's query string (without `?`). */
type Route = (request: Request, search: string) => Promise<Response>;

/** Reads a JSON object body and validates it with `schema`; BadRequestError says what is wrong. */
async function body<S extends z.core.$ZodType>(
  request: Request,
  schema: S,
  what: string,
): Promise<z.output<S>> {
  return parseWire(schema, parseJsonObject(await request.text()), `${what} request`);
}

/**
 * Converts any thrown value to the wire: 511 rockletexception, or a 4xx `detail`. Both carry the
 * error's `class_path`, `extra_info` and `code` (the 4xx and `code` as fields ROCK's SDKs
 * ignore), so a client rebuilds the same class.
 */
export function rockletErrorResponse(error: unknown): Response {
  const rockError = error instanceof RockError ? error : undefined;
  const message = error instanceof Error ? error.message : String(error);
  const wire = {
    class_path: rockError?.classPath ?? "builtins.RuntimeError",
    extra_info: rockError?.extraInfo ?? {},
    code: rockError?.code ?? Codes.INTERNAL_SERVER_ERROR,
  };
  if (rockError && rockError.status !== 511 && rockError.status < 500) {
    return Response.json({ detail: message, ...wire }, { status: rockError.status });
  }
  const exception = {
    message,
    traceback: error instanceof Error ? (error.stack ?? "") : "",
    ...wire,
  };
  // SWE-ReX's client reads the same under `swerexception`, and rebuilds the class by importing
  // its class path: there, name its own class.
  const body: RockletExceptionBody = {
    rockletexception: exception,
    swerexception: { ...exception, class_path: swerexClassPath(exception.class_path) },
  };
  return Response.json(body, { status: 511 });
}

/** The rocklet exceptions ROCK copied from SWE-ReX, which `swerex.exceptions` defines by the same name. */
const SWEREX_EXCEPTIONS = new Set([
  "SessionExistsError",
  "SessionDoesNotExistError",
  "CommandTimeoutError",
  "NonZeroExitCodeError",
  "BashIncorrectSyntaxError",
  "NoExitCodeError",
  "SessionNotInitializedError",
]);

/**
 * The class path SWE-ReX's RemoteRuntime is given for ROCK's `class_path`: a rocklet exception
 * as `swerex.exceptions.<the same name>` (SwerexException for the ones SWE-ReX lacks), so its
 * callers catch the classes they know (`CommandTimeoutError`, ...); others (`builtins.*`) as they are.
 */
export function swerexClassPath(classPath: string): string {
  const prefix = "rock.rocklet.exceptions.";
  if (!classPath.startsWith(prefix)) return classPath;
  const name = classPath.slice(prefix.length);
  return `swerex.exceptions.${SWEREX_EXCEPTIONS.has(name) ? name : "SwerexException"}`;
}

/** The path and query of a request URL (`http://host/path?query`), the path percent-decoded. */
function splitUrl(url: string): { path: string; search: string } {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start < 0) return { path: "/", search: "" };
  const mark = url.indexOf("?", start);
  const raw = mark < 0 ? url.slice(start) : url.slice(start, mark);
  let path = raw;
  if (raw.includes("%")) {
    try {
      path = decodeURI(raw);
    } catch {
      // Left as sent: no route has such a path.
    }
  }
  return { path, search: mark < 0 ? "" : url.slice(mark + 1) };
}

/**
 * The forward to a port inside the sandbox that `path` names, if any: `/proxy/{port}/...` (any
 * method; the rest of the URL is passed on as sent, not decoded) or `GET /portforward`.
 */
function portRoute(request: Request, path: string): Route | undefined {
  if (path.startsWith(PORT_PROXY_PREFIX)) {
    return () => {
      const url = request.url;
      const start = url.indexOf(PORT_PROXY_PREFIX, url.indexOf("://") + 3);
      return forwardToPort(request, url.slice(start + PORT_PROXY_PREFIX.length));
    };
  }
  if (path === PORT_FORWARD_PATH && request.method === "GET") return portForward;
  return undefined;
}

/**
 * A call answered as live output (src/formats/live_output.ts): chunks as the command prints
 * them, then the body (or error body) the plain call would have answered. The command is
 * interrupted when the client goes away.
 */
function live(
  request: Request,
  call: (options: CallOptions) => Promise<unknown>,
): Response {
  return liveOutputResponse(async (emit, gone) => {
    try {
      const body = await call({ signal: AbortSignal.any([request.signal, gone]), onOutput: emit });
      return { status: 200, body };
    } catch (error) {
      return await outcomeOf(rockletErrorResponse(error));
    }
  });
}

/** Builds the rocklet's app. */
export function createRockletApp(deps: RockletAppDeps): RockletApp {
  const { runtime } = deps;
  const logger = deps.logger ?? silentLogger;
  const json = (value: unknown) => Response.json(value);
  const routes = new Map<string, Route>([
    ["GET /", () => Promise.resolve(json({ message: "hello world" }))],
    ["GET /is_alive", async () => json(await runtime.isAlive())],
    ["GET /get_statistics", async () => json(await runtime.getStatistics())],
    [
      `GET ${PTY_PATH}`,
      (r, search) =>
        Promise.resolve(attachTerminal(r, search, deps.terminalEnv ?? processEnvironment())),
    ],
    [
      "POST /create_session",
      async (r) =>
        json(await runtime.createSession(await body(r, CreateSessionRequest, "create_session"))),
    ],
    [
      "POST /run_in_session",
      async (r) => {
        const raw = parseJsonObject(await r.text());
        if (isInterruptAction(raw)) {
          return json(
            await runtime.interruptSession(
              parseWire(BashInterruptAction, raw, "run_in_session request"),
            ),
          );
        }
        const action = parseWire(BashAction, raw, "run_in_session request");
        if (wantsLiveOutput(r.headers)) {
          return live(r, (options) => runtime.runInSession(action, options));
        }
        return json(await runtime.runInSession(action, { signal: r.signal }));
      },
    ],
    [
      "POST /close_session",
      async (r) =>
        json(await runtime.closeSession(await body(r, CloseSessionRequest, "close_session"))),
    ],
    [
      "POST /execute",
      async (r) => {
        const command = await body(r, Command, "execute");
        if (wantsLiveOutput(r.headers)) {
          return live(r, (options) => runtime.execute(command, options));
        }
        return json(await runtime.execute(command, { signal: r.signal }));
      },
    ],
    [
      "POST /read_file",
      async (r) => json(await runtime.readFile(await body(r, ReadFileRequest, "read_file"))),
    ],
    [
      "POST /write_file",
      async (r) => json(await runtime.writeFile(await body(r, WriteFileRequest, "write_file"))),
    ],
    ["POST /close", async () => json(await runtime.close())],
    [
      "POST /env/make",
      async (r) => json(await runtime.envMake(await body(r, EnvMakeRequest, "env/make"))),
    ],
    [
      "POST /env/step",
      async (r) => json(await runtime.envStep(await body(r, EnvStepRequest, "env/step"))),
    ],
    [
      "POST /env/reset",
      async (r) => json(await runtime.envReset(await body(r, EnvResetRequest, "env/reset"))),
    ],
    [
      "POST /env/close",
      async (r) => json(await runtime.envClose(await body(r, EnvCloseRequest, "env/close"))),
    ],
    ["POST /env/list", async () => json(await runtime.envList())],
    [
      "POST /upload",
      async (r) =>
        json(
          await receiveUpload(
            r,
            (fields) => fields.target_path !== undefined,
            ({ fields, file, fileName }) => {
              const { target_path, unzip } = parseWire(UploadFields, fields, "upload request");
              return runtime.upload(file, { targetPath: target_path, unzip, fileName });
            },
          ),
        ),
    ],
    ["GET /download", async (_r, search) => {
      const path = new URLSearchParams(search).get("path");
      if (!path) {
        throw new BadRequestError('Invalid download request: query parameter "path" is required');
      }
      const file = await runtime.download(path);
      const name = path.split("/").pop() || "download";
      return new Response(file.body, {
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(file.size),
          "content-disposition": `attachment; filename="${name.replace(/["\\\r\n]/g, "_")}"`,
        },
      });
    }],
  ]);

  return {
    async fetch(request) {
      const { path, search } = splitUrl(request.url);
      const head = request.method === "HEAD";
      const route = routes.get(`${head ? "GET" : request.method} ${path}`) ??
        portRoute(request, path);
      if (!route) {
        return Response.json({ detail: `Not Found: ${request.method} ${path}` }, { status: 404 });
      }
      const started = performance.now();
      const requestId = requestIdOf(request.headers.get(REQUEST_ID_HEADER));
      let response: Response;
      try {
        response = await route(request, search);
      } catch (error) {
        if (!(error instanceof RockError)) {
          logger.error("Unexpected error", { path, request_id: requestId, error: String(error) });
        }
        response = rockletErrorResponse(error);
      }
      logger[requestLogLevel(request.method)]("Request", {
        request_id: requestId,
        method: request.method,
        path,
        status: response.status,
        ms: Math.round(performance.now() - started),
      });
      if (!head) return response;
      await response.body?.cancel();
      return new Response(null, response);
    },
  };
}
