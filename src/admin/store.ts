/**
 * The admin's state in libsql, one table module each: sandboxes (kept after stop as history),
 * billing records, scheduler runs and leases (several admins), plus the deployment id. An embedded file by default, or a
 * remote libsql server shared by several admins.
 */
import type { Client } from "@libsql/client";
import { RockError } from "../common/errors.ts";
import { openLibsql } from "../common/libsql.ts";
import { BillingTable } from "./store/billing.ts";
import { LeaseTable } from "./store/leases.ts";
import { MIGRATIONS } from "./store/migrations.ts";
import { SandboxTable } from "./store/sandboxes.ts";
import { SchedulerRunTable } from "./store/scheduler_runs.ts";

export type { BillingRecord } from "./store/billing.ts";
export type { ListFilters, SandboxRecord } from "./store/sandboxes.ts";
export type { TaskRunRecord } from "./store/scheduler_runs.ts";
export type { Lease, LeaseHolder } from "./store/leases.ts";

/** The libsql-backed store. Open with `SandboxStore.open()`. */
export class SandboxStore {
  readonly #db: Client;
  /** One row per sandbox. */
  readonly sandboxes: SandboxTable;
  /** One record per stop of a started sandbox. */
  readonly billing: BillingTable;
  /** Each scheduled task's counters and last run. */
  readonly schedulerRuns: SchedulerRunTable;
  /** Leases of admins sharing the database (the leader's, each admin's own). */
  readonly leases: LeaseTable;

  private constructor(db: Client) {
    this.#db = db;
    this.sandboxes = new SandboxTable(db);
    this.billing = new BillingTable(db);
    this.schedulerRuns = new SchedulerRunTable(db);
    this.leases = new LeaseTable(db);
  }

  /**
   * Opens `url` (`file:/path/rock.db`, `libsql://...`, `http://...`) and runs migrations.
   * @throws {RockError} when the database cannot be opened or migrated.
   */
  static async open(url: string, authToken?: string): Promise<SandboxStore> {
    return new SandboxStore(
      await openLibsql(url, {
        authToken,
        what: "the state database",
        migrations: MIGRATIONS,
        versionTable: "schema_version",
      }),
    );
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
    const row = result.rows[0];
    if (row === undefined) throw new RockError("Cannot read the deployment id: no row in meta");
    return String(row.value);
  }

  /** Closes the connection. */
  close(): void {
    this.#db.close();
  }
}
