/**
 * EnvHub's registry in libsql: ROCK's `RockDockerEnvs` table, one row per environment. An
 * embedded file by default, or a remote libsql server. The schema is ROCK's, so a SQLite file
 * written by ROCK's own EnvHub opens as is. Times are stored and returned as ISO 8601 strings
 * with the offset of the configured time zone.
 */
import type { Client, Row } from "@libsql/client";
import { openLibsql } from "../common/libsql.ts";
import { errorMessage, RockError } from "../common/errors.ts";
import { isoInZone } from "../common/time.ts";
import {
  DEFAULT_ENV_DESCRIPTION,
  DEFAULT_ENV_NAME,
  DEFAULT_ENV_OWNER,
  DEFAULT_ENV_TAGS,
  type EnvInfo,
  type ListEnvsRequest,
  type RegisterEnvRequest,
} from "../protocol/envhub.ts";

/** No environment has the asked name (HTTP 404). */
export class EnvNotFoundError extends RockError {
  /** Creates the error; put the name in `extraInfo.env_name`. */
  constructor(message: string, options: { envName: string }) {
    super(message, { code: 4000, status: 404, extraInfo: { env_name: options.envName } });
  }
}

/** Options of `EnvStore.open()`. */
export interface EnvStoreOptions {
  /** Token of a remote libsql server. */
  authToken?: string | undefined;
  /** Time zone of `create_at` / `update_at` (default Asia/Shanghai). */
  timeZone?: string;
  /** The clock (default: the system's). */
  now?: (() => Date) | undefined;
}

/**
 * Ordered migrations; each runs once, in a transaction, recorded in envhub_schema_version (a
 * table of its own, so an EnvHub may share a libsql server with an admin). `IF NOT EXISTS`
 * because ROCK's EnvHub may have created the table already.
 */
