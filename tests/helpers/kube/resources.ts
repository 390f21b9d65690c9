/**
 * The resources the stand-in serves and their discovery documents (`/api`, `/api/v1`, `/apis`,
 * `/apis/coordination.k8s.io/v1`), answered as legacy (unaggregated) discovery: kubectl 1.32
 * asks for aggregated discovery first and falls back when it gets plain JSON.
 */

/** One served resource. */
export interface ResourceType {
  /** Plural name in the path: `pods`. */
  name: string;
  singularName: string;
  kind: string;
  /** "" for the core group. */
  group: string;
  version: string;
  namespaced: boolean;
  verbs: string[];
  shortNames?: string[];
  /** Subresources served: `log`, `proxy`, `status`. */
  subresources?: { name: string; kind: string; verbs: string[] }[];
}

const ALL_VERBS = [
  "create",
  "delete",
  "deletecollection",
  "get",
  "list",
  "patch",
  "update",
  "watch",
];

/** Every resource the stand-in serves. */
export const RESOURCES: ResourceType[] = [
  {
    name: "pods",
    singularName: "pod",
    kind: "Pod",
    group: "",
    version: "v1",
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: ["po"],
    subresources: [
      { name: "log", kind: "Pod", verbs: ["get"] },
      {
        name: "proxy",
        kind: "PodProxyOptions",
        verbs: ["create", "delete", "get", "head", "options", "patch", "update"],
      },
      { name: "status", kind: "Pod", verbs: ["get", "patch", "update"] },
    ],
  },
  {
    name: "events",
    singularName: "event",
    kind: "Event",
    group: "",
    version: "v1",
    namespaced: true,
    verbs: ALL_VERBS,
    shortNames: ["ev"],
  },
  {
    name: "namespaces",
    singularName: "namespace",
    kind: "Namespace",
    group: "",
    version: "v1",
    namespaced: false,
    verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
    shortNames: ["ns"],
  },
  {
    name: "nodes",
    singularName: "node",
    kind: "Node",
    group: "",
    version: "v1",
    namespaced: false,
    verbs: ["get", "list", "watch"],
    shortNames: ["no"],
  },
  {
    name: "leases",
    singularName: "lease",
    kind: "Lease",
    group: "coordination.k8s.io",
    version: "v1",
    namespaced: true,
    verbs: ALL_VERBS,
  },
];

/** `v1` or `coordination.k8s.io/v1`. */
export function groupVersion(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

/** The resource named `name` in `group`/`version`, if served. */
export function findResource(
  group: string,
  version: string,
  name: string,
): ResourceType | undefined {
  return RESOURCES.find((type) =>
    type.group === group && type.version === version && type.name === name
  );
}

/** `/api`: the core versions. */
export function coreVersions(serverAddress: string): unknown {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

/** The groups other than core, for `/apis` and `/apis/<group>`. */
function groups(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const type of RESOURCES) {
    if (!type.group) continue;
    const versions = found.get(type.group) ?? [];
    if (!versions.includes(type.version)) versions.push(type.version);
    found.set(type.group, versions);
  }
  return found;
}

/** One APIGroup document. */
function groupDocument(name: string, versions: string[]): unknown {
  const list = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { kind: "APIGroup", apiVersion: "v1", name, versions: list, preferredVersion: list[0] };
}

/** `/apis`: the named groups. */
export function groupList(): unknown {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: [...groups()].map(([name, versions]) => groupDocument(name, versions)),
  };
}

/** `/apis/<group>`, or undefined when not served. */
export function groupInfo(group: string): unknown {
  const versions = groups().get(group);
  return versions && groupDocument(group, versions);
}

/** `/api/v1`, `/apis/<group>/<version>`: the resources, or undefined when not served. */
export function resourceList(group: string, version: string): unknown {
  const types = RESOURCES.filter((type) => type.group === group && type.version === version);
  if (types.length === 0) return undefined;
  const resources = types.flatMap((type) => [
    {
      name: type.name,
      singularName: type.singularName,
      namespaced: type.namespaced,
      kind: type.kind,
      verbs: type.verbs,
      ...(type.shortNames ? { shortNames: type.shortNames } : {}),
    },
    ...(type.subresources ?? []).map((sub) => ({
      name: `${type.name}/${sub.name}`,
      singularName: "",
      namespaced: type.namespaced,
      kind: sub.kind,
      verbs: sub.verbs,
    })),
  ]);
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: group ? `${group}/${version}` : version,
    resources,
  };
}

/** The query parameters the write operations of a resource accept. */
const WRITE_PARAMETERS = ["fieldValidation", "fieldManager", "dryRun"].map((name) => ({
  name,
  in: "query",
  schema: { type: "string", uniqueItems: true },
}));

/**
 * `/openapi/v3`: the index of per-group-version documents. kubectl reads them only to learn that
 * the server validates fields itself (`fieldValidation` on the PATCH operation of the kind);
 * without it, `kubectl create -f` and `apply -f` want a full schema to validate on the client.
 */
export function openApiIndex(): unknown {
  const paths: Record<string, unknown> = {};
  for (const type of RESOURCES) {
    const key = type.group ? `apis/${type.group}/${type.version}` : `api/${type.version}`;
    paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=stand-in` };
  }
  return { paths };
}

/**
 * `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`: the write operations with their
 * query parameters and group-version-kind, no schemas (so kubectl apply computes strategic merge
 * patches from its compiled-in types). Undefined when the group version is not served.
 */
export function openApiDocument(group: string, version: string): unknown {
  const types = RESOURCES.filter((type) => type.group === group && type.version === version);
  if (types.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  for (const type of types) {
    const root = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
    const base = type.namespaced
      ? `${root}/namespaces/{namespace}/${type.name}`
      : `${root}/${type.name}`;
    const operation = (action: string) => ({
      operationId: `${action}${type.kind}`,
      parameters: WRITE_PARAMETERS,
      responses: {},
      "x-kubernetes-action": action,
      "x-kubernetes-group-version-kind": {
        group: type.group,
        version: type.version,
        kind: type.kind,
      },
    });
    paths[base] = { post: operation("post") };
    paths[`${base}/{name}`] = { put: operation("put"), patch: operation("patch") };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes (rock stand-in)", version: "v1.32.0" },
    paths,
    components: { schemas: {} },
  };
}
