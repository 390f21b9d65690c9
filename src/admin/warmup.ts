/**
 * Warm-up tasks (ROCK's `POST /warmup/tasks`): fetch an image where sandboxes run before the
 * sandboxes that need it start, so their starts skip the pull. Each task runs in the background
 * and is kept (the last 100) for `GET /warmup/tasks` to report.
 */
import { errorMessage } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { type Backend, isWarming } from "../sandbox/backend.ts";

/** One warm-up and how it went. */
export interface WarmupTask {
  image: string;
  /** running, then succeeded (pulled, or present already), skipped (nothing to fetch) or failed. */
  state: "running" | "succeeded" | "skipped" | "failed";
  /** What happened, in words ("pulled", "already present", why it failed or was skipped). */
  detail: string;
  /** Epoch ms. */
  started_at: number;
  /** Epoch ms, or null while running. */
  completed_at: number | null;
}

/** How many finished tasks are kept. */
const KEPT = 100;

/** The admin's warm-ups. */
export class Warmups {
  readonly #backend: Backend;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #tasks: WarmupTask[] = [];
  readonly #running = new Set<Promise<void>>();
  readonly #stop = new AbortController();

  /** Warm-ups on `backend`. */
  constructor(backend: Backend, options: { logger?: Logger; now?: () => number } = {}) {
    this.#backend = backend;
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
  }

  /** Starts warming `image` in the background; returns the task (updated as it goes). */
  start(image: string): WarmupTask {
    const task: WarmupTask = {
      image,
      state: "running",
      detail: "",
      started_at: this.#now(),
      completed_at: null,
    };
    this.#tasks.push(task);
    if (this.#tasks.length > KEPT) this.#tasks.splice(0, this.#tasks.length - KEPT);
    const backend = this.#backend;
    if (!isWarming(backend)) {
      this.#finish(task, "skipped", `the ${backend.type} backend has no images to fetch`);
      return task;
    }
    const run = backend.warm(image, { signal: this.#stop.signal }).then(
      (outcome) =>
        this.#finish(task, "succeeded", outcome === "present" ? "already present" : "pulled"),
      (error) => {
        this.#finish(task, "failed", errorMessage(error));
        this.#logger.warn("Warm-up failed", { image, error: errorMessage(error) });
      },
    ).finally(() => this.#running.delete(run));
    this.#running.add(run);
    return task;
  }

  /** The kept tasks, oldest first. */
  list(): WarmupTask[] {
    return [...this.#tasks];
  }

  /** Stops the warm-ups in progress and waits for them. */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.all([...this.#running]);
  }

  #finish(task: WarmupTask, state: WarmupTask["state"], detail: string): void {
    task.state = state;
    task.detail = detail;
    task.completed_at = this.#now();
  }
}
