/**
 * The rocklet's HTTP routes over a Runtime, with ROCK's wire format: raw JSON replies, runtime
 * failures as HTTP 511 `{"rockletexception": {...}}`, malformed requests as HTTP 422.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { BadRequestError, RockError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import type { z } from "zod";
import {
  BashAction,
  CloseSessionRequest,
  Command,
  CreateSessionRequest,
  ReadFileRequest,
  type RockletExceptionBody,
  UploadFields,
  WriteFileRequest,
} from "../protocol/rocklet.ts";
import { parseWire } from "../protocol/validate.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { fileSink } from "../runtime/file_sink.ts";
import {
  multipartBoundary,
  MultipartError,
  parseMultipart,
  readPartText,
} from "../runtime/multipart.ts";

/** What the rocklet app needs. */
export interface RockletAppDeps {
  /** The runtime the routes call. */
  runtime: Runtime;
  /** Where errors are logged. */
  logger?: Logger;
}

/** Reads a JSON object body and validates it with `schema`; BadRequestError says what is wrong. */
async function body<S extends z.ZodType>(
  c: Context,
  schema: S,
  what: string,
): Promise<z.output<S>> {
  return parseWire(schema, await jsonObject(c), `${what} request`);
}

/** Reads a JSON object body or throws BadRequestError saying what is wrong with it. */
async function jsonObject(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BadRequestError(`Invalid JSON body: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new BadRequestError("Invalid JSON body: expected an object");
  }
  return value as Record<string, unknown>;
}

/** Converts any thrown value to the wire: 511 rockletexception, 422 detail, or 404. */
export function rockletErrorResponse(error: unknown): Response {
  if (error instanceof RockError && error.status !== 511 && error.status < 500) {
    return Response.json({ detail: error.message }, { status: error.status });
  }
  const rockError = error instanceof RockError ? error : undefined;
  const body: RockletExceptionBody = {
    rockletexception: {
      message: error instanceof Error ? error.message : String(error),
      class_path: rockError?.classPath ?? "builtins.RuntimeError",
      traceback: error instanceof Error ? (error.stack ?? "") : "",
      extra_info: rockError?.extraInfo ?? {},
    },
  };
  return Response.json(body, { status: 511 });
}

/** Builds the rocklet's Hono app. */
export function createRockletApp(deps: RockletAppDeps): Hono {
  const { runtime } = deps;
  const logger = deps.logger ?? silentLogger;
  const app = new Hono();

  app.onError((error, c) => {
    if (!(error instanceof RockError)) {
      logger.error("Unexpected error", { path: c.req.path, error: String(error) });
    }
    return rockletErrorResponse(error);
  });
  app.notFound((c) => c.json({ detail: `Not Found: ${c.req.method} ${c.req.path}` }, 404));

  app.get("/", (c) => c.json({ message: "hello world" }));
  app.get("/is_alive", async (c) => c.json(await runtime.isAlive()));
  app.get("/get_statistics", async (c) => c.json(await runtime.getStatistics()));
  app.post(
    "/create_session",
    async (c) =>
      c.json(await runtime.createSession(await body(c, CreateSessionRequest, "create_session"))),
  );
  app.post("/run_in_session", async (c) =>
    c.json(
      await runtime.runInSession(await body(c, BashAction, "run_in_session"), {
        signal: c.req.raw.signal,
      }),
    ));
  app.post(
    "/close_session",
    async (c) =>
      c.json(await runtime.closeSession(await body(c, CloseSessionRequest, "close_session"))),
  );
  app.post(
    "/execute",
    async (c) =>
      c.json(
        await runtime.execute(await body(c, Command, "execute"), { signal: c.req.raw.signal }),
      ),
  );
  app.post(
    "/read_file",
    async (c) => c.json(await runtime.readFile(await body(c, ReadFileRequest, "read_file"))),
  );
  app.post(
    "/write_file",
    async (c) => c.json(await runtime.writeFile(await body(c, WriteFileRequest, "write_file"))),
  );
  app.post("/close", async (c) => c.json(await runtime.close()));
  app.post("/upload", async (c) => {
    try {
      return c.json(await upload(runtime, c.req.raw));
    } catch (error) {
      if (error instanceof MultipartError) {
        throw new BadRequestError(`Invalid upload request: ${error.message}`);
      }
      throw error;
    }
  });
  app.get("/download", async (c) => {
    const path = c.req.query("path");
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
  });
  return app;
}

/**
 * Streams a multipart upload into the runtime. ROCK's clients send the form fields before the
 * file; when the file comes first it is spooled to a temporary file until `target_path` arrives.
 */
async function upload(runtime: Runtime, request: Request) {
  const boundary = multipartBoundary(request.headers.get("content-type"));
  if (!request.body) throw new BadRequestError("Invalid upload request: the body is empty");
  const fields: Record<string, string> = {};
  let result: Awaited<ReturnType<Runtime["upload"]>> | undefined;
  let spooled: { path: string; fileName?: string } | undefined;
  try {
    for await (const part of parseMultipart(request.body, boundary)) {
      if (part.name !== "file") {
        fields[part.name] = await readPartText(part);
        continue;
      }
      if (result || spooled) {
        throw new BadRequestError('Invalid upload request: more than one "file" part');
      }
      if (fields.target_path !== undefined) {
        const { target_path, unzip } = parseWire(UploadFields, fields, "upload request");
        result = await runtime.upload(part.body, {
          targetPath: target_path,
          unzip,
          fileName: part.filename,
        });
      } else {
        const path = await Deno.makeTempFile({ prefix: "rock-upload-" });
        spooled = { path, fileName: part.filename };
        await part.body.pipeTo(fileSink(await Deno.open(path, { write: true })));
      }
    }
    if (result) return result;
    if (!spooled) throw new BadRequestError('Invalid upload request: field "file" is required');
    const { target_path, unzip } = parseWire(UploadFields, fields, "upload request");
    const file = await Deno.open(spooled.path, { read: true });
    return await runtime.upload(file.readable, {
      targetPath: target_path,
      unzip,
      fileName: spooled.fileName,
    });
  } finally {
    if (spooled) await Deno.remove(spooled.path).catch(() => {});
  }
}
