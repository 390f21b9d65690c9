/** SandboxStore migrations on a real libsql file. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { SandboxStore } from "../../src/admin/store.ts";
import { testRecord } from "../helpers/admin_server.ts";

Deno.test("SandboxStore migration 4 adds stop_reason and fills it in for rows stopped before it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-store-test-" });
  const url = `file:${join(dir, "rock.db")}`;
  try {
    const store = await SandboxStore.open(url);
    await store.sandboxes.insert(testRecord("asked", { state: "stopped", stop_time: 1 }));
    await store.sandboxes.insert(
      testRecord("expired", { state: "stopped", failure_reason: "expired: idle" }),
    );
    await store.sandboxes.insert(
      testRecord("failed", { state: "failed", failure_reason: "no image" }),
    );
    await store.sandboxes.insert(testRecord("running", {}));
    store.close();
    // Turn the file back into what an admin before migration 4 left.
    const db = createClient({ url });
    await db.batch([
      "DROP INDEX sandboxes_stop_time",
      "ALTER TABLE sandboxes DROP COLUMN failure_kind",
      "ALTER TABLE sandboxes DROP COLUMN pull",
      "ALTER TABLE sandboxes DROP COLUMN delete_time",
      "ALTER TABLE sandboxes DROP COLUMN stop_reason",
      "ALTER TABLE sandboxes DROP COLUMN admin_id",
      "ALTER TABLE sandboxes DROP COLUMN timeout_seconds",
      "DROP TABLE leases",
      "DELETE FROM schema_version WHERE version >= 4",
    ], "write");
    db.close();

    const migrated = await SandboxStore.open(url);
    try {
      const rows = await migrated.sandboxes.getMany(["asked", "expired", "failed", "running"]);
      assert.deepEqual(rows.map((r) => r.stop_reason), [
        "stop requested",
        "expired: idle",
        "start failed: no image",
        null,
      ]);
    } finally {
      migrated.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SandboxTable.list() leaves deleted rows out unless asked for by state, and filters by states, id prefix and stop time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-store-test-" });
  const store = await SandboxStore.open(`file:${join(dir, "rock.db")}`);
  try {
    const rows = [
      testRecord("ab-live", {}),
      testRecord("ab-old", { state: "stopped", stop_time: 1_000, failure_kind: "user" }),
      testRecord("ab-new", { state: "failed", stop_time: 5_000, failure_kind: "oom" }),
      testRecord("abc-gone", { state: "deleted", stop_time: 1_000, delete_time: 2_000 }),
      testRecord("b-live", { state: "pending" }),
    ];
    for (const row of rows) assert.ok(await store.sandboxes.insert(row));
    const ids = async (filters: Parameters<typeof store.sandboxes.list>[0]) =>
      (await store.sandboxes.list(filters, 1, 100)).items.map((r) => r.sandbox_id).sort();

    assert.deepEqual(await ids({}), ["ab-live", "ab-new", "ab-old", "b-live"]);
    assert.deepEqual(await ids({ state: ["deleted"] }), ["abc-gone"]);
    assert.deepEqual(await ids({ state: ["pending", "running"] }), ["ab-live", "b-live"]);
    assert.deepEqual(await ids({ state: "pending" }), ["b-live"], "one state as it is");
    assert.deepEqual(await ids({ id_prefix: "ab" }), ["ab-live", "ab-new", "ab-old"]);
    assert.deepEqual(await ids({ id_prefix: "ab-n" }), ["ab-new"]);
    assert.deepEqual(await ids({ id_prefix: "abc", state: ["deleted"] }), ["abc-gone"]);
    assert.deepEqual(await ids({ stopped_before: 3_000 }), ["ab-old"]);
    // The failure kind and the deletion time are kept as written.
    const [gone, oom] = await store.sandboxes.getMany(["abc-gone", "ab-new"]);
    assert.equal(gone?.delete_time, 2_000);
    assert.equal(oom?.failure_kind, "oom");
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
