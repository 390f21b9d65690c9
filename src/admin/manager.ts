/**
 * SandboxManager: the lifecycle state machine. pending -> running -> stopped, or failed with a
 * reason. The store is the truth: status, batch and list never ask a backend. Placement runs in
 * the background; the manager waits for the rocklet's /is_alive with a fast backoff. A backend
 * that watches its sandboxes tells the manager of deaths, which turn the sandbox failed at once.
 */
import {
  BadRequestError,
  RockError,
  SandboxNotFoundError,
  UnavailableError,
  UnresponsiveError,
} from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { memoryBytes, type SandboxState, type StartRequest } from "../protocol/admin.ts";
import { isoInZone } from "../common/time.ts";
import type {
  Backend,
  BackendTraits,
  PhaseName,
  PhaseStatus,
  PhaseUpdate,
  Placement,
  SandboxExit,
} from "../sandbox/backend.ts";
import {
  backendTraits,
  isLogging,
  isWatching,
  phaseMessage,
  PlacementOomError,
  rockletUrl,
} from "../sandbox/backend.ts";
import { RockletClient, type RockletDeadlines } from "../sdk/rocklet_client.ts";
import { Admission, type Release } from "./admission.ts";
import type { Billing } from "./billing.ts";
import { StartTimeoutError, waitForRocklet } from "./readiness.ts";
import { poolOwner, type WarmPool } from "./warm_pool.ts";
import { leaseOf, toStatusEvent, toStatusResponse } from "./sandbox_info.ts";
import { EventBus } from "./events.ts";
import { ExpiryClock, leaseMs } from "./expiry.ts";
import type { ListFilters, SandboxRecord, SandboxStore } from "./store.ts";
import type { SandboxTable } from "./store/sandboxes.ts";
import {
  diedCause,
  leaseExpired,
  sandboxStoppedError,
  startFailedReason,
  STOP_REQUESTED,
  STOP_REQUESTED_WHILE_STARTING,
  type StopCause,
  VANISHED,
} from "./stop_reason.ts";

/** When checkAlive asks the backend: at once, then after these pauses (ms). */
const CHECK_AGAIN_MS = [0, 100, 400];

/** Start metadata from request headers. */
export interface StartMetadata {
  user_id?: string | undefined;
  experiment_id?: string | undefined;
  namespace?: string | undefined;
  cluster_name?: string | undefined;
}

/** Settings of the manager. */
export interface ManagerSettings {
  /** Largest cpus a sandbox may ask for. */
  maxCpus: number;
  /** Largest memory a sandbox may ask for, in bytes. */
  maxMemoryBytes: number;
  /** Image used when a start request gives none. */
  defaultImage: string;
  /** auto_clear_time_minutes when a request gives none. */
  defaultAutoClearMinutes: number;
  /** How long a start may take until the rocklet answers, in milliseconds. */
  startupTimeoutMs: number;
  /** ROCK_TIME_ZONE for wire times. */
  timeZone: string;
  /** Expiry is written at most this often per sandbox, in milliseconds. */
  touchIntervalMs: number;
  /** Bounds on calls to rocklets (default DEFAULT_ROCKLET_DEADLINES). */
  rockletDeadlines?: Partial<RockletDeadlines> | undefined;
  /** Most placements at once (default: defaultStartConcurrency()); the rest queue. */
  startConcurrency?: number | undefined;
  /** Most starts waiting in the queue; more are refused with 4000 (default 1000). */
  startQueueLimit?: number | undefined;
  /** Longest wait in the queue, from the create, in milliseconds (default 600 s). */
  queueTimeoutMs?: number | undefined;
  /**
   * How long before a sandbox's expiry an `expiring` event goes out, in milliseconds (default
   * 60 s; half the lease when that is shorter).
   */
  expiryWarningMs?: number | undefined;
}

/** The admission the settings describe. */
export function admissionFor(
  settings: Pick<ManagerSettings, "startConcurrency" | "startQueueLimit">,
): Admission {
  return new Admission({
    concurrency: settings.startConcurrency ?? defaultStartConcurrency(),
    queueLimit: settings.startQueueLimit ?? 1000,
  });
}

/**
 * Placements at once by default: 4 per core. Measured on a 2-core host: a burst of bare `docker
 * run`s finishes soonest at 8 to 16 at once, and each placement here also starts a rocklet, which
 * needs a core for a moment.
 */
export function defaultStartConcurrency(): number {
  return 4 * Math.max(1, navigator.hardwareConcurrency || 1);
}

/** What the manager needs. */
export interface ManagerDeps {
  store: SandboxStore;
  backend: Backend;
  billing: Billing;
  settings: ManagerSettings;
  logger?: Logger | undefined;
  /** Clock in epoch ms (tests move it). */
  now?: (() => number) | undefined;
  /** fetch for rocklet clients. */
  fetch?: ((request: Request) => Promise<Response>) | undefined;
  /** Ready sandboxes to hand out to matching starts; the manager closes it. */
  pool?: WarmPool | undefined;
  /** Placement slots (default: one made from the settings); share it with the pool. */
  admission?: Admission;
  /** This admin's id, written into the rows it places (default: a random one). */
  adminId?: string;
  /**
   * Whether another admin sharing the store is alive (default: none is). Reconcile leaves the
   * sandboxes of live admins alone and takes over those of gone ones.
   */
  isAdminAlive?: (adminId: string) => Promise<boolean>;
  /** Where lifecycle events go (default: a bus of the manager's own; see `events`). */
  events?: EventBus | undefined;
}

/** A start waited longer than the queue timeout for a placement slot. */
export class QueueTimeoutError extends RockError {}

/** What reconcile() did. */
export interface ReconcileReport {
  /** Rows whose sandbox was gone, now stopped or failed. */
  marked: string[];
  /** Labelled sandboxes without a live row, removed. */
  removed: string[];
  /** Pending rows whose sandbox exists: waiting for them again. */
  resumed: string[];
}

