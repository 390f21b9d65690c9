/**
 * Several admins on one database: each keeps a lease of its own (`admin:<id>`, which says it is
 * alive) and competes for the `leader` lease; the leader alone runs maintenance (the scheduler,
 * the expiry sweeper, removal of sandboxes nobody owns). Leases are renewed every third of their
 * period; an admin that stops renewing loses them when the period ends, one that stops cleanly
 * gives them up at once. A holder on this host whose process has ended is known gone at once.
 */
import { hostname } from "node:os";
import { type Logger, silentLogger } from "../common/log.ts";
import { isProcessAlive, readProcessInfo } from "../common/process_state.ts";
import type { LeaseHolder, LeaseTable } from "./store/leases.ts";

/** The name of the leader's lease. */
export const LEADER_LEASE = "leader";
/** Prefix of each admin's own lease. */
const ADMIN_LEASE = "admin:";

/** This admin process as a lease holder, with a fresh random id. */
export async function thisAdmin(): Promise<LeaseHolder> {
  return {
    id: crypto.randomUUID().replaceAll("-", "").slice(0, 12),
    host: hostname(),
    pid: Deno.pid,
    startTicks: (await readProcessInfo(Deno.pid))?.startTicks ?? null,
  };
}

/** What Leadership needs. */
export interface LeadershipDeps {
  leases: LeaseTable;
  /** This admin. */
  self: LeaseHolder;
  /** How long a lease lasts without renewal, in milliseconds. */
  ttlMs: number;
  /**
   * Called on each change, one call after the other: true when this admin became the leader,
   * false when it stopped being it (then it should stop its maintenance before resolving).
   */
  onChange: (leader: boolean) => Promise<void> | void;
  logger?: Logger;
}

/** This admin's leases: its own and, when it wins it, the leader's. */
export class Leadership {
  readonly #deps: LeadershipDeps;
  readonly #logger: Logger;
  #leader = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #tick: Promise<void> | undefined;
  /** The onChange calls, in order. */
  #changes: Promise<void> = Promise.resolve();

  /** Creates it; start() takes the leases. */
  constructor(deps: LeadershipDeps) {
    this.#deps = deps;
    this.#logger = deps.logger ?? silentLogger;
  }

  /** This admin's id. */
  get adminId(): string {
    return this.#deps.self.id;
  }

  /** Whether this admin holds the leader's lease (as of its last renewal). */
  get isLeader(): boolean {
    return this.#leader;
  }

  /** Takes the leases once now (so the caller knows whether it leads), then keeps renewing them. */
  async start(): Promise<void> {
    await this.#renew();
    this.#timer ??= setInterval(() => void this.#renew(), this.#deps.ttlMs / 3);
  }

  /** One renewal at a time; a renewal still running when the next is due is that one. */
  #renew(): Promise<void> {
    this.#tick ??= this.#renewOnce().finally(() => this.#tick = undefined);
    return this.#tick;
  }

  async #renewOnce(): Promise<void> {
    const { leases, self, ttlMs } = this.#deps;
    let leader = false;
    try {
      await leases.acquire(ADMIN_LEASE + self.id, self, ttlMs);
      leader = await leases.acquire(LEADER_LEASE, self, ttlMs);
      if (!leader) {
        const current = await leases.get(LEADER_LEASE);
        if (current && await this.#gone(current.holder)) {
          leader = await leases.takeOver(LEADER_LEASE, current.holder.id, self, ttlMs);
        }
      }
      if (leader) await leases.prune(ADMIN_LEASE, 10 * ttlMs);
    } catch (error) {
      // Unable to renew: act as if the lease were lost, so two admins never both lead.
      this.#logger.warn("Cannot renew the admin's leases", { error: String(error) });
      leader = false;
    }
    if (leader === this.#leader) return;
    this.#leader = leader;
    this.#logger.info(leader ? "Became leader" : "Stopped being leader", { admin_id: self.id });
    this.#change(leader);
  }

  #change(leader: boolean): void {
    this.#changes = this.#changes.then(() => this.#deps.onChange(leader)).catch((error) =>
      this.#logger.warn("Cannot change the admin's duties", { leader, error: String(error) })
    );
  }

  /** True when `holder` runs on this host and its process has ended. */
  async #gone(holder: LeaseHolder): Promise<boolean> {
    return holder.host === this.#deps.self.host && holder.id !== this.#deps.self.id &&
      !(await isProcessAlive(holder.pid, holder.startTicks ?? undefined));
  }

  /** Whether admin `adminId` is alive: this one, or one whose lease is live and not known gone. */
  async isAlive(adminId: string): Promise<boolean> {
    if (adminId === this.#deps.self.id) return true;
    const lease = await this.#deps.leases.get(ADMIN_LEASE + adminId);
    return lease !== undefined && lease.live && !(await this.#gone(lease.holder));
  }

  /** Resolves once the onChange calls made so far have finished. */
  async settled(): Promise<void> {
    await this.#changes;
  }

  /** The id of the live leader, if any. */
  async leader(): Promise<string | undefined> {
    const lease = await this.#deps.leases.get(LEADER_LEASE);
    return lease?.live ? lease.holder.id : undefined;
  }

  /**
   * Stops renewing, waits until this admin's maintenance stopped, and gives both leases up, so
   * another admin leads at once.
   */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#tick;
    const { leases, self } = this.#deps;
    if (this.#leader) {
      this.#leader = false;
      this.#logger.info("Stopped being leader", { admin_id: self.id, reason: "stopping" });
      this.#change(false);
    }
    await this.#changes;
    await leases.release(LEADER_LEASE, self.id).catch(() => {});
    await leases.release(ADMIN_LEASE + self.id, self.id).catch(() => {});
  }
}
