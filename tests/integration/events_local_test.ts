/**
 * Lifecycle events over `GET /events` against a real admin on the local backend: the stream of
 * one sandbox starts with its status now and follows its phases and states; Sandbox.start()
 * waits on it (no get_status poll) and falls back to polling where the admin has no stream.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { SandboxEvent } from "../../src/protocol/admin.ts";
import { AdminClient } from "../../src/sdk/admin_client.ts";
import { InternalServerRockError, Sandbox, SandboxStartError } from "../../src/sdk/mod.ts";
import { get, post, startAdminServer } from "../helpers/admin_server.ts";
import { testSandboxId } from "../helpers/docker.ts";
import { spawnAdmin } from "../helpers/process.ts";

/**
 * A fetch that counts the admin calls by path; /events goes to `eventsPath` instead, or, with
 * `eventsBody`, gets an SSE response of that body without reaching the admin (what a proxy
 * between them might leave of the stream).
 */
function countingFetch(
  eventsPath = "/events",
  eventsBody?: (signal: AbortSignal | undefined) => BodyInit,
): { fetch: typeof fetch; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  return {
    calls,
    fetch: (input, init) => {
      const url = new URL(String(input));
      const path = url.pathname.split("/apis/envs/sandbox/v1")[1] ?? url.pathname;
      calls.set(path, (calls.get(path) ?? 0) + 1);
      if (path === "/events" && eventsBody) {
        const headers = { "content-type": "text/event-stream" };
        return Promise.resolve(new Response(eventsBody(init?.signal ?? undefined), { headers }));
      }
      if (path === "/events") url.pathname = url.pathname.replace(/\/events$/, eventsPath);
      return fetch(url, init);
    },
  };
}

