/**
 * The Pod of a sandbox: its name and labels, its manifest, and what its status says about the
 * start phases and about how it ended. Pure functions; kubernetes_backend.ts drives them.
 */
import {
  type KubernetesBackendConfig,
  type PullPolicy,
  ROCKLET_PORT,
  type SandboxSpec,
  SERVER_PORT,
  SSH_PORT,
} from "./backend.ts";
import type { KubeObject } from "./kubectl_cli.ts";

/** Label every rock pod carries: `app.kubernetes.io/managed-by=rock`. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
/** Label with the sandbox id (label-safe form) and annotation with the id as given. */
export const SANDBOX_ID_KEY = "rock.sandbox/id";
/** Label with the deployment id: an admin only ever touches its own deployment's pods. */
export const DEPLOYMENT_KEY = "rock.sandbox/deployment";
/** Name of the sandbox container and of the init container that brings the rocklet. */
export const SANDBOX_CONTAINER = "sandbox";
export const RUNTIME_CONTAINER = "rock-runtime";
/** Where the runtime image keeps the files the init container copies into /rock. */
export const RUNTIME_DIR = "/rock-runtime";

/** Waiting reasons that mean an image cannot be pulled. */
const PULL_FAILURES = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "ErrImageNeverPull",
  "InvalidImageName",
]);
/** Waiting reasons that mean a container cannot be created or started. */
const START_FAILURES = new Set([
  "CreateContainerConfigError",
  "CreateContainerError",
  "RunContainerError",
  "CrashLoopBackOff",
  "StartError",
]);

/** The label selector of one deployment's pods (no deployment id: pods without one). */
export function podSelector(deploymentId: string | undefined): string {
  const deployment = deploymentId ? `${DEPLOYMENT_KEY}=${deploymentId}` : `!${DEPLOYMENT_KEY}`;
  return `${MANAGED_BY_LABEL}=rock,${deployment}`;
}

/**
 * The pod name of sandbox `id`: the id itself when it is a DNS-1123 label (lowercase
 * alphanumerics and '-', at most 63), else a cleaned prefix with a hash of the id.
 */
export function podName(id: string): string {
  if (/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(id)) return id;
  const cleaned = id.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return `${cleaned.slice(0, 50).replace(/-+$/, "") || "sandbox"}-${hash32(id)}`;
}

/** The form of `id` a label value may take (at most 63 of [A-Za-z0-9._-], alphanumeric ends). */
export function labelValue(id: string): string {
  if (/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(id)) return id;
  return podName(id);
}

/** An 8-hex-digit FNV-1a hash of `text`. */
function hash32(text: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

/** Kubernetes' imagePullPolicy for ROCK's pull policy. */
function pullPolicy(pull: PullPolicy): string {
  return pull === "never" ? "Never" : pull === "always" ? "Always" : "IfNotPresent";
}

/** The Pod manifest of `spec` under `config`. */
export function podManifest(
  spec: SandboxSpec,
  config: Omit<KubernetesBackendConfig, "type">,
): KubeObject {
  const labels: Record<string, string> = {
    [MANAGED_BY_LABEL]: "rock",
    [SANDBOX_ID_KEY]: labelValue(spec.sandboxId),
  };
  if (config.deploymentId) labels[DEPLOYMENT_KEY] = config.deploymentId;
  const { launcher } = config;
  const env = { ...spec.env, ...launcher.containerEnv() };
  const resources = {
    cpu: `${Math.max(1, Math.round(spec.cpus * 1000))}m`,
    memory: String(spec.memoryBytes),
  };
  const podSpec: Record<string, unknown> = {
    restartPolicy: "Never",
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 5,
    volumes: [{ name: "rock", emptyDir: {} }],
    initContainers: [{
      name: RUNTIME_CONTAINER,
      image: config.runtimeImage,
      imagePullPolicy: config.runtimeImagePullPolicy ?? "IfNotPresent",
      command: ["/bin/sh", "-c", `cp -a ${RUNTIME_DIR}/. /rock/`],
      volumeMounts: [{ name: "rock", mountPath: "/rock" }],
    }],
    containers: [{
      name: SANDBOX_CONTAINER,
      image: spec.image,
      imagePullPolicy: pullPolicy(spec.pull),
      command: launcher.containerCommand(ROCKLET_PORT),
      env: Object.entries(env).map(([name, value]) => ({ name, value })),
      ports: [
        { name: "rocklet", containerPort: ROCKLET_PORT },
        { name: "server", containerPort: SERVER_PORT },
        { name: "ssh", containerPort: SSH_PORT },
      ],
      resources: { requests: resources, limits: resources },
      volumeMounts: [{ name: "rock", mountPath: "/rock", readOnly: true }],
      readinessProbe: {
        httpGet: { path: "/is_alive", port: ROCKLET_PORT },
        periodSeconds: 2,
        failureThreshold: 3,
      },
    }],
  };
  if (config.maxLifetimeSeconds) podSpec.activeDeadlineSeconds = config.maxLifetimeSeconds;
  if (config.runtimeClassName) podSpec.runtimeClassName = config.runtimeClassName;
  if (config.nodeSelector) podSpec.nodeSelector = config.nodeSelector;
  if (config.tolerations) podSpec.tolerations = config.tolerations;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: podName(spec.sandboxId),
      labels,
      // No secrets: the registry credentials never go into the pod.
      annotations: { [SANDBOX_ID_KEY]: spec.sandboxId, "rock.sandbox/image": spec.image },
    },
    spec: podSpec,
  };
}

