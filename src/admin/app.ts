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
  SandboxNotFoundError,
  SandboxStoppedError,
  UnavailableError,
} from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { REQUEST_ID_HEADER, requestIdOf, requestLogLevel } from "../common/request_id.ts";
import {
  BatchRequest,
  CommitRequest,
  DeleteRequest,
  describeStopped,
  type Envelope,
  EventsQuery,
  failureKindOf,
  type FailureResult,
  ListQuery,
  LogsQuery,
  type LogsResponse,
  SANDBOX_API,
  SandboxIdRequest,
  StartRequest,
  StatusQuery,
  statusToWire,
  TimeoutRequest,
  WarmupRequest,
} from "../protocol/admin.ts";
import {
  BashAction,
  BashInterruptAction,
  CloseSessionRequest,
  Command,
  CreateSessionRequest,
  isInterruptAction,
  ReadFileRequest,
  UploadFields,
  WriteFileRequest,
} from "../protocol/rocklet.ts";
import { parseJsonObject, parseWire } from "../protocol/validate.ts";
import { receiveUpload } from "../runtime/upload_form.ts";
import type { CallOptions } from "../protocol/runtime.ts";
import { liveOutputResponse, wantsLiveOutput } from "../formats/live_output.ts";
import type { SandboxManager, StartMetadata } from "./manager.ts";
import type { TaskRunRecord } from "./store.ts";
import { isoInZone } from "../common/time.ts";
import { leaseOf, toStartResponse, toStatusEvent, toStatusResponse } from "./sandbox_info.ts";
import { stopInfo } from "./stop_reason.ts";
import { createGemRoutes, GEM_API } from "./gem_routes.ts";
import type { Warmups } from "./warmup.ts";
import { commitError, type Commits } from "./commits.ts";
import { proxyHttp, upgradeTarget } from "./port_proxy.ts";

