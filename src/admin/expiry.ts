/**
 * The expiry clock of the leader: a sweep at an interval finds the sandboxes whose lease ends
 * soon, and a timer per such sandbox warns a set time before its end (an `expiring` event) and
 * stops it at the end, to the millisecond rather than at the next sweep. A timer re-reads the row
 * when it fires, so a keep-alive or a new timeout that moved the end in the meantime counts.
 */
import type { Logger } from "../common/log.ts";
import type { SandboxRecord } from "./store.ts";

/** What the clock works with. */
export interface ExpiryClockDeps {
  /** Pending or running sandboxes whose lease ends before `before` (epoch ms). */
  listEnding(before: number): Promise<SandboxRecord[]>;
  /** The sandbox `id` as stored now. */
  get(id: string): Promise<SandboxRecord | undefined>;
  /** Stops sandbox `record`, whose lease has ended. */
  expire(record: SandboxRecord): Promise<void>;
  /** Tells that `record`'s lease ends soon. */
  warn(record: SandboxRecord): void;
  /** How long before the end the warning goes out, at most, in ms (half a shorter lease). */
  warningMs: number;
  now: () => number;
  logger: Logger;
}

/** How long the lease of `record` is, in ms: its timeout, or its auto-clear time. */
export function leaseMs(
  record: Pick<SandboxRecord, "auto_clear_minutes" | "timeout_seconds">,
): number {
  return record.timeout_seconds
    ? record.timeout_seconds * 1000
    : record.auto_clear_minutes * 60_000;
}

/** The warning time of `record`: `warningMs` before its end, or half its lease if that is less. */
export function warningBefore(record: SandboxRecord, warningMs: number): number {
  return Math.min(warningMs, leaseMs(record) / 2);
}

/** Timers for the leases that end soon; see the module comment. */
export class ExpiryClock {
  readonly #deps: ExpiryClockDeps;
  /** How far ahead a sweep looks: one interval and the warning time. */
  readonly #horizonMs: number;
  readonly #intervalMs: number;
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
  /** The end each sandbox was warned of (a moved end is warned of again). */
  readonly #warned = new Map<string, number>();
  /** Sandboxes being stopped by the clock. */
  readonly #expiring = new Set<string>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  readonly #work = new Set<Promise<void>>();

  /** A clock that sweeps every `intervalMs` once started. */
  constructor(deps: ExpiryClockDeps, intervalMs: number) {
    this.#deps = deps;
    this.#intervalMs = intervalMs;
    this.#horizonMs = intervalMs + deps.warningMs;
  }

  /** Sweeps now and then every interval. */
  start(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => this.#track(this.sweep()), this.#intervalMs);
    this.#track(this.sweep());
  }

  /** Plans every sandbox whose lease ends within the horizon (and stops the ended ones). */
  async sweep(): Promise<void> {
    const ending = await this.#deps.listEnding(this.#deps.now() + this.#horizonMs);
    for (const record of ending) this.plan(record);
  }

  /**
   * Acts on `record` now when its end or its warning is due, and sets its timer for what comes
   * next when that is within the horizon (else a later sweep plans it).
   */
  plan(record: SandboxRecord): void {
    if (!this.#sweeper) return;
    const id = record.sandbox_id;
    clearTimeout(this.#timers.get(id));
    this.#timers.delete(id);
    if (record.state !== "pending" && record.state !== "running") {
      this.#warned.delete(id);
      return;
    }
    const now = this.#deps.now();
    const end = record.expire_at;
    if (end <= now) {
      if (this.#expiring.has(id)) return;
      this.#expiring.add(id);
      this.#track(
        this.#deps.expire(record).finally(() => {
          this.#expiring.delete(id);
          this.#warned.delete(id);
        }),
      );
      return;
    }
    const warnAt = end - warningBefore(record, this.#deps.warningMs);
    if (this.#warned.get(id) !== end && warnAt <= now) {
      this.#warned.set(id, end);
      this.#deps.warn(record);
    }
    const next = this.#warned.get(id) === end ? end : warnAt;
    if (next - now > this.#horizonMs) return;
    this.#timers.set(
      id,
      setTimeout(() => {
        this.#timers.delete(id);
        this.#track(
          this.#deps.get(id).then((now) => {
            if (now) this.plan(now);
            else this.#warned.delete(id);
          }),
        );
      }, next - now),
    );
  }

  /** `work`, waited for by stop(), its failure logged. */
  #track(work: Promise<void>): void {
    const tracked = work.catch((error) =>
      this.#deps.logger.warn("Expiry failed", { error: String(error) })
    ).finally(() => this.#work.delete(tracked));
    this.#work.add(tracked);
  }

  /** Stops the sweeps and the timers, and waits for stops in progress. */
  async stop(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#warned.clear();
    while (this.#work.size > 0) await Promise.all([...this.#work]);
  }
}
