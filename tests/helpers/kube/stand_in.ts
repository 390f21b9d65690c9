/**
 * A stand-in Kubernetes API server for tests: the real `kubectl` talks to it over plain HTTP on
 * 127.0.0.1 (a kubeconfig without credentials is written to a temp dir: kubectl sends tokens over TLS only), and it runs the pods on
 * the local docker engine (docker_pods.ts). It serves discovery, pods (with status, log and
 * proxy), events, namespaces, the one node and leases; see docs/architecture.md (Testing) for
 * what it does not prove.
 */
import { join } from "node:path";
import { DockerCli } from "../../../src/sandbox/docker_cli.ts";
import { apiApp } from "./api_server.ts";
import { DockerPodRuntime, NODE_LABELS, NODE_NAME, STAND_IN_LABEL } from "./docker_pods.ts";
import { type KubeObject, ObjectStore } from "./store.ts";

export { STAND_IN_LABEL };

/** Options of startKubeApiServer. */
export interface KubeStandInOptions {
  /** The namespace created and set in the kubeconfig's context (default "rock-test"). */
  namespace?: string;
  docker?: DockerCli;
}

/** A running stand-in. */
export interface KubeStandIn {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** A kubeconfig whose current context points at the stand-in. */
  kubeconfigPath: string;
  /** The context's namespace. */
  namespace: string;
  /** Labels every docker container and volume of this stand-in: `rock-kube-stand-in=<id>`. */
  dockerLabel: string;
  /** Environment for a kubectl run against the stand-in: KUBECONFIG and KUBECACHEDIR. */
  env: Record<string, string>;
  /** Requests so far by verb: `get`, `list`, `watch`, `create`, `patch`, `proxy`, ... */
  requests(): Record<string, number>;
  /** Stops the server and removes every container and volume it created. */
  close(): Promise<void>;
}

/** Starts a stand-in API server on a free port of 127.0.0.1. */
export async function startKubeApiServer(
  options: KubeStandInOptions = {},
): Promise<KubeStandIn & AsyncDisposable> {
  const namespace = options.namespace ?? "rock-test";
  const serverId = crypto.randomUUID().slice(0, 8);
  const store = new ObjectStore();
  for (const name of ["default", "kube-system", namespace]) {
    if (store.find("namespaces", undefined, name)) continue;
    store.create("namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name,
        labels: { "kubernetes.io/metadata.name": name },
      } as unknown as KubeObject["metadata"],
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    });
  }
  store.create("nodes", {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: NODE_NAME, labels: NODE_LABELS } as unknown as KubeObject["metadata"],
    spec: {},
    status: {
      addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
      conditions: [{ type: "Ready", status: "True", reason: "KubeletReady" }],
    },
  });
  const runtime = new DockerPodRuntime({ store, serverId, docker: options.docker });
  const counts: Record<string, number> = {};
  const closing = new AbortController();
  let address = "";
  const app = apiApp({
    store,
    runtime,
    address: () => address,
    count: (verb) => counts[verb] = (counts[verb] ?? 0) + 1,
    closing: closing.signal,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  address = `127.0.0.1:${server.addr.port}`;
  const url = `http://${address}`;
  const dir = await Deno.makeTempDir({ prefix: "rock-kube-stand-in-" });
  const kubeconfigPath = join(dir, "kubeconfig");
  await Deno.writeTextFile(
    kubeconfigPath,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: stand-in",
      "  cluster:",
      `    server: ${url}`,
      "users:",
      "- name: tester",
      // No credentials: kubectl sends a bearer token over TLS only, and the stand-in has none.
      "  user: {}",
      "contexts:",
      "- name: stand-in",
      "  context:",
      "    cluster: stand-in",
      "    user: tester",
      `    namespace: ${namespace}`,
      "current-context: stand-in",
      "",
    ].join("\n"),
  );
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      closing.abort();
      await runtime.close();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    })();
  return {
    url,
    kubeconfigPath,
    namespace,
    dockerLabel: `${STAND_IN_LABEL}=${serverId}`,
    env: { KUBECONFIG: kubeconfigPath, KUBECACHEDIR: join(dir, "cache") },
    requests: () => ({ ...counts }),
    close,
    [Symbol.asyncDispose]: close,
  };
}
