import assert from "node:assert/strict";
import { JsonObjectSplitter } from "../../src/sandbox/json_stream.ts";

Deno.test("JsonObjectSplitter.push() returns objects split across pieces, braces in strings kept", () => {
  const text =
    '{"type":"ADDED","object":{"a":"}{\\""}}\n{\n  "type": "DELETED",\n  "x": {}\n}{"n":1}';
  for (const size of [1, 3, 7, text.length]) {
    const splitter = new JsonObjectSplitter();
    const objects: unknown[] = [];
    for (let i = 0; i < text.length; i += size) {
      objects.push(...splitter.push(text.slice(i, i + size)));
    }
    assert.deepEqual(objects, [
      { type: "ADDED", object: { a: '}{"' } },
      { type: "DELETED", x: {} },
      { n: 1 },
    ], `pieces of ${size}`);
    assert.equal(splitter.rest, "");
  }
  const partial = new JsonObjectSplitter();
  assert.deepEqual(partial.push('{"a":1} {"b":'), [{ a: 1 }]);
  assert.equal(partial.rest, ' {"b":');
  assert.deepEqual(partial.push("2}"), [{ b: 2 }]);
});
