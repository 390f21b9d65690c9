/**
 * The admin as a real process: killed with sandboxes running and started again on the same data
 * dir, it finds them still reachable, marks the ones that vanished, and removes orphans.
 */
import assert from "node:assert/strict";
import { SandboxStore } from "../../src/admin/store.ts";
import { get, post, type TestBackend, testBackend, waitRunning } from "../helpers/admin_server.ts";
import { dockerTest, TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";
import { type ServedChild, spawnAdmin } from "../helpers/process.ts";

async function kill(admin: ServedChild, signal: Deno.Signal): Promise<void> {
  admin.child.kill(signal);
  await admin.child.status;
  await admin.stderr;
}

function defineRestartTest(
  type: TestBackend,
  register: (name: string, fn: () => Promise<void>) => void,
) {
  register(
    `admin (${type}) restarted after SIGKILL keeps running sandboxes, marks vanished ones, removes orphans`,
    async () => {
      const dataDir = await Deno.makeTempDir({ prefix: "rock-restart-test-" });
      // The admin labels its sandboxes with the deployment id kept in its database.
      const store = await SandboxStore.open(`file:${dataDir}/rock.db`);
      const backend = await testBackend(type, dataDir, {
        deploymentId: await store.deploymentId(),
      });
      store.close();
      const kept = testSandboxId("kept");
      const vanished = testSandboxId("vanished");
      const orphan = testSandboxId("orphan");
      let admin = await spawnAdmin(dataDir, { extra: ["--backend", type] });
      try {
        const api = `${admin.url}/apis/envs/sandbox/v1`;
        for (const id of [kept, vanished]) {
          await post(api, "/start_async", {
            sandbox_id: id,
            image: TEST_IMAGE,
            pull: "never",
            memory: "1g",
            cpus: 1,
          });
        }
        for (const id of [kept, vanished]) {
          assert.equal((await waitRunning(api, id)).result.state, "running");
        }
        await post(api, "/create_session", { sandbox_id: kept, session: "s" });
        await post(api, "/run_in_session", {
          sandbox_id: kept,
          session: "s",
          command: "cd /tmp && export KEPT=yes",
        });

        await kill(admin, "SIGKILL");
        // While no admin runs: one sandbox disappears, and an unknown labelled one appears.
        await backend.remove(vanished);
        await backend.place(
          {
            sandboxId: orphan,
            image: TEST_IMAGE,
            pull: "never",
            memoryBytes: 256 * 1024 * 1024,
            cpus: 1,
          },
          { onPhase() {} },
        );
        assert.ok((await backend.list()).some((s) => s.sandboxId === orphan));

        admin = await spawnAdmin(dataDir, { extra: ["--backend", type] });
        const api2 = `${admin.url}/apis/envs/sandbox/v1`;
        const status = await get(api2, `/get_status?sandbox_id=${kept}`);
        assert.equal(status.result.state, "running");
        const run = await post(api2, "/run_in_session", {
          sandbox_id: kept,
          session: "s",
          command: "echo $KEPT; pwd",
        });
        assert.equal(run.result.output, "yes\n/tmp", "the session survived the admin restart");
        const gone = await get(api2, `/get_status?sandbox_id=${vanished}`);
        assert.equal(gone.result.state, "stopped");
        assert.match(gone.result.failure_reason, /gone when the admin started/);
        assert.equal(
          gone.result.stop_reason,
          "vanished: the sandbox was gone when the admin started",
        );
        const listed = await backend.list();
        assert.ok(!listed.some((s) => s.sandboxId === orphan), "the orphan was removed");
        assert.equal((await post(api2, "/stop", { sandbox_id: kept })).status, "Success");
        assert.ok(!(await backend.list()).some((s) => s.sandboxId === kept));
      } finally {
        await kill(admin, "SIGTERM").catch(() => {});
        for (const id of [kept, vanished, orphan]) await backend.remove(id).catch(() => {});
        await Deno.remove(dataDir, { recursive: true });
      }
    },
  );
}

defineRestartTest("local", (name, fn) => Deno.test(name, fn));
defineRestartTest("docker", dockerTest);
