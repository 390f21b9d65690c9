/**
 * The `leases` table: named leases with an expiry, for admins sharing one database. Each statement
 * that takes a lease is one conditional write, so two admins never both hold it. Times come from
 * the database's clock (one clock for every admin, whatever their hosts' clocks say).
 */
import type { Client } from "@libsql/client";

/** Who holds a lease: an admin process, and where it runs. */
export interface LeaseHolder {
  /** The admin's id (random per process). */
  id: string;
  /** The host name it runs on. */
  host: string;
  pid: number;
  /** Its start time in clock ticks since boot (tells a recycled pid from it), when known. */
  startTicks: number | null;
}

/** A lease as stored. */
export interface Lease {
  name: string;
  holder: LeaseHolder;
  /** Epoch ms (database clock). */
  expiresAt: number;
  /** True while it has not expired (database clock). */
  live: boolean;
}

/** Now in epoch milliseconds on the database's clock (works on every SQLite version). */
const NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

/** The leases of the admin's store (`store.leases`). */
export class LeaseTable {
  readonly #db: Client;

  /** Works on `db`, migrated already. */
  constructor(db: Client) {
    this.#db = db;
  }

  /**
   * Takes lease `name` for `ttlMs` from now when it is free, expired or `holder`'s already (a
   * renewal); returns whether `holder` holds it now.
   */
  async acquire(name: string, holder: LeaseHolder, ttlMs: number): Promise<boolean> {
    const result = await this.#db.execute({
      sql: `INSERT INTO leases (name, holder, host, pid, start_ticks, expires_at)
              VALUES (?, ?, ?, ?, ?, ${NOW_MS} + ?)
            ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, host = excluded.host,
              pid = excluded.pid, start_ticks = excluded.start_ticks,
              expires_at = excluded.expires_at
            WHERE leases.holder = excluded.holder OR leases.expires_at <= ${NOW_MS}`,
      args: [name, holder.id, holder.host, holder.pid, holder.startTicks, Math.round(ttlMs)],
    });
    return result.rowsAffected === 1;
  }

  /**
   * Takes lease `name` from holder `from` (known gone: its process ended) for `ttlMs`; returns
   * whether it did (false when `from` no longer holds it).
   */
  async takeOver(name: string, from: string, holder: LeaseHolder, ttlMs: number): Promise<boolean> {
    const result = await this.#db.execute({
      sql: `UPDATE leases SET holder = ?, host = ?, pid = ?, start_ticks = ?,
              expires_at = ${NOW_MS} + ? WHERE name = ? AND holder = ?`,
      args: [holder.id, holder.host, holder.pid, holder.startTicks, Math.round(ttlMs), name, from],
    });
    return result.rowsAffected === 1;
  }

  /** Gives lease `name` up if `holderId` holds it. */
  async release(name: string, holderId: string): Promise<void> {
    await this.#db.execute({
      sql: "DELETE FROM leases WHERE name = ? AND holder = ?",
      args: [name, holderId],
    });
  }

  /** Lease `name`, or undefined when nobody holds it. */
  async get(name: string): Promise<Lease | undefined> {
    const result = await this.#db.execute({
      sql: `SELECT *, expires_at > ${NOW_MS} AS live FROM leases WHERE name = ?`,
      args: [name],
    });
    const row = result.rows[0];
    if (!row) return undefined;
    return {
      name: String(row.name),
      holder: {
        id: String(row.holder),
        host: String(row.host),
        pid: Number(row.pid),
        startTicks: row.start_ticks === null ? null : Number(row.start_ticks),
      },
      expiresAt: Number(row.expires_at),
      live: Number(row.live) === 1,
    };
  }

  /** Removes leases whose name starts with `prefix` that expired more than `graceMs` ago. */
  async prune(prefix: string, graceMs: number): Promise<void> {
    await this.#db.execute({
      sql: `DELETE FROM leases WHERE substr(name, 1, ?) = ? AND expires_at < ${NOW_MS} - ?`,
      args: [prefix.length, prefix, Math.round(graceMs)],
    });
  }
}
