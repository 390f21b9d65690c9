/**
 * The stand-in's objects: one map per resource, one global resourceVersion counter (every write
 * takes the next number, as etcd's revision), the history of changes for watches that resume
 * from a resourceVersion, and the live watches. A watch with a selector sees an object that
 * stops matching as DELETED and one that starts matching as ADDED, as the real cache does.
 */
import { fieldValue, type Matcher } from "./selectors.ts";
import { alreadyExists, conflict, notFound } from "./status.ts";

/** Metadata every stored object has. */
export interface ObjectMeta {
  name: string;
  namespace?: string | undefined;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number | undefined;
  [key: string]: unknown;
}

/** A stored API object. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** A watch event as the API streams it. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KubeObject;
}

/** What a list or watch selects: namespace (all when undefined), labels, fields. */
export interface Selection {
  namespace?: string | undefined;
  labels: Matcher;
  fields: Matcher;
}

/** One change in the history: the object before (undefined when created) and after. */
interface Change {
  resourceVersion: number;
  resource: string;
  before?: KubeObject | undefined;
  after?: KubeObject | undefined;
}

interface Watcher {
  resource: string;
  selection: Selection;
  send(event: WatchEvent): void;
}

/** Whether `object` is selected by `selection`. */
export function selects(selection: Selection, object: KubeObject | undefined): boolean {
  if (!object) return false;
  if (selection.namespace !== undefined && object.metadata.namespace !== selection.namespace) {
    return false;
  }
  const labels = object.metadata.labels ?? {};
  return selection.labels((key) => labels[key]) &&
    selection.fields((key) => fieldValue(object, key));
}

