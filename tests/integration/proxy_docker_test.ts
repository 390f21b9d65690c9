/**
 * Ports inside a docker sandbox reached through the admin (on node:http, as `rock admin start`
 * serves) and the sandbox's rocklet: python3 servers in the test image answer HTTP on every
 * port-selection form, echo a POST body, stream SSE unbuffered, echo WebSocket messages both
 * ways, and a TCP port-forward carries 100 MB unchanged.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { forwardPort } from "../../src/cli/sandbox_port_forward.ts";
import { SANDBOX_API } from "../../src/protocol/admin.ts";
import { type AdminServer, post, startAdminServer, waitRunning } from "../helpers/admin_server.ts";
import { dockerTest, TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";
import { spawnRockSandbox } from "../helpers/process.ts";

const FIXTURES = ["echo_server.py", "ws_echo.py", "tcp_echo.py"];

/** Starts a sandbox with the fixture servers: http.server on 8080, echo 9001, WS 9002, TCP 9003. */
async function startServers(admin: AdminServer, id: string): Promise<void> {
  const started = await post(admin.api, "/start", { sandbox_id: id, image: TEST_IMAGE });
  assert.equal(started.status, "Success", JSON.stringify(started));
  await waitRunning(admin.api, id);
  for (const name of FIXTURES) {
    const content = await Deno.readTextFile(new URL(`../fixtures/proxy/${name}`, import.meta.url));
    const wrote = await post(admin.api, "/write_file", {
      sandbox_id: id,
      path: `/tmp/${name}`,
      content,
    });
    assert.equal(wrote.status, "Success", JSON.stringify(wrote));
  }
  await post(admin.api, "/create_session", { sandbox_id: id });
  const ran = await post(admin.api, "/run_in_session", {
    sandbox_id: id,
    command: [
      "mkdir -p /srv/www/sub && echo index-8080 > /srv/www/index.txt",
      "echo inner > /srv/www/sub/inner.txt",
      "(cd /srv/www && nohup python3 -m http.server 8080 > /tmp/http.log 2>&1 &)",
      "(nohup python3 /tmp/echo_server.py 9001 > /tmp/echo.log 2>&1 &)",
      "(nohup python3 /tmp/ws_echo.py 9002 > /tmp/ws.log 2>&1 &)",
      "(nohup python3 /tmp/tcp_echo.py 9003 > /tmp/tcp.log 2>&1 &)",
    ].join(" && "),
  });
  assert.equal(ran.status, "Success", JSON.stringify(ran));
  const waited = await post(admin.api, "/run_in_session", {
    sandbox_id: id,
    command: `python3 -c 'import socket, time
for port in (8080, 9001, 9002, 9003):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        raise SystemExit(f"port {port} not listening")'`,
  });
  assert.equal(waited.result?.exit_code, 0, JSON.stringify(waited));
}

/** `size` random bytes (getRandomValues fills at most 64 KiB at a time). */
function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
  }
  return bytes;
}

/** The text of a GET through the proxy (`path` after `/proxy`), with `init`. */
async function text(base: string, path: string, init: RequestInit = {}) {
  const response = await fetch(`${base}${path}`, init);
  return { status: response.status, body: await response.text(), headers: response.headers };
}

/** The next message of `socket`. */
function nextMessage(socket: WebSocket): Promise<string | ArrayBuffer> {
  return new Promise((resolve, reject) => {
    socket.addEventListener("message", (event) => resolve(event.data), { once: true });
    socket.addEventListener("close", () => reject(new Error("closed")), { once: true });
  });
}

/** Opens a WebSocket at `url`; resolves once open, with its first message (the greeting). */
async function openSocket(url: string): Promise<{ socket: WebSocket; greeting: string }> {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  const greeting = nextMessage(socket);
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error(`Cannot open ${url}`));
  });
  return { socket, greeting: String(await greeting) };
}

/** Closes `socket` and waits until it is. */
async function closeSocket(socket: WebSocket): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return;
  const closed = new Promise((resolve) => socket.addEventListener("close", resolve));
  socket.close();
  await closed;
}

