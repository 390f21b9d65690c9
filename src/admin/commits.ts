/**
 * Commits (ROCK's `POST /commit`): an image of a sandbox's file system (docker commit), pushed to
 * the registry its tag names when the tag names one or credentials come with it (logged in for
 * that push only). One commit per sandbox at a time; the last one of each sandbox is kept for
 * `GET /commit/{sandbox_id}` in the shape ROCK's later versions report. The password is never
 * kept, logged or put in an error.
 */
import {
  BadRequestError,
  errorMessage,
  RockError,
  SandboxNotFoundError,
} from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { isoInZone } from "../common/time.ts";
import {
  type Backend,
  type CommittingBackend,
  isCommitting,
  type RegistryCredentials,
} from "../sandbox/backend.ts";
import { RegistryLoginError } from "../sandbox/docker_cli.ts";
import { registryOf } from "../sandbox/docker_backend.ts";
import type { CommitStatus } from "../protocol/admin.ts";

/** The stages of a commit; a failure names the one it failed in. */
export type CommitStage = NonNullable<CommitStatus["failed_stage"]>;

/** Why a commit failed, as ROCK's later versions say it. */
export type CommitErrorCode = NonNullable<CommitStatus["error_code"]>;

/** A commit refused or failed; `extraInfo` holds the status. */
export class CommitFailedError extends RockError {}

/** What a commit is asked to do. */
export interface CommitRequest {
  sandboxId: string;
  imageTag: string;
  credentials?: RegistryCredentials | undefined;
}

/** The admin's commits. */
export class Commits {
  readonly #backend: Backend;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #timeZone: string | undefined;
  readonly #last = new Map<string, CommitStatus>();
  readonly #running = new Map<string, Promise<CommitStatus>>();

  /** Commits on `backend`; times on the wire in `timeZone` (default ROCK_TIME_ZONE's default). */
  constructor(
    backend: Backend,
    options: { logger?: Logger; now?: () => number; timeZone?: string } = {},
  ) {
    this.#backend = backend;
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#timeZone = options.timeZone;
  }

  #time(): string {
    return isoInZone(new Date(this.#now()), this.#timeZone);
  }

  /**
   * Starts a commit; resolves once it has started with its status and a promise of the end.
   * @throws {BadRequestError} when the backend cannot commit, or one of this sandbox runs already.
   */
  start(request: CommitRequest): { status: CommitStatus; done: Promise<CommitStatus> } {
    const backend = this.#backend;
    if (!isCommitting(backend)) {
      throw new BadRequestError(
        `Cannot commit sandbox "${request.sandboxId}": the ${backend.type} backend has no images`,
      );
    }
    if (this.#running.has(request.sandboxId)) {
      throw new BadRequestError(
        `Cannot commit sandbox "${request.sandboxId}": a commit of it is running (COMMIT_CONFLICT)`,
        { extraInfo: { error_code: "COMMIT_CONFLICT" } },
      );
    }
    const pushed = request.credentials !== undefined || registryOf(request.imageTag) !== "";
    const status: CommitStatus = {
      sandbox_id: request.sandboxId,
      image_tag: request.imageTag,
      phase: "RUNNING",
      started_at: this.#time(),
      completed_at: null,
      exit_code: null,
      pushed,
      failed_stage: null,
      error_code: null,
      error: null,
    };
    this.#last.set(request.sandboxId, status);
    const done = this.#run(backend, request, status).finally(() =>
      this.#running.delete(request.sandboxId)
    );
    this.#running.set(request.sandboxId, done);
    return { status: { ...status }, done };
  }

  /** The last commit of `sandboxId` (running or ended), or undefined when there was none. */
  status(sandboxId: string): CommitStatus | undefined {
    const status = this.#last.get(sandboxId);
    return status && { ...status };
  }

  /** Waits for the commits in progress. */
  async close(): Promise<void> {
    await Promise.all([...this.#running.values()].map((run) => run.catch(() => {})));
  }

  async #run(
    backend: CommittingBackend,
    request: CommitRequest,
    status: CommitStatus,
  ): Promise<CommitStatus> {
    let stage: CommitStage = "commit";
    try {
      await backend.commit(request.sandboxId, request.imageTag);
      if (status.pushed) {
        stage = "push";
        await backend.push(request.imageTag, { credentials: request.credentials });
      }
      Object.assign(status, { phase: "SUCCEEDED", exit_code: 0 });
    } catch (error) {
      const failedStage: CommitStage = error instanceof RegistryLoginError ? "login" : stage;
      const code: CommitErrorCode = error instanceof SandboxNotFoundError
        ? "SANDBOX_NOT_FOUND"
        : failedStage === "login"
        ? "LOGIN_FAILED"
        : failedStage === "push"
        ? "PUSH_FAILED"
        : "COMMIT_FAILED";
      Object.assign(status, {
        phase: "FAILED",
        exit_code: 1,
        failed_stage: failedStage,
        error_code: code,
        error: errorMessage(error),
      });
      this.#logger.warn("Commit failed", {
        sandbox_id: request.sandboxId,
        image_tag: request.imageTag,
        error_code: code,
        error: errorMessage(error),
      });
    }
    status.completed_at = this.#time();
    return { ...status };
  }
}

/** The error a synchronous commit ends with when `status` failed. */
export function commitError(status: CommitStatus): RockError {
  const what = `Cannot commit sandbox "${status.sandbox_id}" as "${status.image_tag}"`;
  const options = { extraInfo: { ...status } };
  return status.error_code === "SANDBOX_NOT_FOUND"
    ? new SandboxNotFoundError(`${what}: ${status.error}`, options)
    : new CommitFailedError(`${what}: ${status.error_code}: ${status.error}`, options);
}
