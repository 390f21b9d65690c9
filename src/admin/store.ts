/**
 * The admin's state in libsql: one row per sandbox (kept after stop as history) and one row per
 * billing record. An embedded file by default, or a remote libsql server shared by several
 * admins. Times are epoch milliseconds here and formatted for the wire elsewhere.
 */
import { type Client, createClient, type InStatement, type Row } from "@libsql/client";
import { RockError } from "../common/errors.ts";
import type { PhaseInfo, SandboxState } from "../protocol/admin.ts";

/** A sandbox as stored. */
export interface SandboxRecord {
  sandbox_id: string;
  state: SandboxState;
  user_id: string;
  experiment_id: string;
  namespace: string;
  cluster_name: string;
  image: string;
  backend: string;
  /** Container id or pid, once placed. */
  handle: string | null;
  host_ip: string | null;
  host_name: string | null;
  port_mapping: Record<string, number>;
  phases: Record<string, PhaseInfo>;
  cpus: number;
  memory: string;
  auto_clear_minutes: number;
  /** When the sweeper stops it, epoch ms. */
  expire_at: number;
  create_time: number;
  start_time: number | null;
  /** When it stopped or failed, epoch ms. */
  stop_time: number | null;
  /** Why it stopped or failed ("stop requested", "expired: ...", "start failed: ..."). */
  stop_reason: string | null;
  failure_reason: string | null;
}

/** Filters of a list call: exact matches. */
export interface ListFilters {
  user_id?: string;
  experiment_id?: string;
  namespace?: string;
  image?: string;
  state?: string;
}

/** A billing record as stored. */
export interface BillingRecord {
  sandbox_id: string;
  stop_time: number;
  duration_seconds: number;
  /** The SandboxInfo at stop, without secrets. */
  record: Record<string, unknown>;
}

const JSON_COLUMNS = new Set(["port_mapping", "phases"]);
const COLUMNS = [
  "sandbox_id",
  "state",
  "user_id",
  "experiment_id",
  "namespace",
  "cluster_name",
  "image",
  "backend",
  "handle",
  "host_ip",
  "host_name",
  "port_mapping",
  "phases",
  "cpus",
  "memory",
  "auto_clear_minutes",
  "expire_at",
  "create_time",
  "start_time",
  "stop_time",
  "failure_reason",
  "stop_reason",
] as const;

/** Ordered migrations; each runs once, in a transaction, recorded in schema_version. */
const MIGRATIONS: string[][] = [
  [
    `CREATE TABLE sandboxes (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      sandbox_id TEXT NOT NULL UNIQUE,
      state TEXT NOT NULL,
      user_id TEXT NOT NULL,
      experiment_id TEXT NOT NULL,
      namespace TEXT NOT NULL,
      cluster_name TEXT NOT NULL,
      image TEXT NOT NULL,
      backend TEXT NOT NULL,
      handle TEXT,
      host_ip TEXT,
      host_name TEXT,
      port_mapping TEXT NOT NULL,
      phases TEXT NOT NULL,
      cpus REAL NOT NULL,
      memory TEXT NOT NULL,
      auto_clear_minutes INTEGER NOT NULL,
      expire_at INTEGER NOT NULL,
      create_time INTEGER NOT NULL,
      start_time INTEGER,
      stop_time INTEGER,
      failure_reason TEXT
    )`,
    "CREATE INDEX sandboxes_state ON sandboxes (state)",
    "CREATE INDEX sandboxes_user ON sandboxes (user_id)",
    "CREATE INDEX sandboxes_experiment ON sandboxes (experiment_id)",
    "CREATE INDEX sandboxes_namespace ON sandboxes (namespace)",
    "CREATE INDEX sandboxes_image ON sandboxes (image)",
    "CREATE INDEX sandboxes_create_time ON sandboxes (create_time)",
    "CREATE INDEX sandboxes_expire ON sandboxes (state, expire_at)",
    `CREATE TABLE billing (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      sandbox_id TEXT NOT NULL,
      stop_time INTEGER NOT NULL,
      duration_seconds REAL NOT NULL,
      record TEXT NOT NULL
    )`,
    "CREATE INDEX billing_sandbox ON billing (sandbox_id)",
  ],
  ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"],
  [
    `CREATE TABLE scheduler_tasks (
      task_name TEXT PRIMARY KEY,
      task_class TEXT NOT NULL,
      interval_seconds REAL NOT NULL,
      status TEXT NOT NULL,
      runs INTEGER NOT NULL DEFAULT 0,
      failures INTEGER NOT NULL DEFAULT 0,
      last_run INTEGER,
      duration_ms REAL,
      error TEXT,
      result TEXT
    )`,
  ],
  [
    "ALTER TABLE sandboxes ADD COLUMN stop_reason TEXT",
    // Rows from before: a failed start kept its reason in failure_reason, and so did a stop by
    // the admin itself (expiry, reconcile); a stop without one was asked for.
    `UPDATE sandboxes SET stop_reason = CASE
      WHEN state = 'failed' THEN 'start failed: ' || COALESCE(failure_reason, 'no reason recorded')
      ELSE COALESCE(failure_reason, 'stop requested') END
    WHERE state IN ('stopped', 'failed')`,
  ],
];

