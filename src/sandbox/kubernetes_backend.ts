/**
 * Sandboxes as Pods on Kubernetes, driven through kubectl (kubectl_cli.ts): one bare Pod per
 * sandbox (kubernetes_pod.ts), the rocklet brought in by an init container from the rock runtime
 * image. ONE long-lived `kubectl get pods --watch` per backend is its cache: placements wait on
 * it for their pod's progress and deaths are read from it, so the number of kubectl processes
 * grows with creates, not with sandboxes times polls. The rocklet is reached at the pod IP, or
 * through a `kubectl proxy` the backend starts and restarts (access "api-proxy").
 *
 * Warm pool: rename() claims a pooled pod by one JSON patch that tests the pod's resourceVersion
 * and rewrites its sandbox-id label and annotation, so of two admins claiming one pod exactly one
 * wins (the other gets a ClaimConflictError). A pod keeps the name it was created with, so every
 * lookup by sandbox id goes through the id (the cache's index, else a label query), never
 * through podName(sandboxId).
 */
import { CancelledError, ConfigError, RockError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import type {
  ExitListener,
  KubeAccess,
  KubernetesBackendConfig,
  ListedSandbox,
  LoggingBackend,
  PhaseName,
  PhaseStatus,
  PlaceHooks,
  Placement,
  RenamableBackend,
  RoutingBackend,
  SandboxExit,
  SandboxSpec,
  WatchingBackend,
} from "./backend.ts";
import {
  ClaimConflictError,
  PlacementOomError,
  ROCKLET_PORT,
  SERVER_PORT,
  SSH_PORT,
} from "./backend.ts";
import {
  KubectlAlreadyExistsError,
  KubectlCli,
  KubectlConflictError,
  type KubeObject,
} from "./kubectl_cli.ts";
import {
  labelValue,
  podEnd,
  podManifest,
  podName,
  podProgress,
  podSelector,
  SANDBOX_CONTAINER,
  SANDBOX_ID_KEY,
  sandboxIdOf,
} from "./kubernetes_pod.ts";
import { abortableSleep } from "./tool_process.ts";

/** Seams of the kubernetes backend. */
export interface KubernetesBackendDeps {
  /** The kubectl wrapper (default: one built from the config). */
  kubectl?: KubectlCli;
  logger?: Logger | undefined;
}

/**
 * Paths `kubectl proxy` refuses. Its default (`^/api/.*\/pods/.*\/exec`, and attach) also
 * matches the rocklet's own `/execute` behind the pod proxy; this one refuses pods/exec, attach
 * and portforward only.
 */
const PROXY_REJECT_PATHS = "^/api/v1/namespaces/[^/]+/pods/[^/]+/(exec|attach|portforward)$";

const FIRST_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 5_000;

/** Runs sandboxes as Pods. */
export class KubernetesBackend
  implements LoggingBackend, WatchingBackend, RoutingBackend, RenamableBackend, AsyncDisposable {
  /** Always "kubernetes". */
  readonly type = "kubernetes" as const;
  readonly #config: KubernetesBackendConfig;
  readonly #kubectl: KubectlCli;
  readonly #logger: Logger;
  readonly #access: KubeAccess;
  readonly #selector: string;
  /** The cache: this deployment's pods by name, as the watch last reported them. */
  readonly #pods = new Map<string, KubeObject>();
  /** The cache's index: the names of the cached pods of each sandbox id (see sandboxIdOf). */
  readonly #namesById = new Map<string, Set<string>>();
  /** Called on every change of a pod, by pod name (placements waiting for theirs). */
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #listeners = new Set<ExitListener>();
  /** Uids of pods this backend deletes, and of pods whose end was reported. */
  readonly #removing = new Set<string>();
  readonly #reported = new Set<string>();
  readonly #stop = new AbortController();
  #watching: Promise<void> | undefined;
  #started: Promise<void> | undefined;
  #namespace: string | undefined;
  #proxy: Promise<void> | undefined;
  #proxyPort = 0;

  /** Creates the backend; nothing runs until the first call (or start()). */
  /** @throws {ConfigError} when `config` names no runtime image (createBackend() builds one). */
  constructor(config: KubernetesBackendConfig, deps: KubernetesBackendDeps = {}) {
    if (!config.runtimeImage) {
      throw new ConfigError("Cannot use the kubernetes backend: no runtime image is named");
    }
    this.#config = config;
    this.#kubectl = deps.kubectl ?? new KubectlCli({
      binary: config.kubectlBinary,
      kubeconfig: config.kubeconfig,
      context: config.context,
      namespace: config.namespace,
      env: config.kubectlEnv,
      timeoutMs: config.commandTimeoutMs,
    });
    this.#logger = deps.logger ?? silentLogger;
    this.#access = config.access ?? "pod-ip";
    this.#selector = podSelector(config.deploymentId);
  }

  /** How many kubectl processes this backend has started (the watch and proxy included). */
  get kubectlProcesses(): number {
    return this.#kubectl.spawned;
  }

  /**
   * Checks the cluster answers (listing this deployment's pods), then starts the watch and, for
   * access "api-proxy", the proxy.
   * @throws {RockError} with kubectl's complaint when the cluster cannot be reached or refuses.
   */
  start(): Promise<void> {
    this.#started ??= (async () => {
      this.#namespace = await this.#kubectl.namespace();
      await this.#kubectl.list("pods", this.#selector);
      this.#ensureWatch();
      await this.#ensureProxy();
    })().catch((error) => {
      this.#started = undefined;
      throw error;
    });
    return this.#started;
  }

  /**
   * Creates the sandbox's pod and follows it through pod_scheduled, image_pull and
   * container_start (success of the last is the caller's, once the rocklet answers).
   * @throws {RockError} with the phase's reason (Unschedulable, ImagePullBackOff, OOMKilled,
   *   ...); the pod is deleted.
   * @throws {CancelledError} when `hooks.signal` aborts; the pod is deleted.
   */
  async place(spec: SandboxSpec, hooks: PlaceHooks): Promise<Placement> {
    await this.start();
    const name = podName(spec.sandboxId);
    const what = `Cannot start sandbox "${spec.sandboxId}"`;
    const reported = new Map<PhaseName, PhaseStatus>();
    const report = (phase: PhaseName, status: PhaseStatus, message: string) => {
      if (reported.get(phase) === status) return;
      reported.set(phase, status);
      hooks.onPhase({ name: phase, status, message });
    };
    report("pod_scheduled", "running", "pod scheduled running");
    const deadline = this.#config.placeTimeoutMs ?? 600_000;
    const timeout = AbortSignal.timeout(deadline);
    const signal = hooks.signal ? AbortSignal.any([hooks.signal, timeout]) : timeout;
    // An earlier sandbox of this id (a restart) leaves its pod terminating for a moment: the new
    // pod takes its name once it is gone.
    await this.#untilDeleted(name, signal);
    let created: KubeObject;
    try {
      created = await this.#kubectl.create(podManifest(spec, this.#config), {
        signal: hooks.signal,
      });
    } catch (error) {
      const message = error instanceof KubectlAlreadyExistsError
        ? `a pod named "${name}" exists already`
        : (error as Error).message;
      report("pod_scheduled", "failed", `pod create failed: ${message}`);
      if (error instanceof CancelledError) throw error;
      throw new RockError(`${what}: pod create failed: ${message}`, { cause: error });
    }
    const uid = created.metadata.uid ?? "";
    this.#update(created);
    try {
      for (;;) {
        const changed = this.#nextChange(name, signal);
        const pod = this.#pods.get(name);
        if (!pod || pod.metadata.uid !== uid) {
          throw new RockError(`${what}: its pod "${name}" was deleted`);
        }
        const progress = podProgress(pod);
        if (progress.scheduled) report("pod_scheduled", "success", "pod scheduled success");
        if (progress.scheduled && !progress.pulled) {
          report("image_pull", "running", "image pull running");
        }
        if (progress.pulled) {
          report("image_pull", "success", "image pull success");
          report("container_start", "running", "container start running");
        }
        if (progress.failed) {
          const { phase, message, oomKilled } = progress.failed;
          report(phase, "failed", message);
          const text = `${what}: ${phase.replace("_", " ")} failed: ${message}`;
          throw oomKilled ? new PlacementOomError(text) : new RockError(text);
        }
        if (progress.running) return this.#placementOf(pod);
        await changed;
        if (signal.aborted) {
          if (hooks.signal?.aborted) {
            throw new CancelledError(`Placement of sandbox "${spec.sandboxId}" was cancelled`);
          }
          throw new RockError(`${what}: its pod did not run within ${deadline / 1000} s`);
        }
      }
    } catch (error) {
      await this.#deletePod(name, uid).catch(() => {});
      throw error;
    }
  }

  /** Deletes the sandbox's pod when it is this deployment's; quiet when there is none. */
  async remove(sandboxId: string): Promise<void> {
    const pod = await this.#find(sandboxId);
    if (!pod || !this.#owns(pod)) return;
    await this.#deletePod(pod.metadata.name, pod.metadata.uid ?? "");
  }

  /**
   * Claims pooled sandbox `from` as `to`: one JSON patch that tests the pod's resourceVersion and
   * rewrites its sandbox-id label and annotation (the pod keeps its name). A precondition that
   * fails because the pod merely changed (its status) is retried on the pod read again.
   * @throws {ClaimConflictError} when another admin claimed the pod first (it is theirs now).
   * @throws {RockError} when there is no such pod of this deployment, or it does not run (it is
   *   then deleted).
   */
  async rename(from: string, to: string): Promise<Placement> {
    await this.start();
    const what = `Cannot hand out sandbox "${from}" as "${to}"`;
    let pod = this.#cached(from) ?? await this.#lookup(from);
    let claimed: KubeObject | undefined;
    for (let attempt = 0; !claimed; attempt++) {
      if (!pod || !this.#owns(pod) || pod.metadata.deletionTimestamp) {
        throw new RockError(`${what}: this deployment has no pod of it`);
      }
      if (sandboxIdOf(pod) !== from) {
        throw new ClaimConflictError(`${what}: it was claimed as "${sandboxIdOf(pod)}" first`);
      }
      const name = pod.metadata.name;
      try {
        claimed = await this.#kubectl.jsonPatch("pod", name, [
          { op: "test", path: "/metadata/resourceVersion", value: pod.metadata.resourceVersion },
          { op: "add", path: `/metadata/labels/${pointer(SANDBOX_ID_KEY)}`, value: labelValue(to) },
          { op: "add", path: `/metadata/annotations/${pointer(SANDBOX_ID_KEY)}`, value: to },
        ]);
      } catch (error) {
        if (!(error instanceof KubectlConflictError)) throw error;
        if (attempt >= 4) {
          throw new ClaimConflictError(`${what}: its pod kept changing`, { cause: error });
        }
        pod = await this.#kubectl.get<KubeObject>("pod", name);
      }
    }
    this.#update(claimed);
    const progress = podProgress(claimed);
    if (!progress.running || progress.failed || podEnd(claimed)) {
      await this.#deletePod(claimed.metadata.name, claimed.metadata.uid ?? "").catch(() => {});
      throw new RockError(`${what}: its pod does not run`);
    }
    return this.#placementOf(claimed);
  }

  /**
   * Lists this deployment's pods (one `kubectl get -l`), and refreshes the cache with them.
   */
  async list(): Promise<ListedSandbox[]> {
    await this.start();
    const pods = await this.#kubectl.list("pods", this.#selector);
    const names = new Set(pods.map((pod) => pod.metadata.name));
    for (const name of [...this.#pods.keys()]) if (!names.has(name)) this.#forget(name);
    for (const pod of pods) this.#remember(pod);
    return pods.filter((pod) => !pod.metadata.deletionTimestamp).map((pod) => {
      const progress = podProgress(pod);
      const running = progress.running && !progress.failed;
      const listed: ListedSandbox = {
        sandboxId: sandboxIdOf(pod),
        handle: pod.metadata.uid ?? "",
        running,
      };
      if (running) listed.placement = this.#placementOf(pod);
      return listed;
    });
  }

  /** The last `tail` lines of the sandbox container's output (`kubectl logs`). */
  async logs(sandboxId: string, tail: number): Promise<string> {
    const pod = await this.#find(sandboxId);
    if (!pod) return "";
    return await this.#kubectl.logs(pod.metadata.name, { container: SANDBOX_CONTAINER, tail });
  }

  /** Reports each of this deployment's pods that ends or vanishes without remove(). */
  watch(listener: ExitListener): AsyncDisposable {
    this.#listeners.add(listener);
    this.#ensureWatch();
    return {
      [Symbol.asyncDispose]: () => {
        this.#listeners.delete(listener);
        return Promise.resolve();
      },
    };
  }

  /** How the sandbox ended (read from the API, not the cache), or undefined while it runs. */
  async check(sandboxId: string): Promise<SandboxExit | undefined> {
    const pod = await this.#lookup(sandboxId);
    if (!pod || !this.#owns(pod)) return { sandboxId, handle: "" };
    const end = podEnd(pod);
    return end ? this.#exitOf(pod, end) : undefined;
  }

  /** The rocklet's base URL: the pod IP, or the API server's pod proxy. */
  rockletUrl(sandboxId: string, placement: Pick<Placement, "hostIp" | "portMapping">): string {
    if (this.#access === "pod-ip") {
      return `http://${placement.hostIp}:${placement.portMapping[String(ROCKLET_PORT)]}`;
    }
    const name = this.#cached(sandboxId)?.metadata.name ?? podName(sandboxId);
    return `http://127.0.0.1:${this.#proxyPort}/api/v1/namespaces/${this.#namespace}/pods/${name}:${ROCKLET_PORT}/proxy`;
  }

  /** Stops the watch and the proxy (pods keep running). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#stop.abort();
    await Promise.all([this.#watching, this.#proxy]);
  }

  /** The pod of sandbox `sandboxId` in the cache (one not being deleted first). */
  #cached(sandboxId: string): KubeObject | undefined {
    let found: KubeObject | undefined;
    for (const name of this.#namesById.get(sandboxId) ?? []) {
      const pod = this.#pods.get(name);
      if (pod && !pod.metadata.deletionTimestamp) return pod;
      found ??= pod;
    }
    return found;
  }

  /**
   * The pod of sandbox `sandboxId` as the API has it: `kubectl get pods -l` on its id label,
   * checked against the annotation (a label holds a cleaned id when the id is no label value).
   */
  async #lookup(sandboxId: string): Promise<KubeObject | undefined> {
    const pods = (await this.#kubectl.list(
      "pods",
      `${this.#selector},${SANDBOX_ID_KEY}=${labelValue(sandboxId)}`,
    )).filter((pod) => sandboxIdOf(pod) === sandboxId);
    return pods.find((pod) => !pod.metadata.deletionTimestamp) ?? pods[0];
  }

  /** The pod of sandbox `sandboxId`: from the cache, else from the API. */
  async #find(sandboxId: string): Promise<KubeObject | undefined> {
    return this.#cached(sandboxId) ?? await this.#lookup(sandboxId);
  }

  /** Puts `pod` in the cache and its index. */
  #remember(pod: KubeObject): void {
    const name = pod.metadata.name;
    this.#forget(name);
    this.#pods.set(name, pod);
    const id = sandboxIdOf(pod);
    const names = this.#namesById.get(id) ?? new Set();
    names.add(name);
    this.#namesById.set(id, names);
  }

  /** Takes pod `name` out of the cache and its index. */
  #forget(name: string): void {
    const pod = this.#pods.get(name);
    if (!pod) return;
    this.#pods.delete(name);
    const id = sandboxIdOf(pod);
    const names = this.#namesById.get(id);
    names?.delete(name);
    if (names?.size === 0) this.#namesById.delete(id);
  }

  #owns(pod: KubeObject): boolean {
    const labels = pod.metadata.labels ?? {};
    const deployment = labels["rock.sandbox/deployment"];
    return labels["app.kubernetes.io/managed-by"] === "rock" &&
      deployment === this.#config.deploymentId;
  }

  async #deletePod(name: string, uid: string): Promise<void> {
    this.#removing.add(uid);
    await this.#kubectl.delete("pod", name, { gracePeriodSeconds: 0 });
  }

  #placementOf(pod: KubeObject): Placement {
    const progress = podProgress(pod);
    return {
      hostIp: progress.podIP ?? "",
      hostName: progress.node ?? "",
      portMapping: {
        [String(ROCKLET_PORT)]: ROCKLET_PORT,
        [String(SERVER_PORT)]: SERVER_PORT,
        [String(SSH_PORT)]: SSH_PORT,
      },
      handle: pod.metadata.uid ?? "",
    };
  }

  /**
   * Resolves once pod `name` is no longer one of this deployment's being deleted (by this backend,
   * or marked so), or when `signal` aborts.
   */
  async #untilDeleted(name: string, signal: AbortSignal): Promise<void> {
    for (;;) {
      const pod = this.#pods.get(name);
      const deleting = pod && this.#owns(pod) &&
        (pod.metadata.deletionTimestamp || this.#removing.has(pod.metadata.uid ?? ""));
      if (!deleting || signal.aborted) return;
      await this.#nextChange(name, signal);
    }
  }

  /** Resolves on the next change of pod `name` (or when `signal` aborts). */
  #nextChange(name: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(name) ?? new Set();
      this.#waiters.set(name, waiters);
      const done = () => {
        waiters.delete(done);
        if (waiters.size === 0) this.#waiters.delete(name);
        signal.removeEventListener("abort", done);
        resolve();
      };
      waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Takes a pod as the API reported it (newer resourceVersions only) and wakes its waiters. */
  #update(pod: KubeObject): void {
    const name = pod.metadata.name;
    const known = this.#pods.get(name);
    if (
      known?.metadata.uid === pod.metadata.uid &&
      Number(known?.metadata.resourceVersion) > Number(pod.metadata.resourceVersion)
    ) return;
    this.#remember(pod);
    this.#wake(name);
  }

  #wake(name: string): void {
    for (const waiter of [...(this.#waiters.get(name) ?? [])]) waiter();
  }

  #ensureWatch(): void {
    if (this.#watching || this.#stop.signal.aborted) return;
    this.#watching = this.#follow();
  }

  /** The one watch: resumed with a backoff when kubectl exits (then listeners hear of a gap). */
  async #follow(): Promise<void> {
    const signal = this.#stop.signal;
    let backoff = FIRST_BACKOFF_MS;
    while (!signal.aborted) {
      const started = performance.now();
      let ended: string;
      try {
        const result = await this.#kubectl.watch("pods", this.#selector, (event) => {
          backoff = FIRST_BACKOFF_MS;
          if (event.type === "DELETED") this.#deleted(event.object);
          else if (event.type === "ADDED" || event.type === "MODIFIED") this.#changed(event.object);
        }, { signal });
        ended = `exit code ${result.code}: ${result.stderr.trim().slice(-300)}`;
      } catch (error) {
        ended = (error as Error).message;
      }
      if (signal.aborted) return;
      if (performance.now() - started > 10_000) backoff = FIRST_BACKOFF_MS;
      this.#logger.warn("The kubectl pod watch ended; resuming it", {
        ended,
        resume_in_ms: backoff,
      });
      await abortableSleep(backoff, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      for (const listener of this.#listeners) listener.onGap();
    }
  }

  #changed(pod: KubeObject): void {
    this.#update(pod);
    const uid = pod.metadata.uid ?? "";
    const end = podEnd(pod);
    if (!end || this.#removing.has(uid) || this.#reported.has(uid)) return;
    // Only a pod whose sandbox ran can die; a start that fails is place()'s to report.
    this.#reported.add(uid);
    const exit = this.#exitOf(pod, end);
    for (const listener of this.#listeners) listener.onExit(exit);
  }

  #deleted(pod: KubeObject): void {
    const name = pod.metadata.name;
    const uid = pod.metadata.uid ?? "";
    if (this.#pods.get(name)?.metadata.uid === uid) this.#forget(name);
    this.#wake(name);
    const gone = !this.#removing.delete(uid) && !this.#reported.delete(uid);
    if (gone) {
      const exit: SandboxExit = { sandboxId: sandboxIdOf(pod), handle: uid };
      for (const listener of this.#listeners) listener.onExit(exit);
    }
  }

  #exitOf(pod: KubeObject, end: NonNullable<ReturnType<typeof podEnd>>): SandboxExit {
    const exit: SandboxExit = { sandboxId: sandboxIdOf(pod), handle: pod.metadata.uid ?? "" };
    if (end.exitCode !== undefined) exit.exitCode = end.exitCode;
    if (end.signal !== undefined) exit.signal = end.signal;
    if (end.oomKilled) exit.oomKilled = true;
    return exit;
  }

  /** Starts (once) and keeps up the `kubectl proxy` of access "api-proxy". */
  async #ensureProxy(): Promise<void> {
    if (this.#access !== "api-proxy" || this.#stop.signal.aborted) return;
    if (!this.#proxy) {
      let ready!: () => void;
      let failed!: (error: Error) => void;
      const up = new Promise<void>((resolve, reject) => {
        ready = resolve;
        failed = reject;
      });
      this.#proxy = this.#superviseProxy(ready, failed);
      await up;
    }
  }

  /** Runs `kubectl proxy --port=0`, and again after a backoff whenever it exits. */
  async #superviseProxy(ready: () => void, failed: (error: Error) => void): Promise<void> {
    const signal = this.#stop.signal;
    let backoff = FIRST_BACKOFF_MS;
    let first = true;
    while (!signal.aborted) {
      let output = "";
      const result = await this.#kubectl.follow(
        ["proxy", "--port=0", "--address=127.0.0.1", `--reject-paths=${PROXY_REJECT_PATHS}`],
        (text) => {
          output += text;
          const port = /Starting to serve on 127\.0\.0\.1:(\d+)/.exec(output)?.[1];
          if (port && this.#proxyPort !== Number(port)) {
            this.#proxyPort = Number(port);
            first = false;
            backoff = FIRST_BACKOFF_MS;
            ready();
          }
        },
        { signal },
      ).catch((error) => ({ code: -1, stdout: "", stderr: (error as Error).message }));
      if (signal.aborted) return;
      const ended = `exit code ${result.code}: ${result.stderr.trim().slice(-300)}`;
      if (first) {
        failed(new RockError(`Cannot start "kubectl proxy": ${ended}`));
        this.#proxy = undefined;
        return;
      }
      this.#logger.warn("kubectl proxy ended; starting it again", { ended });
      await abortableSleep(backoff, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}

/** `key` as one token of a JSON pointer (RFC 6901: `~` as `~0`, `/` as `~1`). */
function pointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}
