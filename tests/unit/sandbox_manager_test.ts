/**
 * SandboxManager rules that need a clock: expiry, keep-alive by get_status, sweeping, and how a
 * start becomes running.
 */
import assert from "node:assert/strict";
import { StartRequest } from "../../src/protocol/admin.ts";
import { managerFixture, testRecord } from "../helpers/admin_server.ts";
import { waitUntil } from "../helpers/wait.ts";

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
    const stopped = await f.store.sandboxes.get(a.sandbox_id);
    assert.equal(stopped?.state, "stopped");
    assert.equal(stopped?.stop_reason, "expired: no keep-alive for 2 minutes");
    assert.equal(stopped?.failure_reason, stopped?.stop_reason);
    assert.equal(stopped?.stop_time, Date.parse("2026-01-21T11:40:30Z"));
    assert.equal((await f.store.billing.of(a.sandbox_id)).length, 1);
    assert.equal((await f.store.sandboxes.get(b.sandbox_id))?.state, "running");
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
  const stored = await f.store.sandboxes.get(record.sandbox_id);
  assert.ok(stored?.state === "stopped" || stored?.state === "failed", String(stored?.state));
  // Stopped while placing (failed), or, had it been placed already, stopped as asked.
  assert.equal(
    stored.stop_reason,
    stored.state === "failed" ? "stop requested while starting" : "stop requested",
  );
  assert.ok(stored.stop_time !== null);
  assert.equal((await f.store.billing.of(record.sandbox_id)).length, 0);
  assert.deepEqual((await f.backend.list()).filter((s) => s.running), []);
});

Deno.test("SandboxManager.reconcile() waits again for a pending row whose sandbox runs, and makes it running as a start would", async () => {
  await using f = await fixture();
  const id = "rock-test-resume";
  const spec = { sandboxId: id, image: "none", pull: "never" as const, memoryBytes: 1, cpus: 1 };
  const placement = await f.backend.place(spec, { onPhase() {} });
  try {
    const created = Date.parse("2026-01-21T11:30:00Z");
    await f.store.sandboxes.insert(testRecord(id, {
      state: "pending",
      auto_clear_minutes: 10,
      create_time: created,
      expire_at: created + 600_000,
      phases: { process_start: { status: "running", message: "process start running" } },
    }));
    assert.deepEqual((await f.manager.reconcile()).resumed, [id]);
    await waitUntil(async () => (await f.store.sandboxes.get(id))?.state === "running", "running");
    const running = await f.store.sandboxes.get(id);
    assert.equal(running?.handle, placement.handle);
    assert.deepEqual(running?.port_mapping, placement.portMapping);
    assert.deepEqual(running?.phases, {
      process_start: { status: "success", message: "process start success" },
    });
    // Started, and expiring, from now.
    assert.equal(running?.start_time, Date.parse("2026-01-21T11:38:00Z"));
    assert.equal(running?.expire_at, Date.parse("2026-01-21T11:48:00Z"));
  } finally {
    await f.manager.stop(id).catch(() => {});
    await f.backend.remove(id);
  }
});
