/** The stand-in API server's selectors, patches and kubectl's JSON stream splitting. */
import assert from "node:assert/strict";
import { jsonObjects } from "../helpers/kube/json_stream.ts";
import { type Json, jsonPatch, PatchError, strategicMergePatch } from "../helpers/kube/patch.ts";
import { parseLabelSelector, SelectorError } from "../helpers/kube/selectors.ts";

function matches(selector: string, labels: Record<string, string>): boolean {
  return parseLabelSelector(selector)((key) => labels[key]);
}

Deno.test("parseLabelSelector() supports =, !=, in, notin and existence, all required", () => {
  const labels = { app: "web", tier: "x" };
  assert.equal(matches("app=web,tier==x", labels), true);
  assert.equal(matches("app!=web", labels), false);
  assert.equal(matches("app in (api, web),tier notin (y)", labels), true);
  assert.equal(matches("app notin (web)", labels), false);
  assert.equal(matches("tier,!claimed", labels), true);
  assert.equal(matches("claimed", labels), false);
  assert.equal(matches("", labels), true);
  assert.throws(() => parseLabelSelector("app=(x"), SelectorError);
});

Deno.test("strategicMergePatch() merges named lists by name and drops $ directives", () => {
  const target = { spec: { containers: [{ name: "a", image: "1" }, { name: "b", image: "2" }] } };
  const patch: Json = {
    spec: {
      "$setElementOrder/containers": [{ name: "a" }, { name: "b" }],
      containers: [{ name: "b", image: "3" }, { name: "a", $patch: "delete" }],
    },
  };
  assert.deepEqual(strategicMergePatch(target, patch), {
    spec: { containers: [{ name: "b", image: "3" }] },
  });
});

Deno.test("jsonPatch() applies add and replace, and throws when a test op fails", () => {
  const doc = { metadata: { resourceVersion: "5", labels: { a: "1" } } };
  assert.deepEqual(
    jsonPatch(doc, [
      { op: "test", path: "/metadata/resourceVersion", value: "5" },
      { op: "add", path: "/metadata/labels/b~1c", value: "2" },
    ]),
    { metadata: { resourceVersion: "5", labels: { a: "1", "b/c": "2" } } },
  );
  assert.throws(
    () => jsonPatch(doc, [{ op: "test", path: "/metadata/resourceVersion", value: "4" }]),
    PatchError,
  );
});

Deno.test("jsonObjects() splits pretty and compact objects printed back to back, braces in strings kept", () => {
  const text = '{\n  "type": "ADDED",\n  "object": {"a": "}{"}\n}{"type":"DELETED"}\n{"type":';
  const { objects, rest } = jsonObjects(text);
  assert.deepEqual(objects, [{ type: "ADDED", object: { a: "}{" } }, { type: "DELETED" }]);
  assert.equal(rest, '\n{"type":');
});
