/**
 * The three patch formats kubectl sends: JSON merge patch (RFC 7386), strategic merge patch
 * (merge patch plus lists of named items merged by name and `$`-directives; enough for labels,
 * annotations, containers, env and volumes; no per-field patch strategies from the schema) and
 * JSON patch (RFC 6902, with `test`).
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A patch that cannot be applied (the server answers 422). */
export class PatchError extends Error {}

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** RFC 7386: objects merge, null deletes, anything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key] ?? null, value);
  }
  return result;
}

/** True for a list whose items are all objects with a `name` (or `containerPort`/`mountPath`). */
function mergeKeyOf(list: Json[]): string | undefined {
  for (const key of ["name", "containerPort", "mountPath"]) {
    if (list.length > 0 && list.every((item) => isObject(item) && item[key] !== undefined)) {
      return key;
    }
  }
  return undefined;
}

/** Strategic merge: named lists merge by their key, `$patch: delete` removes, `$` keys dropped. */
export function strategicMergePatch(target: Json, patch: Json): Json {
  if (isObject(patch) && patch.$patch === "replace") {
    const { $patch: _, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (Array.isArray(patch) && Array.isArray(target)) {
    const key = mergeKeyOf(patch) ?? mergeKeyOf(target);
    if (!key || (target.length > 0 && mergeKeyOf(target) !== key)) return stripDirectives(patch);
    const result = [...target];
    for (const item of patch as JsonObject[]) {
      const index = result.findIndex((existing) => (existing as JsonObject)[key] === item[key]);
      if (item.$patch === "delete") {
        if (index >= 0) result.splice(index, 1);
      } else if (index >= 0) {
        result[index] = strategicMergePatch(result[index] ?? null, item);
      } else {
        result.push(stripDirectives(item));
      }
    }
    return result;
  }
  if (!isObject(patch)) return structuredClone(patch);
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith("$")) continue;
    if (value === null) delete result[key];
    else result[key] = strategicMergePatch(result[key] ?? null, value);
  }
  return result;
}

/** `value` without `$`-directive keys. */
function stripDirectives(value: Json): Json {
  if (Array.isArray(value)) return value.map(stripDirectives);
  if (!isObject(value)) return value;
  const result: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    if (!key.startsWith("$")) result[key] = stripDirectives(item);
  }
  return result;
}

/** Unescaped tokens of a JSON pointer. */
function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new PatchError(`invalid JSON pointer "${path}"`);
  return path.slice(1).split("/").map((token) => token.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** The parent container of `path` in `doc` and the last token. */
function parentOf(doc: Json, path: string): { parent: JsonObject | Json[]; key: string } {
  const tokens = pointer(path);
  const key = tokens.pop();
  if (key === undefined) throw new PatchError("cannot address the document root");
  let current: Json | undefined = doc;
  for (const token of tokens) {
    if (Array.isArray(current)) current = current[Number(token)];
    else if (isObject(current)) current = current[token];
    else current = undefined;
    if (current === undefined) throw new PatchError(`doc is missing path: "${path}"`);
  }
  if (!Array.isArray(current) && !isObject(current)) {
    throw new PatchError(`doc is missing path: "${path}"`);
  }
  return { parent: current, key };
}

function getAt(doc: Json, path: string): Json {
  const { parent, key } = parentOf(doc, path);
  const value = Array.isArray(parent) ? parent[Number(key)] : parent[key];
  if (value === undefined) throw new PatchError(`doc is missing path: "${path}"`);
  return value;
}

function removeAt(doc: Json, path: string): Json {
  const { parent, key } = parentOf(doc, path);
  const value = getAt(doc, path);
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else delete parent[key];
  return value;
}

function addAt(doc: Json, path: string, value: Json): void {
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent)) {
    const index = key === "-" ? parent.length : Number(key);
    if (!(index >= 0 && index <= parent.length)) {
      throw new PatchError(`index out of range: "${path}"`);
    }
    parent.splice(index, 0, structuredClone(value));
  } else {
    parent[key] = structuredClone(value);
  }
}

/** RFC 6902 JSON patch; `test` compares values as JSON. */
export function jsonPatch(target: Json, operations: Json): Json {
  if (!Array.isArray(operations)) throw new PatchError("a JSON patch must be a list of operations");
  const doc = structuredClone(target);
  for (const raw of operations) {
    if (!isObject(raw)) throw new PatchError("a JSON patch operation must be an object");
    const op = raw as { op?: string; path?: string; from?: string; value?: Json };
    const path = op.path ?? "";
    switch (op.op) {
      case "add":
        addAt(doc, path, op.value ?? null);
        break;
      case "remove":
        removeAt(doc, path);
        break;
      case "replace":
        getAt(doc, path);
        removeAt(doc, path);
        addAt(doc, path, op.value ?? null);
        break;
      case "move":
        addAt(doc, path, removeAt(doc, op.from ?? ""));
        break;
      case "copy":
        addAt(doc, path, getAt(doc, op.from ?? ""));
        break;
      case "test":
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(op.value)) {
          throw new PatchError(`testing value ${path} failed`);
        }
        break;
      default:
        throw new PatchError(`unexpected kind: ${op.op}`);
    }
  }
  return doc;
}
