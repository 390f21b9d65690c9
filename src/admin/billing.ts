/** Billing on stop: one record in the store and one JSON line in the billing log. */
import type { StatusResponse } from "../protocol/admin.ts";
import type { BillingTable } from "./store/billing.ts";

/** Writes billing records to the store's `table` and to `logPath` (JSON lines, appended). */
export class Billing {
  readonly #table: BillingTable;
  readonly #logPath: string;
  readonly #encoder = new TextEncoder();

  /** Creates the writer. */
  constructor(table: BillingTable, logPath: string) {
    this.#table = table;
    this.#logPath = logPath;
  }

  /**
   * Records a stopped sandbox: its SandboxInfo (which never holds credentials) and how long it
   * ran, from start to stop.
   */
  async record(info: StatusResponse, startMs: number, stopMs: number): Promise<void> {
    const duration = Math.max(0, (stopMs - startMs) / 1000);
    const record = { ...info, duration_seconds: duration };
    await this.#table.add({
      sandbox_id: info.sandbox_id,
      stop_time: stopMs,
      duration_seconds: duration,
      record,
    });
    await Deno.writeFile(this.#logPath, this.#encoder.encode(JSON.stringify(record) + "\n"), {
      append: true,
      create: true,
    });
  }
}
