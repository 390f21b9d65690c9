/**
 * ROCK's GEM routes under `/apis/v1/envs/gem`: an RL trainer makes an environment (the admin
 * starts a sandbox from the GEM image and makes the environment in it), resets and steps it, and
 * closes it (the sandbox stops). Raw JSON in and out, no envelope, as ROCK answers: a malformed
 * request is HTTP 422, a refused one its 4xx, a failure 500; every error body is
 * `{detail, class_path, code, extra_info}` (ROCK sends `detail` and a traceback).
 */
import { Hono } from "hono";
import type { Context } from "hono";
import * as z from "zod/mini";
import { RockError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { StartRequest } from "../protocol/admin.ts";
import { EnvCloseRequest, EnvResetRequest, EnvStepRequest } from "../protocol/rocklet.ts";
import { parseJsonObject, parseWire } from "../protocol/validate.ts";
import type { SandboxManager } from "./manager.ts";
import { GEM_CLOSED, GEM_MAKE_FAILED } from "./stop_reason.ts";

/** Where ROCK serves the GEM routes. */
export const GEM_API = "/apis/v1/envs/gem";

/** POST /make */
const MakeRequest = z.object({ "env_id": z.string().check(z.minLength(1)) });

/** What the GEM routes need. */
export interface GemRoutesDeps {
  manager: SandboxManager;
  /**
   * The image GEM sandboxes start from (ROCK: ROCK_ENVHUB_DEFAULT_DOCKER_IMAGE); empty for the
   * manager's default image.
   */
  image: string;
  logger?: Logger;
}

/** The error body of a failed GEM call, with the status it goes with. */
function errorResponse(c: Context, error: unknown, logger: Logger): Response {
  const rockError = error instanceof RockError ? error : undefined;
  if (!rockError) logger.error("Unexpected error", { path: c.req.path, error: String(error) });
  const status = rockError && rockError.status >= 400 && rockError.status < 500
    ? rockError.status
    : 500;
  return c.json({
    detail: error instanceof Error ? error.message : String(error),
    class_path: rockError?.classPath ?? "builtins.RuntimeError",
    code: rockError?.code ?? 5000,
    extra_info: rockError?.extraInfo ?? {},
  }, status as 400);
}

/** Builds the GEM routes (mount them at GEM_API). */
export function createGemRoutes(deps: GemRoutesDeps): Hono {
  const { manager, image } = deps;
  const logger = deps.logger ?? silentLogger;
  const app = new Hono();
  const route = (path: string, handler: (body: Record<string, unknown>) => Promise<unknown>) =>
    app.post(path, async (c) => {
      try {
        return c.json(await handler(parseJsonObject(await c.req.text())));
      } catch (error) {
        return errorResponse(c, error, logger);
      }
    });

  route("/make", async (body) => {
    const { env_id } = parseWire(MakeRequest, body, "gem make request");
    const record = await manager.start(parseWire(StartRequest, { image }, "gem make request"));
    const id = record.sandbox_id;
    try {
      return await manager.watchCall(id, (r) => r.envMake({ env_id, sandbox_id: id }));
    } catch (error) {
      // The environment could not be made: the sandbox serves no one.
      await manager.stop(id, GEM_MAKE_FAILED).catch(() => {});
      throw error;
    }
  });
  route("/step", async (body) => {
    const request = parseWire(EnvStepRequest, body, "gem step request");
    return await manager.watchCall(request.sandbox_id, (r) => r.envStep(request));
  });
  route("/reset", async (body) => {
    const request = parseWire(EnvResetRequest, body, "gem reset request");
    return await manager.watchCall(request.sandbox_id, (r) => r.envReset(request));
  });
  route("/close", async (body) => {
    const request = parseWire(EnvCloseRequest, body, "gem close request");
    try {
      return await manager.watchCall(request.sandbox_id, (r) => r.envClose(request));
    } finally {
      await manager.stop(request.sandbox_id, GEM_CLOSED);
    }
  });
  route("/list", async (body) => {
    const request = parseWire(EnvCloseRequest, body, "gem list request");
    return await manager.watchCall(request.sandbox_id, (r) => r.envList());
  });
  return app;
}
