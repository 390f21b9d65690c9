/**
 * The stand-in's kubelet and scheduler: runs each pod on the local docker engine. One node
 * (`stand-in`, labels `kubernetes.io/hostname=stand-in`, `kubernetes.io/os=linux`); a pod whose
 * nodeSelector it does not meet stays Pending (PodScheduled False, Unschedulable). A scheduled
 * pod gets its own loopback address 127.0.N.M (its podIP), on which the containers' ports are
 * published with the same numbers. `emptyDir` volumes are docker volumes; init containers run
 * in order to completion, then the main containers start (the second and later ones join the
 * first one's network, so they share the address as containers of a pod do). Images are local
 * only: a missing one leaves the container waiting (ErrImagePull, then ImagePullBackOff, or
 * ErrImageNeverPull) with Warning events, and is looked for again every few seconds. One loop
 * for all pods inspects their containers and runs readiness probes every 500 ms, and enforces
 * activeDeadlineSeconds. Containers are never restarted (rock runs `restartPolicy: Never`).
 */
import { DockerCli, PortTakenError } from "../../../src/sandbox/docker_cli.ts";
import type { PodRuntime } from "./api_server.ts";
import { type Container, cpus, memoryBytes, specOf } from "./pod_spec.ts";
import type { KubeObject, ObjectStore } from "./store.ts";
import { badRequest } from "./status.ts";

/** The one node's name and labels. */
export const NODE_NAME = "stand-in";
export const NODE_LABELS: Record<string, string> = {
  "kubernetes.io/hostname": NODE_NAME,
  "kubernetes.io/os": "linux",
};

/** Docker label on every container and volume of a stand-in: its server id. */
export const STAND_IN_LABEL = "rock-kube-stand-in";

const TICK_MS = 500;
const IMAGE_RETRY_MS = 2_000;

/** What the runtime keeps about one pod. */
interface PodRecord {
  namespace: string;
  name: string;
  uid: string;
  ip?: string;
  /** Docker container name by pod container name, once created. */
  containers: Map<string, string>;
  volumes: string[];
  abort: AbortController;
  /** The main containers have been started. */
  started: boolean;
  terminal: boolean;
  /** Ran past activeDeadlineSeconds: its containers are being killed, its phase is Failed. */
  deadlineExceeded: boolean;
  deleting: boolean;
  startMs?: number;
  /** Readiness by container, and when each was probed last. */
  ready: Map<string, boolean>;
  probedMs: Map<string, number>;
  startedMs: Map<string, number>;
}

type Status = Record<string, unknown> & {
  conditions?: {
    type: string;
    status: string;
    reason?: string;
    message?: string;
    lastTransitionTime?: string;
    lastProbeTime?: null;
  }[];
  containerStatuses?: Record<string, unknown>[];
  initContainerStatuses?: Record<string, unknown>[];
};

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** A container status in state `state`. */
function containerStatus(
  container: Container,
  state: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name: container.name,
    image: container.image,
    imageID: "",
    ready: false,
    restartCount: 0,
    started: "running" in state,
    state,
    ...extra,
  };
}

/** Options of a DockerPodRuntime. */
export interface DockerPodRuntimeOptions {
  store: ObjectStore;
  /** Labels the runtime's docker objects. */
  serverId: string;
  docker?: DockerCli | undefined;
}

