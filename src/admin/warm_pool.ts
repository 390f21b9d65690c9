/**
 * A warm pool: sandboxes placed ahead of demand for configured specs (image, memory, cpus), their
 * rocklets already answering. A matching start takes one, renames it to the requested id and is
 * running at once; the pool refills in the background. Pooled sandboxes have no rows: an admin
 * restart removes them as orphans and fills the pool anew. Their ids name the admin that placed
 * them (`rock-pool-<admin id>-<random>`), so admins sharing a store never take or remove another
 * live admin's pooled sandboxes. A rename that loses a race (ClaimConflictError: on kubernetes,
 * another admin relabelled the pod first) drops the sandbox from the pool without removing it.
 */
import { type Logger, silentLogger } from "../common/log.ts";
import { memoryBytes } from "../protocol/admin.ts";
import type { Placement, RenamableBackend } from "../sandbox/backend.ts";
import { ClaimConflictError, rockletUrl } from "../sandbox/backend.ts";
import { RockletClient } from "../sdk/rocklet_client.ts";
import { waitForRocklet } from "./readiness.ts";
import type { Admission, Release } from "./admission.ts";

/** One pooled spec. */
export interface PoolSpec {
  image: string;
  memory: string;
  cpus: number;
  /** How many ready sandboxes to keep. */
  size: number;
}

/** Settings of a WarmPool. */
export interface WarmPoolDeps {
  backend: RenamableBackend;
  specs: PoolSpec[];
  startupTimeoutMs: number;
  /** Wait after a failed fill before trying again, in milliseconds. */
  retryDelayMs?: number;
  logger?: Logger;
  fetch?: (request: Request) => Promise<Response>;
  /** Placement slots shared with the manager's starts: refills take only slots no start waits for. */
  admission?: Admission;
  /** The admin that owns the pool, named in its sandboxes' ids (default "0"). */
  adminId?: string;
}

/** The admin a warm-pool sandbox id names (see WarmPool), if `id` is one. */
export function poolOwner(id: string): string | undefined {
  return /^rock-pool-([0-9a-z]+)-[0-9a-f]+$/.exec(id)?.[1];
}

interface Slot {
  spec: PoolSpec;
  bytes: number;
  ready: string[];
  filling: boolean;
}

/** Keeps ready sandboxes for the configured specs. */
export class WarmPool {
  readonly #deps: WarmPoolDeps;
  readonly #slots: Slot[];
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  /** Ids being placed by fills. */
  readonly #placing = new Set<string>();
  #closed = false;

  /** Creates the pool; call fill() to start placing. */
  constructor(deps: WarmPoolDeps) {
    this.#deps = deps;
    this.#slots = deps.specs.filter((s) => s.size > 0).map((spec) => ({
      spec,
      bytes: memoryBytes(spec.memory),
      ready: [],
      filling: false,
    }));
  }

  /** Starts filling every slot in the background. */
  fill(): void {
    for (const slot of this.#slots) this.#fill(slot);
  }

  /** True when sandbox `id` belongs to the pool (ready or being placed). */
  owns(id: string): boolean {
    return this.#placing.has(id) || this.#slots.some((slot) => slot.ready.includes(id));
  }

  /** Ready sandboxes per image, for diagnostics. */
  get readyCount(): number {
    return this.#slots.reduce((n, slot) => n + slot.ready.length, 0);
  }

  #fill(slot: Slot): void {
    if (slot.filling || this.#closed) return;
    slot.filling = true;
    const run = (async () => {
      const logger = this.#deps.logger ?? silentLogger;
      while (!this.#closed && slot.ready.length < slot.spec.size) {
        const random = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
        const id = `rock-pool-${this.#deps.adminId ?? "0"}-${random}`;
        this.#placing.add(id);
        let release: Release | undefined;
        try {
          release = await this.#deps.admission?.acquire(id, {
            background: true,
            signal: this.#stop.signal,
          });
          if (this.#closed) break;
          const placement = await this.#deps.backend.place({
            sandboxId: id,
            image: slot.spec.image,
            pull: "missing",
            memoryBytes: slot.bytes,
            cpus: slot.spec.cpus,
          }, { onPhase() {} });
          await waitForRocklet(this.#client(id, placement), {
            deadline: performance.now() + this.#deps.startupTimeoutMs,
            what: `pooled sandbox "${id}"`,
            timeoutSeconds: this.#deps.startupTimeoutMs / 1000,
          });
          if (this.#closed) {
            await this.#deps.backend.remove(id);
            break;
          }
          slot.ready.push(id);
        } catch (error) {
          if (!release) break; // closed while waiting for a slot: nothing was placed
          await this.#deps.backend.remove(id).catch(() => {});
          logger.warn("Cannot fill the warm pool; retrying later", {
            image: slot.spec.image,
            error: (error as Error).message,
          });
          await this.#pause(this.#deps.retryDelayMs ?? 30_000);
        } finally {
          release?.();
          this.#placing.delete(id);
        }
      }
    })().finally(() => {
      slot.filling = false;
      this.#inFlight.delete(run);
    });
    this.#inFlight.add(run);
  }

  /** Sleeps `ms`, or less when the pool closes. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.#stop.signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  #client(id: string, placement: Placement): RockletClient {
    return new RockletClient(rockletUrl(this.#deps.backend, id, placement), {
      fetch: this.#deps.fetch,
    });
  }

  /**
   * Hands out a ready sandbox matching the request, renamed to `sandboxId`, and starts a refill;
   * undefined when none matches or none is ready.
   */
  async take(
    sandboxId: string,
    request: { image: string; memoryBytes: number; cpus: number; pull: string },
  ): Promise<Placement | undefined> {
    if (request.pull === "always") return undefined;
    const slot = this.#slots.find((s) =>
      s.spec.image === request.image && s.bytes === request.memoryBytes &&
      s.spec.cpus === request.cpus
    );
    if (!slot) return undefined;
    while (slot.ready.length > 0) {
      const pooled = slot.ready.shift()!;
      this.#fill(slot);
      try {
        return await this.#deps.backend.rename(pooled, sandboxId);
      } catch (error) {
        if (error instanceof ClaimConflictError) {
          // Another admin claimed it first: it serves their sandbox now, so it stays.
          (this.#deps.logger ?? silentLogger).warn(
            "A pooled sandbox was claimed by another admin",
            {
              sandbox_id: pooled,
              error: error.message,
            },
          );
          continue;
        }
        (this.#deps.logger ?? silentLogger).warn(
          "Dropping a pooled sandbox that cannot be handed out",
          {
            sandbox_id: pooled,
            error: (error as Error).message,
          },
        );
        await this.#deps.backend.remove(pooled).catch(() => {});
      }
    }
    return undefined;
  }

  /** Stops filling and removes the pooled sandboxes (they hold resources and serve no one). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    await Promise.all([...this.#inFlight]);
    const ids = this.#slots.flatMap((slot) => slot.ready.splice(0));
    await Promise.all(ids.map((id) => this.#deps.backend.remove(id).catch(() => {})));
  }
}
