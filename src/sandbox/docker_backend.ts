/**
 * Sandboxes as docker containers on this machine. Each container runs the rocklet as its
 * entrypoint (mounted read-only by the launcher), carries rock's label, and publishes the rocklet,
 * app and SSH ports on a random loopback port. Waiting for the rocklet is the manager's job.
 */
import { hostname } from "node:os";
import {
  BadRequestError,
  CancelledError,
  errorMessage,
  RockError,
  SandboxNotFoundError,
} from "../common/errors.ts";
import type { Logger } from "../common/log.ts";
import {
  type CommittingBackend,
  DEPLOYMENT_LABEL,
  type DockerBackendConfig,
  type ExitListener,
  type ListedSandbox,
  type LoggingBackend,
  type PhaseName,
  type PhaseStatus,
  type PlaceHooks,
  type Placement,
  type RegistryCredentials,
  type RenamableBackend,
  ROCKLET_PORT,
  SANDBOX_LABEL,
  type SandboxExit,
  type SandboxSpec,
  type WarmingBackend,
  type WatchingBackend,
} from "./backend.ts";
import {
  type ContainerInspect,
  type ContainerRequest,
  DockerCli,
  PortTakenError,
  publishedPorts,
  runArgs,
  tail,
} from "./docker_cli.ts";
import { ContainerExitWatch } from "./docker_events.ts";
import type { RockletLauncher } from "./rocklet_launcher.ts";

/** Seams of the docker backend (each defaults to the real thing). */
export interface DockerBackendDeps {
  /** The docker CLI wrapper (default: one built from the config). */
  docker?: DockerCli;
  /** Name of this host, reported in placements (default: `os.hostname()`). */
  hostName?: string;
  /** Where a dropped events stream is reported (default: nowhere). */
  logger?: Logger | undefined;
}

/**
 * Container ports a sandbox publishes by default: the rocklet's only. Other ports inside the
 * sandbox are reached through the rocklet (the admin's proxy and port-forward), so no port is
 * published per app and no docker-proxy process runs per unused port (each published port costs
 * one: in a burst of 100 starts, three ports each made the burst 20-30% slower than one).
 */
const ROCKLET_ONLY = [ROCKLET_PORT];

/**
 * The registry an image reference names: its first path segment when that contains "." or ":"
 * (or is "localhost"), else "" for Docker Hub.
 */
export function registryOf(image: string): string {
  const slash = image.indexOf("/");
  if (slash < 0) return "";
  const first = image.slice(0, slash);
  return /[.:]/.test(first) || first === "localhost" ? first : "";
}

/** How `spec` is placed with `launcher`: the container to create and start. */
export function containerRequest(
  spec: SandboxSpec,
  options: {
    launcher: RockletLauncher;
    publishIp: string;
    extraRunArgs?: string[];
    deploymentId?: string | undefined;
    /** Container ports to publish on `publishIp` (default: the rocklet's). */
    publishedPorts?: number[] | undefined;
    /** The host port of each published container port (default: docker picks free ones). */
    hostPorts?: Record<number, number> | undefined;
  },
): ContainerRequest {
  const { launcher, publishIp } = options;
  const labels: Record<string, string> = { [SANDBOX_LABEL]: spec.sandboxId };
  if (options.deploymentId) labels[DEPLOYMENT_LABEL] = options.deploymentId;
  const [entrypoint, ...command] = launcher.containerCommand(ROCKLET_PORT);
  return {
    name: spec.sandboxId,
    image: spec.image,
    entrypoint,
    command,
    env: { ...spec.env, ...launcher.containerEnv() },
    labels,
    ports: (options.publishedPorts ?? ROCKLET_ONLY).map((port) => {
      const hostPort = options.hostPorts?.[port];
      return hostPort === undefined
        ? { containerPort: port, hostIp: publishIp }
        : { containerPort: port, hostIp: publishIp, hostPort };
    }),
    memoryBytes: spec.memoryBytes,
    cpus: spec.cpus,
    mounts: launcher.containerMounts(),
    extraRunArgs: options.extraRunArgs ?? [],
  };
}

