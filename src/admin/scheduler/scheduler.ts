/**
 * The admin's scheduler: runs each enabled task in-process every interval (with up to 10%
 * jitter), never overlapping itself, and stores every run's status, duration, result and error.
 * A failing task is recorded and simply runs again at its next interval.
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError } from "../../common/errors.ts";
import { type Logger, silentLogger } from "../../common/log.ts";
import type { TaskRunRecord } from "../store.ts";
import type { SchedulerRunTable } from "../store/scheduler_runs.ts";
import { BaseTask, type TaskContext, type TaskOptions } from "./base_task.ts";
import { ImageCleanupTask } from "./tasks/image_cleanup.ts";
import {
  BillingLogRotationTask,
  ExpiredSandboxTask,
  OrphanCleanupTask,
} from "./tasks/maintenance.ts";

/** One `scheduler.tasks[]` entry, as in ROCK's config. */
export interface TaskConfig {
  task_class: string;
  enabled?: boolean | undefined;
  interval_seconds: number;
  params?: Record<string, unknown> | undefined;
  /** Name in the task list (default: the class name). */
  name?: string | undefined;
}

type TaskClass = new (options: TaskOptions) => BaseTask;

/** Built-in tasks by name; ROCK's Python class paths map to them by their last segment. */
const BUILT_IN: Record<string, TaskClass> = {
  ImageCleanupTask,
  ExpiredSandboxTask,
  OrphanCleanupTask,
  BillingLogRotationTask,
};

/** True when `value` looks like a task class (extends BaseTask, or has runAction). */
function isTaskClass(value: unknown): value is TaskClass {
  return typeof value === "function" &&
    (value.prototype instanceof BaseTask || typeof value.prototype?.runAction === "function");
}

/**
 * Builds the task of `config`: a built-in name (or ROCK's Python class path), or a module path /
 * URL exporting a BaseTask class (default export, or the only class export).
 * @throws {ConfigError} naming the class and why it cannot be used.
 */
export async function loadTask(config: TaskConfig, baseDir = Deno.cwd()): Promise<BaseTask> {
  const spec = config.task_class;
  const options: TaskOptions = {
    name: config.name,
    intervalSeconds: config.interval_seconds,
    params: config.params,
  };
  const builtIn = BUILT_IN[spec] ??
    (/^rock\.admin\.scheduler\.tasks\./.test(spec) ? BUILT_IN[spec.split(".").pop()!] : undefined);
  if (builtIn) return construct(builtIn, options, spec);
  if (!/[/\\]|\.(ts|js|mjs)$/.test(spec)) {
    throw new ConfigError(
      `Invalid scheduler task_class "${spec}": not a built-in task (${
        Object.keys(BUILT_IN).join(", ")
      }) nor a module path`,
    );
  }
  const url = /^[a-z]+:\/\//i.test(spec)
    ? spec
    : pathToFileURL(isAbsolute(spec) ? spec : resolve(baseDir, spec)).href;
  let module: Record<string, unknown>;
  try {
    module = await import(url);
  } catch (error) {
    throw new ConfigError(
      `Cannot load scheduler task_class "${spec}": ${(error as Error).message.split("\n")[0]}`,
    );
  }
  const [type] = [module.default, ...Object.values(module)].filter(isTaskClass);
  if (type === undefined) {
    throw new ConfigError(
      `Invalid scheduler task_class "${spec}": the module exports no class extending BaseTask with runAction()`,
    );
  }
  return construct(type, options, spec);
}

function construct(type: TaskClass, options: TaskOptions, spec: string): BaseTask {
  try {
    return new type(options);
  } catch (error) {
    throw new ConfigError(`Invalid scheduler task "${spec}": ${(error as Error).message}`);
  }
}

/** Runs tasks on intervals. */
export class Scheduler {
  readonly #tasks: Array<{ task: BaseTask; taskClass: string }>;
  readonly #runs: SchedulerRunTable;
  readonly #context: Omit<TaskContext, "logger" | "signal">;
  readonly #logger: Logger;
  readonly #stop = new AbortController();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  readonly #running = new Map<string, Promise<void>>();

  /** Creates the scheduler for `tasks`; start() begins running them. */
  constructor(
    tasks: Array<{ task: BaseTask; taskClass: string }>,
    context: Omit<TaskContext, "logger" | "signal">,
    logger: Logger = silentLogger,
  ) {
    this.#tasks = tasks;
    this.#runs = context.store.schedulerRuns;
    this.#context = context;
    this.#logger = logger;
  }

  /** Registers every task and schedules its first run after `firstDelayMs` (default 2 s, as ROCK). */
  async start(firstDelayMs = 2000): Promise<void> {
    for (const { task, taskClass } of this.#tasks) {
      await this.#runs.register(task.name, taskClass, task.intervalSeconds);
      this.#schedule(task, firstDelayMs);
    }
  }

  #schedule(task: BaseTask, delayMs: number): void {
    if (this.#stop.signal.aborted) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#tick(task);
      const interval = task.intervalSeconds * 1000;
      this.#schedule(task, interval + Math.random() * interval * 0.1);
    }, delayMs);
    this.#timers.add(timer);
  }

  /** Starts a run unless the previous one still runs (then this interval is skipped). */
  #tick(task: BaseTask): void {
    if (this.#running.has(task.name)) {
      this.#logger.debug("Task still running; skipping this interval", { task: task.name });
      return;
    }
    const run = this.runOnce(task).finally(() => this.#running.delete(task.name));
    this.#running.set(task.name, run);
  }

  /** Runs `task` once now and records the outcome (errors are recorded, not thrown). */
  async runOnce(task: BaseTask): Promise<void> {
    const started = Date.now();
    const begin = performance.now();
    await this.#runs.started(task.name, started);
    const logger = this.#logger;
    try {
      const result = await task.runAction({ ...this.#context, logger, signal: this.#stop.signal });
      await this.#runs.finished(task.name, {
        ok: true,
        durationMs: performance.now() - begin,
        result: result ?? null,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      logger.warn("Task failed", { task: task.name, error: message });
      await this.#runs.finished(task.name, {
        ok: false,
        durationMs: performance.now() - begin,
        error: message,
      });
    }
  }

  /** Every task's stored state. */
  list(): Promise<TaskRunRecord[]> {
    return this.#runs.list();
  }

  /** Stops scheduling and waits for runs in progress (they see their signal aborted). */
  async close(): Promise<void> {
    this.#stop.abort();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await Promise.all([...this.#running.values()]);
  }
}
