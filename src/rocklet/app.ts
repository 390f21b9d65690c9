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
import { parseJsonObject, parseWire } from "../protocol/validate.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { receiveUpload } from "../runtime/upload_form.ts";

/** What the rocklet app needs. */
export interface RockletAppDeps {
  /** The runtime the routes call. */
  runtime: Runtime;
  /** Where errors are logged. */
  logger?: Logger;
}

/** Reads a JSON object body and validates it with `schema`; BadRequestError says what is wrong. */
async function body<S extends z.core.$ZodType>(
  c: Context,
  schema: S,
  what: string,
): Promise<z.output<S>> {
  return parseWire(schema, await jsonObject(c), `${what} request`);
}

/** Reads a JSON object body or throws BadRequestError saying what is wrong with it. */
async function jsonObject(c: Context): Promise<Record<string, unknown>> {
  return parseJsonObject(await c.req.text());
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
  app.post("/upload", async (c) =>
    c.json(
      await receiveUpload(c.req.raw, (fields) =>
        fields.target_path !== undefined, ({ fields, file, fileName }) => {
        const { target_path, unzip } = parseWire(UploadFields, fields, "upload request");
        return runtime.upload(file, { targetPath: target_path, unzip, fileName });
      }),
    ));
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
