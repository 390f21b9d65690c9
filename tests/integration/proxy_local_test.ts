/**
 * The proxy on the local backend: the sandbox is this machine, so servers the test itself runs
 * on loopback ports are reached through the admin and the sandbox's rocklet (HTTP, WebSocket and
 * TCP port-forward), the same path as on docker and kubernetes.
 */
import assert from "node:assert/strict";
import { forwardPort } from "../../src/cli/sandbox_port_forward.ts";
import { post, startAdminServer, waitRunning } from "../helpers/admin_server.ts";
import { testSandboxId } from "../helpers/docker.ts";

Deno.test("proxy (local backend): HTTP, WebSocket and port-forward reach loopback ports", async () => {
  await using admin = await startAdminServer("local", { node: true });
  // One server answers HTTP (method, path and body) and echoes WebSocket messages.
  await using http = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (r) => {
    if (r.headers.get("upgrade") === "websocket") {
      const { socket, response } = Deno.upgradeWebSocket(r);
      socket.onmessage = (event) => socket.send(event.data);
      return response;
    }
    return new Response(`${r.method} ${new URL(r.url).pathname} ${await r.text()}`);
  });
  const tcp = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const echoing = (async () => {
    for await (const conn of tcp) await conn.readable.pipeTo(conn.writable).catch(() => {});
  })();
  const id = testSandboxId("proxy-local");
  try {
    assert.equal((await post(admin.api, "/start", { sandbox_id: id })).status, "Success");
    await waitRunning(admin.api, id);
    const base = `${admin.api}/sandboxes/${id}/proxy/port/${http.addr.port}`;

    const answer = await fetch(`${base}/p`, { method: "PATCH", body: "patched" });
    assert.equal(await answer.text(), "PATCH /p patched");

    const socket = new WebSocket(`${base.replace(/^http/, "ws")}/ws`);
    const echoed = await new Promise((resolve, reject) => {
      socket.onopen = () => socket.send("round trip");
      socket.onmessage = (event) => resolve(event.data);
      socket.onerror = () => reject(new Error("WebSocket failed"));
    });
    assert.equal(echoed, "round trip");
    const closed = new Promise((resolve) => socket.onclose = resolve);
    socket.close();
    await closed;

    {
      await using forward = forwardPort({
        baseUrl: admin.url,
        sandboxId: id,
        localPort: 0,
        remotePort: tcp.addr.port,
      });
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: forward.addr.port });
      await conn.write(new TextEncoder().encode("tcp"));
      const buffer = new Uint8Array(8);
      const n = await conn.read(buffer);
      assert.equal(new TextDecoder().decode(buffer.subarray(0, n ?? 0)), "tcp");
      conn.close();
    }
  } finally {
    await post(admin.api, "/stop", { sandbox_id: id });
    tcp.close();
    await echoing;
  }
});