/** The `docker run` arguments (after `run`) that place `spec` with `launcher`. */
export function dockerRunArgs(
  spec: SandboxSpec,
  options: Parameters<typeof containerRequest>[1],
): string[] {
  return runArgs(containerRequest(spec, options));
}

/** Runs sandboxes as docker containers. */
export class DockerBackend
  implements RenamableBackend, LoggingBackend, WatchingBackend, WarmingBackend, CommittingBackend {
  /** Always "docker". */
  readonly type = "docker" as const;
  readonly #docker: DockerCli;
  readonly #launcher: RockletLauncher;
  readonly #publishIp: string;
  readonly #extraRunArgs: string[];
  /** Container ports published on the host: the rocklet's, then the configured ones. */
  readonly #published: number[];
  readonly #hostName: string;
  readonly #deploymentId?: string | undefined;
  readonly #logger?: Logger | undefined;
  /** Event streams of the watches in progress (see watch()). */
  readonly #watches = new Set<ContainerExitWatch>();

  /** Creates the backend; nothing runs until the first call. */
  constructor(config: DockerBackendConfig, deps: DockerBackendDeps = {}) {
    this.#docker = deps.docker ??
      new DockerCli({ binary: config.dockerBinary, timeoutMs: config.commandTimeoutMs });
    this.#launcher = config.launcher;
    this.#publishIp = config.publishIp ?? "127.0.0.1";
    this.#extraRunArgs = config.extraRunArgs ?? [];
    this.#published = [
      ROCKLET_PORT,
      ...(config.publishPorts ?? []).filter((port) => port !== ROCKLET_PORT),
    ];
    this.#hostName = deps.hostName ?? hostname();
    this.#deploymentId = config.deploymentId;
    this.#logger = deps.logger;
  }

  /**
   * Pulls the image as `spec.pull` says, then runs the container. Reports image_pull and
   * docker_run phases (docker_run success is the caller's, once the rocklet answers).
   * @throws {RockError} naming the image or carrying docker's stderr tail; nothing is left behind.
   * @throws {CancelledError} when `hooks.signal` aborts; the container is removed.
   */
  async place(spec: SandboxSpec, hooks: PlaceHooks): Promise<Placement> {
    if (spec.pull === "always") {
      await this.#prepareImage(spec, hooks);
      return await this.#runContainer(spec, hooks);
    }
    // The image check and the run go at once (one docker call's time less): the run never
    // pulls, so without the image it fails having created nothing, and goes again once the
    // image_pull phase has pulled it.
    const early = settle(this.#startContainer(spec, hooks.signal));
    let present: boolean;
    try {
      present = await this.#prepareImage(spec, hooks);
    } catch (error) {
      const started = await early;
      if (started.ok) await this.#removeContainer(started.value.handle).catch(() => {});
      throw error;
    }
    if (present) return await this.#runContainer(spec, hooks, early);
    // Pulled now: the early run found no image (or, pulled meanwhile by someone else, ran).
    const started = await early;
    if (started.ok) return await this.#runContainer(spec, hooks, early);
    return await this.#runContainer(spec, hooks);
  }

  /**
   * Makes image `image` of this admin's container of the sandbox (`docker commit`).
   * @throws {SandboxNotFoundError} when this admin has no container of that sandbox.
   */
  async commit(
    sandboxId: string,
    image: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const container = await this.#owned(sandboxId);
    if (!container) {
      throw new SandboxNotFoundError(
        `Cannot commit sandbox "${sandboxId}": this admin has no container of it`,
        { extraInfo: { sandbox_id: sandboxId } },
      );
    }
    await this.#docker.commit(container.Id, image, { ...options, timeoutMs: 30 * 60_000 });
  }

  /**
   * Pushes `image` to the registry its name gives; with credentials, logged in for this push
   * only (a private docker config, removed after).
   */
  async push(
    image: string,
    options: { credentials?: RegistryCredentials | undefined; signal?: AbortSignal | undefined } =
      {},
  ): Promise<void> {
    const { credentials, signal } = options;
    const login = credentials ? { registry: registryOf(image), ...credentials } : undefined;
    await this.#docker.push(image, { login, signal });
  }

  /**
   * Pulls `image` unless it is here already (a warm-up: later starts find it).
   * @throws {RockError} with docker's complaint when the pull fails.
   */
  async warm(image: string, options: { signal?: AbortSignal } = {}): Promise<"present" | "pulled"> {
    if (await this.#docker.imageExists(image, options)) return "present";
    await this.#docker.pull(image, options);
    return "pulled";
  }

  /**
   * Removes this admin's container of the sandbox (`docker rm -f` by container id); quiet when
   * there is none. A container of that name this admin does not own is left alone.
   */
  async remove(sandboxId: string): Promise<void> {
    const container = await this.#owned(sandboxId);
    if (container) await this.#removeContainer(container.Id);
  }

  /**
   * Follows `docker events` for this admin's containers (its deployment label) and reports each
   * that dies (with its exit code, the signal of a `docker kill`, and whether it was OOMKilled),
   * except the ones this backend removes. One stream per watch, resumed when it drops (then
   * `listener.onGap()`).
   */
  watch(listener: ExitListener): AsyncDisposable {
    const watch = new ContainerExitWatch(this.#docker, {
      filters: [`label=${SANDBOX_LABEL}`, ...this.#deploymentFilter()],
      owns: (attributes) => this.#ownsLabels(attributes),
      listener,
      logger: this.#logger,
    });
    this.#watches.add(watch);
    return {
      [Symbol.asyncDispose]: async () => {
        this.#watches.delete(watch);
        await watch[Symbol.asyncDispose]();
      },
    };
  }

  /**
   * How this admin's container of the sandbox ended (`docker container inspect`: exit code,
   * OOMKilled), or undefined while it runs; a container that is gone ended unknown how.
   */
  async check(sandboxId: string): Promise<SandboxExit | undefined> {
    const container = await this.#owned(sandboxId);
    if (!container) return { sandboxId, handle: "" };
    if (container.State.Running) return undefined;
    const exit: SandboxExit = {
      sandboxId,
      handle: container.Id,
      exitCode: container.State.ExitCode,
    };
    if (container.State.OOMKilled) exit.oomKilled = true;
    return exit;
  }

  /**
   * The last `tail` lines of output of this admin's container of the sandbox (`docker logs
   * --tail`); empty when there is none.
   */
  async logs(sandboxId: string, tail: number): Promise<string> {
    const container = await this.#owned(sandboxId);
    return container ? await this.#docker.logs(container.Id, tail) : "";
  }

  /**
   * Renames this admin's container `from` to `to` (`docker rename`) and returns its placement.
   * @throws {RockError} when this admin has no container `from`, the rename fails, or the
   * container is not running (it is then removed).
   */
  async rename(from: string, to: string): Promise<Placement> {
    const what = `Cannot hand out sandbox "${from}" as "${to}"`;
    const owned = await this.#owned(from);
    if (!owned) throw new RockError(`${what}: this admin has no container named "${from}"`);
    await this.#docker.rename(owned.Id, to);
    const container = await this.#docker.inspectContainer(owned.Id);
    if (!container?.State.Running) {
      // Renamed, it no longer answers to `from`: remove it here or nobody will.
      await this.#removeContainer(owned.Id).catch(() => {});
      throw new RockError(`${what}: its container is not running`);
    }
    return this.#placementOf(container);
  }

  /**
   * Lists this admin's containers (see #owns), running or not: those carrying rock's label and
   * this deployment's (with no deployment id, those carrying none).
   */
  async list(): Promise<ListedSandbox[]> {
    const ids = await this.#docker.psByLabel(
      this.#deploymentId ? `${DEPLOYMENT_LABEL}=${this.#deploymentId}` : SANDBOX_LABEL,
    );
    const containers = (await this.#docker.inspectContainers(ids)).filter((c) => this.#owns(c));
    return containers.map((container) => {
      const running = container.State.Running;
      const listed: ListedSandbox = {
        // The name, not the label: a renamed (warm pool) container keeps its first label.
        sandboxId: container.Name.replace(/^\//, ""),
        handle: container.Id,
        running,
      };
      if (running) listed.placement = this.#placementOf(container);
      return listed;
    });
  }

  /** The image_pull phase; true when the image was here (nothing pulled). */
  async #prepareImage(spec: SandboxSpec, hooks: PlaceHooks): Promise<boolean> {
    const { image, pull, sandboxId } = spec;
    const report = phaseReporter("image_pull", hooks);
    const fail = (message: string, error: RockError): never => {
      report("failed", message);
      throw error;
    };
    const options = { signal: hooks.signal };
    try {
      if (pull === "never" || pull === "missing") {
        const present = await this.#docker.imageExists(image, options);
        if (pull === "never" && !present) {
          const reason = `image "${image}" not found locally and pull policy is "never"`;
          fail(
            `Image "${image}" not found locally and pull policy is "never"`,
            new BadRequestError(`Cannot start sandbox "${sandboxId}": ${reason}`),
          );
        }
        if (present) {
          report(
            "success",
            pull === "never" ? "skip image pull" : "use cached image, skip image pull",
          );
          return true;
        }
      }
      report("running", "image pull running");
      const { registryUsername: username, registryPassword: password } = spec;
      const login = username && password
        ? { registry: registryOf(image), username, password }
        : undefined;
      try {
        await this.#docker.pull(image, { ...options, login });
      } catch (error) {
        if (error instanceof CancelledError) throw error;
        fail(
          `Failed to pull image ${image}. Error: ${evidenceOf(error)}`,
          new RockError(
            `Cannot start sandbox "${sandboxId}": pull of "${image}" failed: ${detailOf(error)}`,
            { cause: error },
          ),
        );
      }
      if (!(await this.#docker.imageExists(image, options))) {
        const reason = `image "${image}" not found locally after pull`;
        fail(
          `Image "${image}" not found locally after pull`,
          new RockError(`Cannot start sandbox "${sandboxId}": ${reason}`),
        );
      }
      report("success", "image pull success");
      return false;
    } catch (error) {
      if (error instanceof CancelledError) {
        report("failed", "image pull cancelled");
        throw new CancelledError(`Placement of sandbox "${sandboxId}" was cancelled`, {
          cause: error,
        });
      }
      if (!report.ended) report("failed", `image pull failed: ${errorMessage(error)}`);
      throw error;
    }
  }

  /**
   * The docker_run phase, up to (not including) success: reports it running, then waits for
   * `started` (a run begun already) or starts the container.
   */
  async #runContainer(
    spec: SandboxSpec,
    hooks: PlaceHooks,
    started?: Promise<Settled<Placement>>,
  ): Promise<Placement> {
    const { sandboxId } = spec;
    const report = phaseReporter("docker_run", hooks);
    report("running", "docker run running");
    const outcome = await (started ?? settle(this.#startContainer(spec, hooks.signal)));
    if (outcome.ok) return outcome.value;
    const error = outcome.error;
    if (error instanceof CancelledError) {
      report("failed", "docker run cancelled");
      throw new CancelledError(`Placement of sandbox "${sandboxId}" was cancelled`, {
        cause: error,
      });
    }
    if (error instanceof NameTakenError) {
      report("failed", `docker run failed: ${error.taken}`);
      throw error;
    }
    report("failed", `docker run failed: ${evidenceOf(error)}`);
    throw new RockError(
      `Cannot start sandbox "${sandboxId}": docker run failed: ${detailOf(error)}`,
      { cause: error, extraInfo: error instanceof RockError ? error.extraInfo : {} },
    );
  }

  /**
   * Runs the container with host ports chosen here, so its placement needs no `docker inspect`
   * while a watch reports deaths: a port taken between the choice and the run makes it go again
   * with others (up to PORT_ATTEMPTS runs). Whatever a failed run created is removed when it is
   * this admin's.
   * @throws {NameTakenError} when a container this admin does not own has the name.
   * @throws {CancelledError} when `signal` aborts (also right after the run).
   * @throws {RockError} docker's failure otherwise (ImageMissingError without the image).
   */
  async #startContainer(spec: SandboxSpec, signal?: AbortSignal): Promise<Placement> {
    const { sandboxId } = spec;
    for (let attempt = 1;; attempt++) {
      const hostPorts = freeHostPorts(this.#publishIp, this.#published);
      const request = containerRequest(spec, {
        publishedPorts: this.#published,
        launcher: this.#launcher,
        publishIp: this.#publishIp,
        extraRunArgs: this.#extraRunArgs,
        deploymentId: this.#deploymentId,
        hostPorts,
      });
      try {
        const id = await this.#docker.runContainer(request, { signal });
        if (signal?.aborted) throw new CancelledError("cancelled after docker run");
        // A watch (the admin's) reports a container that dies at once like any death; without
        // one, only a look at it now tells (and tells the ports docker chose).
        if (!hostPorts || this.#watches.size === 0) {
          const container = await this.#runningContainer(id, signal);
          if (!hostPorts) return this.#placementOf(container);
        }
        return {
          hostIp: this.#publishIp,
          hostName: this.#hostName,
          portMapping: Object.fromEntries(
            this.#published.flatMap((port) => {
              const hostPort = hostPorts[port];
              return hostPort === undefined ? [] : [[String(port), hostPort]];
            }),
          ),
          handle: id,
        };
      } catch (error) {
        // A failed run may still have created the container (a bad entrypoint, a taken port),
        // and an abort may land after docker created it: remove it when it is this admin's.
        // When the name belongs to a container this admin does not own, that is why it failed.
        const named = await this.#named(sandboxId).catch(() => undefined);
        if (named && this.#owns(named)) await this.#removeContainer(named.Id).catch(() => {});
        if (error instanceof PortTakenError && attempt < PORT_ATTEMPTS && !signal?.aborted) {
          continue;
        }
        if (named && !this.#owns(named)) throw new NameTakenError(sandboxId, named.Id, error);
        throw error;
      }
    }
  }

  /**
   * Container `id` as `docker inspect` gives it, right after its run.
   * @throws {RockError} when it is gone or has exited already (with its last lines of output).
   */
  async #runningContainer(id: string, signal?: AbortSignal): Promise<ContainerInspect> {
    const container = await this.#docker.inspectContainer(id, { signal });
    if (!container) throw new RockError(`container "${id}" vanished right after start`);
    if (!container.State.Running) {
      const logs = await this.#docker.logs(id, 10);
      throw new RockError(
        `container exited right after start with code ${container.State.ExitCode}: ${logs}`,
      );
    }
    return container;
  }

  /**
   * The container named `sandboxId`, whoever owns it. A sandbox id names its container (a
   * handed-out warm-pool container keeps the sandbox label of its pool id), so the name finds
   * it and the labels (#owns) decide whether this admin may act on it.
   */
  async #named(sandboxId: string): Promise<ContainerInspect | undefined> {
    const container = await this.#docker.inspectContainer(sandboxId);
    // inspect also resolves container ids and id prefixes: only this very name counts.
    return container?.Name === `/${sandboxId}` ? container : undefined;
  }

  /** This admin's container named `sandboxId` (see #owns), or undefined. */
  async #owned(sandboxId: string): Promise<ContainerInspect | undefined> {
    const container = await this.#named(sandboxId);
    return container && this.#owns(container) ? container : undefined;
  }

  /**
   * Whether this admin owns `container`: it carries rock's sandbox label and this deployment's
   * label (no deployment label when this backend has no deployment id). Containers of other
   * admins on the same engine are never removed, renamed or read.
   */
  #owns(container: ContainerInspect): boolean {
    return this.#ownsLabels(container.Config.Labels ?? {});
  }

  /** #owns by a container's labels (an inspect's, or the attributes of its events). */
  #ownsLabels(labels: Record<string, string>): boolean {
    return SANDBOX_LABEL in labels && labels[DEPLOYMENT_LABEL] === this.#deploymentId;
  }

  /** The label filter of this deployment's containers, when it has an id. */
  #deploymentFilter(): string[] {
    return this.#deploymentId ? [`label=${DEPLOYMENT_LABEL}=${this.#deploymentId}`] : [];
  }

  /** Removes container `id` (`docker rm -f`); a watch does not report its death. */
  async #removeContainer(id: string): Promise<void> {
    for (const watch of this.#watches) watch.expectRemoval(id);
    await this.#docker.remove([id]);
  }

  /** Where an inspected, running container's rocklet answers. */
  #placementOf(container: ContainerInspect): Placement {
    const ports = publishedPorts(container);
    const portMapping: Record<string, number> = {};
    for (const port of this.#published) {
      const bindings = ports[`${port}/tcp`] ?? [];
      const binding = bindings.find((b) => b.HostIp === this.#publishIp) ?? bindings[0];
      if (binding) portMapping[String(port)] = Number(binding.HostPort);
    }
    return {
      hostIp: this.#publishIp,
      hostName: this.#hostName,
      portMapping,
      handle: container.Id,
    };
  }
}

