/** The warm pool: a matching start is running at once under the requested id; the pool refills. */
import assert from "node:assert/strict";
import { get, post, startAdminServer } from "../helpers/admin_server.ts";
import { dockerTest, TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

dockerTest(
  "admin (docker) hands out a warm-pool sandbox at once and refills the pool",
  async () => {
    const spec = { image: TEST_IMAGE, memory: "512m", cpus: 1, size: 1 };
    const ids: string[] = [];
    let pooled: string[] = [];
    {
      await using admin = await startAdminServer("docker", { pool: [spec] });
      await until(() => admin.pool!.readyCount === 1, 60_000, "the pool to fill");
      pooled = (await admin.backend.list()).map((s) => s.sandboxId);
      assert.equal(pooled.length, 1);
      assert.match(pooled[0] ?? "", /^rock-pool-/);
      try {
        const id = testSandboxId("pool");
        ids.push(id);
        const started = await post(admin.api, "/start_async", {
          sandbox_id: id,
          image: TEST_IMAGE,
          memory: "512m",
          cpus: 1,
        });
        assert.equal(started.status, "Success");
        const status = await get(admin.api, `/get_status?sandbox_id=${id}`);
        assert.equal(status.result.state, "running", "running at once, without waiting");
        assert.equal(status.result.status.docker_run.message, "docker run success (warm pool)");
        const run = await post(admin.api, "/execute", {
          sandbox_id: id,
          command: ["echo", "from-pool"],
        });
        assert.equal(run.result.stdout, "from-pool\n");
        // A different spec does not match the pool and starts the normal way.
        const other = testSandboxId("nopool");
        ids.push(other);
        await post(admin.api, "/start_async", {
          sandbox_id: other,
          image: TEST_IMAGE,
          memory: "256m",
          cpus: 1,
        });
        assert.equal(
          (await get(admin.api, `/get_status?sandbox_id=${other}`)).result.state,
          "pending",
        );
        await until(() => admin.pool!.readyCount === 1, 60_000, "the pool to refill");
        assert.equal((await post(admin.api, "/stop", { sandbox_id: id })).status, "Success");
        const listed = (await admin.backend.list()).map((s) => s.sandboxId);
        assert.ok(!listed.includes(id));
      } finally {
        for (const id of ids) await post(admin.api, "/stop", { sandbox_id: id }).catch(() => {});
      }
      pooled = (await admin.backend.list()).map((s) => s.sandboxId).filter((s) =>
        s.startsWith("rock-pool-")
      );
      assert.equal(pooled.length, 1);
      // Disposing the admin closes the pool, which removes what it holds.
      await admin[Symbol.asyncDispose]();
      assert.deepEqual((await admin.backend.list()).map((s) => s.sandboxId), []);
    }
  },
);
