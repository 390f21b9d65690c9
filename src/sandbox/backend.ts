/**
 * WHERE a sandbox runs. A backend places a sandbox (a container, a process) whose entrypoint is
 * the rocklet, reports ROCK's phases while doing so, lists what it runs under rock's label, and
 * removes sandboxes. Waiting for the rocklet to answer is the manager's job, not the backend's.
 */
import type { RockletLauncher } from "./rocklet_launcher.ts";
import { RockError } from "../common/errors.ts";

/** Container port of the rocklet inside every sandbox (ROCK's PROXY port). */
export const ROCKLET_PORT = 22555;
/** Container port of an in-sandbox app / model service (ROCK's SERVER port). */
export const SERVER_PORT = 8080;
/** Container port of SSH (ROCK's SSH port). */
export const SSH_PORT = 22;

/** The label (docker) or marker (local) that says "this is a rock sandbox": `rock.sandbox_id`. */
export const SANDBOX_LABEL = "rock.sandbox_id";

/**
 * The label naming the deployment (one admin, or admins sharing one database) a sandbox belongs
 * to, so an admin only ever reconciles its own sandboxes on a shared docker engine.
 */
export const DEPLOYMENT_LABEL = "rock.deployment";

/** Image pull policy, as in ROCK's start request. */
export type PullPolicy = "never" | "always" | "missing";

/** What to place. */
export interface SandboxSpec {
  /** Unique id; also the container name. */
  sandboxId: string;
  /** Image reference (docker) or ignored (local). */
  image: string;
  /** Pull policy (docker). */
  pull: PullPolicy;
  /** Memory limit in bytes. */
  memoryBytes: number;
  /** CPU limit (fractional cpus). */
  cpus: number;
  /** Extra environment for the sandbox. */
  env?: Record<string, string>;
  /** Registry credentials for the pull (docker); never logged or stored. */
  registryUsername?: string | undefined;
  registryPassword?: string | undefined;
}

/**
 * Start phases: ROCK's `image_pull` and `docker_run` (docker), `process_start` (local),
 * `pod_scheduled`, `image_pull` and `container_start` (kubernetes).
 */
export type PhaseName =
  | "image_pull"
  | "docker_run"
  | "process_start"
  | "pod_scheduled"
  | "container_start";
/** ROCK's phase states. */
export type PhaseStatus = "waiting" | "running" | "success" | "failed" | "timeout";

/** A phase change reported while placing a sandbox. */
export interface PhaseUpdate {
  name: PhaseName;
  status: PhaseStatus;
  message: string;
}

/** Where a placed sandbox's rocklet can be reached. */
export interface Placement {
  /** Address the admin connects to (always loopback for docker and local here). */
  hostIp: string;
  /** Name of the host running the sandbox. */
  hostName: string;
  /** Container port (as a string, ROCK's JSON keys) to host port. */
  portMapping: Record<string, number>;
  /** Backend's own handle: container id, or pid for the local backend. */
  handle: string;
}

/** A sandbox the backend found under rock's label. */
export interface ListedSandbox {
  sandboxId: string;
  handle: string;
  /** True when the container or process is running. */
  running: boolean;
  /** Where its rocklet answers, when running. */
  placement?: Placement | undefined;
}

/** Hooks a backend calls while placing. */
export interface PlaceHooks {
  /** Called on every phase change, in order. */
  onPhase(update: PhaseUpdate): void;
  /** Aborts placement (the backend cleans up what it made). */
  signal?: AbortSignal | undefined;
}

/** A place where sandboxes run. */
export interface Backend {
  /** Which kind this is. */
  readonly type: BackendType;
  /**
   * Places the sandbox and starts its rocklet; resolves once it is started (not yet alive).
   * @throws {RockError} with the reason (e.g. docker's stderr tail); nothing is left behind.
   */
  place(spec: SandboxSpec, hooks: PlaceHooks): Promise<Placement>;
  /** Removes the sandbox and everything it runs; resolves quietly when it is already gone. */
  remove(sandboxId: string): Promise<void>;
  /** Lists the sandboxes carrying rock's label. */
  list(): Promise<ListedSandbox[]>;
}