/** A scheduled task's state as stored. */
export interface TaskRunRecord {
  task_name: string;
  task_class: string;
  interval_seconds: number;
  /** pending (never ran), running, success or failed. */
  status: string;
  runs: number;
  failures: number;
  /** Start of the last run, epoch ms. */
  last_run: number | null;
  duration_ms: number | null;
  error: string | null;
  result: Record<string, unknown> | null;
}

function toRecord(row: Row): SandboxRecord {
  const record: Record<string, unknown> = {};
  for (const column of COLUMNS) {
    const value = row[column];
    record[column] = JSON_COLUMNS.has(column) ? JSON.parse(String(value)) : value;
  }
  return record as unknown as SandboxRecord;
}

function toArg(column: string, value: unknown): string | number | null {
  if (JSON_COLUMNS.has(column)) return JSON.stringify(value ?? {});
  if (value === undefined) return null;
  return value as string | number | null;
}

/** The libsql-backed store. Open with `SandboxStore.open()`. */
export class SandboxStore {
  readonly #db: Client;

  private constructor(db: Client) {
    this.#db = db;
  }

  /**
   * Opens `url` (`file:/path/rock.db`, `libsql://...`, `http://...`) and runs migrations.
   * @throws {RockError} when the database cannot be opened or migrated.
   */
  static async open(url: string, authToken?: string): Promise<SandboxStore> {
    let db: Client;
    try {
      db = createClient({ url, authToken });
      if (url.startsWith("file:")) {
        await db.execute("PRAGMA journal_mode = WAL");
        await db.execute("PRAGMA synchronous = NORMAL");
        await db.execute("PRAGMA busy_timeout = 5000");
      }
      await migrate(db);
    } catch (error) {
      throw new RockError(
        `Cannot open the state database "${redactUrl(url)}": ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    return new SandboxStore(db);
  }

  /** Inserts a new sandbox; false when the id exists already. */
  async insert(record: SandboxRecord): Promise<boolean> {
    const columns = COLUMNS.join(", ");
    const marks = COLUMNS.map(() => "?").join(", ");
    const result = await this.#db.execute({
      sql:
        `INSERT INTO sandboxes (${columns}) VALUES (${marks}) ON CONFLICT (sandbox_id) DO NOTHING`,
      args: COLUMNS.map((c) => toArg(c, record[c])),
    });
    return result.rowsAffected === 1;
  }

  /** The sandbox `id`, or undefined. */
  async get(id: string): Promise<SandboxRecord | undefined> {
    const result = await this.#db.execute({
      sql: "SELECT * FROM sandboxes WHERE sandbox_id = ?",
      args: [id],
    });
    return result.rows[0] ? toRecord(result.rows[0]) : undefined;
  }

  /**
   * Updates columns of `id`. With `whenState`, only if the current state is one of them;
   * returns whether a row changed.
   */
  async update(
    id: string,
    patch: Partial<SandboxRecord>,
    whenState?: SandboxState[],
  ): Promise<boolean> {
    const keys = Object.keys(patch).filter((k) =>
      k !== "sandbox_id" && (COLUMNS as readonly string[]).includes(k)
    );
    if (keys.length === 0) return false;
    const args = keys.map((k) => toArg(k, patch[k as keyof SandboxRecord]));
    let sql = `UPDATE sandboxes SET ${keys.map((k) => `${k} = ?`).join(", ")} WHERE sandbox_id = ?`;
    args.push(id);
    if (whenState?.length) {
      sql += ` AND state IN (${whenState.map(() => "?").join(", ")})`;
      args.push(...whenState);
    }
    const result = await this.#db.execute({ sql, args });
    return result.rowsAffected > 0;
  }

  /** The sandboxes among `ids` that exist, in the order asked. */
  async getMany(ids: string[]): Promise<SandboxRecord[]> {
    if (ids.length === 0) return [];
    const found = new Map<string, SandboxRecord>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const result = await this.#db.execute({
        sql: `SELECT * FROM sandboxes WHERE sandbox_id IN (${chunk.map(() => "?").join(", ")})`,
        args: chunk,
      });
      for (const row of result.rows) found.set(String(row.sandbox_id), toRecord(row));
    }
    return ids.flatMap((id) => found.get(id) ?? []);
  }

  /** One page of sandboxes matching `filters`, newest first, and the total count. */
  async list(
    filters: ListFilters,
    page: number,
    pageSize: number,
  ): Promise<{ items: SandboxRecord[]; total: number }> {
    const where: string[] = [];
    const args: string[] = [];
    for (const key of ["user_id", "experiment_id", "namespace", "image", "state"] as const) {
      const value = filters[key];
      if (value !== undefined) {
        where.push(`${key} = ?`);
        args.push(value);
      }
    }
    const clause = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const statements: InStatement[] = [
      { sql: `SELECT COUNT(*) AS n FROM sandboxes ${clause}`, args },
      {
        sql: `SELECT * FROM sandboxes ${clause} ORDER BY seq DESC LIMIT ? OFFSET ?`,
        args: [...args, pageSize, (page - 1) * pageSize],
      },
    ];
    const [count, rows] = await this.#db.batch(statements, "read");
    return { items: rows.rows.map(toRecord), total: Number(count.rows[0].n) };
  }

  /** Sandboxes in any of `states`. */
  async listByState(states: SandboxState[]): Promise<SandboxRecord[]> {
    const result = await this.#db.execute({
      sql: `SELECT * FROM sandboxes WHERE state IN (${states.map(() => "?").join(", ")})`,
      args: states,
    });
    return result.rows.map(toRecord);
  }

  /** Pending or running sandboxes whose expiry is before `now`. */
  async listExpired(now: number): Promise<SandboxRecord[]> {
    const result = await this.#db.execute({
      sql: "SELECT * FROM sandboxes WHERE state IN ('pending', 'running') AND expire_at < ?",
      args: [now],
    });
    return result.rows.map(toRecord);
  }

  /**
   * The id of this deployment: made once per database, so admins sharing a database share it
   * and label their sandboxes with it.
   */
  async deploymentId(): Promise<string> {
    await this.#db.execute({
      sql: "INSERT INTO meta (key, value) VALUES ('deployment_id', ?) ON CONFLICT (key) DO NOTHING",
      args: [crypto.randomUUID().replaceAll("-", "").slice(0, 16)],
    });
    const result = await this.#db.execute("SELECT value FROM meta WHERE key = 'deployment_id'");
    return String(result.rows[0].value);
  }

  /** The newest create_time of a sandbox per image: when rock last used each image. */
  async lastUseByImage(): Promise<Map<string, number>> {
    const result = await this.#db.execute(
      "SELECT image, MAX(create_time) AS t FROM sandboxes GROUP BY image",
    );
    return new Map(result.rows.map((row) => [String(row.image), Number(row.t)]));
  }

  /** Registers a task (kept across restarts: its counters go on). */
  async registerTask(name: string, taskClass: string, intervalSeconds: number): Promise<void> {
    await this.#db.execute({
      sql:
        `INSERT INTO scheduler_tasks (task_name, task_class, interval_seconds, status) VALUES (?, ?, ?, 'pending')
            ON CONFLICT (task_name) DO UPDATE SET task_class = excluded.task_class,
            interval_seconds = excluded.interval_seconds,
            status = CASE WHEN status = 'running' THEN 'pending' ELSE status END`,
      args: [name, taskClass, intervalSeconds],
    });
  }

  /** Records the start of a run. */
  async taskStarted(name: string, at: number): Promise<void> {
    await this.#db.execute({
      sql: "UPDATE scheduler_tasks SET status = 'running', last_run = ? WHERE task_name = ?",
      args: [at, name],
    });
  }

  /** Records the end of a run. */
  async taskFinished(
    name: string,
    outcome: {
      ok: boolean;
      durationMs: number;
      error?: string;
      result?: Record<string, unknown> | null;
    },
  ): Promise<void> {
    await this.#db.execute({
      sql:
        `UPDATE scheduler_tasks SET status = ?, runs = runs + 1, failures = failures + ?, duration_ms = ?,
            error = ?, result = ? WHERE task_name = ?`,
      args: [
        outcome.ok ? "success" : "failed",
        outcome.ok ? 0 : 1,
        outcome.durationMs,
        outcome.error ?? null,
        outcome.result ? JSON.stringify(outcome.result) : null,
        name,
      ],
    });
  }

  /** Every registered task's state. */
  async listTasks(): Promise<TaskRunRecord[]> {
    const result = await this.#db.execute("SELECT * FROM scheduler_tasks ORDER BY task_name");
    return result.rows.map((row) => ({
      task_name: String(row.task_name),
      task_class: String(row.task_class),
      interval_seconds: Number(row.interval_seconds),
      status: String(row.status),
      runs: Number(row.runs),
      failures: Number(row.failures),
      last_run: row.last_run === null ? null : Number(row.last_run),
      duration_ms: row.duration_ms === null ? null : Number(row.duration_ms),
      error: row.error === null ? null : String(row.error),
      result: row.result === null ? null : JSON.parse(String(row.result)),
    }));
  }

  /** Stores a billing record. */
  async addBilling(record: BillingRecord): Promise<void> {
    await this.#db.execute({
      sql:
        "INSERT INTO billing (sandbox_id, stop_time, duration_seconds, record) VALUES (?, ?, ?, ?)",
      args: [
        record.sandbox_id,
        record.stop_time,
        record.duration_seconds,
        JSON.stringify(record.record),
      ],
    });
  }

  /** Billing records of `id`. */
  async billingOf(id: string): Promise<BillingRecord[]> {
    const result = await this.#db.execute({
      sql: "SELECT * FROM billing WHERE sandbox_id = ? ORDER BY id",
      args: [id],
    });
    return result.rows.map((row) => ({
      sandbox_id: String(row.sandbox_id),
      stop_time: Number(row.stop_time),
      duration_seconds: Number(row.duration_seconds),
      record: JSON.parse(String(row.record)),
    }));
  }

  /** Closes the connection. */
  close(): void {
    this.#db.close();
  }
}

async function migrate(db: Client): Promise<void> {
  await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const current = Number(
    (await db.execute("SELECT MAX(version) AS v FROM schema_version")).rows[0]?.v ?? 0,
  );
  for (let version = current + 1; version <= MIGRATIONS.length; version++) {
    await db.batch([
      ...MIGRATIONS[version - 1],
      { sql: "INSERT INTO schema_version (version) VALUES (?)", args: [version] },
    ], "write");
  }
}

/** `url` without credentials, for messages. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@").replace(/([?&]authToken=)[^&]*/i, "$1***");
}