const ACTIVE = ["pending", "running"] as const;

/** A placement in progress; `died` says why when its sandbox died while the manager waited. */
interface Placing {
  abort: AbortController;
  done: Promise<void>;
  died?: StopCause;
}

/** Owns every sandbox's lifecycle. */
export class SandboxManager {
  /** The store's sandboxes: the truth of every sandbox's state. */
  readonly #store: SandboxTable;
  readonly #backend: Backend;
  readonly #billing: Billing;
  readonly #settings: ManagerSettings;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #fetch?: ((request: Request) => Promise<Response>) | undefined;
  readonly #pool?: WarmPool | undefined;
  /** Who may place now; the rest wait in its queue. */
  readonly #admission: Admission;
  /** Placements in progress, so stop can cancel them and close can wait for them. */
  readonly #placing = new Map<string, Placing>();
  /** Sandboxes being stopped (settling when the stop is done): their end is no death. */
  readonly #stopping = new Map<string, Promise<void>>();
  /** The backend's watch of deaths (see startWatching()) and the deaths being recorded. */
  #watch: AsyncDisposable | undefined;
  readonly #deaths = new Set<Promise<void>>();
  readonly #clients = new Map<string, { url: string; client: RockletClient }>();
  /** Sandboxes whose rocklet did not answer their last call in time, and why. */
  readonly #unresponsive = new Map<string, string>();
  readonly #touched = new Map<string, number>();
  /** Clients of sandboxes recently seen running (see rocklet()). */
  readonly #routes = new Map<string, RockletClient>();
  /** The leader's expiry clock (see startSweeper()). */
  #expiry: ExpiryClock | undefined;
  readonly #adminId: string;
  /** Every state, phase and lease change of a sandbox, for `GET /events`. */
  readonly events: EventBus;
  readonly #isAdminAlive: (adminId: string) => Promise<boolean>;

  /** Creates the manager; call reconcile() once, then startWatching() and startSweeper(). */
  constructor(deps: ManagerDeps) {
    this.#store = deps.store.sandboxes;
    this.#backend = deps.backend;
    this.#billing = deps.billing;
    this.#admission = deps.admission ?? admissionFor(deps.settings);
    this.#settings = deps.settings;
    this.#logger = deps.logger ?? silentLogger;
    this.#now = deps.now ?? Date.now;
    this.#fetch = deps.fetch;
    this.#pool = deps.pool;
    this.#adminId = deps.adminId ?? crypto.randomUUID().replaceAll("-", "").slice(0, 12);
    this.#isAdminAlive = deps.isAdminAlive ?? (() => Promise.resolve(false));
    this.events = deps.events ?? new EventBus();
  }

