/** The `scheduler_tasks` table: each scheduled task's counters and its last run. */
import type { Client } from "@libsql/client";

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

/** The scheduler's runs in the admin's store (`store.schedulerRuns`). */
export class SchedulerRunTable {
  readonly #db: Client;

  /** Works on `db`, migrated already. */
  constructor(db: Client) {
    this.#db = db;
  }

  /** Registers a task (kept across restarts: its counters go on). */
  async register(name: string, taskClass: string, intervalSeconds: number): Promise<void> {
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
  async started(name: string, at: number): Promise<void> {
    await this.#db.execute({
      sql: "UPDATE scheduler_tasks SET status = 'running', last_run = ? WHERE task_name = ?",
      args: [at, name],
    });
  }

  /** Records the end of a run. */
  async finished(
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
  async list(): Promise<TaskRunRecord[]> {
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
}
