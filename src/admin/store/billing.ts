/** The `billing` table: one record per stop of a sandbox that had started. */
import type { Client } from "@libsql/client";

/** A billing record as stored. */
export interface BillingRecord {
  sandbox_id: string;
  stop_time: number;
  duration_seconds: number;
  /** The SandboxInfo at stop, without secrets. */
  record: Record<string, unknown>;
}

/** The billing records of the admin's store (`store.billing`). */
export class BillingTable {
  readonly #db: Client;

  /** Works on `db`, migrated already. */
  constructor(db: Client) {
    this.#db = db;
  }

  /** Stores a billing record. */
  async add(record: BillingRecord): Promise<void> {
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

  /** Billing records of `id`, oldest first. */
  async of(id: string): Promise<BillingRecord[]> {
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
}
