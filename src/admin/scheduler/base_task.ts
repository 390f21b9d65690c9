/**
 * The base of every scheduled task, built-in or custom. A task is a class extending BaseTask and
 * implementing `runAction(ctx)`; the scheduler runs it every `intervalSeconds` (with jitter),
 * never overlapping itself, and stores each run's status, duration, result and error.
 *
 * A custom task is a module (path or URL in `task_class`) exporting such a class, such as
 * `examples/scheduler/my_task.ts` (loaded by `examples/scheduler/rock-scheduler.yml`).
 */
import type { Logger } from "../../common/log.ts";
import type { Backend } from "../../sandbox/backend.ts";
import type { DockerCli } from "../../sandbox/docker_cli.ts";
import type { SandboxManager } from "../manager.ts";
import type { SandboxStore } from "../store.ts";

/** What a task may use while it runs. */
export interface TaskContext {
  /** The admin's sandbox manager. */
  manager: SandboxManager;
  /** The admin's store. */
  store: SandboxStore;
  /** The admin's backend. */
  backend: Backend;
  /** The docker CLI of the admin's configured engine (the docker backend's own), if any. */
  docker?: DockerCli;
  /** The admin's data dir (billing log, caches). */
  dataDir: string;
  /** The task's logger. */
  logger: Logger;
  /** Aborted when the admin stops; long tasks should honour it. */
  signal: AbortSignal;
}

/** What a run returns: stored as the run's result (JSON). */
export type TaskResult = Record<string, unknown> | void;

/** How a task is configured (from the `scheduler.tasks[]` entries). */
export interface TaskOptions {
  /** Name shown in the task list (default: the class name). */
  name?: string | undefined;
  /** Seconds between runs. */
  intervalSeconds: number;
  /** The task's own parameters. */
  params?: Record<string, unknown> | undefined;
}

/** Extend this and implement runAction(). */
export abstract class BaseTask {
  /** Name shown in the task list. */
  readonly name: string;
  /** Seconds between runs. */
  readonly intervalSeconds: number;
  /** The task's own parameters. */
  readonly params: Record<string, unknown>;

  /** Creates the task from its configuration. */
  constructor(options: TaskOptions) {
    this.name = options.name ?? new.target.name;
    this.intervalSeconds = options.intervalSeconds;
    this.params = options.params ?? {};
  }

  /** Does one run; throw to record a failure (the next interval runs it again). */
  abstract runAction(ctx: TaskContext): Promise<TaskResult>;
}