/** A phase reporter that remembers whether it reported a terminal status. */
interface PhaseReporter {
  (status: PhaseStatus, message: string): void;
  ended: boolean;
}

/** Reports updates of phase `name` through `hooks`. */
function phaseReporter(name: PhaseName, hooks: PlaceHooks): PhaseReporter {
  const report = ((status: PhaseStatus, message: string) => {
    if (status !== "running" && status !== "waiting") report.ended = true;
    hooks.onPhase({ name, status, message });
  }) as PhaseReporter;
  report.ended = false;
  return report;
}

/** Docker's stderr tail when the error carries one (a failed docker call), else its message. */
function evidenceOf(error: unknown): string {
  if (error instanceof RockError && typeof error.extraInfo.stderr === "string") {
    return tail(error.extraInfo.stderr);
  }
  return errorMessage(error);
}

/** As evidenceOf, with docker's exit code in front when there is one. */
function detailOf(error: unknown): string {
  if (error instanceof RockError && typeof error.extraInfo.stderr === "string") {
    return `exit code ${error.extraInfo.exit_code}: ${tail(error.extraInfo.stderr)}`;
  }
  return errorMessage(error);
}

/** How many runs a start makes when host ports it chose are taken before docker binds them. */
const PORT_ATTEMPTS = 5;