/** Runs the stand-in's pods on docker. */
export class DockerPodRuntime implements PodRuntime {
  readonly #store: ObjectStore;
  readonly #docker: DockerCli;
  readonly #serverId: string;
  readonly #pods = new Map<string, PodRecord>();
  readonly #tasks = new Set<Promise<unknown>>();
  readonly #closing = new AbortController();
  readonly #loop: Promise<void>;
  #nextAddress = 0;
  /**
   * This stand-in's /24 of loopback addresses (127.A.B), chosen at random: stand-ins of test files
   * running in parallel must not hand out the same pod address, or one's rocklet would answer for
   * another's pod that just died.
   */
  readonly #network = `127.${1 + Math.floor(Math.random() * 254)}.${
    Math.floor(Math.random() * 256)
  }`;
  #events = 0;

  /** Starts the loop that watches the pods' containers. */
  constructor(options: DockerPodRuntimeOptions) {
    this.#store = options.store;
    this.#serverId = options.serverId;
    this.#docker = options.docker ?? new DockerCli();
    this.#loop = this.#watchLoop();
  }

  /** Runs `work` in the background; close() waits for it. Errors are logged. */
  #spawn(work: Promise<unknown>): void {
    const task = work.catch((error) => {
      if (!this.#closing.signal.aborted) console.error("kube stand-in:", error);
    }).finally(() => this.#tasks.delete(task));
    this.#tasks.add(task);
  }

  #update(
    record: PodRecord,
    change: (status: Status, pod: KubeObject) => void,
  ): KubeObject | undefined {
    if (!this.#pods.has(`${record.namespace}/${record.name}`)) return undefined;
    return this.#store.mutate("pods", record.namespace, record.name, (pod) => {
      pod.status = (pod.status ?? {}) as Status;
      change(pod.status as Status, pod);
    });
  }

  /** Records an event about a pod, as the scheduler or kubelet would. */
  #event(
    record: PodRecord,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
    fieldPath?: string,
  ): void {
    const time = now();
    this.#store.create("events", {
      apiVersion: "v1",
      kind: "Event",
      metadata: {
        // As the kubelet names them: the pod and a hex timestamp, so a list is in time order.
        name: `${record.name}.${Date.now().toString(16)}${String(++this.#events).padStart(6, "0")}`,
        namespace: record.namespace,
      } as unknown as KubeObject["metadata"],
      involvedObject: {
        apiVersion: "v1",
        kind: "Pod",
        namespace: record.namespace,
        name: record.name,
        uid: record.uid,
        ...(fieldPath ? { fieldPath } : {}),
      },
      reason,
      message,
      type,
      source: {
        component: reason === "FailedScheduling" || reason === "Scheduled"
          ? "default-scheduler"
          : "kubelet",
        host: NODE_NAME,
      },
      reportingComponent: reason === "FailedScheduling" || reason === "Scheduled"
        ? "default-scheduler"
        : "kubelet",
      reportingInstance: NODE_NAME,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    });
  }

  created(pod: KubeObject): void {
    const record: PodRecord = {
      namespace: pod.metadata.namespace!,
      name: pod.metadata.name,
      uid: pod.metadata.uid,
      containers: new Map(),
      volumes: [],
      abort: new AbortController(),
      started: false,
      terminal: false,
      deadlineExceeded: false,
      deleting: false,
      ready: new Map(),
      probedMs: new Map(),
      startedMs: new Map(),
    };
    this.#pods.set(`${record.namespace}/${record.name}`, record);
    const spec = specOf(pod);
    const unmet = Object.entries(spec.nodeSelector ?? {}).filter(([key, value]) =>
      NODE_LABELS[key] !== value
    );
    if (unmet.length > 0 || (spec.nodeName && spec.nodeName !== NODE_NAME)) {
      const message =
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
      this.#update(record, (status) => {
        status.conditions = [{
          type: "PodScheduled",
          status: "False",
          lastProbeTime: null,
          lastTransitionTime: now(),
          reason: "Unschedulable",
          message,
        }];
      });
      this.#event(record, "Warning", "FailedScheduling", message);
      return;
    }
    this.#spawn(
      this.#run(record).catch((error) => {
        if (!record.abort.signal.aborted) this.#failStart(record, error);
      }),
    );
  }

  /** A container that could not be created or started: with restartPolicy Never, the pod fails. */
  #failStart(record: PodRecord, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    record.terminal = true;
    this.#update(record, (status) => {
      status.phase = "Failed";
      for (
        const entry of [
          ...(status.initContainerStatuses ?? []),
          ...(status.containerStatuses ?? []),
        ]
      ) {
        const state = entry.state as Record<string, unknown>;
        if (state.waiting) {
          entry.state = { terminated: { exitCode: 128, reason: "StartError", message } };
        }
      }
    });
    this.#event(record, "Warning", "Failed", `Error: ${message}`);
  }

  /** Schedules, prepares and starts a pod. */
  async #run(record: PodRecord): Promise<void> {
    const signal = AbortSignal.any([record.abort.signal, this.#closing.signal]);
    const pod = this.#store.get("pods", record.namespace, record.name);
    const spec = specOf(pod);
    record.ip = this.#allocateAddress();
    record.startMs = Date.now();
    const init = spec.initContainers ?? [];
    const transition = now();
    this.#store.mutate("pods", record.namespace, record.name, (object) => {
      (object.spec as Record<string, unknown>).nodeName = NODE_NAME;
      object.status = {
        ...(object.status as Status),
        conditions: [
          {
            type: "PodReadyToStartContainers",
            status: "True",
            lastProbeTime: null,
            lastTransitionTime: transition,
          },
          {
            type: "Initialized",
            status: init.length ? "False" : "True",
            lastProbeTime: null,
            lastTransitionTime: transition,
            ...(init.length
              ? {
                reason: "ContainersNotInitialized",
                message: `containers with incomplete status: [${
                  init.map((c) => c.name).join(" ")
                }]`,
              }
              : {}),
          },
          ...["Ready", "ContainersReady"].map((type) => ({
            type,
            status: "False",
            lastProbeTime: null,
            lastTransitionTime: transition,
            reason: "ContainersNotReady",
            message: `containers with unready status: [${
              spec.containers.map((c) => c.name).join(" ")
            }]`,
          })),
          {
            type: "PodScheduled",
            status: "True",
            lastProbeTime: null,
            lastTransitionTime: transition,
          },
        ],
        hostIP: "127.0.0.1",
        hostIPs: [{ ip: "127.0.0.1" }],
        podIP: record.ip,
        podIPs: [{ ip: record.ip }],
        startTime: transition,
        ...(init.length
          ? {
            initContainerStatuses: init.map((c) =>
              containerStatus(c, { waiting: { reason: "PodInitializing" } })
            ),
          }
          : {}),
        containerStatuses: spec.containers.map((c) =>
          containerStatus(c, {
            waiting: { reason: init.length ? "PodInitializing" : "ContainerCreating" },
          })
        ),
      };
    });
    this.#event(
      record,
      "Normal",
      "Scheduled",
      `Successfully assigned ${record.namespace}/${record.name} to ${NODE_NAME}`,
    );

    for (const volume of spec.volumes ?? []) {
      if (!volume.emptyDir) continue;
      const name = `rock-kube-${this.#serverId}-${record.uid.slice(0, 8)}-${volume.name}`;
      await this.#docker.exec([
        "volume",
        "create",
        "--label",
        `${STAND_IN_LABEL}=${this.#serverId}`,
        name,
      ], { signal });
      record.volumes.push(name);
    }

    for (const [index, container] of init.entries()) {
      if (!(await this.#imagePresent(record, container, true, index, signal))) return;
      const id = await this.#startContainer(record, pod, container, "init", signal);
      this.#update(record, (status) => {
        status.initContainerStatuses![index] = containerStatus(container, {
          running: { startedAt: now() },
        }, { containerID: `docker://${id}`, started: true });
      });
      this.#event(
        record,
        "Normal",
        "Started",
        `Started container ${container.name}`,
        `spec.initContainers{${container.name}}`,
      );
      const waited = await this.#docker.call(["wait", id], { signal, timeoutMs: 24 * 3_600_000 });
      if (signal.aborted) return;
      const inspect = await this.#docker.inspectContainer(id);
      const exitCode = inspect?.State.ExitCode ?? Number(waited.stdout.trim());
      const reason = inspect?.State.OOMKilled
        ? "OOMKilled"
        : exitCode === 0
        ? "Completed"
        : "Error";
      this.#update(record, (status) => {
        status.initContainerStatuses![index] = containerStatus(container, {
          terminated: {
            exitCode,
            reason,
            startedAt: inspect ? undefined : now(),
            finishedAt: now(),
            containerID: `docker://${id}`,
          },
        }, { containerID: `docker://${id}`, ready: exitCode === 0 });
      });
      if (exitCode !== 0) {
        record.terminal = true;
        this.#update(record, (status) => {
          status.phase = "Failed";
        });
        return;
      }
    }
    if (init.length) {
      this.#update(record, (status) => {
        const condition = status.conditions!.find((c) => c.type === "Initialized")!;
        Object.assign(condition, { status: "True", lastTransitionTime: now() });
        delete condition.reason;
        delete condition.message;
        status.containerStatuses = spec.containers.map((c) =>
          containerStatus(c, { waiting: { reason: "ContainerCreating" } })
        );
      });
    }
    for (const [index, container] of spec.containers.entries()) {
      if (!(await this.#imagePresent(record, container, false, index, signal))) return;
    }
    for (const [index, container] of spec.containers.entries()) {
      const id = await this.#startContainer(
        record,
        pod,
        container,
        index === 0 ? "first" : "joined",
        signal,
      );
      record.startedMs.set(container.name, Date.now());
      this.#update(record, (status) => {
        status.phase = "Running";
        status.containerStatuses![index] = containerStatus(container, {
          running: { startedAt: now() },
        }, { containerID: `docker://${id}`, started: true });
      });
      this.#event(
        record,
        "Normal",
        "Started",
        `Started container ${container.name}`,
        `spec.containers{${container.name}}`,
      );
    }
    record.started = true;
  }

  /**
   * Whether the image of a container is here; while it is not, reports the pull failure
   * (ErrImagePull, then ImagePullBackOff; ErrImageNeverPull for policy Never) and looks again.
   * False when the pod was deleted (or the server closed) meanwhile.
   */
  async #imagePresent(
    record: PodRecord,
    container: Container,
    init: boolean,
    index: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const fieldPath = `spec.${init ? "initContainers" : "containers"}{${container.name}}`;
    let attempts = 0;
    while (!signal.aborted) {
      if (await this.#docker.imageExists(container.image, { signal })) {
        if (attempts > 0) {
          this.#event(
            record,
            "Normal",
            "Pulled",
            `Container image "${container.image}" already present on machine`,
            fieldPath,
          );
        }
        return true;
      }
      const never = container.imagePullPolicy === "Never";
      const reason = never
        ? "ErrImageNeverPull"
        : attempts === 0
        ? "ErrImagePull"
        : "ImagePullBackOff";
      const message = never
        ? `Container image "${container.image}" is not present with pull policy of Never`
        : attempts === 0
        ? `failed to pull and unpack image "${container.image}": the stand-in pulls from no registry and the image is not present locally`
        : `Back-off pulling image "${container.image}"`;
      this.#update(record, (status) => {
        const list = init ? status.initContainerStatuses! : status.containerStatuses!;
        list[index] = containerStatus(container, { waiting: { reason, message } });
      });
      if (never) this.#event(record, "Warning", "ErrImageNeverPull", message, fieldPath);
      else if (attempts === 0) {
        this.#event(record, "Normal", "Pulling", `Pulling image "${container.image}"`, fieldPath);
        this.#event(
          record,
          "Warning",
          "Failed",
          `Failed to pull image "${container.image}": ${message}`,
          fieldPath,
        );
        this.#event(record, "Warning", "Failed", "Error: ErrImagePull", fieldPath);
      } else if (attempts === 1) {
        this.#event(record, "Normal", "BackOff", message, fieldPath);
        this.#event(record, "Warning", "Failed", "Error: ImagePullBackOff", fieldPath);
      }
      attempts++;
      await sleep(attempts === 1 ? 500 : IMAGE_RETRY_MS, signal);
    }
    return false;
  }

  /** The next address of this stand-in's /24 that no pod of this runtime holds (.2 on). */
  #allocateAddress(): string {
    const held = new Set([...this.#pods.values()].map((record) => record.ip));
    for (;;) {
      const n = this.#nextAddress++ % 253;
      const ip = `${this.#network}.${2 + n}`;
      if (!held.has(ip)) return ip;
    }
  }

  /** `docker run -d` of one container of a pod; returns the container id. */
  async #startContainer(
    record: PodRecord,
    pod: KubeObject,
    container: Container,
    role: "init" | "first" | "joined",
    signal: AbortSignal,
    attempt = 1,
  ): Promise<string> {
    const spec = specOf(pod);
    const name = `rock-kube-${this.#serverId}-${record.uid.slice(0, 8)}-${container.name}`;
    const args = [
      "-d",
      "--pull=never",
      "--name",
      name,
      "--label",
      `${STAND_IN_LABEL}=${this.#serverId}`,
      "--label",
      `rock-kube-pod=${record.namespace}.${record.name}`,
    ];
    if (role === "joined") {
      args.push("--network", `container:${record.containers.get(spec.containers[0]?.name ?? "")}`);
    } else {
      args.push("--hostname", record.name.slice(0, 63));
    }
    if (role === "first") {
      for (const port of spec.containers.flatMap((c) => c.ports ?? [])) {
        const protocol = (port.protocol ?? "TCP").toLowerCase();
        args.push("-p", `${record.ip}:${port.containerPort}:${port.containerPort}/${protocol}`);
      }
    }
    for (const variable of container.env ?? []) {
      args.push("-e", `${variable.name}=${variable.value ?? ""}`);
    }
    if (container.workingDir) args.push("--workdir", container.workingDir);
    const limits = container.resources?.limits ?? {};
    if (limits.memory) {
      const bytes = String(memoryBytes(limits.memory));
      args.push("--memory", bytes, "--memory-swap", bytes);
    }
    if (limits.cpu) args.push("--cpus", String(cpus(limits.cpu)));
    for (const mount of container.volumeMounts ?? []) {
      const volume = record.volumes.find((v) => v.endsWith(`-${mount.name}`));
      if (!volume) continue;
      args.push("-v", `${volume}:${mount.mountPath}${mount.readOnly ? ":ro" : ""}`);
    }
    const [entrypoint, ...commandArgs] = container.command ?? [];
    if (entrypoint !== undefined) args.push("--entrypoint", entrypoint);
    args.push(container.image, ...commandArgs, ...(container.args ?? []));
    record.containers.set(container.name, name);
    try {
      return await this.#docker.run(args, { signal });
    } catch (error) {
      // Another stand-in (a parallel test) publishes the same port on this address: move on.
      // Docker may also still hold the port for a container being removed (its allocator says
      // "already allocated" while the port is free to bind), which no check here can see: the
      // first container of a pod gets two more addresses whatever the failure.
      const retry = role === "first" &&
        (error instanceof PortTakenError || (attempt < 3 && !signal.aborted));
      if (!retry) throw error;
      await this.#docker.remove([name]);
      record.ip = this.#allocateAddress();
      this.#update(record, (status) => {
        status.podIP = record.ip;
        status.podIPs = [{ ip: record.ip }];
      });
      return await this.#startContainer(record, pod, container, role, signal, attempt + 1);
    }
  }

  /** Every 500 ms: container states, readiness probes and deadlines of all started pods. */
  async #watchLoop(): Promise<void> {
    const signal = this.#closing.signal;
    while (!signal.aborted) {
      await sleep(TICK_MS, signal);
      if (signal.aborted) break;
      try {
        await this.#tick();
      } catch (error) {
        if (!signal.aborted) console.error("kube stand-in:", error);
      }
    }
  }

  async #tick(): Promise<void> {
    const live = [...this.#pods.values()].filter((record) => !record.terminal && !record.deleting);
    for (const record of live) this.#checkDeadline(record);
    const started = live.filter((record) => record.started && !record.terminal);
    const ids = started.flatMap((record) => [...record.containers.values()]);
    const inspects = new Map(
      (await this.#docker.inspectContainers(ids)).map((i) => [i.Name.slice(1), i]),
    );
    for (const record of started) {
      if (record.deleting || record.terminal) continue;
      const pod = this.#store.find("pods", record.namespace, record.name);
      if (!pod) continue;
      const spec = specOf(pod);
      const states = spec.containers.map((container) =>
        inspects.get(record.containers.get(container.name) ?? "")
      );
      await Promise.all(
        spec.containers.map((container, index) =>
          this.#probe(record, container, states[index]?.State.Running ?? false)
        ),
      );
      const allEnded = states.every((inspect) => inspect && !inspect.State.Running);
      const ready = states.every((inspect, index) =>
        inspect?.State.Running && record.ready.get(spec.containers[index]?.name ?? "")
      );
      const before = JSON.stringify(pod.status);
      const status = structuredClone(pod.status) as Status;
      status.containerStatuses = spec.containers.map((container, index) => {
        const inspect = states[index];
        const previous = status.containerStatuses?.[index] ?? {};
        const containerID = inspect ? `docker://${inspect.Id}` : previous.containerID;
        if (inspect && !inspect.State.Running && inspect.State.Status !== "created") {
          const exitCode = inspect.State.ExitCode;
          const state = inspect.State as { StartedAt?: string; FinishedAt?: string };
          const reason = inspect.State.OOMKilled
            ? "OOMKilled"
            : exitCode === 0
            ? "Completed"
            : "Error";
          return containerStatus(container, {
            terminated: {
              exitCode,
              reason,
              startedAt: state.StartedAt?.replace(/\.\d+Z$/, "Z"),
              finishedAt: state.FinishedAt?.replace(/\.\d+Z$/, "Z"),
              containerID,
            },
          }, { containerID, started: false });
        }
        return {
          ...previous,
          ready: Boolean(inspect?.State.Running && record.ready.get(container.name)),
        };
      });
      for (const condition of status.conditions ?? []) {
        if (condition.type !== "Ready" && condition.type !== "ContainersReady") continue;
        const value = ready ? "True" : "False";
        if (condition.status !== value) {
          condition.status = value;
          condition.lastTransitionTime = now();
        }
        if (ready) {
          delete condition.reason;
          delete condition.message;
        } else {
          condition.reason = allEnded ? "PodCompleted" : "ContainersNotReady";
          const unready = spec.containers.filter((c, index) =>
            !(states[index]?.State.Running && record.ready.get(c.name))
          ).map((c) => c.name);
          condition.message = `containers with unready status: [${unready.join(" ")}]`;
        }
      }
      if (allEnded) {
        record.terminal = true;
        const codes = states.map((inspect) => inspect!.State.ExitCode);
        status.phase = codes.every((code) => code === 0) && !record.deadlineExceeded
          ? "Succeeded"
          : "Failed";
      }
      if (JSON.stringify(status) !== before) {
        this.#update(record, (current) => Object.assign(current, status));
      }
    }
  }

  /** Runs the readiness probe of a running container when its period has passed. */
  async #probe(record: PodRecord, container: Container, running: boolean): Promise<void> {
    if (!running) {
      record.ready.set(container.name, false);
      return;
    }
    const probe = container.readinessProbe;
    if (!probe?.httpGet) {
      record.ready.set(container.name, true);
      return;
    }
    const started = record.startedMs.get(container.name) ?? 0;
    const period = Math.max(TICK_MS, (probe.periodSeconds ?? 10) * 1000);
    const last = record.probedMs.get(container.name);
    const due = last === undefined
      ? Date.now() >= started + (probe.initialDelaySeconds ?? 0) * 1000
      : Date.now() >= last + period - 50;
    if (!due) return;
    record.probedMs.set(container.name, Date.now());
    const named = container.ports?.find((port) => port.name === probe.httpGet!.port);
    const port = named?.containerPort ?? Number(probe.httpGet.port);
    const path = probe.httpGet.path ?? "/";
    try {
      const response = await fetch(
        `http://${record.ip}:${port}${path.startsWith("/") ? path : `/${path}`}`,
        {
          signal: AbortSignal.timeout((probe.timeoutSeconds ?? 1) * 1000),
          headers: { "user-agent": "kube-probe/1.32" },
        },
      );
      await response.body?.cancel();
      record.ready.set(container.name, response.status >= 200 && response.status < 400);
    } catch {
      record.ready.set(container.name, false);
    }
  }

  /** Fails a pod that ran past its activeDeadlineSeconds. */
  #checkDeadline(record: PodRecord): void {
    if (record.startMs === undefined) return;
    const pod = this.#store.find("pods", record.namespace, record.name);
    const deadline = pod && specOf(pod).activeDeadlineSeconds;
    if (record.deadlineExceeded || !deadline || Date.now() < record.startMs + deadline * 1000) {
      return;
    }
    record.deadlineExceeded = true;
    // The loop records the killed containers' ends; a pod still starting ends here.
    if (!record.started) record.terminal = true;
    record.abort.abort();
    const message = "Pod was active on the node longer than the specified deadline";
    this.#update(record, (status) => {
      status.phase = "Failed";
      status.reason = "DeadlineExceeded";
      status.message = message;
      for (const condition of status.conditions ?? []) {
        if (condition.type === "Ready" || condition.type === "ContainersReady") {
          Object.assign(condition, {
            status: "False",
            reason: "PodFailed",
            lastTransitionTime: now(),
          });
          delete condition.message;
        }
      }
    });
    this.#event(record, "Warning", "DeadlineExceeded", message);
    if (record.containers.size > 0) {
      this.#spawn(this.#docker.call(["kill", ...record.containers.values()]));
    }
  }

  async delete(pod: KubeObject, graceSeconds: number): Promise<KubeObject> {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const record = this.#pods.get(key);
    if (!record || record.containers.size === 0) {
      // Never started anything: gone at once, as an unbound pod is.
      record?.abort.abort();
      if (record) {
        await this.#cleanup(record);
      }
      this.#pods.delete(key);
      return this.#store.remove("pods", pod.metadata.namespace, pod.metadata.name);
    }
    if (record.deleting) return this.#store.get("pods", record.namespace, record.name);
    record.deleting = true;
    record.abort.abort();
    const grace = Math.max(0, Math.floor(graceSeconds));
    const marked = this.#store.mutate("pods", record.namespace, record.name, (object) => {
      object.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(
        /\.\d+Z$/,
        "Z",
      );
      object.metadata.deletionGracePeriodSeconds = grace;
    })!;
    this.#spawn((async () => {
      const containers = [...record.containers.values()];
      if (grace > 0) await this.#docker.call(["stop", "--time", String(grace), ...containers]);
      await this.#cleanup(record);
      this.#pods.delete(key);
      if (this.#store.find("pods", record.namespace, record.name)) {
        this.#store.remove("pods", record.namespace, record.name);
      }
    })());
    return marked;
  }

  /** Removes a pod's containers and volumes. */
  async #cleanup(record: PodRecord): Promise<void> {
    await this.#docker.remove([...record.containers.values()]);
    if (record.volumes.length) {
      await this.#docker.call(["volume", "rm", "--force", ...record.volumes]);
    }
  }

  async logs(
    pod: KubeObject,
    container: string,
    options: { tailLines?: number | undefined; follow: boolean; signal: AbortSignal },
  ): Promise<ReadableStream<Uint8Array> | string> {
    const record = this.#pods.get(`${pod.metadata.namespace}/${pod.metadata.name}`);
    const name = record?.containers.get(container);
    if (!name) {
      const statuses = [
        ...((pod.status as Status)?.initContainerStatuses ?? []),
        ...((pod.status as Status)?.containerStatuses ?? []),
      ];
      const waiting = (statuses.find((s) =>
        s.name === container
      )?.state as { waiting?: { reason?: string } } | undefined)?.waiting;
      throw badRequest(
        `container "${container}" in pod "${pod.metadata.name}" is waiting to start: ${
          waiting?.reason ?? "ContainerCreating"
        }`,
      );
    }
    const args = ["logs"];
    if (options.tailLines !== undefined) args.push("--tail", String(options.tailLines));
    if (options.follow) args.push("--follow");
    args.push(name);
    // stdout and stderr interleaved as written: docker logs writes them apart.
    const child = new Deno.Command("sh", {
      args: ["-c", 'exec docker "$@" 2>&1', "sh", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    if (!options.follow) {
      const output = await new Response(child.stdout).text();
      await child.status;
      return output;
    }
    const stop = () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Exited already.
      }
    };
    const signal = AbortSignal.any([options.signal, this.#closing.signal]);
    signal.addEventListener("abort", stop, { once: true });
    const reader = child.stdout.getReader();
    this.#spawn(child.status.finally(() => signal.removeEventListener("abort", stop)));
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      async cancel() {
        stop();
        await reader.cancel();
      },
    });
  }

  /**
   * Stops everything: the loop, the pods' starts, and removes every container and volume this
   * runtime created (found by its label).
   */
  async close(): Promise<void> {
    this.#closing.abort();
    for (const record of this.#pods.values()) record.abort.abort();
    await this.#loop;
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    const label = `label=${STAND_IN_LABEL}=${this.#serverId}`;
    const containers = (await this.#docker.exec(["ps", "--all", "--quiet", "--filter", label]))
      .split("\n").filter((id) => id.trim());
    await this.#docker.remove(containers);
    const volumes = (await this.#docker.exec(["volume", "ls", "--quiet", "--filter", label])).split(
      "\n",
    ).filter((id) => id.trim());
    if (volumes.length) await this.#docker.call(["volume", "rm", "--force", ...volumes]);
  }
}