/** Reads events of `stream` until `until` says stop (bounded by 60 s). */
async function collect(
  stream: AsyncGenerator<SandboxEvent>,
  until: (event: SandboxEvent) => boolean,
): Promise<SandboxEvent[]> {
  const seen: SandboxEvent[] = [];
  const timer = setTimeout(() => stream.return(undefined), 60_000);
  try {
    for await (const event of stream) {
      seen.push(event);
      if (until(event)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return seen;
}

Deno.test("GET /events?sandbox_id= starts with the status now, then the phases and states up to running and stopped", async () => {
  await using admin = await startAdminServer("local");
  const id = testSandboxId("events");
  assert.equal((await post(admin.api, "/start_async", { sandbox_id: id })).status, "Success");
  const client = new AdminClient(admin.url);
  const events = await client.events({ sandboxId: id });
  const starting = await collect(events, (e) => e.type === "status" && e.state === "running");
  const first = starting[0];
  assert.equal(first?.type, "status");
  assert.equal(first.sandbox_id, id);
  // The first event is the status at subscription: pending, or running already.
  assert.ok(first.state === "pending" || first.state === "running", JSON.stringify(first));
  const last = starting.at(-1)!;
  assert.equal(last.type === "status" && last.is_alive, true);
  assert.equal(last.type === "status" && last.status.process_start?.status, "success");
  assert.equal(last.type === "status" && last.error, null);

  const stopping = await client.events({ sandboxId: id });
  await post(admin.api, "/stop", { sandbox_id: id });
  const ended = await collect(stopping, (e) => e.type === "status" && e.state === "stopped");
  const stopped = ended.at(-1)!;
  assert.equal(stopped.type, "status");
  assert.equal(stopped.type === "status" && stopped.stop_reason, "stop requested");
  assert.equal(
    stopped.type === "status" && stopped.error?.class_path,
    "rock.admin.exceptions.SandboxStoppedError",
  );
});

Deno.test("GET /events without a sandbox id streams every sandbox's events, and an unknown sandbox gets a 404 envelope", async () => {
  await using admin = await startAdminServer("local");
  const client = new AdminClient(admin.url);
  const all = await client.events();
  const ids = [testSandboxId("events-a"), testSandboxId("events-b")];
  for (const id of ids) await post(admin.api, "/start_async", { sandbox_id: id });
  const running = new Set<string>();
  await collect(all, (e) => {
    if (e.type === "status" && e.state === "running") running.add(e.sandbox_id);
    return running.size === ids.length;
  });
  assert.deepEqual([...running].sort(), [...ids].sort());
  for (const id of ids) await post(admin.api, "/stop", { sandbox_id: id });

  const response = await fetch(`${admin.api}/events?sandbox_id=nope`);
  assert.equal(response.status, 404);
  const envelope = await response.json();
  assert.equal(envelope.status, "Failed");
  assert.equal(envelope.result.code, 4000);
  assert.equal(envelope.result.class_path, "rock.admin.exceptions.SandboxNotFoundError");
});

Deno.test("Sandbox.start() is ready through the event stream without polling get_status, and onStatus sees the phases", async () => {
  await using admin = await startAdminServer("local");
  const { fetch, calls } = countingFetch();
  const seen: string[] = [];
  await using sandbox = await new Sandbox({
    baseUrl: admin.url,
    sandboxId: testSandboxId("events-sdk"),
    fetch,
  }).start({ onStatus: (status) => seen.push(status.state) });
  assert.equal(calls.get("/events"), 1);
  assert.equal(calls.get("/get_status") ?? 0, 0);
  assert.equal(seen.at(-1), "running");
  assert.equal((await sandbox.arun("echo ok")).output, "ok");
});

Deno.test("Sandbox.start() falls back to polling get_status against an admin without an event stream", async () => {
  await using admin = await startAdminServer("local");
  // The admin's answer to a route it does not have (a 404 envelope, as an older rock gives).
  const { fetch, calls } = countingFetch("/no-such-route");
  await using sandbox = await new Sandbox({
    baseUrl: admin.url,
    sandboxId: testSandboxId("events-poll"),
    fetch,
  }).start();
  assert.equal(calls.get("/events"), 1);
  assert.ok((calls.get("/get_status") ?? 0) >= 1);
  assert.equal(
    (await get(admin.api, `/get_status?sandbox_id=${sandbox.sandboxId}`)).result.state,
    "running",
  );
});

Deno.test("Sandbox.start() through events throws SandboxStartError naming the phase when the start fails", async () => {
  await using admin = await startAdminServer("local", {
    wrapBackend: (backend) => ({
      type: backend.type,
      list: () => backend.list(),
      remove: (id) => backend.remove(id),
      place: (_spec, { onPhase }) => {
        onPhase({ name: "process_start", status: "failed", message: "no such program" });
        return Promise.reject(new Error("no such program"));
      },
    }),
  });
  const { fetch, calls } = countingFetch();
  const sandbox = new Sandbox({
    baseUrl: admin.url,
    sandboxId: testSandboxId("events-fail"),
    fetch,
  });
  await assert.rejects(sandbox.start(), (error: unknown) => {
    assert.ok(error instanceof SandboxStartError, String(error));
    assert.match(error.message, /phase process_start: .*no such program/);
    return true;
  });
  assert.equal(calls.get("/get_status") ?? 0, 0);
});

Deno.test("POST /sandboxes/{id}/timeout sets the lease, the event stream says so, and bad input gets a 4000 envelope", async () => {
  await using admin = await startAdminServer("local");
  await using sandbox = await new Sandbox({ baseUrl: admin.url, sandboxId: testSandboxId("lease") })
    .start();
  const id = sandbox.sandboxId;
  const events = await new AdminClient(admin.url).events({ sandboxId: id });
  const before = Date.now();
  const lease = await sandbox.setTimeout(120);
  assert.equal(lease.timeout_seconds, 120);
  assert.ok(Math.abs(Date.parse(lease.expire_time) - (before + 120_000)) < 2_000);
  const seen = await collect(events, (e) => e.type === "lease");
  assert.deepEqual(seen.map((e) => e.type), ["status", "lease"]);
  assert.equal(seen[1]?.type === "lease" && seen[1].expire_time, lease.expire_time);

  for (const body of [{}, { timeout_seconds: -1 }, { timeout_seconds: "soon" }]) {
    const refused = await post(admin.api, `/sandboxes/${id}/timeout`, body);
    assert.equal(refused.status, "Failed", JSON.stringify(body));
    assert.equal(refused.result.code, 4000);
    assert.match(refused.error ?? "", /timeout_seconds/);
  }
  const unknown = await post(admin.api, "/sandboxes/rock-test-none/timeout", {
    timeout_seconds: 5,
  });
  assert.equal(unknown.result.class_path, "rock.admin.exceptions.SandboxNotFoundError");
});

Deno.test("Sandbox keepAlive keeps a sandbox past its timeout while held; one not kept gets its expiring event and is stopped at its timeout", async () => {
  await using admin = await startAdminServer("local", { sweepIntervalMs: 60_000 });
  const all = await new AdminClient(admin.url).events();
  const config = { baseUrl: admin.url, timeoutSeconds: 1.5 };
  await using kept = await new Sandbox({
    ...config,
    sandboxId: testSandboxId("kept"),
    keepAlive: true,
    keepAliveIntervalSeconds: 0.3,
  }).start();
  await using left = await new Sandbox({ ...config, sandboxId: testSandboxId("left") }).start();
  const seen = await collect(
    all,
    (e) => e.type === "status" && e.sandbox_id === left.sandboxId && e.state === "stopped",
  );
  const mine = seen.filter((e) => e.sandbox_id === left.sandboxId);
  const expiring = mine.find((e) => e.type === "expiring");
  const stopped = mine.at(-1)!;
  assert.ok(expiring, JSON.stringify(mine));
  assert.equal(
    stopped.type === "status" && stopped.stop_reason,
    "expired: timeout of 1.5 s passed",
  );
  assert.ok(mine.indexOf(expiring) < mine.indexOf(stopped));
  // Stopped at the end of its lease, not before it (the store keeps the times in ms).
  const row = await admin.store.sandboxes.get(left.sandboxId);
  const lived = row!.stop_time! - row!.start_time!;
  assert.ok(lived >= 1_500 && lived < 5_000, `lived ${lived} ms`);
  // The kept one outlived its 1.5 s lease several times over.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const status = await kept.getStatus();
  assert.equal(status.state, "running");
  assert.ok(Date.now() - Date.parse(status.start_time!) > 2_500);
});

Deno.test("Sandbox.start() polls get_status when the event stream breaks off before the sandbox runs", async () => {
  await using admin = await startAdminServer("local");
  // A stream that says nothing and ends, as a proxy cutting it off would leave it.
  const { fetch, calls } = countingFetch("/events", () => ": events\n\n");
  await using sandbox = await new Sandbox({
    baseUrl: admin.url,
    sandboxId: testSandboxId("events-cut"),
    fetch,
  }).start();
  assert.ok((calls.get("/get_status") ?? 0) >= 1);
  assert.equal((await sandbox.getStatus()).state, "running");
});

Deno.test("rock admin start ends open event streams at SIGTERM instead of waiting out its shutdown grace", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-events-admin-" });
  const served = await spawnAdmin(join(dir, "data"), { extra: ["--backend", "local"] });
  try {
    const events = await new AdminClient(served.url).events();
    const ended = (async () => {
      for await (const _ of events) { /* none: no sandbox changes */ }
    })();
    const begin = performance.now();
    served.child.kill("SIGTERM");
    await ended;
    const { code } = await served.child.status;
    const ms = performance.now() - begin;
    console.log(`SIGTERM with an open event stream -> exit: ${ms.toFixed(0)} ms`);
    assert.equal(code, 0, await served.stderr);
    // The grace is 10 s; the stream ends at once.
    assert.ok(ms < 5_000, `${ms} ms`);
  } finally {
    try {
      served.child.kill("SIGKILL");
    } catch { /* it exited */ }
    await served.child.status;
    await served.stderr;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Sandbox.start() polls get_status when the event stream sends nothing within 5 s (a buffering proxy)", async () => {
  await using admin = await startAdminServer("local");
  // Headers come, the body never does, until the client gives up on it.
  const { fetch, calls } = countingFetch("/events", (signal) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        signal?.addEventListener("abort", () => controller.error(signal.reason));
      },
    }));
  const begin = performance.now();
  await using sandbox = await new Sandbox({
    baseUrl: admin.url,
    sandboxId: testSandboxId("events-held"),
    fetch,
  }).start();
  const ms = performance.now() - begin;
  assert.ok((calls.get("/get_status") ?? 0) >= 1);
  assert.ok(ms >= 5_000 && ms < 50_000, `${ms} ms`);
  assert.equal((await sandbox.getStatus()).state, "running");
});

Deno.test("AdminClient.events() ends with an error when the stream goes silent past its idle limit", async () => {
  // One event, then nothing at all (no heartbeat): a connection that died without a word.
  const { fetch } = countingFetch("/events", (signal) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('event: status\ndata: {"type":"status"}\n\n'));
        signal?.addEventListener("abort", () => controller.error(signal.reason));
      },
    }));
  const client = new AdminClient("http://127.0.0.1:9", { fetch });
  const events = await client.events({ sandboxId: "x", idleMs: 300 });
  const began = performance.now();
  const seen: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    (async () => {
      for await (const event of events) seen.push(event.type);
      return "ended";
    })().catch((error) => error),
    new Promise((resolve) => (timer = setTimeout(resolve, 10_000, "still waiting"))),
  ]);
  clearTimeout(timer);
  if (outcome === "still waiting") await events.return(undefined);
  assert.ok(outcome instanceof InternalServerRockError, String(outcome));
  assert.deepEqual(seen, ["status"]);
  const waited = performance.now() - began;
  assert.ok(waited >= 250 && waited < 10_000, `${waited} ms`);
});
