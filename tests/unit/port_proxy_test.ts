import assert from "node:assert/strict";
import { rewriteLocation, selectTarget } from "../../src/admin/port_proxy.ts";
import { parsePortMapping } from "../../src/cli/sandbox_port_forward.ts";
import { BadRequestError } from "../../src/common/errors.ts";
import { SANDBOX_API } from "../../src/protocol/admin.ts";
import { endToEndHeaders } from "../../src/rocklet/port_proxy.ts";

Deno.test("selectTarget() defaults to port 8080 with the path and query as sent", () => {
  assert.deepEqual(selectTarget("", "", null), { port: 8080, path: "/" });
  assert.deepEqual(selectTarget("/a/b", "?x=1&y=2", null), { port: 8080, path: "/a/b?x=1&y=2" });
});

Deno.test("selectTarget() takes the port from the path prefix, the header or the query", () => {
  assert.deepEqual(selectTarget("/port/9000/a", "?x=1", null), { port: 9000, path: "/a?x=1" });
  assert.deepEqual(selectTarget("/port/9000", "", null), { port: 9000, path: "/" });
  assert.deepEqual(selectTarget("/a", "", " 9001 "), { port: 9001, path: "/a" });
  assert.deepEqual(selectTarget("/a", "?rock_target_port=9002&x=1", null), {
    port: 9002,
    path: "/a?x=1",
  });
});

Deno.test("selectTarget() refuses two port selections at once and ports out of range", () => {
  assert.throws(() => selectTarget("/port/1/a", "", "2"), BadRequestError);
  assert.throws(() => selectTarget("/a", "?rock_target_port=1", "1"), /named twice/);
  assert.throws(() => selectTarget("/port/1/a", "?rock_target_port=1", null), BadRequestError);
  assert.throws(() => selectTarget("/port/0/a", "", null), /not a port/);
  assert.throws(() => selectTarget("/a", "", "65536"), /not a port/);
  assert.throws(() => selectTarget("/a", "?rock_target_port=x", null), /not a port/);
});

Deno.test("rewriteLocation() sends the target's own paths and URLs back through the proxy", () => {
  const base = `${SANDBOX_API}/sandboxes/sb-1/proxy/port/9000`;
  assert.equal(rewriteLocation("/next?a=1", "sb-1", 9000), `${base}/next?a=1`);
  assert.equal(rewriteLocation("http://127.0.0.1:9000/x#f", "sb-1", 9000), `${base}/x#f`);
  assert.equal(rewriteLocation("http://localhost:9000/x", "sb-1", 9000), `${base}/x`);
  assert.equal(rewriteLocation("https://example.com/x", "sb-1", 9000), "https://example.com/x");
  assert.equal(rewriteLocation("http://127.0.0.1:9001/x", "sb-1", 9000), "http://127.0.0.1:9001/x");
  assert.equal(rewriteLocation("relative/x", "sb-1", 9000), "relative/x");
  assert.equal(rewriteLocation("//cdn.example/x", "sb-1", 9000), "//cdn.example/x");
});

Deno.test("endToEndHeaders() drops hop-by-hop headers, host and those connection names", () => {
  const out = endToEndHeaders(
    new Headers({
      host: "h",
      connection: "keep-alive, x-hop",
      "x-hop": "1",
      "transfer-encoding": "chunked",
      "x-keep": "2",
      "x-rock-target-port": "9",
    }),
    ["x-rock-target-port"],
  );
  assert.deepEqual([...out], [["x-keep", "2"]]);
});

Deno.test("parsePortMapping() reads LOCAL:REMOTE and PORT", () => {
  assert.deepEqual(parsePortMapping("8000:80"), { localPort: 8000, remotePort: 80 });
  assert.deepEqual(parsePortMapping("5432"), { localPort: 5432, remotePort: 5432 });
  assert.deepEqual(parsePortMapping(":80"), { localPort: 0, remotePort: 80 });
  assert.throws(() => parsePortMapping("1:2:3"), /LOCAL:REMOTE/);
  assert.throws(() => parsePortMapping("a:80"), /not a port/);
});
