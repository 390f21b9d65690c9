/**
 * The admin's HTTP app: `GET /` and the sandbox routes under `/apis/envs/sandbox/v1`, in ROCK's
 * envelope `{status, message, error, result}` (HTTP 200 even on failure, as ROCK does). Errors
 * are mapped to the envelope in one place: `message` names the route, `error` says why and
 * `result` carries ROCK's code.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { z } from "zod";
import {
  BadRequestError,
  Codes,
  RockError,
  SandboxStoppedError,
  UnavailableError,
} from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { REQUEST_ID_HEADER, requestIdOf, requestLogLevel } from "../common/request_id.ts";
import {
  BatchRequest,
  describeStopped,
  type Envelope,
  type FailureResult,
  ListQuery,
  LogsQuery,
  type LogsResponse,
  SANDBOX_API,
  SandboxIdRequest,
  StartRequest,
} from "../protocol/admin.ts";
import {
  BashAction,
  CloseSessionRequest,
  Command,
  CreateSessionRequest,
  ReadFileRequest,
  UploadFields,
  WriteFileRequest,
} from "../protocol/rocklet.ts";
import { parseJsonObject, parseWire } from "../protocol/validate.ts";
import { receiveUpload } from "../runtime/upload_form.ts";
import type { SandboxManager, StartMetadata } from "./manager.ts";
import type { Scheduler } from "./scheduler/scheduler.ts";
import { isoInZone } from "../common/time.ts";
import { toStartResponse, toStatusResponse } from "./sandbox_info.ts";
import { stopInfo } from "./stop_reason.ts";
import { createGemRoutes, GEM_API } from "./gem_routes.ts";

/** What the admin app needs. */
export interface AdminAppDeps {
  manager: SandboxManager;
  /** The scheduler, when enabled: its tasks are listed at /scheduler/tasks. */
  scheduler?: Scheduler | undefined;
  /** ROCK_TIME_ZONE for wire times. */
  timeZone: string;
  /** Largest batch or page (ROCK's batch_get_status_max_count, 2000). */
  maxBatch?: number | undefined;
  /** The image GEM sandboxes start from (default: the manager's default image). */
  gemImage?: string | undefined;
  logger?: Logger | undefined;
}

/** What the admin's handlers find in their context: the request's id (see request_id.ts). */
export type AdminEnv = { Variables: { requestId: string } };

/** A handler's context. */
type AdminContext = Context<AdminEnv>;

/** A Success envelope. */
function success<T>(result: T): Envelope<T> {
  return { status: "Success", message: "", error: null, result };
}

/**
 * A Failed envelope for `error` raised by the route described by `what`. Beside ROCK's `code` and
 * `exit_code`, `result` carries the error's `class_path` and `extra_info` (fields ROCK's SDKs
 * ignore), so rock's SDK rebuilds the same error class.
 */
export function failure(what: string, error: unknown): Envelope<FailureResult> {
  const message = error instanceof Error ? error.message : String(error);
  const rockError = error instanceof RockError ? error : undefined;
  // A call refused because the sandbox no longer runs also says why and since when.
  const stopped = error instanceof SandboxStoppedError
    ? { state: error.state, stop_reason: error.stopReason, stop_time: error.stopTime }
    : {};
  return {
    status: "Failed",
    message: `${what} failed`,
    error: message,
    result: {
      code: rockError?.code ?? Codes.INTERNAL_SERVER_ERROR,
      exit_code: rockError?.exitCode ?? null,
      failure_reason: message,
      class_path: rockError?.classPath ?? "builtins.RuntimeError",
      extra_info: rockError?.extraInfo ?? {},
      ...stopped,
    },
  };
}

/**
 * The answer to a call still running when the admin's shutdown grace ends: a Failed envelope
 * (code 5000) saying so, so the caller knows the call did not complete.
 */
export function shutdownResponse(graceMs: number): Response {
  return Response.json(failure(
    "request",
    new UnavailableError(
      `The admin is shutting down: the call did not finish within the ${graceMs / 1000} s grace`,
    ),
  ));
}

/** Reads a JSON object body, or throws a BadRequestError. */
async function jsonObject(c: AdminContext): Promise<Record<string, unknown>> {
  return parseJsonObject(await c.req.text());
}

/** Start metadata from ROCK's headers. */
function metadata(c: AdminContext): StartMetadata {
  return {
    user_id: c.req.header("x-user-id"),
    experiment_id: c.req.header("x-experiment-id"),
    namespace: c.req.header("x-namespace"),
    cluster_name: c.req.header("x-cluster"),
  };
}