/**
 * A backend whose sandboxes can take a new id after they were placed (a docker container is
 * renamed, a pod relabelled). The admin's warm pool needs it: pooled sandboxes are placed under
 * pool ids and take the requested id when handed out.
 */
export interface RenamableBackend extends Backend {
  /**
   * Gives sandbox `from` the id `to`; returns its placement under the new id.
   * @throws {ClaimConflictError} when someone else (another admin) took `from` first: it is
   *   theirs now and must not be removed.
   * @throws {RockError} when `from` cannot be handed out (gone, not running).
   */
  rename(from: string, to: string): Promise<Placement>;
}

/** A rename lost a race: another admin claimed the sandbox first (it is theirs now). */
export class ClaimConflictError extends RockError {}

/**
 * A placement failed because the engine killed the sandbox for memory while it started (its
 * failure kind is then `oom`).
 */
export class PlacementOomError extends RockError {}

/** True when `backend` can rename sandboxes. */
export function isRenamable(backend: Backend): backend is RenamableBackend {
  return typeof (backend as Partial<RenamableBackend>).rename === "function";
}

/** A backend that keeps what a sandbox's rocklet wrote (docker logs, the local rocklet.log). */
export interface LoggingBackend extends Backend {
  /** The last `tail` lines the sandbox's rocklet wrote; empty when the sandbox is gone. */
  logs(sandboxId: string, tail: number): Promise<string>;
}

/** A backend that runs images and can fetch one ahead of the sandboxes that will need it. */
export interface WarmingBackend extends Backend {
  /**
   * Makes `image` present where sandboxes run (docker: pulled when it is not here yet).
   * @returns "present" when it was there already, "pulled" when it was fetched.
   * @throws {RockError} with the engine's complaint when it cannot be fetched.
   */
  warm(image: string, options?: { signal?: AbortSignal }): Promise<"present" | "pulled">;
}

