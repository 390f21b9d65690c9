/**
 * GEM environments through the admin (`/apis/v1/envs/gem`), as ROCK's `rock.make(env_id)`:
 * `GemEnv.make()` starts a sandbox from the admin's GEM image and makes the environment in it;
 * `reset()` and `step()` follow gymnasium's signatures; `close()` closes it and stops the
 * sandbox. Runs on Deno and Node.
 */
import { errorFromWire, InternalServerError } from "../common/errors.ts";
import type { EnvResetResponse, EnvStepResponse } from "../protocol/rocklet.ts";
import { defaultAdminUrl } from "./admin_client.ts";

/** Options of GemEnv.make(). */
export interface GemEnvOptions {
  /** The admin (default defaultAdminUrl(): $ROCK_BASE_URL, else http://localhost:8080). */
  baseUrl?: string | undefined;
  /** Headers sent with every request. */
  headers?: Record<string, string> | undefined;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch | undefined;
}

/** A GEM environment in a sandbox of its own. */
export class GemEnv {
  /** The sandbox the environment runs in (also its key). */
  readonly sandboxId: string;
  /** The environment id it was made from. */
  readonly envId: string;
  readonly #call: (route: string, body: Record<string, unknown>) => Promise<unknown>;

  private constructor(
    envId: string,
    sandboxId: string,
    call: (route: string, body: Record<string, unknown>) => Promise<unknown>,
  ) {
    this.envId = envId;
    this.sandboxId = sandboxId;
    this.#call = call;
  }

  /**
   * Makes environment `envId`: the admin starts a sandbox from its GEM image, waits until it
   * runs, and makes the environment in it.
   * @throws {RockError} the admin's typed error (GemUnavailableError when the sandbox lacks
   *   python or the gem package).
   */
  static async make(envId: string, options: GemEnvOptions = {}): Promise<GemEnv> {
    const call = gemCaller(options);
    const { sandbox_id } = await call("/make", { env_id: envId }) as { sandbox_id: string };
    return new GemEnv(envId, sandbox_id, call);
  }

  /** Resets the environment (with `seed` when given): gymnasium's `(observation, info)`. */
  async reset(seed?: number): Promise<EnvResetResponse> {
    const body: Record<string, unknown> = { sandbox_id: this.sandboxId };
    if (seed !== undefined) body.seed = seed;
    return await this.#call("/reset", body) as EnvResetResponse;
  }

  /** Takes one action: observation, reward, terminated, truncated, info. */
  async step(action: unknown): Promise<EnvStepResponse> {
    return await this.#call("/step", { sandbox_id: this.sandboxId, action }) as EnvStepResponse;
  }

  /** The environment ids the sandbox's gem package registers. */
  async list(): Promise<string[]> {
    const { env_id } = await this.#call("/list", { sandbox_id: this.sandboxId }) as {
      env_id: string[];
    };
    return env_id;
  }

  /** Closes the environment; the admin stops its sandbox. */
  async close(): Promise<void> {
    await this.#call("/close", { sandbox_id: this.sandboxId });
  }
}

/** A function that posts to a GEM route and returns its JSON, or throws its typed error. */
function gemCaller(
  options: GemEnvOptions,
): (route: string, body: Record<string, unknown>) => Promise<unknown> {
  const base = `${(options.baseUrl ?? defaultAdminUrl()).replace(/\/+$/, "")}/apis/v1/envs/gem`;
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  return async (route, body) => {
    const sandboxId = typeof body.sandbox_id === "string" ? body.sandbox_id : undefined;
    let response: Response;
    try {
      response = await doFetch(`${base}${route}`, {
        method: "POST",
        headers: { ...options.headers, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (error) {
      throw new InternalServerError(
        `Cannot reach the admin at ${base}: ${(error as Error).message}`,
        { sandboxId, cause: error },
      );
    }
    const text = await response.text();
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text);
    } catch {
      throw new InternalServerError(
        `The admin answered ${route} with HTTP ${response.status} and no JSON: ${
          text.slice(0, 200)
        }`,
        { sandboxId },
      );
    }
    if (response.ok) return json;
    // ROCK's admin sends `detail` only; rock's adds the class path, code and details.
    throw errorFromWire({
      message: typeof json.detail === "string" ? json.detail : JSON.stringify(json.detail),
      class_path: json.class_path as string | undefined,
      code: (json.code as number | undefined) ?? (response.status < 500 ? 4000 : 5000),
      extra_info: json.extra_info as Record<string, unknown> | undefined,
    }, { sandboxId });
  };
}