/**
 * A free TCP port on `ip` for each published container port, found by binding port 0 (the
 * kernel picks, as docker would) and letting go; undefined when this process cannot bind on
 * `ip` (the engine may live in another network namespace: then docker picks).
 */
function freeHostPorts(ip: string, ports: number[]): Record<number, number> | undefined {
  const listeners: Deno.Listener[] = [];
  const hostPorts: Record<number, number> = {};
  try {
    for (const port of ports) {
      const listener = Deno.listen({ hostname: ip, port: 0 });
      listeners.push(listener);
      hostPorts[port] = (listener.addr as Deno.NetAddr).port;
    }
  } catch {
    return undefined;
  } finally {
    for (const listener of listeners) listener.close();
  }
  return hostPorts;
}

/** A container of another admin (or none of rock's) has the sandbox's name. */
class NameTakenError extends BadRequestError {
  /** What the docker_run phase says. */
  readonly taken: string;

  constructor(sandboxId: string, containerId: string, cause: unknown) {
    const taken = `the name "${sandboxId}" is taken by a container this admin does not own ` +
      `(container ${containerId.slice(0, 12)})`;
    super(`Cannot start sandbox "${sandboxId}": docker run failed: ${taken}`, {
      cause,
      extraInfo: cause instanceof RockError ? cause.extraInfo : {},
    });
    this.taken = taken;
  }
}

/** A promise's outcome as a value, so it can be awaited later without an unhandled rejection. */
type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Settles `promise` into a Settled. */
function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));
}
