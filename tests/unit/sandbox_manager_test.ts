/** SandboxManager rules that need a clock: expiry, keep-alive by get_status, sweeping. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Billing } from "../../src/admin/billing.ts";
import { SandboxManager } from "../../src/admin/manager.ts";
import { SandboxStore } from "../../src/admin/store.ts";
import { StartRequest } from "../../src/protocol/admin.ts";
import { testBackend } from "../helpers/admin_server.ts";

async function fixture() {
  const dir = await Deno.makeTempDir({ prefix: "rock-manager-test-" });
  const store = await SandboxStore.open(`file:${join(dir, "rock.db")}`);
  const backend = await testBackend("local", dir);
  let now = Date.parse("2026-01-21T11:38:00Z");
  const manager = new SandboxManager({
    store,
    backend,
    billing: new Billing(store, join(dir, "billing.log")),
    now: () => now,
    settings: {
      maxCpus: 16,
      maxMemoryBytes: 64 * 1024 ** 3,
      defaultImage: "none",
      defaultAutoClearMinutes: 30,
      startupTimeoutMs: 30_000,
      timeZone: "Asia/Shanghai",
      touchIntervalMs: 0,
    },
  });
  return {
    manager,
    store,
    backend,
    advance: (minutes: number) => (now += minutes * 60_000),
    async [Symbol.asyncDispose]() {
      await manager.close();
      store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("SandboxManager.sweepExpired() stops a sandbox idle past auto_clear_time_minutes, and get_status keeps it alive", async () => {
  await using f = await fixture();
  const a = await f.manager.start(
    StartRequest.parse({ sandbox_id: "rock-test-expire-a", auto_clear_time_minutes: 2 }),
  );
  const b = await f.manager.start(
    StartRequest.parse({ sandbox_id: "rock-test-expire-b", auto_clear_time_minutes: 2 }),
  );
  try {
    f.advance(1.5);
    await f.manager.getStatus(b.sandbox_id); // keep-alive for b only
    f.advance(1);
    assert.deepEqual(await f.manager.sweepExpired(), [a.sandbox_id]);
    const stopped = await f.store.get(a.sandbox_id);
    assert.equal(stopped?.state, "stopped");
    assert.match(stopped?.failure_reason ?? "", /expired/);
    assert.equal((await f.store.billingOf(a.sandbox_id)).length, 1);
    assert.equal((await f.store.get(b.sandbox_id))?.state, "running");
    f.advance(3);
    assert.deepEqual(await f.manager.sweepExpired(), [b.sandbox_id]);
    assert.deepEqual((await f.backend.list()).filter((s) => s.running), []);
  } finally {
    await f.manager.stop(a.sandbox_id).catch(() => {});
    await f.manager.stop(b.sandbox_id).catch(() => {});
  }
});

Deno.test("SandboxManager.stop() of a pending sandbox cancels its start and bills nothing", async () => {
  await using f = await fixture();
  const record = await f.manager.startAsync(StartRequest.parse({ sandbox_id: "rock-test-cancel" }));
  await f.manager.stop(record.sandbox_id);
  await f.manager.close(); // waits for the cancelled placement
  const stored = await f.store.get(record.sandbox_id);
  assert.ok(stored?.state === "stopped" || stored?.state === "failed", String(stored?.state));
  assert.equal((await f.store.billingOf(record.sandbox_id)).length, 0);
  assert.deepEqual((await f.backend.list()).filter((s) => s.running), []);
});