/** What the admin app needs. */
export interface AdminAppDeps {
  manager: SandboxManager;
  /** The scheduler's runs, when it is enabled: listed at /scheduler/tasks. */
  scheduler?: { list(): Promise<TaskRunRecord[]> } | undefined;
  /** This admin among admins sharing the store: the leader runs the scheduler. */
  leadership?: { readonly adminId: string; leader(): Promise<string | undefined> } | undefined;
  /** ROCK_TIME_ZONE for wire times. */
  timeZone: string;
  /** Largest batch or page (ROCK's batch_get_status_max_count, 2000). */
  maxBatch?: number | undefined;
  /** The image GEM sandboxes start from (default: the manager's default image). */
  gemImage?: string | undefined;
  /** Warm-ups (`/warmup/tasks`); without, a warm-up request is refused. */
  warmups?: Warmups | undefined;
  /** Commits (`/commit`); without, a commit request is refused. */
  commits?: Commits | undefined;
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
    ? {
      state: error.state,
      stop_reason: error.stopReason,
      stop_time: error.stopTime,
      failure_kind: failureKindOf(error.failureKind),
    }
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
        const result = await handler(c);
        // A handler that answers by itself (live output) returns its Response.
        return result instanceof Response ? result : c.json(success(result));
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
    const { sandbox_id, include_all_states } = query(c, StatusQuery, "get_status");
    const record = await manager.getStatus(sandbox_id, { includeAllStates: include_all_states });
    const status = toStatusResponse(record, timeZone);
    const queued = manager.queuePosition(sandbox_id);
    if (queued && status.status.queued) {
      // The place in the queue is live, not stored.
      status.status.queued = {
        ...status.status.queued,
        message: `waiting in the start queue: ${queued.position} of ${queued.of}`,
      };
      status.queue_position = queued.position;
      status.queue_length = queued.of;
    }
    const unresponsive = manager.unresponsive(sandbox_id);
    const wire = statusToWire(status);
    // Running but not answering: not alive, and the status says why.
    return unresponsive ? { ...wire, is_alive: false, unhealthy_reason: unresponsive } : wire;
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
  // ROCK's later lifecycle: a stopped (or failed) sandbox placed again under its id, answered as
  // a start; a stopped one deleted from the history (an unknown id counts as deleted).
  route("post", "/restart", "restart sandbox", async (c) => {
    const { sandbox_id } = await body(c, SandboxIdRequest, "restart");
    return toStartResponse(await manager.restart(sandbox_id));
  });
  route("post", "/sandboxes/:sandbox_id/restart", "restart sandbox", async (c) => {
    const { sandbox_id } = parseWire(
      SandboxIdRequest,
      { sandbox_id: c.req.param("sandbox_id") },
      "restart request",
    );
    return toStartResponse(await manager.restart(sandbox_id));
  });
  route("post", "/delete", "delete sandbox", async (c) => {
    const { sandbox_id } = await body(c, DeleteRequest, "delete");
    await manager.delete(sandbox_id);
    return `${sandbox_id} deleted`;
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
  // Not in ROCK (E2B's shape): the sandbox is stopped timeout_seconds from now.
  route("post", "/sandboxes/:id/timeout", "set sandbox timeout", async (c) => {
    const { sandbox_id } = parseWire(
      SandboxIdRequest,
      { sandbox_id: c.req.param("id") },
      "timeout",
    );
    const { timeout_seconds } = await body(c, TimeoutRequest, "timeout");
    const record = await manager.setTimeout(sandbox_id, timeout_seconds);
    return { sandbox_id, ...leaseOf(record, timeZone) };
  });

  // Not in ROCK: lifecycle events as server-sent events (see events.ts). With a sandbox id the
  // stream starts with its status now, so a change between a client's get_status and its
  // subscription is never missed. Errors keep the envelope with an HTTP 4xx.
  api.get("/events", async (c) => {
    try {
      const { sandbox_id } = query(c, EventsQuery, "events");
      if (sandbox_id !== undefined) {
        parseWire(SandboxIdRequest, { sandbox_id }, "events request");
        if ((await manager.batch([sandbox_id])).length === 0) {
          throw new SandboxNotFoundError(`Sandbox "${sandbox_id}" not found`, {
            extraInfo: { sandbox_id },
          });
        }
      }
      const stream = manager.events.subscribe(sandbox_id, {
        signal: c.req.raw.signal,
        first: async () =>
          sandbox_id === undefined
            ? []
            : (await manager.batch([sandbox_id])).map((r) => toStatusEvent(r, timeZone)),
      });
      return new Response(stream, {
        headers: {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          "x-accel-buffering": "no",
        },
      });
    } catch (error) {
      return c.json(
        failure("events", error),
        error instanceof SandboxNotFoundError
          ? 404
          : error instanceof RockError && error.code < 5000
          ? 400
          : 500,
      );
    }
  });

  route("get", "/get_logs", "get sandbox logs", async (c) => {
    const { sandbox_id, tail } = query(c, LogsQuery, "get_logs");
    const { logs, record } = await manager.logs(sandbox_id, tail);
    return { logs, ...stopInfo(record, timeZone) } satisfies LogsResponse;
  });
  route("get", "/scheduler/tasks", "list scheduler tasks", async () => {
    // Which admin answers and which one leads (runs the tasks), when admins share the store.
    const leader = await deps.leadership?.leader();
    const admins = deps.leadership
      ? {
        admin_id: deps.leadership.adminId,
        leader: leader ?? null,
        is_leader: leader === deps.leadership.adminId,
      }
      : {};
    if (!deps.scheduler) return { enabled: false, ...admins, tasks: [] };
    const tasks = await deps.scheduler.list();
    return {
      enabled: true,
      ...admins,
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
  type Rocklet = Awaited<ReturnType<SandboxManager["rocklet"]>>;
  const forward = <S extends z.core.$ZodType, A extends z.core.$ZodType = S>(
    path: string,
    what: string,
    schema: S,
    call: (rocklet: Rocklet, request: z.output<S>, options: CallOptions) => Promise<unknown>,
    /** Another request shape on the same path, told apart by `when`. */
    alternative?: {
      when: (raw: Record<string, unknown>) => boolean;
      schema: A;
      call: (rocklet: Rocklet, request: z.output<A>) => Promise<unknown>;
    },
  ) =>
    route("post", path, what, async (c) => {
      const raw = await jsonObject(c);
      const what = `${path.slice(1)} request`;
      const { sandbox_id } = parseWire(SandboxIdRequest, raw, what);
      let send: (rocklet: Rocklet, options: CallOptions) => Promise<unknown>;
      if (alternative?.when(raw)) {
        const request = parseWire(alternative.schema, raw, what);
        send = (rocklet) => alternative.call(rocklet, request);
      } else {
        const request = parseWire(schema, raw, what);
        send = (rocklet, options) => call(rocklet, request, options);
      }
      const run = (options: CallOptions) =>
        manager.watchCall(
          sandbox_id,
          async (rocklet) => await send(rocklet.withRequestId(c.get("requestId")), options),
        ).catch((error) => unreachable(sandbox_id, error));
      if (!wantsLiveOutput(c.req.raw.headers)) return await run({ signal: c.req.raw.signal });
      // Live output: chunks as the rocklet relays them, then the envelope the plain call answers.
      return liveOutputResponse(async (emit, gone) => {
        const signal = AbortSignal.any([c.req.raw.signal, gone]);
        try {
          return { status: 200, body: success(await run({ signal, onOutput: emit })) };
        } catch (error) {
          return { status: 200, body: failure(what, error) };
        }
      }, { [REQUEST_ID_HEADER]: c.get("requestId") });
    });
  forward("/execute", "execute command", Command, (r, req, options) => r.execute(req, options));
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
    (r, req, options) => r.runInSession(req, options),
    // SWE-ReX's bash_interrupt comes to the same path with its own shape.
    {
      when: isInterruptAction,
      schema: BashInterruptAction,
      call: (r, req) => r.interruptSession(req),
    },
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

  // Commit: answers the status when the commit is done (ROCK v1.3 waited too, answering
  // "<id> commited", which its own SDK could not read; ROCK's later SDKs read the status); `async`
  // answers at once with the status, which GET /commit/{sandbox_id} reports from then on.
  route("post", "/commit", "commit sandbox", async (c) => {
    const request = await body(c, CommitRequest, "commit");
    const id = request.sandbox_id;
    if (!deps.commits) throw new BadRequestError("Cannot commit: this admin has no commits");
    await manager.rocklet(id); // running, or a typed error saying why not
    const credentials = request.username && request.password
      ? { username: request.username, password: request.password }
      : undefined;
    const { status, done } = deps.commits.start({
      sandboxId: id,
      imageTag: request.image_tag,
      credentials,
    });
    if (request.async) return status;
    const ended = await done;
    if (ended.phase === "FAILED") throw commitError(ended);
    return ended;
  });
  route("get", "/commit/:sandbox_id", "get commit status", (c) => {
    const id = c.req.param("sandbox_id") ?? "";
    const status = deps.commits?.status(id);
    if (!status) {
      throw new SandboxNotFoundError(`No commit of sandbox "${id}" is known to this admin`, {
        extraInfo: { sandbox_id: id },
      });
    }
    return Promise.resolve(status);
  });

  // Warm-up: fetch an image ahead of the sandboxes that need it (ROCK answers with this message).
  api.post("/warmup/tasks", async (c) => {
    try {
      const { image } = await body(c, WarmupRequest, "warmup");
      if (!deps.warmups) throw new BadRequestError("Cannot warm up: this admin has no warm-ups");
      return c.json({ ...success(deps.warmups.start(image)), message: "warmup task started" });
    } catch (error) {
      return c.json(failure("start warmup", error));
    }
  });
  // Not in ROCK: what the warm-ups did.
  route(
    "get",
    "/warmup/tasks",
    "list warmup tasks",
    () => Promise.resolve({ tasks: deps.warmups?.list() ?? [] }),
  );
  // ROCK's proxy hands out cloud storage credentials here; rock has none to hand out.
  route("get", "/get_token", "get token", () => Promise.resolve(null));

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

  // Not in ROCK v1.3 beyond POST to port 8080: every method to any port inside the sandbox,
  // through its rocklet (see port_proxy.ts; WebSocket upgrades are the server's, see serve.ts).
  // Errors keep the envelope with an HTTP 4xx (a bad request) or 502.
  const proxy = async (c: AdminContext) => {
    try {
      return await proxyHttp(manager, c.req.raw, c.req.param("id") ?? "");
    } catch (error) {
      return c.json(
        failure("proxy", error),
        error instanceof RockError && error.code < 5000 ? 400 : 502,
      );
    }
  };
  api.all("/sandboxes/:id/proxy", proxy);
  api.all("/sandboxes/:id/proxy/*", proxy);

  app.get("/", (c) => c.json({ message: "hello, ROCK!" }));
  app.route(SANDBOX_API, api);
  app.route(
    GEM_API,
    createGemRoutes({ manager, image: deps.gemImage ?? "", logger }),
  );
  app.notFound((c) => {
    const unknown = `Not Found: ${c.req.method} ${c.req.path}`;
    // Under ROCK's API prefix, clients read an envelope: an unknown route gets one too.
    if (c.req.path.startsWith(`${SANDBOX_API}/`)) {
      return c.json(failure("request", new BadRequestError(unknown)), 404);
    }
    return c.json({ detail: unknown }, 404);
  });
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

/**
 * Where the admin's WebSocket upgrades go (the server splices them, see cli/serve.ts): the
 * sandbox's rocklet URL of `/sandboxes/{id}/proxy[/ws]...` and `/sandboxes/{id}/portforward`,
 * or an envelope refusing it (HTTP 400 for a bad request, 502 when the rocklet is not reached).
 */
export function createAdminUpgrade(
  manager: SandboxManager,
): (request: Request) => Promise<string | Response> {
  return async (request) => {
    try {
      return await upgradeTarget(manager, request);
    } catch (error) {
      return Response.json(failure("proxy", error), {
        status: error instanceof RockError && error.code < 5000 ? 400 : 502,
      });
    }
  };
}
