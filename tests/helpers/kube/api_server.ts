/**
 * The HTTP side of the stand-in Kubernetes API server: discovery, generic create / get / list /
 * watch / update / patch / delete of the served resources, and the pod subresources (status,
 * log, proxy). Pods are handed to a PodRuntime (docker_pods.ts) that runs them; this file only
 * speaks the API.
 */
import { isWebSocketUpgrade, relayWebSocketTo } from "../../../src/rocklet/port_proxy.ts";
import { Hono } from "hono";
import type { Context } from "hono";
import { jsonPatch, mergePatch, PatchError, strategicMergePatch } from "./patch.ts";
import { defaultPod, validatePod } from "./pod_spec.ts";
import {
  coreVersions,
  findResource,
  groupInfo,
  groupList,
  groupVersion,
  openApiDocument,
  openApiIndex,
  resourceList,
  type ResourceType,
} from "./resources.ts";
import { parseFieldSelector, parseLabelSelector, SelectorError } from "./selectors.ts";
import {
  ApiError,
  badRequest,
  conflict,
  invalid,
  methodNotAllowed,
  notFound,
  pathNotFound,
  unavailable,
  unsupportedMediaType,
} from "./status.ts";
import type { KubeObject, ObjectStore, Selection } from "./store.ts";

/** What runs pods: told of each new pod, asked to delete one, to read its logs. */
export interface PodRuntime {
  /** A pod was stored (Pending): schedule and start it. */
  created(pod: KubeObject): void;
  /** Deletes a pod within `graceSeconds`; returns the object to answer with. */
  delete(pod: KubeObject, graceSeconds: number): Promise<KubeObject>;
  /** The logs of a container, as a stream (follow) or text. */
  logs(
    pod: KubeObject,
    container: string,
    options: { tailLines?: number | undefined; follow: boolean; signal: AbortSignal },
  ): Promise<ReadableStream<Uint8Array> | string>;
}

/** Options of the API app. */
export interface ApiAppOptions {
  store: ObjectStore;
  runtime: PodRuntime;
  /** `host:port` the server listens on (for `/api`). */
  address: () => string;
  /** Counts one request of `verb` (`get`, `list`, `watch`, `create`, `proxy`, ...). */
  count: (verb: string) => void;
  /** Aborted when the server closes: ends watches and follows. */
  closing: AbortSignal;
}

/** A parsed resource path: `/api/v1/namespaces/NS/pods/NAME/SUB/REST`. */
interface Target {
  type: ResourceType;
  namespace?: string | undefined;
  name?: string | undefined;
  subresource?: string | undefined;
  rest: string;
}

/** The JSON of a successful answer. */
function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The Status answer of an error. */
function failure(error: ApiError): Response {
  return json(error.body, error.code);
}

/** Parses the path after `/api/v1` or `/apis/<group>/<version>`. */
function parseTarget(group: string, version: string, path: string): Target {
  const parts = path.split("/").filter((part) => part !== "").map(decodeURIComponent);
  let namespace: string | undefined;
  if (parts[0] === "namespaces" && parts.length >= 3) {
    namespace = parts[1];
    parts.splice(0, 2);
  }
  const type = findResource(group, version, parts[0] ?? "");
  if (!type || (type.namespaced && namespace === undefined && parts.length > 1)) {
    throw pathNotFound(path);
  }
  return { type, namespace, name: parts[1], subresource: parts[2], rest: parts.slice(3).join("/") };
}

/** The selection a list or watch asks for. */
function selectionOf(url: URL, namespace: string | undefined): Selection {
  try {
    return {
      namespace,
      labels: parseLabelSelector(url.searchParams.get("labelSelector") ?? undefined),
      fields: parseFieldSelector(url.searchParams.get("fieldSelector") ?? undefined),
    };
  } catch (error) {
    if (error instanceof SelectorError) throw badRequest(error.message);
    throw error;
  }
}

/** Reads a JSON body. */
async function readJson(request: Request): Promise<unknown> {
  try {
    return await request.json();
  } catch (error) {
    throw badRequest(`the request body is not JSON: ${(error as Error).message}`);
  }
}

/** Applies a patch of the request's content type to `current`. */
function applyPatch(type: string, current: KubeObject, patch: unknown): KubeObject {
  // deno-lint-ignore no-explicit-any
  const doc = current as any;
  try {
    if (type.startsWith("application/merge-patch+json")) {
      return mergePatch(doc, patch as never) as never;
    }
    if (type.startsWith("application/strategic-merge-patch+json")) {
      return strategicMergePatch(doc, patch as never) as never;
    }
    if (type.startsWith("application/json-patch+json")) {
      return jsonPatch(doc, patch as never) as never;
    }
  } catch (error) {
    if (error instanceof PatchError) {
      throw new ApiError({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: error.message,
        reason: "Invalid",
        code: 422,
      });
    }
    throw error;
  }
  throw unsupportedMediaType(type);
}

