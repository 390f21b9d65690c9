/** 20 sandboxes started at once on docker all reach running; batch and list return them. */
import assert from "node:assert/strict";
import { get, post, startAdminServer, waitRunning } from "../helpers/admin_server.ts";
import { dockerTest, TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";

dockerTest(
  "admin (docker) starts 20 sandboxes concurrently and batch and list return them",
  async () => {
    await using admin = await startAdminServer("docker", { startupTimeoutMs: 120_000 });
    const experiment = `scale-${crypto.randomUUID().slice(0, 8)}`;
    const ids = Array.from({ length: 20 }, () => testSandboxId("scale"));
    try {
      const started = await Promise.all(ids.map((id) =>
        fetch(`${admin.api}/start_async`, {
          method: "POST",
          headers: { "x-experiment-id": experiment },
          body: JSON.stringify({
            sandbox_id: id,
            image: TEST_IMAGE,
            pull: "never",
            memory: "512m",
            cpus: 0.5,
          }),
        }).then((r) => r.json())
      ));
      assert.ok(
        started.every((s) => s.status === "Success"),
        JSON.stringify(started.find((s) => s.status !== "Success")),
      );
      const states = await Promise.all(ids.map((id) => waitRunning(admin.api, id, 120_000)));
      assert.deepEqual(states.map((s) => s.result.state), ids.map(() => "running"));
      const batch = await post(admin.api, "/sandboxes/batch", { sandbox_ids: ids });
      assert.deepEqual(batch.result.statuses.map((s: { sandbox_id: string }) => s.sandbox_id), ids);
      assert.ok(batch.result.statuses.every((s: { is_alive: boolean }) => s.is_alive));
      const list = await get(
        admin.api,
        `/sandboxes?experiment_id=${experiment}&state=running&page_size=50`,
      );
      assert.equal(list.result.total, 20);
      assert.deepEqual(
        new Set(list.result.items.map((i: { sandbox_id: string }) => i.sandbox_id)),
        new Set(ids),
      );
      const outputs = await Promise.all(
        ids.map((id) => post(admin.api, "/execute", { sandbox_id: id, command: ["hostname"] })),
      );
      assert.ok(outputs.every((o) => o.result.exit_code === 0));
    } finally {
      await Promise.all(
        ids.map((id) => post(admin.api, "/stop", { sandbox_id: id }).catch(() => {})),
      );
    }
    const left = (await admin.backend.list()).filter((s) => ids.includes(s.sandboxId));
    assert.deepEqual(left, [], "every container was removed");
  },
);