/** Credentials for one registry call; never logged or stored. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** A backend that can make an image of a sandbox and push it (docker commit, docker push). */
export interface CommittingBackend extends Backend {
  /**
   * Makes image `image` of sandbox `sandboxId`'s file system as it is now.
   * @throws {SandboxNotFoundError} when this backend has no such sandbox.
   */
  commit(sandboxId: string, image: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Pushes `image` to the registry its name gives, logged in with `credentials` for this push
   * only when given.
   * @throws {RegistryLoginError} when the login fails; a RockError when the push does.
   */
  push(
    image: string,
    options?: { credentials?: RegistryCredentials | undefined; signal?: AbortSignal | undefined },
  ): Promise<void>;
}

/** True when `backend` can commit and push sandboxes' images. */
export function isCommitting(backend: Backend): backend is CommittingBackend {
  return typeof (backend as Partial<CommittingBackend>).commit === "function";
}

/** True when `backend` can fetch images ahead of time. */
export function isWarming(backend: Backend): backend is WarmingBackend {
  return typeof (backend as Partial<WarmingBackend>).warm === "function";
}

/** True when `backend` can return a sandbox's logs. */
export function isLogging(backend: Backend): backend is LoggingBackend {
  return typeof (backend as Partial<LoggingBackend>).logs === "function";
}

/**
 * How a sandbox ended without the admin removing it: its container exited or its rocklet
 * process died. Fields the backend cannot know are left out.
 */
export interface SandboxExit {
  sandboxId: string;
  /** The backend's handle of what ended (container id, pid), told apart from a later sandbox. */
  handle: string;
  /** The exit code, when known. */
  exitCode?: number;
  /** The number of the signal that ended it, when known. */
  signal?: number;
  /** The engine killed it for using more memory than its limit. */
  oomKilled?: boolean;
}

/** What a backend's watch reports to. */
export interface ExitListener {
  /** One of the backend's sandboxes died. */
  onExit(exit: SandboxExit): void;
  /**
   * The watch may have missed deaths: its event stream dropped and the engine may not have kept
   * every event since (it keeps the last few hundred, and none across its restart). What should
   * run is to be checked against list() and check().
   */
  onGap(): void;
}

/**
 * A backend that reports sandboxes ending on their own, pushed by the engine (docker events) or
 * its own watch of the processes (local), and can check one sandbox on demand.
 */
export interface WatchingBackend extends Backend {
  /**
   * Reports each of this backend's sandboxes that dies from now on to `listener`; removals by
   * the backend itself are not reported. Disposing stops the watch (and waits for what it ran).
   */
  watch(listener: ExitListener): AsyncDisposable;
  /** How sandbox `sandboxId` ended, or undefined while it still runs. */
  check(sandboxId: string): Promise<SandboxExit | undefined>;
}

/** True when `backend` reports sandboxes that end on their own. */
export function isWatching(backend: Backend): backend is WatchingBackend {
  return typeof (backend as Partial<WatchingBackend>).watch === "function";
}

/** Backend kinds, each one module beside this file and one case in `createBackend()`. */
export const BACKEND_TYPES = ["docker", "local", "kubernetes"] as const;
/** A backend kind. */
export type BackendType = typeof BACKEND_TYPES[number];
/** What an admin may be asked to use: a kind, or `auto` (docker when an engine answers, else local). */
export const BACKEND_CHOICES = ["auto", ...BACKEND_TYPES] as const;
/** A backend choice (the admin's `--backend`, `admin.backend`). */
export type BackendChoice = typeof BACKEND_CHOICES[number];

/**
 * A backend whose rocklets are reached at a URL of its own making rather than at
 * `http://hostIp:port` (the kubernetes backend through the API server's pod proxy).
 */
export interface RoutingBackend extends Backend {
  /** The base URL of the rocklet of sandbox `sandboxId`, placed at `placement`. */
  rockletUrl(sandboxId: string, placement: Pick<Placement, "hostIp" | "portMapping">): string;
}

/** True when `backend` makes its rocklets' URLs itself. */
export function isRouting(backend: Backend): backend is RoutingBackend {
  return typeof (backend as Partial<RoutingBackend>).rockletUrl === "function";
}

/** The base URL of a placed rocklet: the backend's when it routes, else `http://hostIp:port`. */
export function rockletUrl(
  backend: Backend,
  sandboxId: string,
  placement: Pick<Placement, "hostIp" | "portMapping">,
): string {
  if (isRouting(backend)) return backend.rockletUrl(sandboxId, placement);
  return `http://${placement.hostIp}:${placement.portMapping[String(ROCKLET_PORT)]}`;
}

/** What a kind of backend does that a sandbox's status reports. */
export interface BackendTraits {
  /** The start phases it reports, in order; the last succeeds once the rocklet answers. */
  phases: readonly PhaseName[];
  /** Whether it enforces a sandbox's cpus and memory (the status shows them only then). */
  enforcesLimits: boolean;
}

/** Traits of each kind of backend, read by the manager and the wire views of its sandboxes. */
export const BACKEND_TRAITS: Record<BackendType, BackendTraits> = {
  docker: { phases: ["image_pull", "docker_run"], enforcesLimits: true },
  // A process on the host: no image, no isolation, no limits.
  local: { phases: ["process_start"], enforcesLimits: false },
  // The order a pod goes through them: scheduled to a node, its images pulled, started.
  kubernetes: {
    phases: ["pod_scheduled", "image_pull", "container_start"],
    enforcesLimits: true,
  },
};

/** The traits of the backend kind `type` names; a kind this build does not know has docker's. */
export function backendTraits(type: string): BackendTraits {
  return BACKEND_TRAITS[type as BackendType] ?? BACKEND_TRAITS.docker;
}

/** The message of phase `name` reaching `status` (ROCK's words for docker: "docker run success"). */
export function phaseMessage(name: string, status: PhaseStatus): string {
  return `${name.replace("_", " ")} ${status}`;
}

/** Configuration of the local backend. */
export interface LocalBackendConfig {
  type: "local";
  /** Directory under which each sandbox gets a private work dir. */
  workRoot: string;
  /** How to start the rocklet. */
  launcher: RockletLauncher;
}

/** Configuration of a backend, discriminated by `type`. */
export type BackendConfig =
  | LocalBackendConfig
  | {
    type: "docker";
    /** How to get the rocklet into the container. */
    launcher: RockletLauncher;
    /** The docker executable (default "docker"). */
    dockerBinary?: string | undefined;
    /** Host address ports are published on (always 127.0.0.1 here). */
    publishIp?: string | undefined;
    /** Extra `docker run` arguments. */
    extraRunArgs?: string[] | undefined;
    /**
     * Container ports published on the host besides the rocklet's (default none: ports inside
     * a sandbox are reached through the rocklet); ROCK published 8080 and 22 too.
     */
    publishPorts?: number[] | undefined;
    /** Timeout of one docker command, in milliseconds (pulls excepted). */
    commandTimeoutMs?: number | undefined;
    /** Deployment id: containers get it as a label and list() only returns those. */
    deploymentId?: string | undefined;
  }
  | KubernetesBackendConfig;

/** The docker backend's configuration. */
export type DockerBackendConfig = Extract<BackendConfig, { type: "docker" }>;

/**
 * `auto`: the docker backend when its engine answers, else the local backend (with a warning:
 * local sandboxes are not isolated).
 */
export interface AutoBackendConfig {
  type: "auto";
  docker: DockerBackendConfig;
  local: LocalBackendConfig;
}

/** How the admin reaches rocklets in pods: at the pod IP, or through `kubectl proxy`. */
export type KubeAccess = "pod-ip" | "api-proxy";

/** A toleration of a pod (Kubernetes' fields). */
export interface KubeToleration {
  key?: string | undefined;
  operator?: "Exists" | "Equal" | undefined;
  value?: string | undefined;
  effect?: "NoSchedule" | "PreferNoSchedule" | "NoExecute" | undefined;
  tolerationSeconds?: number | undefined;
}

/** Configuration of the kubernetes backend: one Pod per sandbox, driven through kubectl. */
export interface KubernetesBackendConfig {
  type: "kubernetes";
  /** What the runtime image holds and how the rocklet starts from it (see runtime_image.ts). */
  launcher: RockletLauncher;
  /**
   * The rock runtime image the init container copies the rocklet from (default: createBackend()
   * builds `launcher`'s with the local docker engine, or finds it built, see runtime_image.ts).
   */
  runtimeImage?: string | undefined;
  /** Base of the runtime image createBackend() builds when none is named (needs sh and cp). */
  runtimeImageBase?: string | undefined;
  /** Pull policy of the runtime image (default "IfNotPresent"). */
  runtimeImagePullPolicy?: "Always" | "IfNotPresent" | "Never" | undefined;
  /** The kubectl executable (default "kubectl"). */
  kubectlBinary?: string | undefined;
  /** Kubeconfig file (default: kubectl's own). */
  kubeconfig?: string | undefined;
  /** Kubeconfig context (default: its current one). */
  context?: string | undefined;
  /** Namespace of the pods (default: the context's). */
  namespace?: string | undefined;
  /** Environment of every kubectl run (tests point KUBECONFIG and KUBECACHEDIR here). */
  kubectlEnv?: Record<string, string> | undefined;
  /** How the admin reaches rocklets (default "pod-ip"). */
  access?: KubeAccess | undefined;
  /** The pods' runtimeClassName (gVisor, Kata), when set. */
  runtimeClassName?: string | undefined;
  /** The pods' nodeSelector, when set. */
  nodeSelector?: Record<string, string> | undefined;
  /** The pods' tolerations, when set. */
  tolerations?: KubeToleration[] | undefined;
  /** Hard lifetime of a pod in seconds (`activeDeadlineSeconds`), enforced by the kubelet. */
  maxLifetimeSeconds?: number | undefined;
  /** Longest a placement may take until the container runs, in milliseconds (default 600 000). */
  placeTimeoutMs?: number | undefined;
  /** Timeout of one kubectl call, in milliseconds (default 60 000). */
  commandTimeoutMs?: number | undefined;
  /** Deployment id: pods get it as a label and list() only returns those. */
  deploymentId?: string | undefined;
}