  /**
   * Every change of a sandbox's row goes through here: the store's update (see
   * SandboxTable.update), and for a change of its state, phases or placement, a `status` event with
   * the row as it is after it (read back by the same statement) when anyone listens.
   */
  async #update(
    id: string,
    patch: Partial<SandboxRecord>,
    whenState?: SandboxState[],
  ): Promise<boolean> {
    // A placement (handle, host, ports) is news too: the sandbox is placed, its rocklet next.
    const told = "state" in patch || "phases" in patch || "handle" in patch;
    if (!told || !this.events.wants(id)) return await this.#store.update(id, patch, whenState);
    const row = await this.#store.change(id, patch, whenState);
    if (row) this.events.publish(toStatusEvent(row, this.#settings.timeZone));
    return row !== undefined;
  }

  get #traits(): BackendTraits {
    return backendTraits(this.#backend.type);
  }

  /** The start phase that succeeds once the rocklet answers. */
  get #lastPhase(): PhaseName {
    return this.#traits.phases.at(-1)!;
  }

  /** The backend kind sandboxes are placed on. */
  get backendType(): string {
    return this.#backend.type;
  }

  /**
   * Checks limits, stores the sandbox as pending and places it in the background.
   * @throws {BadRequestError} for a spec over the limits or an id in use.
   */
  async startAsync(request: StartRequest, meta: StartMetadata = {}): Promise<SandboxRecord> {
    const bytes = memoryBytes(request.memory);
    const { maxCpus, maxMemoryBytes } = this.#settings;
    if (request.cpus > maxCpus) {
      throw new BadRequestError(
        `Cannot start sandbox: cpus ${request.cpus} exceeds the maximum of ${maxCpus}`,
      );
    }
    if (!(bytes > 0) || bytes > maxMemoryBytes) {
      throw new BadRequestError(
        `Cannot start sandbox: memory "${request.memory}" exceeds the maximum of ${
          formatBytes(maxMemoryBytes)
        }`,
      );
    }
    const id = request.sandbox_id ?? crypto.randomUUID().replaceAll("-", "");
    const now = this.#now();
    const minutes = request.auto_clear_time_minutes ?? this.#settings.defaultAutoClearMinutes;
    const record: SandboxRecord = {
      sandbox_id: id,
      user_id: meta.user_id || "default",
      experiment_id: meta.experiment_id || "default",
      namespace: meta.namespace || "default",
      cluster_name: meta.cluster_name || "default",
      image: request.image || this.#settings.defaultImage,
      cpus: request.cpus,
      memory: request.memory,
      auto_clear_minutes: minutes,
      timeout_seconds: request.timeout_seconds ?? null,
      create_time: now,
      pull: request.pull,
      delete_time: null,
      ...this.#newRun(now, {
        auto_clear_minutes: minutes,
        timeout_seconds: request.timeout_seconds ?? null,
      }),
    };
    // A full queue refuses before anything is written.
    this.#admission.assertRoom(id);
    if (!(await this.#store.insert(record))) {
      throw new BadRequestError(`Sandbox ${id} already exists`);
    }
    if (this.events.wants(id)) this.events.publish(toStatusEvent(record, this.#settings.timeZone));
    this.#expiry?.plan(record);
    return await this.#launch(record, request, now);
  }

  /**
   * The fields of a run about to be placed by this admin at `now`: pending, nothing placed, every
   * phase waiting, its lease (`lease`) counted from now, no end.
   */
  #newRun(now: number, lease: Pick<SandboxRecord, "auto_clear_minutes" | "timeout_seconds">) {
    return {
      state: "pending",
      backend: this.#backend.type,
      handle: null,
      host_ip: null,
      host_name: null,
      port_mapping: {},
      phases: Object.fromEntries(
        this.#traits.phases.map((name) => [name, { status: "waiting", message: "waiting" }]),
      ),
      expire_at: now + leaseMs(lease),
      start_time: null,
      stop_time: null,
      stop_reason: null,
      failure_reason: null,
      failure_kind: null,
      admin_id: this.#adminId,
    } satisfies Partial<SandboxRecord>;
  }

  /**
   * Pending row `record` gets its sandbox: one from the warm pool when one matches, else one
   * placed in the background (its wait in the start queue counted from `queuedAt`).
   */
  async #launch(
    record: SandboxRecord,
    request: StartRequest,
    queuedAt: number,
  ): Promise<SandboxRecord> {
    const id = record.sandbox_id;
    const bytes = memoryBytes(request.memory);
    const pooled = await this.#pool?.take(id, {
      image: record.image,
      memoryBytes: bytes,
      cpus: request.cpus,
      pull: request.pull,
    });
    if (pooled) return await this.#runPooled(record, pooled);
    this.#logger.info("Starting sandbox", {
      sandbox_id: id,
      image: record.image,
      backend: record.backend,
    });
    const abort = new AbortController();
    const done = this.#place(record, request, { bytes, queuedAt }, abort.signal).finally(() =>
      this.#placing.delete(id)
    );
    this.#placing.set(id, { abort, done });
    return record;
  }

  /**
   * Places stopped or failed sandbox `id` again, under the same id, from its recorded spec
   * (image, pull policy, memory, cpus, auto-clear time; registry credentials are never kept):
   * pending at once, then running as a start goes. The last run's end (stop time, reasons,
   * failure kind) is cleared; the new run gets its own start time and billing record.
   * @throws {SandboxNotFoundError} when there is no such sandbox, or it was deleted.
   * @throws {BadRequestError} when it is pending or running, or still being stopped.
   */
  async restart(id: string): Promise<SandboxRecord> {
    // A stop still finishing (the row says stopped once the sandbox is gone; billing follows)
    // is waited for: a client told "stopped" may restart at once.
    await this.#stopping.get(id);
    const record = await this.#find(id);
    if (record.state === "pending" || record.state === "running" || this.#stopping.has(id)) {
      const state = this.#stopping.has(id) ? "being stopped" : record.state;
      throw new BadRequestError(
        `Cannot restart sandbox "${id}": it is ${state}; only a stopped or failed sandbox restarts`,
        { extraInfo: { sandbox_id: id, state: record.state } },
      );
    }
    // A death being recorded removes the last run's remains: that must not meet the new run.
    await Promise.all([...this.#deaths]);
    this.#admission.assertRoom(id);
    const now = this.#now();
    const pending: SandboxRecord = { ...record, ...this.#newRun(now, record) };
    // One of two restarts at once wins; the other finds the row pending.
    if (!(await this.#update(id, pending, ["stopped", "failed"]))) {
      const now = await this.#find(id);
      throw new BadRequestError(
        `Cannot restart sandbox "${id}": it is ${now.state}; only a stopped or failed sandbox restarts`,
        { extraInfo: { sandbox_id: id, state: now.state } },
      );
    }
    this.#forget(id);
    this.#expiry?.plan(pending);
    this.#logger.info("Restarting sandbox", { sandbox_id: id });
    const request: StartRequest = {
      image: record.image,
      pull: record.pull ?? "missing",
      memory: record.memory,
      cpus: record.cpus,
      auto_clear_time_minutes: record.auto_clear_minutes,
      timeout_seconds: record.timeout_seconds ?? null,
      sandbox_id: id,
      use_kata_runtime: false,
    };
    return await this.#launch(pending, request, now);
  }

  /**
   * Deletes stopped or failed sandbox `id` from the history: its row stays, in state `deleted`
   * (get_status answers it only with include_all_states; lists leave it out). An id that names
   * no sandbox, or a deleted one, is deleted already.
   * @throws {BadRequestError} when it is pending or running (stop it first).
   */
  async delete(id: string): Promise<void> {
    for (;;) {
      const record = await this.#store.get(id);
      if (!record || record.state === "deleted") return;
      if (record.state === "pending" || record.state === "running") {
        throw new BadRequestError(
          `Cannot delete sandbox "${id}": it is ${record.state}; stop it first`,
          { extraInfo: { sandbox_id: id, state: record.state } },
        );
      }
      const deleted = { state: "deleted" as const, delete_time: this.#now() };
      // A restart between the read and this write: read again (it is running now).
      if (await this.#update(id, deleted, ["stopped", "failed"])) break;
    }
    this.#logger.info("Sandbox deleted", { sandbox_id: id });
  }

  /**
   * The row of sandbox `id`; a deleted one only `withDeleted`.
   * @throws {SandboxNotFoundError} when there is none (or it was deleted).
   */
  async #find(id: string, withDeleted = false): Promise<SandboxRecord> {
    const record = await this.#store.get(id);
    if (record && (withDeleted || record.state !== "deleted")) return record;
    const detail = record ? ": it was deleted" : "";
    throw new SandboxNotFoundError(`Sandbox "${id}" not found${detail}`, {
      extraInfo: { sandbox_id: id },
    });
  }

  /**
   * Starts and waits until the sandbox runs (or fails), bounded by the startup timeout.
   * @throws {RockError} with the failure reason when the start fails.
   */
  async start(request: StartRequest, meta: StartMetadata = {}): Promise<SandboxRecord> {
    const record = await this.startAsync(request, meta);
    await this.#placing.get(record.sandbox_id)?.done;
    const final = await this.#store.get(record.sandbox_id);
    if (!final || final.state !== "running") {
      throw new RockError(
        `Cannot start sandbox "${record.sandbox_id}": ${final?.failure_reason ?? "it was removed"}`,
      );
    }
    return final;
  }

  /** Makes a row running on a sandbox handed out by the warm pool. */
  async #runPooled(record: SandboxRecord, placement: Placement): Promise<SandboxRecord> {
    const { running } = await this.#setRunning(record, placement, {
      ...Object.fromEntries(this.#traits.phases.map((name) => [name, {
        status: "success",
        message: `${phaseMessage(name, "success")} (warm pool)`,
      }])),
      image_pull: { status: "success", message: "use cached image, skip image pull" },
    });
    this.#logger.info("Sandbox running from the warm pool", { sandbox_id: record.sandbox_id });
    return { ...record, ...running };
  }

  /**
   * The one way a start ends well: pending row `record` becomes running on `placement` with
   * `phases`, started now and expiring its auto-clear time from now. `changed` is false when the
   * row was no longer pending (stopped while it started).
   */
  async #setRunning(
    record: SandboxRecord,
    placement: Placement,
    phases: SandboxRecord["phases"],
  ): Promise<{ running: Partial<SandboxRecord>; changed: boolean }> {
    const now = this.#now();
    const running: Partial<SandboxRecord> = {
      state: "running",
      handle: placement.handle,
      host_ip: placement.hostIp,
      host_name: placement.hostName,
      port_mapping: placement.portMapping,
      phases,
      start_time: now,
      expire_at: now + leaseMs(record),
    };
    const changed = await this.#update(record.sandbox_id, running, ["pending"]);
    if (changed) this.#expiry?.plan({ ...record, ...running });
    return { running, changed };
  }

  /** `phases` with the last start phase succeeded: the rocklet answers. */
  #answered(phases: SandboxRecord["phases"]): SandboxRecord["phases"] {
    return {
      ...phases,
      [this.#lastPhase]: { status: "success", message: phaseMessage(this.#lastPhase, "success") },
    };
  }

  async #place(
    record: SandboxRecord,
    request: StartRequest,
    { bytes, queuedAt }: { bytes: number; queuedAt: number },
    signal: AbortSignal,
  ): Promise<void> {
    const id = record.sandbox_id;
    const phases = { ...record.phases };
    let writes = Promise.resolve();
    const setPhase = (name: string, status: PhaseStatus, message: string) => {
      phases[name] = { status, message };
      // A failed phase is written with the failed state, in one update: a reader never sees the
      // failure while the state still says pending.
      if (status === "failed" || status === "timeout") return;
      const snapshot = { ...phases };
      // Keep phase writes in order without blocking the backend.
      writes = writes.then(() =>
        this.#update(id, { phases: snapshot }, ["pending"]).then(() => {})
      );
    };
    const onPhase = (update: PhaseUpdate) => setPhase(update.name, update.status, update.message);
    let release: Release | undefined;
    let placement: Placement | undefined;
    try {
      release = await this.#admit(id, queuedAt, signal, setPhase);
      // The startup timeout counts from here: the start of placement.
      const deadline = performance.now() + this.#settings.startupTimeoutMs;
      placement = await this.#backend.place({
        sandboxId: id,
        image: record.image,
        pull: request.pull,
        memoryBytes: bytes,
        cpus: request.cpus,
        registryUsername: request.registry_username ?? undefined,
        registryPassword: request.registry_password ?? undefined,
      }, { onPhase, signal });
      await writes;
      await this.#update(id, {
        handle: placement.handle,
        host_ip: placement.hostIp,
        host_name: placement.hostName,
        port_mapping: placement.portMapping,
      }, ["pending"]);
      await this.#waitAlive(id, placement, deadline, signal);
      const { changed } = await this.#setRunning(record, placement, this.#answered(phases));
      if (!changed) await this.#backend.remove(id); // stopped while starting
      else this.#logger.info("Sandbox running", { sandbox_id: id });
    } catch (error) {
      await writes;
      const died = this.#placing.get(id)?.died;
      const timedOut = !died &&
        (error instanceof StartTimeoutError || error instanceof QueueTimeoutError);
      const reason = died?.reason ?? (error as Error).message;
      // The phase that failed says so; else the queue (not admitted yet) or the last phase
      // takes the failure.
      if (!Object.values(phases).some((phase) => phase.status === "failed")) {
        const last = release ? this.#lastPhase : "queued";
        phases[last] = timedOut
          ? { status: "timeout", message: `${phaseMessage(last, "timeout")}: ${reason}` }
          : { status: "failed", message: `${phaseMessage(last, "failed")}: ${reason}` };
      }
      // A phase that timed out (the backend's, or the wait above) makes it a timeout.
      const kind = error instanceof PlacementOomError
        ? "oom"
        : Object.values(phases).some((phase) => phase.status === "timeout")
        ? "timeout"
        : "infra";
      await this.#update(id, {
        ...this.#startFailed(id, died ?? { reason, kind }, signal),
        phases,
      }, ["pending"]);
      this.#logger.warn("Sandbox failed to start", { sandbox_id: id, error: reason });
      // Nothing was placed for a start that never left the queue.
      if (release) await this.#backend.remove(id).catch(() => {});
    } finally {
      release?.();
    }
  }

  /**
   * Waits for a placement slot for `id`, at most until the queue timeout counted from the
   * create. A start that has to wait shows a `queued` phase (its place: queuePosition()).
   * @throws {QueueTimeoutError} when the wait outlasts the queue timeout.
   * @throws the abort reason of `signal` (a stop) while it waits.
   */
  async #admit(
    id: string,
    createdAt: number,
    signal: AbortSignal,
    setPhase: (name: string, status: PhaseStatus, message: string) => void,
  ): Promise<Release> {
    const limitMs = this.#settings.queueTimeoutMs ?? 600_000;
    const expired = new AbortController();
    const timer = setTimeout(
      () =>
        expired.abort(
          new QueueTimeoutError(
            `Cannot start sandbox "${id}": it waited ${limitMs / 1000} s in the start queue`,
          ),
        ),
      Math.max(0, createdAt + limitMs - this.#now()),
    );
    const started = performance.now();
    try {
      const granted = this.#admission.acquire(id, {
        signal: AbortSignal.any([signal, expired.signal]),
      });
      const queued = this.#admission.position(id) !== undefined;
      if (queued) setPhase("queued", "running", "waiting in the start queue");
      const release = await granted;
      if (queued) {
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        setPhase("queued", "success", `waited ${seconds} s in the start queue`);
      }
      return release;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Where a queued start waits: its 1-based place and how many wait; undefined when placing. */
  queuePosition(id: string): { position: number; of: number } | undefined {
    const position = this.#admission.position(id);
    return position === undefined ? undefined : { position, of: this.#admission.queued };
  }

  /**
   * The row of start `id` that failed for `cause`, or was stopped while it started (`signal`
   * aborted, and not because the sandbox died).
   */
  #startFailed(id: string, cause: StopCause, signal: AbortSignal): Partial<SandboxRecord> {
    const stopped = signal.aborted && this.#placing.get(id)?.died === undefined;
    return {
      state: "failed",
      failure_reason: cause.reason,
      stop_reason: stopped ? STOP_REQUESTED_WHILE_STARTING.reason : startFailedReason(cause.reason),
      failure_kind: stopped ? STOP_REQUESTED_WHILE_STARTING.kind : cause.kind,
      stop_time: this.#now(),
    };
  }

  #waitAlive(
    id: string,
    placement: Placement,
    deadline: number,
    signal: AbortSignal,
  ): Promise<void> {
    return waitForRocklet(this.#clientFor(id, placement), {
      deadline,
      signal,
      what: `sandbox "${id}"`,
      timeoutSeconds: this.#settings.startupTimeoutMs / 1000,
    });
  }

  #clientFor(id: string, placement: Pick<Placement, "hostIp" | "portMapping">): RockletClient {
    const url = rockletUrl(this.#backend, id, placement);
    const cached = this.#clients.get(id);
    if (cached?.url === url) return cached.client;
    const client = new RockletClient(url, {
      fetch: this.#fetch,
      headers: { sandbox_id: id },
      deadlines: this.#settings.rockletDeadlines,
    });
    this.#clients.set(id, { url, client });
    return client;
  }

  /**
   * Runs `call` on the rocklet of running sandbox `id`, and keeps track of whether that rocklet
   * answers: an UnresponsiveError marks it unhealthy (see unresponsive()) until it answers again.
   * @throws whatever `manager.rocklet(id)` or `call` throws.
   */
  async watchCall<T>(id: string, call: (rocklet: RockletClient) => Promise<T>): Promise<T> {
    const rocklet = await this.rocklet(id);
    try {
      const result = await call(rocklet);
      this.#unresponsive.delete(id);
      return result;
    } catch (error) {
      if (error instanceof UnresponsiveError) {
        this.#unresponsive.set(id, error.message);
        this.#logger.warn("Rocklet not answering", { sandbox_id: id, error: error.message });
      } else if (!(error instanceof UnavailableError)) {
        // The rocklet answered (with an error of the call's own).
        this.#unresponsive.delete(id);
      }
      throw error;
    }
  }

  /** Why the rocklet of `id` is not answering, when its last call found it so. */
  unresponsive(id: string): string | undefined {
    return this.#unresponsive.get(id);
  }

  /**
   * The sandbox `id` as stored; refreshes its expiry (get_status is a keep-alive). A deleted one
   * is answered only with `includeAllStates`.
   * @throws {SandboxNotFoundError} when there is no such sandbox (or it was deleted).
   */
  async getStatus(
    id: string,
    options: { includeAllStates?: boolean | undefined } = {},
  ): Promise<SandboxRecord> {
    const record = await this.#find(id, options.includeAllStates);
    await this.#touch(record);
    return record;
  }

  async #touch(record: SandboxRecord): Promise<void> {
    if (record.state !== "running" && record.state !== "pending") return;
    // A timeout set with timeout_seconds is a deadline: only setTimeout() moves it.
    if (record.timeout_seconds) return;
    const now = this.#now();
    const last = this.#touched.get(record.sandbox_id) ?? 0;
    if (now - last < this.#settings.touchIntervalMs) return;
    this.#touched.set(record.sandbox_id, now);
    record.expire_at = now + record.auto_clear_minutes * 60_000;
    await this.#store.update(record.sandbox_id, { expire_at: record.expire_at }, [...ACTIVE]);
  }

  /**
   * The rocklet client of a running sandbox, for data-plane calls; refreshes expiry.
   * @throws {SandboxNotFoundError} when the sandbox does not exist.
   * @throws {SandboxStoppedError} naming why and when, when it is stopped or failed.
   * @throws {BadRequestError} when it is still starting.
   */
  async rocklet(id: string): Promise<RockletClient> {
    // Hot path: a sandbox seen running within the touch interval skips the database read. The
    // touch that follows the interval re-checks the row, so a stop by another admin shows
    // within that interval.
    const cached = this.#routes.get(id);
    const now = this.#now();
    if (cached && now - (this.#touched.get(id) ?? 0) < this.#settings.touchIntervalMs) {
      return cached;
    }
    const record = await this.#find(id);
    if (record.state !== "running") {
      this.#routes.delete(id);
      if (record.state === "pending") {
        throw new BadRequestError(`Sandbox "${id}" is not running yet: it is still starting`);
      }
      throw sandboxStoppedError(record, { timeZone: this.#settings.timeZone });
    }
    await this.#touch(record);
    const client = this.#clientFor(id, {
      hostIp: record.host_ip ?? "127.0.0.1",
      portMapping: record.port_mapping,
    });
    this.#routes.set(id, client);
    return client;
  }

  /**
   * The last `tail` lines the sandbox's rocklet wrote, and the sandbox as stored. A stopped or
   * failed sandbox's logs are returned while its backend still has them.
   * @throws {SandboxNotFoundError} when there is no such sandbox.
   * @throws {SandboxStoppedError} when it is stopped or failed and its logs are gone with it.
   * @throws {BadRequestError} when the backend keeps no logs.
   */
  async logs(id: string, tail: number): Promise<{ logs: string; record: SandboxRecord }> {
    const record = await this.#find(id);
    if (!isLogging(this.#backend)) {
      throw new BadRequestError(
        `Cannot read logs of sandbox "${id}": the ${this.#backend.type} backend keeps no logs`,
      );
    }
    const logs = await this.#backend.logs(id, tail);
    if (logs === "" && (record.state === "stopped" || record.state === "failed")) {
      throw sandboxStoppedError(record, {
        timeZone: this.#settings.timeZone,
        detail: `the ${this.#backend.type} backend removed its logs with it`,
      });
    }
    return { logs, record };
  }

  /** Statuses of the ids that exist (and are not deleted), in the order asked. */
  async batch(ids: string[]): Promise<SandboxRecord[]> {
    return (await this.#store.getMany(ids)).filter((record) => record.state !== "deleted");
  }

  /** One page of sandboxes. */
  list(
    filters: ListFilters,
    page: number,
    pageSize: number,
  ): Promise<{ items: SandboxRecord[]; total: number }> {
    return this.#store.list(filters, page, pageSize);
  }

  /**
   * Stops a sandbox: removes it from its backend, marks it stopped for `cause` (its reason and
   * failure kind; default STOP_REQUESTED, a stop the user asked for; another cause's reason also
   * goes into failure_reason) with the stop time, and writes one billing record when it had
   * started. Stopping a stopped sandbox does nothing.
   * @throws {SandboxNotFoundError} when there is no such sandbox (or it was deleted).
   */
  async stop(id: string, cause?: StopCause): Promise<void> {
    const record = await this.#find(id);
    if (record.state === "stopped" || record.state === "failed") return;
    // Cancel a start in progress and let it clean up first: removing while it still places
    // would race with it.
    const placing = this.#placing.get(id);
    if (placing) {
      placing.abort.abort();
      await placing.done;
    }
    const stopped = Promise.withResolvers<void>();
    this.#stopping.set(id, stopped.promise);
    try {
      // Another admin's sandbox becomes this one's first: the admin that placed it then takes
      // its end for this stop, not for a death (see #died).
      const owner = record.admin_id ?? null;
      if (owner !== this.#adminId) await this.#store.claim(id, owner, this.#adminId);
      await this.#backend.remove(id);
      const now = this.#now();
      const { reason, kind } = cause ?? STOP_REQUESTED;
      const changed = await this.#update(id, {
        state: "stopped",
        stop_time: now,
        stop_reason: reason,
        failure_kind: kind,
        ...(cause ? { failure_reason: reason } : {}),
      }, [...ACTIVE]);
      this.#forget(id);
      if (!changed) return; // another caller stopped it first
      this.#logger.info("Sandbox stopped", { sandbox_id: id, reason, failure_kind: kind });
      await this.#bill(id, now);
    } finally {
      this.#stopping.delete(id);
      stopped.resolve();
    }
  }

  /** Drops the cached clients and keep-alive time of a sandbox that no longer runs. */
  #forget(id: string): void {
    this.#clients.delete(id);
    this.#routes.delete(id);
    this.#unresponsive.delete(id);
    this.#touched.delete(id);
  }

  /** Writes the billing record of sandbox `id`, ended at `now`, when it had started. */
  async #bill(id: string, now: number): Promise<void> {
    const ended = await this.#store.get(id);
    if (ended && ended.start_time !== null) {
      await this.#billing.record(
        toStatusResponse(ended, this.#settings.timeZone, false),
        ended.start_time,
        now,
      );
    }
  }

  /**
   * Follows the backend's reports of sandboxes that die (when it gives them), so a died sandbox
   * turns failed at once; close() stops it. Call it after reconcile().
   */
  startWatching(): void {
    if (this.#watch || !isWatching(this.#backend)) return;
    this.#watch = this.#backend.watch({
      onExit: (exit) => void this.#recordDeath(exit),
      onGap: () => void this.#track(this.#checkRunning()),
    });
  }

  /**
   * Checks every running sandbox the backend does not list as running, for deaths a watch
   * missed.
   */
  async #checkRunning(): Promise<void> {
    if (!isWatching(this.#backend)) return;
    const listed = await this.#backend.list();
    const running = new Set(listed.filter((s) => s.running).map((s) => s.sandboxId));
    for (const record of await this.#store.listByState(["running"])) {
      if (running.has(record.sandbox_id)) continue;
      const exit = await this.#backend.check(record.sandbox_id);
      if (exit) await this.#died(exit);
    }
  }

  /**
   * Asks the backend whether sandbox `id` still runs, for when its rocklet could not be reached:
   * one that died turns failed as when the watch reports it. A rocklet closes its connections
   * before the system reports it dead (a process exiting is not yet a zombie, a container not
   * yet exited), so a sandbox that still looks alive is asked again a moment later, twice.
   * @throws {SandboxStoppedError} naming why, when the sandbox no longer runs.
   */
  async checkAlive(id: string): Promise<void> {
    for (const delayMs of CHECK_AGAIN_MS) {
      const record = await this.#store.get(id);
      if (record?.state !== "running" || !isWatching(this.#backend)) break;
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const exit = await this.#backend.check(id).catch((error) => {
        this.#logger.warn("Cannot check a sandbox", { sandbox_id: id, error: String(error) });
        return undefined;
      });
      if (exit) {
        await this.#recordDeath(exit);
        break;
      }
    }
    const now = await this.#store.get(id);
    if (now?.state === "stopped" || now?.state === "failed") {
      throw sandboxStoppedError(now, { timeZone: this.#settings.timeZone });
    }
  }

  /** #died, tracked (see #track). */
  #recordDeath(exit: SandboxExit): Promise<void> {
    return this.#track(this.#died(exit), exit.sandboxId);
  }

  /** `work` on deaths, tracked so close() waits for it, its failure logged. */
  #track(work: Promise<void>, sandboxId?: string): Promise<void> {
    const tracked = work.catch((error) =>
      this.#logger.warn("Cannot record a sandbox's death", {
        sandbox_id: sandboxId,
        error: String(error),
      })
    ).finally(() => this.#deaths.delete(tracked));
    this.#deaths.add(tracked);
    return tracked;
  }

  /**
   * Sandbox `exit.sandboxId` died: a running one becomes failed with why (stop time, billing
   * and removal of its remains as a stop's); a pending one's wait for its rocklet ends with a
   * failed start. Deaths of sandboxes being stopped, of ones no longer active, of an earlier
   * sandbox of the same id (another handle) and of another live admin's are no news here.
   */
  async #died(exit: SandboxExit): Promise<void> {
    const id = exit.sandboxId;
    if (this.#stopping.has(id)) return;
    const record = await this.#store.get(id);
    if (record?.state !== "running" && record?.state !== "pending") return;
    // Not placed yet: the backend's place() reports a container that ends at once itself.
    if (record.handle === null || (exit.handle !== "" && exit.handle !== record.handle)) return;
    // Another live admin's sandbox: that admin records its death, or is stopping it.
    const owner = record.admin_id;
    if (owner && owner !== this.#adminId && await this.#isAdminAlive(owner)) return;
    const cause = diedCause(exit);
    const placing = this.#placing.get(id);
    if (record.state === "pending" && placing) {
      placing.died = cause;
      placing.abort.abort();
      return;
    }
    const now = this.#now();
    const { reason, kind } = cause;
    const changed = await this.#update(id, {
      state: "failed",
      failure_reason: reason,
      stop_reason: record.state === "pending" ? startFailedReason(reason) : reason,
      failure_kind: kind,
      stop_time: now,
    }, [record.state]);
    this.#forget(id);
    if (!changed) return;
    this.#logger.warn("Sandbox died", { sandbox_id: id, reason, failure_kind: kind });
    await this.#bill(id, now);
    // What is left of it (an exited container, a work dir) goes as a stopped sandbox's does.
    await this.#backend.remove(id).catch((error) =>
      this.#logger.warn("Cannot remove a died sandbox", { sandbox_id: id, error: String(error) })
    );
  }

  /**
   * Sets the lease of pending or running sandbox `id`: it is stopped `seconds` from now, whatever
   * keeps it busy, until this is called again (E2B's timeout). Returns the row as it is now.
   * @throws {SandboxNotFoundError} when there is no such sandbox.
   * @throws {SandboxStoppedError} naming why, when it is stopped or failed.
   */
  async setTimeout(id: string, seconds: number): Promise<SandboxRecord> {
    const now = this.#now();
    const row = await this.#store.change(id, {
      timeout_seconds: seconds,
      expire_at: now + seconds * 1000,
    }, [...ACTIVE]);
    if (!row) {
      throw sandboxStoppedError(await this.#find(id), { timeZone: this.#settings.timeZone });
    }
    this.#logger.info("Sandbox timeout set", { sandbox_id: id, timeout_seconds: seconds });
    this.#publishLease("lease", row);
    this.#expiry?.plan(row);
    return row;
  }

  /** An `expiring` or `lease` event of `record`. */
  #publishLease(type: "expiring" | "lease", record: SandboxRecord): void {
    const lease = leaseOf(record, this.#settings.timeZone);
    if (!("expire_time" in lease)) return;
    this.events.publish({
      type,
      sandbox_id: record.sandbox_id,
      time: isoInZone(new Date(this.#now()), this.#settings.timeZone, true),
      ...lease,
    });
  }

  /** Stops `record`, whose lease ended: expired, with why. */
  async #expire(record: SandboxRecord): Promise<void> {
    await this.stop(record.sandbox_id, leaseExpired(record)).catch((error) =>
      this.#logger.warn("Cannot stop expired sandbox", {
        sandbox_id: record.sandbox_id,
        error: String(error),
      })
    );
  }

  /** Stops every pending or running sandbox past its expiry; returns their ids. */
  async sweepExpired(): Promise<string[]> {
    const expired = await this.#store.listExpired(this.#now());
    for (const record of expired) await this.#expire(record);
    return expired.map((r) => r.sandbox_id);
  }

  /**
   * Runs the expiry clock (on the leader only, when admins share a store): a sweep now and every
   * `intervalMs` finds the leases that end soon; each gets its `expiring` event the configured
   * time before its end and is stopped at its end (see expiry.ts).
   */
  startSweeper(intervalMs: number): void {
    this.#expiry ??= new ExpiryClock({
      listEnding: (before) => this.#store.listExpired(before),
      get: (id) => this.#store.get(id),
      expire: (record) => this.#expire(record),
      warn: (record) => this.#publishLease("expiring", record),
      warningMs: this.#settings.expiryWarningMs ?? 60_000,
      now: this.#now,
      logger: this.#logger,
    }, intervalMs);
    this.#expiry.start();
  }

  /** Stops the expiry clock (this admin no longer leads). */
  async stopSweeper(): Promise<void> {
    const expiry = this.#expiry;
    this.#expiry = undefined;
    await expiry?.stop();
  }

  /**
   * Makes the store and the backend agree after an admin (re)start or when it becomes the leader:
   * rows whose sandbox is gone become stopped (failed if they never ran), pending rows whose
   * sandbox exists are waited for again, and, with `orphans` (the leader), labelled sandboxes
   * without a live row are removed. Rows of other live admins are theirs and left alone; rows of
   * gone admins are taken over (one admin wins each).
   */
  async reconcile(options: { orphans?: boolean } = {}): Promise<ReconcileReport> {
    const report: ReconcileReport = { marked: [], removed: [], resumed: [] };
    const listed = new Map((await this.#backend.list()).map((s) => [s.sandboxId, s]));
    const active = await this.#store.listByState([...ACTIVE]);
    const activeIds = new Set(active.map((r) => r.sandbox_id));
    const alive = this.#aliveCache();
    for (const record of active) {
      if (!(await this.#takeOver(record, alive))) continue;
      const found = listed.get(record.sandbox_id);
      if (found?.running && found.placement) {
        if (record.state === "pending") {
          report.resumed.push(record.sandbox_id);
          this.#resume(record, found.placement);
        }
        continue;
      }
      report.marked.push(record.sandbox_id);
      if (record.start_time === null) {
        await this.#update(record.sandbox_id, {
          state: "failed",
          failure_reason: VANISHED.reason,
          stop_reason: VANISHED.reason,
          failure_kind: VANISHED.kind,
          stop_time: this.#now(),
        }, [...ACTIVE]);
      } else {
        await this.stop(record.sandbox_id, VANISHED);
      }
      if (found) await this.#backend.remove(record.sandbox_id);
    }
    for (const id of listed.keys()) {
      if (options.orphans !== false && !activeIds.has(id) && !(await this.#othersPool(id, alive))) {
        report.removed.push(id);
        await this.#backend.remove(id);
      }
    }
    if (report.marked.length + report.removed.length + report.resumed.length > 0) {
      this.#logger.info("Reconciled with the backend", { ...report });
    }
    return report;
  }

  /**
   * Whether this admin may reconcile `record`: its own row no placement of this admin holds, or
   * a row of an admin that is gone (or of none), taken over now.
   */
  async #takeOver(
    record: SandboxRecord,
    alive: (adminId: string) => Promise<boolean>,
  ): Promise<boolean> {
    const owner = record.admin_id ?? null;
    if (owner === this.#adminId) {
      // Pending rows of this admin are being placed by it (their placement has the last word).
      return record.state !== "pending";
    }
    if (owner !== null && await alive(owner)) return false;
    return await this.#store.claim(record.sandbox_id, owner, this.#adminId);
  }

  /** isAdminAlive, asked once per admin for one pass. */
  #aliveCache(): (adminId: string) => Promise<boolean> {
    const known = new Map<string, Promise<boolean>>();
    return (adminId) => {
      if (adminId === this.#adminId) return Promise.resolve(true);
      let answer = known.get(adminId);
      if (!answer) known.set(adminId, answer = this.#isAdminAlive(adminId));
      return answer;
    };
  }

  /** True when `id` is a warm-pool sandbox of this admin or of another live one. */
  async #othersPool(id: string, alive: (adminId: string) => Promise<boolean>): Promise<boolean> {
    if (this.#pool?.owns(id)) return true;
    const owner = poolOwner(id);
    return owner !== undefined && await alive(owner);
  }

  /**
   * Removes sandboxes the backend lists that no active row owns (and that are not a live admin's
   * warm pool's or being placed); returns their ids.
   */
  async removeOrphans(): Promise<string[]> {
    const listed = await this.#backend.list();
    const active = new Set((await this.#store.listByState([...ACTIVE])).map((r) => r.sandbox_id));
    const alive = this.#aliveCache();
    const orphans: string[] = [];
    for (const { sandboxId: id } of listed) {
      if (active.has(id) || this.#placing.has(id) || await this.#othersPool(id, alive)) continue;
      orphans.push(id);
    }
    for (const id of orphans) await this.#backend.remove(id);
    if (orphans.length > 0) this.#logger.info("Removed orphan sandboxes", { removed: orphans });
    return orphans;
  }

  #resume(record: SandboxRecord, placement: Placement): void {
    const abort = new AbortController();
    const id = record.sandbox_id;
    const done = (async () => {
      const deadline = performance.now() + this.#settings.startupTimeoutMs;
      try {
        await this.#waitAlive(id, placement, deadline, abort.signal);
        await this.#setRunning(record, placement, this.#answered(record.phases));
      } catch (error) {
        const cause = this.#placing.get(id)?.died ?? {
          reason: (error as Error).message,
          kind: error instanceof StartTimeoutError ? "timeout" : "infra",
        };
        await this.#update(id, this.#startFailed(id, cause, abort.signal), ["pending"]);
        await this.#backend.remove(id).catch(() => {});
      }
    })().finally(() => this.#placing.delete(id));
    this.#placing.set(id, { abort, done });
  }

  /**
   * Stops the sweeper and the watch, and waits for placements in progress (sandboxes keep
   * running).
   */
  async close(): Promise<void> {
    await this.stopSweeper();
    this.events.close();
    await this.#watch?.[Symbol.asyncDispose]();
    this.#watch = undefined;
    await Promise.all([...this.#deaths]);
    await this.#pool?.close();
    await Promise.all([...this.#placing.values()].map((p) => p.done));
  }
}

function formatBytes(bytes: number): string {
  const units = ["b", "k", "m", "g", "t"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && value % 1024 === 0 && unit < units.length - 1) value /= 1024, unit++;
  return `${value}${units[unit]}`;
}