/** Builds the Hono app of the API. */
export function apiApp(options: ApiAppOptions): Hono {
  const { store, runtime, count } = options;
  const app = new Hono();

  app.onError((error) => {
    if (error instanceof ApiError) return failure(error);
    console.error("kube stand-in:", error);
    return json({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: String(error),
      reason: "InternalError",
      code: 500,
    }, 500);
  });

  const discovery = (body: unknown) => {
    count("discovery");
    return body === undefined ? failure(pathNotFound("discovery")) : json(body);
  };
  app.get("/version", () =>
    discovery({
      major: "1",
      minor: "32",
      gitVersion: "v1.32.0-rock-stand-in",
      gitCommit: "0000000000000000000000000000000000000000",
      gitTreeState: "clean",
      buildDate: "2025-01-01T00:00:00Z",
      goVersion: "go1.23.0",
      compiler: "gc",
      platform: "linux/amd64",
    }));
  app.get("/api", () => discovery(coreVersions(options.address())));
  app.get("/api/v1", () => discovery(resourceList("", "v1")));
  app.get("/apis", () => discovery(groupList()));
  app.get("/apis/:group", (c) => discovery(groupInfo(c.req.param("group"))));
  app.get(
    "/apis/:group/:version",
    (c) => discovery(resourceList(c.req.param("group"), c.req.param("version"))),
  );

  app.get("/openapi/v3", () => discovery(openApiIndex()));
  app.get(
    "/openapi/v3/api/:version",
    (c) => discovery(openApiDocument("", c.req.param("version"))),
  );
  app.get(
    "/openapi/v3/apis/:group/:version",
    (c) => discovery(openApiDocument(c.req.param("group"), c.req.param("version"))),
  );

  const handle = (group: string, version: string, path: string, c: Context) =>
    resource(parseTarget(group, version, path), c);
  app.all("/api/v1/*", (c) => handle("", "v1", c.req.path.slice("/api/v1".length), c));
  app.all(
    "/apis/:group/:version/*",
    (c) => {
      const prefix = `/apis/${c.req.param("group")}/${c.req.param("version")}`;
      return handle(
        c.req.param("group"),
        c.req.param("version"),
        c.req.path.slice(prefix.length),
        c,
      );
    },
  );
  app.all("*", (c) => {
    count("other");
    return failure(pathNotFound(c.req.path));
  });

  /** Namespaced objects need their namespace to exist. */
  function requireNamespace(target: Target): void {
    if (target.type.namespaced && target.namespace !== undefined) {
      if (!store.find("namespaces", undefined, target.namespace)) {
        throw notFound("namespaces", target.namespace);
      }
    }
  }

  async function resource(target: Target, c: Context): Promise<Response> {
    const url = new URL(c.req.url);
    const method = c.req.method;
    const { type, namespace, name } = target;
    if (target.subresource) return subresource(target, c);
    if (name === undefined) {
      if (method === "GET") {
        const watch = ["1", "true"].includes(url.searchParams.get("watch") ?? "");
        count(watch ? "watch" : "list");
        return watch ? watchResponse(target, url) : listResponse(target, url);
      }
      if (method === "POST") {
        count("create");
        requireNamespace(target);
        const object = await readJson(c.req.raw) as KubeObject;
        if (object?.kind !== type.kind) throw badRequest(`the object is not a ${type.kind}`);
        object.apiVersion = groupVersion(type);
        object.metadata = { ...object.metadata };
        if (type.namespaced) {
          if (object.metadata.namespace && object.metadata.namespace !== namespace) {
            throw badRequest(
              "the namespace of the provided object does not match the namespace sent on the request",
            );
          }
          object.metadata.namespace = namespace;
        }
        if (type.name === "pods") {
          if (!object.metadata.name && object.metadata.generateName) {
            object.metadata.name = object.metadata.generateName + crypto.randomUUID().slice(0, 5);
          }
          validatePod(object);
          defaultPod(object);
        }
        const created = store.create(type.name, object);
        if (type.name === "pods") runtime.created(created);
        return json(created, 201);
      }
      throw methodNotAllowed(method, url.pathname);
    }
    switch (method) {
      case "GET":
        count("get");
        return json(store.get(type.name, namespace, name));
      case "PUT": {
        count("update");
        const object = await readJson(c.req.raw) as KubeObject;
        return json(replace(target, object, false));
      }
      case "PATCH": {
        count("patch");
        return json(await patch(target, c, false));
      }
      case "DELETE": {
        count("delete");
        return json(await remove(target, c));
      }
      default:
        throw methodNotAllowed(method, url.pathname);
    }
  }

  /** PUT: a resourceVersion is required and a precondition; status is kept unless `status`. */
  function replace(target: Target, object: KubeObject, status: boolean): KubeObject {
    const { type, namespace, name } = target;
    const current = store.get(type.name, namespace, name!);
    if (object?.metadata?.name !== name) {
      throw badRequest("the name of the object does not match the name on the URL");
    }
    if (!object.metadata.resourceVersion) {
      throw invalid(
        type.kind,
        name!,
        "metadata.resourceVersion",
        "Invalid value: 0x0: must be specified for an update",
      );
    }
    object.apiVersion = groupVersion(type);
    object.kind = type.kind;
    object.metadata.namespace = namespace;
    if (type.name === "pods") {
      // The main resource never changes status, the status subresource changes nothing else.
      if (status) object.spec = current.spec;
      else object.status = current.status;
      if (status) {
        object.metadata = { ...current.metadata, resourceVersion: object.metadata.resourceVersion };
      }
    }
    return store.update(type.name, object);
  }

  async function patch(target: Target, c: Context, status: boolean): Promise<KubeObject> {
    const { type, namespace, name } = target;
    const current = store.get(type.name, namespace, name!);
    const body = await readJson(c.req.raw);
    const contentType = c.req.header("content-type") ?? "";
    const patched = applyPatch(contentType, current, body);
    // A resourceVersion in the patch (or put there by it) is a precondition, as in the real server.
    const version = patched.metadata?.resourceVersion;
    if (version && version !== current.metadata.resourceVersion) throw conflict(type.name, name!);
    if (patched.metadata?.name !== name) {
      throw badRequest("the name of the object does not match the name on the URL");
    }
    patched.metadata.resourceVersion = current.metadata.resourceVersion;
    if (type.name === "pods") {
      if (status) {
        patched.spec = current.spec;
        patched.metadata = current.metadata;
      } else {
        patched.status = current.status;
      }
    }
    return store.update(type.name, patched);
  }

  async function remove(target: Target, c: Context): Promise<unknown> {
    const { type, namespace, name } = target;
    const url = new URL(c.req.url);
    const current = store.get(type.name, namespace, name!);
    const text = await c.req.raw.text();
    const deleteOptions = text.trim() ? JSON.parse(text) : {};
    const preconditions = deleteOptions.preconditions ?? {};
    if (
      preconditions.resourceVersion &&
      preconditions.resourceVersion !== current.metadata.resourceVersion
    ) {
      throw conflict(
        type.name,
        name!,
        `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
      );
    }
    if (preconditions.uid && preconditions.uid !== current.metadata.uid) {
      throw conflict(
        type.name,
        name!,
        `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${current.metadata.uid}`,
      );
    }
    if (type.name === "pods") {
      const query = url.searchParams.get("gracePeriodSeconds");
      const grace = query !== null ? Number(query) : deleteOptions.gracePeriodSeconds ??
        (current.spec as { terminationGracePeriodSeconds?: number })
          .terminationGracePeriodSeconds ??
        30;
      return await runtime.delete(current, grace);
    }
    store.remove(type.name, namespace, name!);
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Success",
      details: { name, kind: type.name, uid: current.metadata.uid },
    };
  }

  function listResponse(target: Target, url: URL): Response {
    const items = store.list(target.type.name, selectionOf(url, target.namespace));
    return json({
      kind: `${target.type.kind}List`,
      apiVersion: groupVersion(target.type),
      metadata: { resourceVersion: store.resourceVersion },
      items,
    });
  }

  function watchResponse(target: Target, url: URL): Response {
    const selection = selectionOf(url, target.namespace);
    const from = url.searchParams.get("resourceVersion");
    const fromVersion = from && from !== "0" ? Number(from) : undefined;
    const timeout = Number(url.searchParams.get("timeoutSeconds") ?? "0");
    const encoder = new TextEncoder();
    let end = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        let ended = false;
        const unwatch = store.watch(target.type.name, selection, fromVersion, (event) => {
          if (!ended) controller.enqueue(encoder.encode(JSON.stringify(event) + "\n"));
        });
        const timer = timeout > 0 ? setTimeout(() => end(), timeout * 1000) : undefined;
        end = () => {
          if (ended) return;
          ended = true;
          unwatch();
          clearTimeout(timer);
          options.closing.removeEventListener("abort", end);
          try {
            controller.close();
          } catch {
            // Cancelled by the client already.
          }
        };
        options.closing.addEventListener("abort", end, { once: true });
      },
      cancel() {
        end();
      },
    });
    return new Response(body, {
      headers: { "content-type": "application/json", "cache-control": "no-cache" },
    });
  }

  async function subresource(target: Target, c: Context): Promise<Response> {
    const { type, namespace, name, subresource } = target;
    const method = c.req.method;
    if (type.name !== "pods") throw pathNotFound(c.req.path);
    if (subresource === "status") {
      if (method === "GET") {
        count("get");
        return json(store.get(type.name, namespace, name!));
      }
      if (method === "PUT") {
        count("update");
        return json(replace(target, await readJson(c.req.raw) as KubeObject, true));
      }
      if (method === "PATCH") {
        count("patch");
        return json(await patch(target, c, true));
      }
      throw methodNotAllowed(method, c.req.path);
    }
    if (subresource === "log") {
      count("log");
      if (method !== "GET") throw methodNotAllowed(method, c.req.path);
      return await logs(target, new URL(c.req.url));
    }
    if (subresource === "proxy") {
      count("proxy");
      return await proxy(target, c);
    }
    throw pathNotFound(c.req.path);
  }

  async function logs(target: Target, url: URL): Promise<Response> {
    const pod = store.get("pods", target.namespace, target.name!);
    const containers = (pod.spec as { containers: { name: string }[] }).containers;
    const names = [
      ...((pod.spec as { initContainers?: { name: string }[] }).initContainers ?? []),
      ...containers,
    ].map((container) => container.name);
    let container = url.searchParams.get("container");
    if (!container) {
      if (containers.length > 1) {
        throw badRequest(
          `a container name must be specified for pod ${target.name}, choose one of: [${
            containers.map((c) => c.name).join(" ")
          }]`,
        );
      }
      container = containers[0]?.name ?? "";
    }
    if (!names.includes(container)) {
      throw badRequest(`container ${container} is not valid for pod ${target.name}`);
    }
    const tail = url.searchParams.get("tailLines");
    const follow = ["1", "true"].includes(url.searchParams.get("follow") ?? "");
    const output = await runtime.logs(pod, container, {
      tailLines: tail === null ? undefined : Number(tail),
      follow,
      signal: options.closing,
    });
    return new Response(output, { headers: { "content-type": "text/plain" } });
  }

  async function proxy(target: Target, c: Context): Promise<Response> {
    // NAME, NAME:PORT or SCHEME:NAME:PORT.
    const parts = target.name!.split(":");
    const [podName = "", port = "80"] = parts.length === 3
      ? [parts[1], parts[2]]
      : parts.length === 2
      ? [parts[0], parts[1]]
      : [parts[0], "80"];
    const pod = store.get("pods", target.namespace, podName);
    const podIP = (pod.status as { podIP?: string } | undefined)?.podIP;
    if (!podIP) throw unavailable(`pod "${podName}" has no IP address yet`);
    const incoming = new URL(c.req.url);
    const prefix = incoming.pathname.indexOf("/proxy");
    const path = incoming.pathname.slice(prefix + "/proxy".length) || "/";
    const headers = new Headers(c.req.raw.headers);
    for (const hop of ["authorization", "host", "connection", "keep-alive", "transfer-encoding"]) {
      headers.delete(hop);
    }
    const request = c.req.raw;
    // A WebSocket through the pod proxy, as the API server relays upgrades.
    if (isWebSocketUpgrade(request)) {
      return await relayWebSocketTo(
        request,
        `ws://${podIP}:${port}${path}${incoming.search}`,
        (error) => {
          throw unavailable(`error trying to reach service: ${(error as Error).message}`);
        },
      );
    }
    try {
      const upstream = await fetch(`http://${podIP}:${port}${path}${incoming.search}`, {
        method: request.method,
        headers,
        body: request.body,
        redirect: "manual",
        signal: AbortSignal.any([request.signal, options.closing]),
        // @ts-ignore: Deno's fetch needs duplex for a streamed request body.
        duplex: "half",
      });
      return new Response(upstream.body, { status: upstream.status, headers: upstream.headers });
    } catch (error) {
      throw unavailable(`error trying to reach service: ${(error as Error).message}`);
    }
  }

  return app;
}
