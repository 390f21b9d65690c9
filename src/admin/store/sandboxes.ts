/**
 * The `sandboxes` table: one row per sandbox, kept after stop as history, indexed for every list
 * filter. Times are epoch milliseconds here and formatted for the wire elsewhere.
 */
import type { Client, InStatement, Row } from "@libsql/client";
import { RockError } from "../../common/errors.ts";
import type { FailureKind, PhaseInfo, PullPolicy, SandboxState } from "../../protocol/admin.ts";

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
  /**
   * The class of its end, set with stop_reason (user, timeout, oom, infra, expired); null while
   * it runs, and for rows from before the column.
   */
  failure_kind?: FailureKind | null;
  /** The pull policy it was started with (a restart places it again with it); null: missing. */
  pull?: PullPolicy | null;
  /** When it was deleted (state `deleted`), epoch ms. */
  delete_time?: number | null;
  /** The admin that placed it (or last took it over), when several admins share the store. */
  admin_id?: string | null;
  /**
   * A lease set with timeout_seconds, in seconds: expire_at is then a deadline keep-alives do not
   * move. Null (or absent): ROCK's expiry, auto_clear_minutes after the last keep-alive.
   */
  timeout_seconds?: number | null;
}

/**
 * Filters of a list call: exact matches; `state` one or any of several (without it, every state
 * but `deleted`); `id_prefix` ids starting so; `stopped_before` rows that stopped before (epoch
 * ms). Scheduler tasks call it too (through the manager), so a single state stays accepted.
 */
export interface ListFilters {
  user_id?: string | undefined;
  experiment_id?: string | undefined;
  namespace?: string | undefined;
  image?: string | undefined;
  state?: SandboxState | SandboxState[] | undefined;
  id_prefix?: string | undefined;
  stopped_before?: number | undefined;
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
  "admin_id",
  "timeout_seconds",
  "failure_kind",
  "pull",
  "delete_time",
] as const;

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

/** The UPDATE of `patch`'s columns of `id` (only in one of `whenState`), or none to run. */
function updateStatement(
  id: string,
  patch: Partial<SandboxRecord>,
  whenState?: SandboxState[],
): { sql: string; args: (string | number | null)[] } | undefined {
  const keys = Object.keys(patch).filter((k) =>
    k !== "sandbox_id" && (COLUMNS as readonly string[]).includes(k)
  );
  if (keys.length === 0) return undefined;
  const args = keys.map((k) => toArg(k, patch[k as keyof SandboxRecord]));
  let sql = `UPDATE sandboxes SET ${keys.map((k) => `${k} = ?`).join(", ")} WHERE sandbox_id = ?`;
  args.push(id);
  if (whenState?.length) {
    sql += ` AND state IN (${whenState.map(() => "?").join(", ")})`;
    args.push(...whenState);
  }
  return { sql, args };
}

/** The sandboxes of the admin's store (`store.sandboxes`). */
export class SandboxTable {
  readonly #db: Client;

  /** Works on `db`, migrated already. */
  constructor(db: Client) {
    this.#db = db;
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
    const statement = updateStatement(id, patch, whenState);
    if (!statement) return false;
    const result = await this.#db.execute(statement);
    return result.rowsAffected > 0;
  }

  /**
   * Updates as update() does and returns the row as it is after the change, or undefined when
   * nothing changed (for those who tell others of the change).
   */
  async change(
    id: string,
    patch: Partial<SandboxRecord>,
    whenState?: SandboxState[],
  ): Promise<SandboxRecord | undefined> {
    const statement = updateStatement(id, patch, whenState);
    if (!statement) return undefined;
    const result = await this.#db.execute({ ...statement, sql: `${statement.sql} RETURNING *` });
    return result.rows[0] ? toRecord(result.rows[0]) : undefined;
  }

  /**
   * Makes admin `to` the owner of active sandbox `id` if admin `from` (null: nobody) still owns
   * it; returns whether it did. Two admins taking over one sandbox: one wins.
   */
  async claim(id: string, from: string | null, to: string): Promise<boolean> {
    const result = await this.#db.execute({
      sql: `UPDATE sandboxes SET admin_id = ? WHERE sandbox_id = ? AND admin_id IS ?
              AND state IN ('pending', 'running')`,
      args: [to, id, from],
    });
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
    const args: (string | number)[] = [];
    for (const key of ["user_id", "experiment_id", "namespace", "image"] as const) {
      const value = filters[key];
      if (value !== undefined) {
        where.push(`${key} = ?`);
        args.push(value);
      }
    }
    // Deleted rows are listed only when asked for by state. (Not an IN of the other four: that
    // would make the planner sort the whole history through the state index for every page.)
    const states = typeof filters.state === "string" ? [filters.state] : filters.state;
    if (states?.length) {
      where.push(`state IN (${states.map(() => "?").join(", ")})`);
      args.push(...states);
    } else {
      where.push("state <> 'deleted'");
    }
    if (filters.id_prefix !== undefined) {
      // A range on the unique index: every id character sorts below U+007F.
      where.push("sandbox_id >= ? AND sandbox_id < ?");
      args.push(filters.id_prefix, `${filters.id_prefix}\u007f`);
    }
    if (filters.stopped_before !== undefined) {
      where.push("stop_time < ?");
      args.push(filters.stopped_before);
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
    if (count === undefined || rows === undefined) {
      throw new RockError(
        "Cannot list sandboxes: the database answered fewer results than queries",
      );
    }
    return { items: rows.rows.map(toRecord), total: Number(count.rows[0]?.n ?? 0) };
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

  /** The newest create_time of a sandbox per image: when rock last used each image. */
  async lastUseByImage(): Promise<Map<string, number>> {
    const result = await this.#db.execute(
      "SELECT image, MAX(create_time) AS t FROM sandboxes GROUP BY image",
    );
    return new Map(result.rows.map((row) => [String(row.image), Number(row.t)]));
  }
}
