/**
 * `rock envhub start`: serves the environment registry over HTTP until SIGINT or SIGTERM.
 * Settings: flags > ROCK_ENVHUB_* env > defaults (`file:~/.rock/rock_envs.db`, python:3.11).
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  DEFAULT_SERVER_LIMITS,
  processEnvironment,
  readCommonSettings,
  readServerLimits,
} from "../common/config.ts";
import { ConfigError } from "../common/errors.ts";
import { createLogger, type LogLevel } from "../common/log.ts";
import { createEnvHubApp } from "../envhub/app.ts";
import { redactUrl } from "../common/libsql.ts";
import { EnvStore, registerDefaultEnv } from "../envhub/store.ts";
import { DEFAULT_ENV_NAME } from "../protocol/envhub.ts";
import { listen } from "./serve.ts";
import { serveUntilSignal } from "./server.ts";

/** Options of `rock envhub start`. */
export interface EnvHubStartOptions {
  host: string;
  port: number;
  /** libsql URL, or ROCK's `sqlite:///PATH`. */
  db?: string;
  logLevel?: LogLevel;
}

/** What `rock envhub start` runs with. */
export interface EnvHubSettings {
  /** libsql URL of the registry. */
  dbUrl: string;
  /** ROCK_ENVHUB_DB_AUTH_TOKEN: token of a remote libsql server. */
  dbAuthToken?: string | undefined;
  /** Image of the default row; empty skips the row (as ROCK does). */
  defaultImage: string;
}

/**
 * Turns a database URL as ROCK or rock users write it into a libsql URL. SQLAlchemy's SQLite
 * form maps to a file: `sqlite:///rel.db` -> `file:rel.db` (relative to the working directory),
 * `sqlite:////abs/rock_envs.db` -> `file:/abs/rock_envs.db`, `sqlite://` -> `:memory:`;
 * a leading `~/` of a file path is the home directory. libsql URLs pass unchanged.
 * @throws {ConfigError} for other schemes (ROCK's Postgres URLs among them).
 */
export function toLibsqlUrl(url: string, home: string): string {
  const trimmed = url.trim();
  const sqlite = /^sqlite(?:\+pysqlite)?:\/\/(.*)$/i.exec(trimmed)?.[1];
  let libsql = trimmed;
  if (sqlite !== undefined) {
    if (sqlite === "" || sqlite === "/:memory:") return ":memory:";
    if (!sqlite.startsWith("/")) {
      throw new ConfigError(
        `Invalid EnvHub database URL "${url}": expected sqlite:///PATH (three slashes)`,
      );
    }
    libsql = `file:${sqlite.slice(1)}`;
  }
  if (libsql.startsWith("file:")) {
    return libsql.replace(/^file:~(?=\/)/, `file:${home}`);
  }
  if (libsql === ":memory:" || /^(libsql|https?|wss?):\/\//i.test(libsql)) return libsql;
  throw new ConfigError(
    `Invalid EnvHub database URL "${redactUrl(url)}": expected file:PATH, sqlite:///PATH or ` +
      "a libsql server URL (libsql://, http(s)://, ws(s)://)",
  );
}

/**
 * Resolves the settings from the flags and the environment: `--db` > ROCK_ENVHUB_DB_URL >
 * `file:<home>/.rock/rock_envs.db`; ROCK_ENVHUB_DEFAULT_DOCKER_IMAGE (unset: python:3.11).
 * @throws {ConfigError} for a database URL rock cannot open.
 */
export function resolveEnvHubSettings(
  flags: Pick<EnvHubStartOptions, "db">,
  env: Record<string, string>,
): EnvHubSettings {
  const home = env.HOME ?? Deno.cwd();
  const raw = flags.db ?? (env.ROCK_ENVHUB_DB_URL || undefined) ??
    `file:${join(home, ".rock", "rock_envs.db")}`;
  return {
    dbUrl: toLibsqlUrl(raw, home),
    dbAuthToken: env.ROCK_ENVHUB_DB_AUTH_TOKEN || undefined,
    defaultImage: env.ROCK_ENVHUB_DEFAULT_DOCKER_IMAGE ?? "python:3.11",
  };
}

/** Creates the directory of a `file:` database so a first start works on a fresh machine. */
async function ensureDatabaseDir(dbUrl: string): Promise<void> {
  if (!dbUrl.startsWith("file:")) return;
  const path = dbUrl.startsWith("file://") ? fileURLToPath(dbUrl) : dbUrl.slice("file:".length);
  const [file = path] = path.split("?");
  const dir = dirname(file);
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (error) {
    throw new ConfigError(
      `Cannot create the EnvHub database directory "${dir}": ${(error as Error).message}`,
    );
  }
}

/** Runs EnvHub in the foreground; resolves after a clean shutdown. */
export async function runEnvHub(options: EnvHubStartOptions): Promise<void> {
  const env = processEnvironment();
  const settings = resolveEnvHubSettings(options, env);
  const common = readCommonSettings(env);
  const logger = createLogger("envhub", {
    level: options.logLevel ?? common.logLevel,
    timeZone: common.timeZone,
  });
  await ensureDatabaseDir(settings.dbUrl);
  const store = await EnvStore.open(settings.dbUrl, {
    authToken: settings.dbAuthToken,
    timeZone: common.timeZone,
  });
  try {
    if (settings.defaultImage) {
      await registerDefaultEnv(store, settings.defaultImage);
    } else {
      logger.warn(`ROCK_ENVHUB_DEFAULT_DOCKER_IMAGE is empty: not registering ${DEFAULT_ENV_NAME}`);
    }
    const app = createEnvHubApp({ store, logger });
    const server = await listen({
      hostname: options.host,
      port: options.port,
      onListen: ({ hostname, port }) => {
        // One line on stdout that scripts (and `--port 0` users) can read the address from.
        console.log(
          `envhub listening on http://${hostname}:${port} (db ${redactUrl(settings.dbUrl)})`,
        );
      },
      limits: readServerLimits(DEFAULT_SERVER_LIMITS, env),
    }, app.fetch);
    await serveUntilSignal(server, (signal) => logger.info("Stopping", { signal }));
  } finally {
    store.close();
  }
}
