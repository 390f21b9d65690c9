/**
 * Admission of sandbox placements: at most `concurrency` place at once; the rest wait in one FIFO
 * queue (low-priority work, such as warm-pool refills, only takes a slot nobody queued for). A
 * full queue refuses at once, so a caller never hands over work that cannot finish.
 */
import { BadRequestError } from "../common/errors.ts";

/** Settings of an Admission. */
export interface AdmissionSettings {
  /** Most placements at once. */
  concurrency: number;
  /** Most starts waiting; more are refused. */
  queueLimit: number;
}

/** A granted slot; release it exactly once when the placement ends. */
export type Release = () => void;

/** The start queue is full (code 4000): the caller should retry later. */
export class QueueFullError extends BadRequestError {}

interface Waiter {
  id: string;
  grant: (release: Release) => void;
  fail: (error: unknown) => void;
}

/** Bounded concurrency with a FIFO queue. */
export class Admission {
  readonly #settings: AdmissionSettings;
  readonly #queue: Waiter[] = [];
  readonly #background: Waiter[] = [];
  #running = 0;

  /** Creates an admission with `settings` (concurrency at least 1). */
  constructor(settings: AdmissionSettings) {
    this.#settings = { ...settings, concurrency: Math.max(1, settings.concurrency) };
  }

  /** Placements running now. */
  get running(): number {
    return this.#running;
  }

  /** Starts waiting now. */
  get queued(): number {
    return this.#queue.length;
  }

  /** The 1-based place of `id` in the queue, or undefined when it is not waiting. */
  position(id: string): number | undefined {
    const index = this.#queue.findIndex((waiter) => waiter.id === id);
    return index < 0 ? undefined : index + 1;
  }

  /**
   * Checks that a start `id` would be taken now.
   * @throws {QueueFullError} when the queue holds `queueLimit` starts.
   */
  assertRoom(id: string): void {
    if (this.#queue.length >= this.#settings.queueLimit) {
      throw new QueueFullError(
        `Cannot start sandbox "${id}": the start queue is full (${this.#queue.length} waiting, ` +
          `${this.#running} starting); retry later`,
      );
    }
  }

  /**
   * Waits for a slot for `id`. With `background`, the slot is granted only when no start waits.
   * @throws {QueueFullError} at once when the queue holds `queueLimit` starts.
   * @throws the signal's reason when `signal` aborts while waiting (the place is given up).
   */
  acquire(
    id: string,
    options: { signal?: AbortSignal; background?: boolean } = {},
  ): Promise<Release> {
    const queue = options.background ? this.#background : this.#queue;
    if (!options.background) {
      try {
        this.assertRoom(id);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (this.#running < this.#settings.concurrency && this.#queue.length === 0) {
      this.#running++;
      return Promise.resolve(this.#releaser());
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = { id, grant: resolve, fail: reject };
      queue.push(waiter);
      options.signal?.addEventListener("abort", () => {
        const index = queue.indexOf(waiter);
        if (index >= 0) {
          queue.splice(index, 1);
          reject(options.signal!.reason);
        }
      }, { once: true });
    });
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running--;
      this.#next();
    };
  }

  #next(): void {
    while (this.#running < this.#settings.concurrency) {
      const waiter = this.#queue.shift() ?? this.#background.shift();
      if (!waiter) return;
      this.#running++;
      waiter.grant(this.#releaser());
    }
  }
}