const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE IF NOT EXISTS RockDockerEnvs (
      env_name VARCHAR(255) NOT NULL PRIMARY KEY,
      description TEXT,
      image VARCHAR(512) NOT NULL,
      owner VARCHAR(255),
      create_at VARCHAR(64),
      update_at VARCHAR(64),
      tags JSON,
      extra_spec JSON
    )`,
    "CREATE INDEX IF NOT EXISTS RockDockerEnvs_owner ON RockDockerEnvs (owner)",
  ],
];

const COLUMNS = "env_name, description, image, owner, create_at, update_at, tags, extra_spec";

function parseJson(value: unknown): unknown {
  if (typeof value !== "string") return null;
  try {
    return JSON.parse(value);
  } catch {
    return null;
  }
}

// Rows written by ROCK may hold NULLs where rock writes values; the wire never shows them.
function toEnvInfo(row: Row): EnvInfo {
  const tags = parseJson(row.tags);
  const extra = parseJson(row.extra_spec);
  return {
    env_name: String(row.env_name),
    image: String(row.image),
    owner: row.owner === null ? "" : String(row.owner),
    description: row.description === null ? "" : String(row.description),
    tags: Array.isArray(tags) ? tags.map(String) : [],
    extra_spec: extra !== null && typeof extra === "object" && !Array.isArray(extra)
      ? extra as Record<string, unknown>
      : null,
    create_at: row.create_at === null ? "" : String(row.create_at),
    update_at: row.update_at === null ? "" : String(row.update_at),
  };
}

/** The libsql-backed registry. Open with `EnvStore.open()`. */
export class EnvStore {
  readonly #db: Client;
  readonly #timeZone?: string | undefined;
  readonly #now: () => Date;

  private constructor(db: Client, options: EnvStoreOptions) {
    this.#db = db;
    this.#timeZone = options.timeZone;
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Opens `url` (`file:/path/rock_envs.db`, `libsql://...`, `http://...`) and runs migrations.
   * @throws {RockError} when the database cannot be opened or migrated.
   */
  static async open(url: string, options: EnvStoreOptions = {}): Promise<EnvStore> {
    const db = await openLibsql(url, {
      authToken: options.authToken,
      what: "the EnvHub database",
      migrations: MIGRATIONS,
      versionTable: "envhub_schema_version",
    });
    return new EnvStore(db, options);
  }

  /**
   * Creates the environment, or replaces everything but `create_at` of an existing one.
   * @throws {RockError} when the database fails.
   */
  register(request: RegisterEnvRequest): Promise<EnvInfo> {
    return this.#run(`Cannot register environment "${request.env_name}"`, async () => {
      const now = isoInZone(this.#now(), this.#timeZone, true);
      const result = await this.#db.execute({
        sql: `INSERT INTO RockDockerEnvs (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (env_name) DO UPDATE SET description = excluded.description,
            image = excluded.image, owner = excluded.owner, update_at = excluded.update_at,
            tags = excluded.tags, extra_spec = excluded.extra_spec
          RETURNING ${COLUMNS}`,
        args: [
          request.env_name,
          request.description,
          request.image,
          request.owner,
          now,
          now,
          JSON.stringify(request.tags),
          request.extra_spec === null ? null : JSON.stringify(request.extra_spec),
        ],
      });
      const row = result.rows[0];
      if (row === undefined) {
        throw new RockError(`Cannot register environment "${request.env_name}": no row returned`);
      }
      return toEnvInfo(row);
    });
  }

  /**
   * The environment `envName`.
   * @throws {EnvNotFoundError} when there is none.
   */
  get(envName: string): Promise<EnvInfo> {
    return this.#run(`Cannot get environment "${envName}"`, async () => {
      const result = await this.#db.execute({
        sql: `SELECT ${COLUMNS} FROM RockDockerEnvs WHERE env_name = ?`,
        args: [envName],
      });
      if (!result.rows[0]) {
        throw new EnvNotFoundError(`Environment "${envName}" not found`, { envName });
      }
      return toEnvInfo(result.rows[0]);
    });
  }

  /**
   * Environments whose owner is `owner` and that carry any of `tags`, in registration order.
   * An empty or missing filter matches everything.
   */
  list(filters: ListEnvsRequest = {}): Promise<EnvInfo[]> {
    return this.#run("Cannot list environments", async () => {
      const where: string[] = [];
      const args: string[] = [];
      if (filters.owner) {
        where.push("owner = ?");
        args.push(filters.owner);
      }
      if (filters.tags?.length) {
        // Any overlap; a malformed tags value (written by hand) matches nothing instead of failing.
        where.push(
          `EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(tags) THEN tags ELSE '[]' END)
            WHERE value IN (${filters.tags.map(() => "?").join(", ")}))`,
        );
        args.push(...filters.tags);
      }
      const clause = where.length ? `WHERE ${where.join(" AND ")}` : "";
      const result = await this.#db.execute({
        sql: `SELECT ${COLUMNS} FROM RockDockerEnvs ${clause} ORDER BY rowid`,
        args,
      });
      return result.rows.map(toEnvInfo);
    });
  }

  /**
   * Deletes the environment `envName`.
   * @throws {EnvNotFoundError} when there is none.
   */
  delete(envName: string): Promise<true> {
    return this.#run(`Cannot delete environment "${envName}"`, async () => {
      const result = await this.#db.execute({
        sql: "DELETE FROM RockDockerEnvs WHERE env_name = ?",
        args: [envName],
      });
      if (result.rowsAffected === 0) {
        throw new EnvNotFoundError(`Environment "${envName}" not found or already deleted`, {
          envName,
        });
      }
      return true as const;
    });
  }

  /** Closes the connection. */
  close(): void {
    this.#db.close();
  }

  /** Runs `body`; database failures become a RockError starting with `action`. */
  async #run<T>(action: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      if (error instanceof RockError) throw error;
      throw new RockError(`${action}: ${errorMessage(error)}`, { cause: error });
    }
  }
}

/**
 * Upserts ROCK's default row `EnvhubDefaultDockerImage` with `image` (owner ENVHUB, tags
 * default/system/envhub), as every EnvHub does at start.
 */
export function registerDefaultEnv(store: EnvStore, image: string): Promise<EnvInfo> {
  return store.register({
    env_name: DEFAULT_ENV_NAME,
    image,
    owner: DEFAULT_ENV_OWNER,
    description: DEFAULT_ENV_DESCRIPTION,
    tags: [...DEFAULT_ENV_TAGS],
    extra_spec: {},
  });
}
