/**
 * EnvHub's HTTP routes with ROCK's wire format: raw JSON replies, `{"detail": "..."}` errors,
 * 422 for malformed requests (naming the field), 404 for unknown environments, 500 otherwise.
 */
import { type Context, Hono } from "hono";
import type { z } from "zod";
import { errorMessage, RockError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import {
  EnvNameRequest,
  ListEnvsRequest,
  type ListEnvsResponse,
  RegisterEnvRequest,
} from "../protocol/envhub.ts";
import { parseJsonObject, parseWire } from "../protocol/validate.ts";
import type { EnvStore } from "./store.ts";

/** What the EnvHub app needs. */
export interface EnvHubAppDeps {
  /** The registry the routes call. */
  store: EnvStore;
  /** Where requests and errors are logged. */
  logger?: Logger;
}

/** Reads a JSON object body (an empty body counts as `{}`) and validates it with `schema`. */
async function body<S extends z.ZodType>(
  c: Context,
  schema: S,
  what: string,
): Promise<z.output<S>> {
  return parseWire(
    schema,
    parseJsonObject(await c.req.text(), { emptyIsObject: true, what: `${what} request` }),
    `${what} request`,
  );
}

/** Converts any thrown value to the wire: `{"detail"}` with the error's status, else 500. */
export function envHubErrorResponse(error: unknown): Response {
  const status = error instanceof RockError && error.status >= 400 && error.status < 600
    ? error.status
    : 500;
  return Response.json({ detail: errorMessage(error) }, { status });
}

/** Builds EnvHub's Hono app. */
export function createEnvHubApp(deps: EnvHubAppDeps): Hono {
  const { store } = deps;
  const logger = deps.logger ?? silentLogger;
  const app = new Hono();

  app.onError((error, c) => {
    if (!(error instanceof RockError) || error.status >= 500) {
      logger.error("Request failed", { path: c.req.path, error: errorMessage(error) });
    }
    return envHubErrorResponse(error);
  });
  app.notFound((c) => c.json({ detail: `Not Found: ${c.req.method} ${c.req.path}` }, 404));

  app.get("/health", (c) => c.json({ status: "ok" }));
  app.post("/env/register", async (c) => {
    const env = await store.register(await body(c, RegisterEnvRequest, "register"));
    logger.info("Registered environment", { env_name: env.env_name, image: env.image });
    return c.json(env);
  });
  app.post(
    "/env/get",
    async (c) => c.json(await store.get((await body(c, EnvNameRequest, "get")).env_name)),
  );
  app.post("/env/list", async (c) => {
    const response: ListEnvsResponse = {
      envs: await store.list(await body(c, ListEnvsRequest, "list")),
    };
    return c.json(response);
  });
  app.post("/env/delete", async (c) => {
    const { env_name } = await body(c, EnvNameRequest, "delete");
    const deleted = await store.delete(env_name);
    logger.info("Deleted environment", { env_name });
    return c.json(deleted);
  });
  return app;
}
