/**
 * A typed client for EnvHub (rock's or ROCK's own): register, get, list and delete environments.
 * Runs on Deno and Node (web-standard fetch only).
 */
import type { EnvHubHealth, EnvInfo, ListEnvsResponse } from "../protocol/envhub.ts";
import { BadRequestRockError, InternalServerRockError, type RockSdkError } from "./errors.ts";

/** EnvHub's default address (ROCK's `ROCK_ENVHUB_BASE_URL` default). */
export const DEFAULT_ENVHUB_URL = "http://localhost:8081";

/** Options of an EnvHubClient. */
export interface EnvHubClientOptions {
  /** Headers sent with every request. */
  headers?: Record<string, string> | undefined;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch | undefined;
}

/** What `EnvHubClient.register()` sends. */
export interface RegisterEnvOptions {
  /** Unique name; registering it again replaces the environment (keeping `create_at`). */
  envName: string;
  /** Docker image. */
  image: string;
  /** Owner (default ""). */
  owner?: string | undefined;
  /** Description (default ""). */
  description?: string | undefined;
  /** Tags (default none). */
  tags?: string[] | undefined;
  /** Free-form settings (default null). */
  extraSpec?: Record<string, unknown> | null | undefined;
}

/** Filters of `EnvHubClient.list()`; absent or empty ones match everything. */
export interface ListEnvsFilter {
  /** Only environments of exactly this owner. */
  owner?: string | undefined;
  /** Only environments carrying any of these tags. */
  tags?: string[] | undefined;
}

/** Formats a `detail` from rock (a string) or FastAPI (a list of `{loc, msg}`) as one line. */
function detailText(detail: unknown): string | undefined {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((item) => {
      const loc = Array.isArray(item?.loc) ? item.loc.filter((p: unknown) => p !== "body") : [];
      return `${loc.length ? `field "${loc.join(".")}"` : "body"}: ${item?.msg ?? "invalid"}`;
    }).join("; ");
  }
  return undefined;
}

/**
 * EnvHub's API, one method per route. Refused requests (404 unknown environment, 422 bad input)
 * throw BadRequestRockError; server failures and an unreachable EnvHub throw
 * InternalServerRockError.
 *
 * @example
 * ```ts
 * import { EnvHubClient } from "./mod.ts";
 * const hub = new EnvHubClient("http://127.0.0.1:8081");
 * await hub.register({ envName: "swe", image: "python:3.11", tags: ["swe"] });
 * console.log((await hub.list({ tags: ["swe"] })).map((env) => env.env_name));
 * ```
 */
export class EnvHubClient {
  /** EnvHub's URL without a trailing slash. */
  readonly baseUrl: string;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;

  /** Creates a client for the EnvHub at `baseUrl` (default http://localhost:8081). */
  constructor(baseUrl: string = DEFAULT_ENVHUB_URL, options: EnvHubClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#headers = options.headers ?? {};
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  async #call<T>(path: string, init: RequestInit): Promise<T> {
    let response: Response;
    try {
      response = await this.#fetch(`${this.baseUrl}${path}`, {
        ...init,
        headers: { ...this.#headers, ...(init.headers as Record<string, string> | undefined) },
      });
    } catch (error) {
      throw new InternalServerRockError(
        `Cannot reach the EnvHub at ${this.baseUrl}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    const text = await response.text();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new InternalServerRockError(
        `The EnvHub answered ${path} with HTTP ${response.status} and no JSON: ${
          text.slice(0, 200)
        }`,
        { status: response.status },
      );
    }
    if (response.ok) return value as T;
    throw this.#error(path, response.status, value);
  }

  #error(path: string, status: number, value: unknown): RockSdkError {
    const detail = detailText((value as { detail?: unknown } | null)?.detail) ??
      `The EnvHub answered ${path} with HTTP ${status}`;
    if (status >= 400 && status < 500) {
      return new BadRequestRockError(detail, { code: 4000, status });
    }
    return new InternalServerRockError(detail, { code: 5000, status });
  }

  #post<T>(path: string, body: Record<string, unknown>): Promise<T> {
    return this.#call(path, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "content-type": "application/json" },
    });
  }

  /**
   * POST /env/register: creates the environment or replaces an existing one.
   * @returns the environment as stored.
   * @throws {BadRequestRockError} when EnvHub refuses the input (HTTP 422).
   * @throws {InternalServerRockError} when EnvHub fails or cannot be reached.
   */
  register(options: RegisterEnvOptions): Promise<EnvInfo> {
    return this.#post("/env/register", {
      env_name: options.envName,
      image: options.image,
      owner: options.owner ?? "",
      description: options.description ?? "",
      tags: options.tags ?? [],
      extra_spec: options.extraSpec ?? null,
    });
  }

  /**
   * POST /env/get
   * @throws {BadRequestRockError} when no environment is called `envName` (HTTP 404).
   * @throws {InternalServerRockError} when EnvHub fails or cannot be reached.
   */
  get(envName: string): Promise<EnvInfo> {
    return this.#post("/env/get", { env_name: envName });
  }

  /**
   * POST /env/list: environments of `filter.owner` carrying any of `filter.tags`.
   * @throws {InternalServerRockError} when EnvHub fails or cannot be reached.
   */
  async list(filter: ListEnvsFilter = {}): Promise<EnvInfo[]> {
    const response = await this.#post<ListEnvsResponse>("/env/list", {
      owner: filter.owner ?? null,
      tags: filter.tags ?? null,
    });
    return response.envs;
  }

  /**
   * POST /env/delete
   * @returns true once the environment is gone.
   * @throws {BadRequestRockError} when no environment is called `envName` (HTTP 404).
   * @throws {InternalServerRockError} when EnvHub fails or cannot be reached.
   */
  delete(envName: string): Promise<boolean> {
    return this.#post("/env/delete", { env_name: envName });
  }

  /**
   * GET /health
   * @returns `{status: "ok"}` from a healthy EnvHub.
   * @throws {InternalServerRockError} when EnvHub cannot be reached.
   */
  health(): Promise<EnvHubHealth> {
    return this.#call("/health", { method: "GET" });
  }
}