dockerTest("proxy: ports inside a docker sandbox through the admin and the rocklet", async (t) => {
  await using admin = await startAdminServer("docker", { node: true });
  const id = testSandboxId("proxy");
  try {
    await startServers(admin, id);
    const base = `${admin.api}/sandboxes/${id}/proxy`;

    await t.step("every port-selection form reaches its port", async () => {
      assert.deepEqual((await text(base, "/index.txt")).body, "index-8080\n");
      assert.equal((await text(base, "/port/9001/a/b?x=1")).body, "port=9001 GET /a/b?x=1 probe=");
      const byHeader = await text(base, "/hello", {
        headers: { "X-ROCK-Target-Port": "9001", "X-Probe": "through" },
      });
      assert.equal(byHeader.body, "port=9001 GET /hello probe=through");
      assert.equal(
        (await text(base, "/q?rock_target_port=9001&y=2")).body,
        "port=9001 GET /q?y=2 probe=",
      );
      assert.equal(
        (await text(`${base}?rock_target_port=9001`, "")).body,
        "port=9001 GET / probe=",
      );
    });

    await t.step(
      "two port selections at once or a bad port are a 400 in the envelope",
      async () => {
        const twice = await text(base, "/port/9001/x?rock_target_port=9001");
        assert.equal(twice.status, 400);
        const envelope = JSON.parse(twice.body);
        assert.equal(envelope.status, "Failed");
        assert.match(envelope.error, /named twice/);
        const both = await text(base, "/x?rock_target_port=9001", {
          headers: { "X-ROCK-Target-Port": "9001" },
        });
        assert.equal(both.status, 400);
        assert.equal((await text(base, "/port/70000/x")).status, 400);
        const missing = await text(`${admin.api}/sandboxes/rock-test-none/proxy`, "/x");
        assert.equal(JSON.parse(missing.body).status, "Failed");
      },
    );

    await t.step("a redirect's Location goes back through the proxy", async () => {
      const dir = await text(base, "/sub", { redirect: "manual" });
      assert.equal(dir.status, 301);
      const location = dir.headers.get("location")!;
      assert.equal(location, `${SANDBOX_API}/sandboxes/${id}/proxy/port/8080/sub/`);
      assert.match((await text(admin.url, location)).body, /inner\.txt/);
      const other = await text(base, "/redirect", {
        redirect: "manual",
        headers: { "X-ROCK-Target-Port": "9001" },
      });
      assert.equal(
        other.headers.get("location"),
        `${SANDBOX_API}/sandboxes/${id}/proxy/port/9001/landed`,
      );
    });

    await t.step("request bodies are relayed, as sent and streamed", async () => {
      const bytes = randomBytes(1 << 20);
      const echoed = await fetch(`${base}/port/9001/echo`, { method: "POST", body: bytes });
      assert.equal(echoed.headers.get("x-echo-method"), "POST");
      assert.deepEqual(new Uint8Array(await echoed.arrayBuffer()), bytes);
      const stream = ReadableStream.from(
        ["one,", "two,", "three"].map((s) => new TextEncoder().encode(s)),
      );
      const put = await fetch(`${base}/port/9001/put`, { method: "PUT", body: stream });
      assert.equal(put.headers.get("x-echo-method"), "PUT");
      assert.equal(await put.text(), "one,two,three");
      // ROCK v1.3's form: POST to port 8080 (http.server refuses POST: its answer is relayed).
      const v13 = await fetch(`${base}/index.txt`, { method: "POST", body: "{}" });
      assert.equal(v13.status, 501);
      await v13.body?.cancel();
    });

    await t.step("an SSE stream is relayed without buffering", async () => {
      const response = await fetch(`${base}/port/9001/sse`);
      assert.equal(response.headers.get("content-type"), "text/event-stream");
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      // The server holds the last event until /release: the first arrives while it waits.
      let seen = "";
      while (!seen.includes("data: first")) {
        const { value, done } = await reader.read();
        assert.ok(!done, `stream ended early: ${seen}`);
        seen += value;
      }
      assert.ok(!seen.includes("data: last"));
      assert.equal((await text(base, "/port/9001/release")).body, "released");
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      assert.match(seen, /data: first\n\n.*data: last\n\n/s);
    });

    await t.step("a WebSocket echoes text and binary both ways", async () => {
      const wsBase = base.replace(/^http/, "ws");
      const { socket, greeting } = await openSocket(`${wsBase}/port/9002/chat`);
      try {
        assert.equal(greeting, "hello /chat");
        const reply = nextMessage(socket);
        socket.send("ping");
        assert.equal(await reply, "ping");
        const binary = randomBytes(70_000);
        const echoed = nextMessage(socket);
        socket.send(binary);
        assert.deepEqual(new Uint8Array(await echoed as ArrayBuffer), binary);
      } finally {
        await closeSocket(socket);
      }
      // ROCK v1.3's /proxy/ws/{path}, its port selected by the query.
      const v13 = await openSocket(`${wsBase}/ws/room?rock_target_port=9002`);
      assert.equal(v13.greeting, "hello /room");
      await closeSocket(v13.socket);
    });

    await t.step("a TCP port-forward carries 100 MB unchanged", async () => {
      await using forward = forwardPort({
        baseUrl: admin.url,
        sandboxId: id,
        localPort: 0,
        remotePort: 9003,
      });
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: forward.addr.port });
      const total = 100 * 1024 * 1024;
      const chunk = randomBytes(1 << 20);
      const sent = createHash("sha256");
      const received = createHash("sha256");
      const writing = (async () => {
        const writer = conn.writable.getWriter();
        for (let i = 0; i < total / chunk.length; i++) {
          chunk[0] = i & 0xff; // each MiB differs
          sent.update(chunk);
          await writer.write(chunk.slice());
        }
        writer.releaseLock();
      })();
      let count = 0;
      const reader = conn.readable.getReader();
      while (count < total) {
        const { value, done } = await reader.read();
        if (done) break;
        received.update(value);
        count += value.length;
      }
      await writing;
      reader.releaseLock();
      conn.close();
      assert.equal(count, total);
      assert.equal(received.digest("hex"), sent.digest("hex"));
    });

    await t.step("rock sandbox port-forward carries a connection until SIGINT", async () => {
      const child = spawnRockSandbox(admin.url, ["port-forward", id, ":9003"], { stdout: "null" });
      const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let said = "";
      let port = 0;
      try {
        while (!port) {
          const { value, done } = await stderr.read();
          assert.ok(!done, `port-forward ended: ${said}`);
          said += value;
          port = Number(/Forwarding 127\.0\.0\.1:(\d+) /.exec(said)?.[1] ?? 0);
        }
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(new TextEncoder().encode("through-the-cli"));
        const buffer = new Uint8Array(64);
        let got = "";
        while (got.length < "through-the-cli".length) {
          const n = await conn.read(buffer);
          if (n === null) break;
          got += new TextDecoder().decode(buffer.subarray(0, n));
        }
        conn.close();
        assert.equal(got, "through-the-cli");
      } finally {
        child.kill("SIGINT");
        while (!(await stderr.read()).done) { /* drain */ }
        assert.equal((await child.status).code, 0);
      }
    });
  } finally {
    await post(admin.api, "/stop", { sandbox_id: id });
  }
});
