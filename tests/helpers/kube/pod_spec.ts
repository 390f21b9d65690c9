/** What the API server itself does to a new pod: validation and the defaults it fills in. */
import type { KubeObject } from "./store.ts";
import { invalid } from "./status.ts";

/** The container fields the stand-in reads. */
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  workingDir?: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  ports?: { containerPort: number; protocol?: string; name?: string }[];
  resources?: { limits?: Record<string, string>; requests?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  readinessProbe?: {
    httpGet?: { path?: string; port: number | string; scheme?: string };
    initialDelaySeconds?: number;
    periodSeconds?: number;
    timeoutSeconds?: number;
  };
}

/** The pod spec fields the stand-in reads. */
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; emptyDir?: Record<string, unknown> }[];
  restartPolicy?: string;
  activeDeadlineSeconds?: number;
  terminationGracePeriodSeconds?: number;
  nodeSelector?: Record<string, string>;
  nodeName?: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The pod's spec, typed. */
export function specOf(pod: KubeObject): PodSpec {
  return pod.spec as PodSpec;
}

/** Every container of the pod, init containers first. */
export function allContainers(pod: KubeObject): Container[] {
  const spec = specOf(pod);
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/**
 * Checks what the real API server checks first about a pod.
 * @throws {ApiError} 422 Invalid.
 */
export function validatePod(pod: KubeObject): void {
  const name = pod.metadata.name;
  if (!name) {
    throw invalid("Pod", "", "metadata.name", "Required value: name or generateName is required");
  }
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    throw invalid(
      "Pod",
      name,
      "metadata.name",
      `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
    );
  }
  const spec = pod.spec as PodSpec | undefined;
  if (!spec || !Array.isArray(spec.containers) || spec.containers.length === 0) {
    throw invalid("Pod", name, "spec.containers", "Required value");
  }
  const seen = new Set<string>();
  for (const [index, container] of allContainers(pod).entries()) {
    const field = index < (spec.initContainers?.length ?? 0)
      ? `spec.initContainers[${index}]`
      : `spec.containers[${index - (spec.initContainers?.length ?? 0)}]`;
    if (!container.name || !DNS_LABEL.test(container.name) || container.name.length > 63) {
      throw invalid("Pod", name, `${field}.name`, `Invalid value: "${container.name ?? ""}"`);
    }
    if (seen.has(container.name)) {
      throw invalid("Pod", name, `${field}.name`, `Duplicate value: "${container.name}"`);
    }
    seen.add(container.name);
    if (!container.image) throw invalid("Pod", name, `${field}.image`, "Required value");
  }
  for (const container of allContainers(pod)) {
    for (const mount of container.volumeMounts ?? []) {
      if (!(spec.volumes ?? []).some((volume) => volume.name === mount.name)) {
        throw invalid(
          "Pod",
          name,
          "spec.containers[].volumeMounts.name",
          `Not found: "${mount.name}"`,
        );
      }
    }
  }
}

/** Fills in the defaults the real API server adds, and the initial status. */
export function defaultPod(pod: KubeObject): void {
  const spec = specOf(pod);
  spec.restartPolicy ??= "Always";
  spec.terminationGracePeriodSeconds ??= 30;
  const record = spec as unknown as Record<string, unknown>;
  record.dnsPolicy ??= "ClusterFirst";
  record.schedulerName ??= "default-scheduler";
  record.securityContext ??= {};
  for (const container of allContainers(pod)) {
    const tag = container.image.includes("@") ? "digest" : /:[^/]+$/.exec(container.image)?.[0];
    container.imagePullPolicy ??= !tag || tag === ":latest" ? "Always" : "IfNotPresent";
    container.resources ??= {};
    const extra = container as unknown as Record<string, unknown>;
    extra.terminationMessagePath ??= "/dev/termination-log";
    extra.terminationMessagePolicy ??= "File";
  }
  const limited = spec.containers.every((c) =>
    c.resources?.limits?.memory && c.resources?.limits?.cpu
  );
  const any = allContainers(pod).some((c) =>
    Object.keys(c.resources?.limits ?? {}).length +
        Object.keys(c.resources?.requests ?? {}).length > 0
  );
  pod.status = {
    phase: "Pending",
    qosClass: limited ? "Guaranteed" : any ? "Burstable" : "BestEffort",
  };
}

/** Bytes of a memory quantity (`64Mi`, `1G`, `500000`). */
export function memoryBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)([KMGT]i?|[kmgt]|e\d+)?$/.exec(quantity.trim());
  if (!match) throw new Error(`Cannot read memory quantity "${quantity}"`);
  const units: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    K: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    m: 1e-3,
  };
  const suffix = match[2] ?? "";
  const factor = suffix.startsWith("e") ? 10 ** Number(suffix.slice(1)) : units[suffix] ?? 1;
  return Math.round(Number(match[1]) * factor);
}

/** CPUs of a cpu quantity (`500m`, `2`). */
export function cpus(quantity: string): number {
  const text = quantity.trim();
  return text.endsWith("m") ? Number(text.slice(0, -1)) / 1000 : Number(text);
}