/**
 * The sandbox id a rock pod belongs to: its annotation (a warm-pool claim rewrites it, and the
 * label; the pod keeps the name it was created with), else its name.
 */
export function sandboxIdOf(pod: KubeObject): string {
  return pod.metadata.annotations?.[SANDBOX_ID_KEY] ?? pod.metadata.name;
}

interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: { exitCode?: number; signal?: number; reason?: string; message?: string };
}

interface ContainerStatus {
  name: string;
  state?: ContainerState;
}

interface PodStatus {
  phase?: string;
  reason?: string;
  message?: string;
  podIP?: string;
  hostIP?: string;
  conditions?: { type: string; status: string; reason?: string; message?: string }[];
  initContainerStatuses?: ContainerStatus[];
  containerStatuses?: ContainerStatus[];
}

/** Where a pod is on its way to a running sandbox, read from its status. */
export interface PodProgress {
  /** The phase that failed and why (reason first: `ImagePullBackOff: ...`), when one did. */
  failed?: {
    phase: "pod_scheduled" | "image_pull" | "container_start";
    message: string;
    /** A container ended OOMKilled (the kubelet's reason for it). */
    oomKilled?: boolean;
  };
  scheduled: boolean;
  /** Every image is there (the sandbox container was created). */
  pulled: boolean;
  /** The sandbox container runs and the pod has an IP. */
  running: boolean;
  podIP?: string | undefined;
  /** The node's name (`spec.nodeName`) or its IP. */
  node?: string | undefined;
}

function statusOf(pod: KubeObject): PodStatus {
  return (pod.status ?? {}) as PodStatus;
}

function sandboxStatus(pod: KubeObject): ContainerStatus | undefined {
  return statusOf(pod).containerStatuses?.find((c) => c.name === SANDBOX_CONTAINER);
}

/** `reason: message`, or the one that is there. */
function reasonText(reason?: string, message?: string): string {
  return [reason, message].filter((part) => part).join(": ") || "unknown reason";
}

/** What `pod`'s status says about its start. */
export function podProgress(pod: KubeObject): PodProgress {
  const status = statusOf(pod);
  const scheduledCondition = status.conditions?.find((c) => c.type === "PodScheduled");
  const progress: PodProgress = {
    scheduled: scheduledCondition?.status === "True",
    pulled: false,
    running: false,
    podIP: status.podIP,
    node: (pod.spec?.nodeName as string | undefined) ?? status.hostIP,
  };
  if (scheduledCondition?.status === "False" && scheduledCondition.reason === "Unschedulable") {
    progress.failed = {
      phase: "pod_scheduled",
      message: reasonText("Unschedulable", scheduledCondition.message),
    };
    return progress;
  }
  const all = [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])];
  for (const container of all) {
    const waiting = container.state?.waiting;
    if (waiting?.reason && PULL_FAILURES.has(waiting.reason)) {
      progress.failed = {
        phase: "image_pull",
        message: `${container.name}: ${reasonText(waiting.reason, waiting.message)}`,
      };
      return progress;
    }
    if (waiting?.reason && START_FAILURES.has(waiting.reason)) {
      progress.failed = {
        phase: "container_start",
        message: `${container.name}: ${reasonText(waiting.reason, waiting.message)}`,
      };
      return progress;
    }
    const ended = container.state?.terminated;
    const isInit = container.name === RUNTIME_CONTAINER;
    if (ended && (!isInit || ended.exitCode !== 0)) {
      progress.failed = {
        phase: "container_start",
        message: `${container.name} exited with code ${ended.exitCode ?? "unknown"}: ${
          reasonText(ended.reason, ended.message)
        }`,
        ...(ended.reason === "OOMKilled" ? { oomKilled: true } : {}),
      };
      return progress;
    }
  }
  if (status.phase === "Failed" || status.phase === "Succeeded") {
    progress.failed = {
      phase: "container_start",
      message: `pod ${status.phase}: ${reasonText(status.reason, status.message)}`,
    };
    return progress;
  }
  const state = sandboxStatus(pod)?.state;
  progress.pulled = state?.running !== undefined || state?.terminated !== undefined;
  progress.running = state?.running !== undefined && status.podIP !== undefined;
  return progress;
}

/** How a pod's sandbox ended, or undefined while it runs (or has not started). */
export function podEnd(
  pod: KubeObject,
): { exitCode?: number; signal?: number; oomKilled?: boolean; reason: string } | undefined {
  const status = statusOf(pod);
  const ended = sandboxStatus(pod)?.state?.terminated;
  if (ended) {
    const end: { exitCode?: number; signal?: number; oomKilled?: boolean; reason: string } = {
      reason: reasonText(ended.reason, ended.message),
    };
    if (ended.exitCode !== undefined) end.exitCode = ended.exitCode;
    if (ended.signal) end.signal = ended.signal;
    if (ended.reason === "OOMKilled") end.oomKilled = true;
    return end;
  }
  if (status.phase === "Failed" || status.phase === "Succeeded") {
    return { reason: reasonText(status.reason, status.message) };
  }
  return undefined;
}
