/** SandboxManager rules that need a clock: expiry, keep-alive by get_status, sweeping. */
import assert from "node:assert/strict";
import { StartRequest } from "../../src/protocol/admin.ts";
import { managerFixture } from "../helpers/admin_server.ts";

const fixture = () => managerFixture();

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
    assert.equal(stopped?.stop_reason, "expired: no keep-alive for 2 minutes");
    assert.equal(stopped?.failure_reason, stopped?.stop_reason);
    assert.equal(stopped?.stop_time, Date.parse("2026-01-21T11:40:30Z"));
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
  // Stopped while placing (failed), or, had it been placed already, stopped as asked.
  assert.equal(
    stored.stop_reason,
    stored.state === "failed" ? "stop requested while starting" : "stop requested",
  );
  assert.ok(stored.stop_time !== null);
  assert.equal((await f.store.billingOf(record.sandbox_id)).length, 0);
  assert.deepEqual((await f.backend.list()).filter((s) => s.running), []);
});
