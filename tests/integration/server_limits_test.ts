/**
 * The bounds every role's server keeps (src/cli/serve.ts): idle keep-alive connections, stalled
 * headers and bodies, and connections past the cap are closed by the server; a shutdown drains
 * within its grace and answers calls still running with an error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_SERVER_LIMITS, type ServerLimits } from "../../src/common/config.ts";
import { listen } from "../../src/cli/serve.ts";
import type { RockServer } from "../../src/cli/server.ts";
import { spawnAdmin } from "../helpers/process.ts";
import { testBackend } from "../helpers/admin_server.ts";

const encoder = new TextEncoder();

/** Serves a tiny app with `limits`; `/slow` answers after 60 s. */
async function serveWith(limits: Partial<ServerLimits>): Promise<RockServer> {
  return await listen(
    { hostname: "127.0.0.1", port: 0, limits: { ...DEFAULT_SERVER_LIMITS, ...limits } },
    async (request) => {
      if (new URL(request.url).pathname === "/slow") {
        await new Promise((resolve) => setTimeout(resolve, 60_000));
      }
      await request.arrayBuffer();
      return new Response("ok");
    },
  );
}

/** Reads `conn` until the server closes it; resolves with what it sent. */
async function readUntilClosed(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(4096);
  let text = "";
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } catch {
    // Reset by the server: closed as well.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  return text;
}

Deno.test("a server closes 1,000 idle connections after the idle timeout, and stalled headers and bodies after theirs", async () => {
  const server = await serveWith({
    idleTimeoutMs: 500,
    headerTimeoutMs: 1000,
    bodyTimeoutMs: 1500,
  });
  const { port } = server.addr;
  try {
    const connect = () => Deno.connect({ hostname: "127.0.0.1", port });
    // 500 that finished a request and sit idle on keep-alive (each sends its request as soon as
    // it is connected, so a busy machine cannot make one miss the header timeout), 500 that
    // never sent anything.
    const served = await Promise.all(Array.from({ length: 500 }, async () => {
      const conn = await connect();
      await conn.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      return conn;
    }));
    const silent = await Promise.all(Array.from({ length: 500 }, connect));
    const stalledHeader = await connect();
    const stalledBody = await connect();
    await stalledHeader.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n"));
    await stalledBody.write(
      encoder.encode("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"),
    );
    // Every read ends because the server closed the connection: none is closed by this side.
    const answers = await Promise.all(served.map(readUntilClosed));
    for (const answer of answers) assert.match(answer, /^HTTP\/1\.1 200 OK[\s\S]*ok$/);
    const idle = await Promise.all(silent.map(readUntilClosed));
    assert.ok(idle.every((text) => !text.includes("200 OK")));
    assert.match(await readUntilClosed(stalledHeader), /^HTTP\/1\.1 408 /);
    assert.match(await readUntilClosed(stalledBody), /^HTTP\/1\.1 408 /);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a server refuses connections past its cap and serves again once they close", async () => {
  const server = await serveWith({ maxConnections: 20 });
  const { port } = server.addr;
  const held = await Promise.all(
    Array.from({ length: 20 }, () => Deno.connect({ hostname: "127.0.0.1", port })),
  );
  try {
    const extra = await Deno.connect({ hostname: "127.0.0.1", port });
    await extra.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).catch(() => 0);
    assert.equal(await readUntilClosed(extra), "", "the 21st connection is closed unanswered");
  } finally {
    for (const conn of held) conn.close();
  }
  // The held ones are gone: a new request is served.
  let answered = false;
  for (let attempt = 0; attempt < 100 && !answered; attempt++) {
    try {
      answered = (await (await fetch(`http://127.0.0.1:${port}/`)).text()) === "ok";
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  assert.ok(answered);
  await server.shutdown();
});

Deno.test("shutdown answers a call still running at the end of the grace with a 503 and closes", async () => {
  const server = await serveWith({ shutdownGraceMs: 300 });
  const slow = fetch(`http://127.0.0.1:${server.addr.port}/slow`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const started = performance.now();
  await server.shutdown();
  const response = await slow;
  assert.equal(response.status, 503);
  assert.match((await response.json()).detail, /shutting down: .*within the 0\.3 s grace/);
  // A hang guard: the call itself would take 60 s.
  assert.ok(performance.now() - started < 30_000);
});

Deno.test("rock admin exits within its shutdown grace on SIGTERM and tells the caller of a long call", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-admin-grace-" });
  const config = join(dir, "rock.yml");
  await Deno.writeTextFile(config, "admin:\n  server:\n    shutdown_grace_seconds: 1\n");
  const dataDir = join(dir, "data");
  const served = await spawnAdmin(dataDir, { config, extra: ["--backend", "local"] });
  const api = `${served.url}/apis/envs/sandbox/v1`;
  const post = async (path: string, body: unknown) =>
    await (await fetch(`${api}/${path}`, { method: "POST", body: JSON.stringify(body) })).json();
  let id: string | undefined;
  try {
    id = (await post("start", { image: "any" })).result.sandbox_id;
    assert.equal(
      (await post("create_session", { sandbox_id: id, session: "s" })).status,
      "Success",
    );
    const long = post("run_in_session", { sandbox_id: id, session: "s", command: "sleep 120" });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stopping = performance.now();
    served.child.kill("SIGTERM");
    const answer = await long;
    assert.equal(answer.status, "Failed");
    assert.equal(answer.result.code, 5000);
    assert.match(
      answer.error,
      /^The admin is shutting down: the call did not finish within the 1 s grace$/,
    );
    assert.equal((await served.child.status).code, 0);
    // A hang guard: the call would run 120 s.
    assert.ok(performance.now() - stopping < 30_000);
  } finally {
    try {
      served.child.kill("SIGKILL");
    } catch {
      // Exited.
    }
    await served.child.status;
    await served.stderr;
    // The admin leaves sandboxes running: remove this one through its backend.
    if (id) await (await testBackend("local", dataDir)).remove(id);
    await Deno.remove(dir, { recursive: true });
  }
});