/** The key of an object in its resource's map. */
function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ""}/${name}`;
}

/** The event a watcher of `selection` sees for `change`, if any. */
function eventFor(selection: Selection, change: Change): WatchEvent | undefined {
  const was = selects(selection, change.before);
  const is = selects(selection, change.after);
  if (is) return { type: was ? "MODIFIED" : "ADDED", object: structuredClone(change.after!) };
  // Deleted, or no longer selected: the object as it was last (with the deleting version).
  if (was) {
    const object = structuredClone(change.after ?? change.before!);
    object.metadata.resourceVersion = String(change.resourceVersion);
    return { type: "DELETED", object };
  }
  return undefined;
}

/** All objects of the stand-in. */
export class ObjectStore {
  #version = 0;
  readonly #objects = new Map<string, Map<string, KubeObject>>();
  readonly #history: Change[] = [];
  readonly #watchers = new Set<Watcher>();

  /** The current resourceVersion (of the last write). */
  get resourceVersion(): string {
    return String(this.#version);
  }

  #map(resource: string): Map<string, KubeObject> {
    let map = this.#objects.get(resource);
    if (!map) this.#objects.set(resource, map = new Map());
    return map;
  }

  #record(resource: string, before?: KubeObject, after?: KubeObject): void {
    const change: Change = { resourceVersion: this.#version, resource, before, after };
    this.#history.push(change);
    for (const watcher of this.#watchers) {
      if (watcher.resource !== resource) continue;
      const event = eventFor(watcher.selection, change);
      if (event) watcher.send(event);
    }
  }

  /**
   * Stores a new object (name, or generateName plus a random suffix), setting uid,
   * resourceVersion and creationTimestamp.
   * @throws {ApiError} AlreadyExists.
   */
  create(resource: string, object: KubeObject): KubeObject {
    const meta = object.metadata;
    if (!meta.name && meta.generateName) {
      meta.name = meta.generateName + crypto.randomUUID().slice(0, 5);
    }
    const map = this.#map(resource);
    const key = keyOf(meta.namespace, meta.name);
    if (map.has(key)) throw alreadyExists(resource, meta.name);
    meta.uid = crypto.randomUUID();
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    meta.resourceVersion = String(++this.#version);
    delete meta.deletionTimestamp;
    map.set(key, structuredClone(object));
    this.#record(resource, undefined, object);
    return structuredClone(object);
  }

  /** A copy of an object, or undefined. */
  find(resource: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const object = this.#map(resource).get(keyOf(namespace, name));
    return object && structuredClone(object);
  }

  /**
   * A copy of an object.
   * @throws {ApiError} NotFound.
   */
  get(resource: string, namespace: string | undefined, name: string): KubeObject {
    const object = this.find(resource, namespace, name);
    if (!object) throw notFound(resource, name);
    return object;
  }

  /** Copies of the selected objects, ordered by namespace and name. */
  list(resource: string, selection: Selection): KubeObject[] {
    return [...this.#map(resource).entries()]
      .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
      .map(([, object]) => object)
      .filter((object) => selects(selection, object))
      .map((object) => structuredClone(object));
  }

  /**
   * Replaces an object. A resourceVersion in `object` is a precondition: a stale one is a
   * Conflict. Keeps uid and creationTimestamp; takes the next resourceVersion.
   * @throws {ApiError} NotFound, Conflict.
   */
  update(resource: string, object: KubeObject): KubeObject {
    const meta = object.metadata;
    const map = this.#map(resource);
    const key = keyOf(meta.namespace, meta.name);
    const current = map.get(key);
    if (!current) throw notFound(resource, meta.name);
    if (meta.resourceVersion && meta.resourceVersion !== current.metadata.resourceVersion) {
      throw conflict(resource, meta.name);
    }
    if (meta.uid && meta.uid !== current.metadata.uid) {
      throw conflict(
        resource,
        meta.name,
        "Precondition failed: UID in precondition does not match",
      );
    }
    meta.uid = current.metadata.uid;
    meta.creationTimestamp = current.metadata.creationTimestamp;
    if (current.metadata.deletionTimestamp) {
      meta.deletionTimestamp = current.metadata.deletionTimestamp;
      meta.deletionGracePeriodSeconds = current.metadata.deletionGracePeriodSeconds;
    }
    meta.resourceVersion = String(++this.#version);
    map.set(key, structuredClone(object));
    this.#record(resource, current, object);
    return structuredClone(object);
  }

  /**
   * Applies `change` to the current object and stores it (no precondition: for the stand-in's
   * own status writes). Returns the stored object, or undefined when it is gone.
   */
  mutate(
    resource: string,
    namespace: string | undefined,
    name: string,
    change: (object: KubeObject) => void,
  ): KubeObject | undefined {
    const object = this.find(resource, namespace, name);
    if (!object) return undefined;
    change(object);
    object.metadata.resourceVersion = "";
    return this.update(resource, object);
  }

  /**
   * Removes an object.
   * @throws {ApiError} NotFound.
   */
  remove(resource: string, namespace: string | undefined, name: string): KubeObject {
    const map = this.#map(resource);
    const key = keyOf(namespace, name);
    const current = map.get(key);
    if (!current) throw notFound(resource, name);
    map.delete(key);
    ++this.#version;
    this.#record(resource, current, undefined);
    const removed = structuredClone(current);
    removed.metadata.resourceVersion = String(this.#version);
    return removed;
  }

  /**
   * Starts a watch: first the changes after `fromVersion` (or, without one, every selected
   * object as ADDED), then each change as it happens. Returns the function that ends it.
   */
  watch(
    resource: string,
    selection: Selection,
    fromVersion: number | undefined,
    send: (event: WatchEvent) => void,
  ): () => void {
    if (fromVersion === undefined) {
      for (const object of this.list(resource, selection)) send({ type: "ADDED", object });
    } else {
      for (const change of this.#history) {
        if (change.resourceVersion <= fromVersion || change.resource !== resource) continue;
        const event = eventFor(selection, change);
        if (event) send(event);
      }
    }
    const watcher: Watcher = { resource, selection, send };
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }
}
