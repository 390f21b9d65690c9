/**
 * SandboxManager rules that need a clock: expiry, keep-alive by get_status, sweeping, and how a
 * start becomes running.
 */
import assert from "node:assert/strict";
import { type RockError, SandboxNotFoundError } from "../../src/common/errors.ts";
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

Deno.test("SandboxManager records the failure kind with the reason: user for a stop, expired for the sweeper, infra for a death", async () => {
  await using f = await fixture();
  f.manager.startWatching();
  const ids = ["rock-test-kind-user", "rock-test-kind-expired", "rock-test-kind-died"];
  try {
    for (const id of ids) {
      await f.manager.start(StartRequest.parse({ sandbox_id: id, auto_clear_time_minutes: 2 }));
    }
    await f.manager.stop(ids[0]!);
    f.advance(1.5);
    await f.manager.getStatus(ids[2]!); // keep-alive: only the second one expires
    f.advance(1);
    assert.deepEqual(await f.manager.sweepExpired(), [ids[1]]);
    const died = await f.store.sandboxes.get(ids[2]!);
    Deno.kill(Number(died?.handle), "SIGKILL");
    await waitUntil(async () => (await f.store.sandboxes.get(ids[2]!))?.state === "failed", "died");
    const [user, expired, infra] = await f.store.sandboxes.getMany(ids);
    assert.equal(user?.failure_kind, "user");
    assert.equal(user?.stop_reason, "stop requested");
    assert.equal(expired?.failure_kind, "expired");
    assert.equal(expired?.stop_reason, "expired: no keep-alive for 2 minutes");
    assert.equal(infra?.failure_kind, "infra");
    assert.equal(infra?.stop_reason, "died: killed by signal 9 (SIGKILL)");
  } finally {
    for (const id of ids) await f.manager.stop(id).catch(() => {});
  }
});

Deno.test("SandboxManager records a start that timed out as timeout, and one stopped while starting as user", async () => {
  await using f = await managerFixture("rock-manager-test-", { startupTimeoutMs: 1 });
  const late = await f.manager.startAsync(
    StartRequest.parse({ sandbox_id: "rock-test-kind-late" }),
  );
  const cancelled = await f.manager.startAsync(
    StartRequest.parse({ sandbox_id: "rock-test-kind-cancel" }),
  );
  await f.manager.stop(cancelled.sandbox_id);
  await f.manager.close();
  const timedOut = await f.store.sandboxes.get(late.sandbox_id);
  assert.equal(timedOut?.state, "failed", JSON.stringify(timedOut));
  assert.equal(timedOut?.failure_kind, "timeout");
  assert.match(timedOut?.stop_reason ?? "", /^start failed: /);
  const stopped = await f.store.sandboxes.get(cancelled.sandbox_id);
  assert.equal(stopped?.failure_kind, "user", JSON.stringify(stopped));
  assert.deepEqual((await f.backend.list()).filter((s) => s.running), []);
});

Deno.test("SandboxManager.restart() places a stopped sandbox again under its id from its recorded spec, and refuses one that runs", async () => {
  await using f = await fixture();
  const id = "rock-test-restart";
  try {
    await f.manager.start(
      StartRequest.parse({ sandbox_id: id, auto_clear_time_minutes: 7, memory: "2g", cpus: 1.5 }),
    );
    await assert.rejects(f.manager.restart(id), (error: RockError) => {
      assert.equal(error.code, 4000);
      assert.match(error.message, /it is running; only a stopped or failed sandbox restarts/);
      return true;
    });
    await f.manager.stop(id);
    f.advance(1);
    const pending = await f.manager.restart(id);
    assert.equal(pending.state, "pending");
    assert.equal(pending.sandbox_id, id);
    await waitUntil(async () => (await f.store.sandboxes.get(id))?.state === "running", "running");
    const running = await f.store.sandboxes.get(id);
    assert.equal(running?.memory, "2g");
    assert.equal(running?.cpus, 1.5);
    assert.equal(running?.auto_clear_minutes, 7);
    assert.equal(running?.pull, "missing");
    assert.equal(running?.start_time, Date.parse("2026-01-21T11:39:00Z"));
    assert.equal(running?.expire_at, Date.parse("2026-01-21T11:46:00Z"));
    for (const field of ["stop_time", "stop_reason", "failure_reason", "failure_kind"] as const) {
      assert.equal(running?.[field], null, field);
    }
    const rocklet = await f.manager.rocklet(id);
    const result = await rocklet.execute({ command: "echo again", shell: true });
    assert.equal(result.stdout, "again\n");
    await f.manager.stop(id);
    // One billing record per run.
    assert.equal((await f.store.billing.of(id)).length, 2);
    await assert.rejects(f.manager.restart("rock-test-restart-unknown"), SandboxNotFoundError);
  } finally {
    await f.manager.stop(id).catch(() => {});
  }
});

Deno.test("SandboxManager.delete() keeps a stopped sandbox's row as deleted, refuses a running one, and takes an unknown id as deleted", async () => {
  await using f = await fixture();
  const id = "rock-test-delete";
  try {
    await f.manager.start(StartRequest.parse({ sandbox_id: id }));
    await assert.rejects(f.manager.delete(id), (error: RockError) => {
      assert.equal(error.code, 4000);
      assert.match(error.message, /it is running; stop it first/);
      return true;
    });
    await f.manager.stop(id);
    await f.manager.delete(id);
    await f.manager.delete(id);
    await f.manager.delete("rock-test-delete-unknown");
    await assert.rejects(f.manager.getStatus(id), SandboxNotFoundError);
    const deleted = await f.manager.getStatus(id, { includeAllStates: true });
    assert.equal(deleted.state, "deleted");
    assert.equal(deleted.delete_time, Date.parse("2026-01-21T11:38:00Z"));
    assert.equal(deleted.failure_kind, "user");
    assert.deepEqual(await f.manager.batch([id]), []);
    assert.equal((await f.manager.list({}, 1, 10)).total, 0);
    await assert.rejects(f.manager.restart(id), SandboxNotFoundError);
  } finally {
    await f.manager.stop(id).catch(() => {});
  }
});
