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