/** Builds the admin's Hono app. */
export function createAdminApp(deps: AdminAppDeps): Hono<AdminEnv> {
  const { manager, timeZone } = deps;
  const maxBatch = deps.maxBatch ?? 2000;
  const logger = deps.logger ?? silentLogger;
  const app = new Hono<AdminEnv>();
  const api = new Hono<AdminEnv>();
  // Every request gets its id first (the client's, when sane), which its log line, its response
  // and the rocklet calls made for it carry.
  app.use(async (c, next) => {
    const started = performance.now();
    const requestId = requestIdOf(c.req.header(REQUEST_ID_HEADER));
    c.set("requestId", requestId);
    await next();
    c.header(REQUEST_ID_HEADER, requestId);
    logger[requestLogLevel(c.req.method)]("Request", {
      request_id: requestId,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round(performance.now() - started),
    });
  });

  /** Registers a route whose handler result goes into a Success envelope and errors into Failed. */
  const route = (
    method: "get" | "post",
    path: string,
    what: string,
    handler: (c: AdminContext) => Promise<unknown>,
  ) => {
    api[method](path, async (c) => {
      try {
        return c.json(success(await handler(c)));
      } catch (error) {
        if (!(error instanceof RockError)) {
          logger.error("Unexpected error", {
            path,
            request_id: c.get("requestId"),
            error: String(error),
          });
        }
        return c.json(failure(what, error));
      }
    });
  };
  const body = async <S extends z.core.$ZodType>(c: AdminContext, schema: S, what: string) =>
    parseWire(schema, await jsonObject(c), `${what} request`);
  const query = <S extends z.core.$ZodType>(c: AdminContext, schema: S, what: string) =>
    parseWire(schema, c.req.query(), `${what} request`);

  route("post", "/start_async", "start sandbox", async (c) => {
    const record = await manager.startAsync(
      await body(c, StartRequest, "start_async"),
      metadata(c),
    );
    return toStartResponse(record);
  });
  route("post", "/start", "start sandbox", async (c) => {
    const record = await manager.start(await body(c, StartRequest, "start"), metadata(c));
    return toStartResponse(record);
  });
  route("get", "/get_status", "get sandbox status", async (c) => {
    const { sandbox_id } = query(c, SandboxIdRequest, "get_status");
    const status = toStatusResponse(await manager.getStatus(sandbox_id), timeZone);
    const queued = manager.queuePosition(sandbox_id);
    if (queued && status.status.queued) {
      // The place in the queue is live, not stored.
      status.status.queued = {
        ...status.status.queued,
        message: `waiting in the start queue: ${queued.position} of ${queued.of}`,
      };
    }
    const unresponsive = manager.unresponsive(sandbox_id);
    // Running but not answering: not alive, and the status says why.
    return unresponsive ? { ...status, is_alive: false, unhealthy_reason: unresponsive } : status;
  });
  route("get", "/is_alive", "is alive", async (c) => {
    const { sandbox_id } = query(c, SandboxIdRequest, "is_alive");
    try {
      const record = await manager.getStatus(sandbox_id);
      const unresponsive = manager.unresponsive(sandbox_id);
      if (record.state === "running" && unresponsive) {
        return { is_alive: false, message: unresponsive };
      }
      if (record.state === "running") return { is_alive: true, message: record.host_name ?? "" };
      const message = record.state === "pending"
        ? `sandbox ${sandbox_id} is pending`
        : describeStopped(sandbox_id, toStatusResponse(record, timeZone, false));
      return { is_alive: false, message };
    } catch {
      return { is_alive: false, message: `sandbox ${sandbox_id} is alive failed` };
    }
  });
  route("post", "/stop", "stop sandbox", async (c) => {
    const { sandbox_id } = await body(c, SandboxIdRequest, "stop");
    await manager.stop(sandbox_id);
    return `${sandbox_id} stopped`;
  });
  route("post", "/sandboxes/batch", "batch get sandbox status", async (c) => {
    const { sandbox_ids } = await body(c, BatchRequest, "batch");
    if (sandbox_ids.length > maxBatch) {
      throw new BadRequestError(
        `Invalid batch request: ${sandbox_ids.length} ids exceed the maximum of ${maxBatch}`,
      );
    }
    const records = await manager.batch(sandbox_ids);
    return { statuses: records.map((r) => toStatusResponse(r, timeZone, false)) };
  });
  route("get", "/sandboxes", "list sandboxes", async (c) => {
    const q = query(c, ListQuery, "list");
    if (q.page_size > maxBatch) {
      throw new BadRequestError(
        `Invalid list request: page_size ${q.page_size} exceeds the maximum of ${maxBatch}`,
      );
    }
    const { page, page_size, ...filters } = q;
    const { items, total } = await manager.list(filters, page, page_size);
    return {
      items: items.map((r) => toStatusResponse(r, timeZone, false)),
      total,
      has_more: page * page_size < total,
    };
  });
  route("get", "/get_logs", "get sandbox logs", async (c) => {
    const { sandbox_id, tail } = query(c, LogsQuery, "get_logs");
    const { logs, record } = await manager.logs(sandbox_id, tail);
    return { logs, ...stopInfo(record, timeZone) } satisfies LogsResponse;
  });
  route("get", "/scheduler/tasks", "list scheduler tasks", async () => {
    if (!deps.scheduler) return { enabled: false, tasks: [] };
    const tasks = await deps.scheduler.list();
    return {
      enabled: true,
      tasks: tasks.map((t) => ({
        ...t,
        last_run: t.last_run === null ? null : isoInZone(new Date(t.last_run), timeZone),
      })),
    };
  });
  route("get", "/get_sandbox_statistics", "get sandbox statistics", async (c) => {
    const { sandbox_id } = query(c, SandboxIdRequest, "get_sandbox_statistics");
    return await (await manager.rocklet(sandbox_id)).withRequestId(c.get("requestId"))
      .getStatistics();
  });

  /**
   * A data-plane call to sandbox `id` failed with `error`: when its rocklet could not be reached,
   * the backend is asked whether the sandbox died (then the error names that), else `error` stands.
   */
  const unreachable = async (id: string, error: unknown): Promise<never> => {
    if (error instanceof UnavailableError) await manager.checkAlive(id);
    throw error;
  };

  // Data plane: validated here, forwarded to the sandbox's rocklet over a keep-alive client.
  const forward = <S extends z.core.$ZodType>(
    path: string,
    what: string,
    schema: S,
    call: (
      rocklet: Awaited<ReturnType<SandboxManager["rocklet"]>>,
      request: z.output<S>,
      signal: AbortSignal,
    ) => Promise<unknown>,
  ) =>
    route("post", path, what, async (c) => {
      const raw = await jsonObject(c);
      const { sandbox_id } = parseWire(SandboxIdRequest, raw, `${path.slice(1)} request`);
      const request = parseWire(schema, raw, `${path.slice(1)} request`);
      return await manager.watchCall(
        sandbox_id,
        async (rocklet) =>
          await call(rocklet.withRequestId(c.get("requestId")), request, c.req.raw.signal),
      ).catch((error) => unreachable(sandbox_id, error));
    });
  forward("/execute", "execute command", Command, (r, req, signal) => r.execute(req, { signal }));
  forward(
    "/create_session",
    "create session",
    CreateSessionRequest,
    (r, req) => r.createSession(req),
  );
  forward(
    "/run_in_session",
    "run in session",
    BashAction,
    (r, req, signal) => r.runInSession(req, { signal }),
  );
  forward("/close_session", "close session", CloseSessionRequest, (r, req) => r.closeSession(req));
  forward("/read_file", "read file", ReadFileRequest, (r, req) => r.readFile(req));
  forward("/write_file", "write file", WriteFileRequest, (r, req) => r.writeFile(req));

  route("post", "/upload", "upload file", (c) =>
    receiveUpload(
      c.req.raw,
      (fields) => fields.sandbox_id !== undefined && fields.target_path !== undefined,
      async ({ fields, file, fileName }) => {
        try {
          const { sandbox_id } = parseWire(SandboxIdRequest, fields, "upload request");
          const { target_path, unzip } = parseWire(UploadFields, fields, "upload request");
          const rocklet = (await manager.rocklet(sandbox_id)).withRequestId(c.get("requestId"));
          return await rocklet.upload(file, { targetPath: target_path, unzip, fileName });
        } catch (error) {
          await file.cancel().catch(() => {});
          throw error;
        }
      },
    ));

  // Not in ROCK: a streamed, binary-safe download. Errors keep the envelope with an HTTP 4xx.
  api.get("/download", async (c) => {
    try {
      const { sandbox_id } = query(c, SandboxIdRequest, "download");
      const path = c.req.query("path");
      if (!path) {
        throw new BadRequestError('Invalid download request: query parameter "path" is required');
      }
      const rocklet = (await manager.rocklet(sandbox_id)).withRequestId(c.get("requestId"));
      const file = await rocklet.download(path);
      return new Response(file.body, {
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(file.size),
        },
      });
    } catch (error) {
      return c.json(
        failure("download file", error),
        error instanceof RockError && error.code < 5000 ? 400 : 500,
      );
    }
  });

  app.get("/", (c) => c.json({ message: "hello, ROCK!" }));
  app.route(SANDBOX_API, api);
  app.route(
    GEM_API,
    createGemRoutes({ manager, image: deps.gemImage ?? "", logger }),
  );
  app.notFound((c) => c.json({ detail: `Not Found: ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    logger.error("Unexpected error", {
      path: c.req.path,
      request_id: c.get("requestId"),
      error: String(error),
    });
    return c.json(failure("request", error));
  });
  return app;
}
