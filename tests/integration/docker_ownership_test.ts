/**
 * Two admins (two data dirs, so two deployments) on one docker engine: each acts only on the
 * containers carrying its own deployment label, whatever their names.
 */
import assert from "node:assert/strict";
import { DEPLOYMENT_LABEL, isLogging, isRenamable } from "../../src/sandbox/backend.ts";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { type AdminServer, post, startAdminServer, waitRunning } from "../helpers/admin_server.ts";
import { dockerTest, TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";

const docker = new DockerCli();

/** Starts sandbox `id` on `admin` and waits until it runs or fails; returns its status. */
async function start(admin: AdminServer, id: string) {
  const started = await post(admin.api, "/start_async", {
    sandbox_id: id,
    image: TEST_IMAGE,
    pull: "never",
    memory: "512m",
    cpus: 1,
  });
  assert.equal(started.status, "Success", JSON.stringify(started));
  return (await waitRunning(admin.api, id)).result;
}

/** Asserts that `admin`'s sandbox `id` runs in container `handle` and answers a command. */
async function assertServes(admin: AdminServer, id: string, handle: string) {
  const container = await docker.inspectContainer(handle);
  assert.ok(container?.State.Running, `container of "${id}" is not running`);
  assert.equal(container.Name, `/${id}`);
  const run = await post(admin.api, "/execute", { sandbox_id: id, command: ["echo", "still-a"] });
  assert.equal(run.result?.stdout, "still-a\n", JSON.stringify(run));
}

dockerTest(
  "docker backend: a sandbox id another deployment runs fails the new start only and is never touched",
  async (t) => {
    await using a = await startAdminServer("docker");
    await using b = await startAdminServer("docker");
    const id = testSandboxId("owner");
    try {
      const running = await start(a, id);
      assert.equal(running.state, "running", JSON.stringify(running));
      const handle = (await docker.inspectContainer(id))!.Id;
      const deploymentA = await a.store.deploymentId();
      assert.notEqual(deploymentA, await b.store.deploymentId());

      await t.step("the second deployment's start fails, naming the taken name", async () => {
        const failed = await start(b, id);
        assert.equal(failed.rock_state, "failed", JSON.stringify(failed));
        const taken = `the name "${id}" is taken by a container this admin does not own`;
        assert.ok(failed.failure_reason.includes(taken), failed.failure_reason);
        assert.equal(failed.status.docker_run.status, "failed");
        assert.ok(
          failed.status.docker_run.message.includes(taken),
          failed.status.docker_run.message,
        );
        await assertServes(a, id, handle);
        const labels = (await docker.inspectContainer(handle))!.Config.Labels ?? {};
        assert.equal(labels[DEPLOYMENT_LABEL], deploymentA);
      });

      await t.step("stopping its failed row leaves the other's container alone", async () => {
        assert.equal((await post(b.api, "/stop", { sandbox_id: id })).status, "Success");
        await assertServes(a, id, handle);
      });

      await t.step("its backend removes, renames and reads nothing it does not own", async () => {
        await b.backend.remove(id);
        assert.ok(isLogging(b.backend) && isRenamable(b.backend));
        assert.equal(await b.backend.logs(id, 10), "");
        await assert.rejects(b.backend.rename(id, testSandboxId("stolen")));
        assert.deepEqual(await b.manager.removeOrphans(), []);
        assert.equal((await b.backend.list()).some((s) => s.sandboxId === id), false);
        await assertServes(a, id, handle);
      });
    } finally {
      await post(a.api, "/stop", { sandbox_id: id }).catch(() => {});
      await post(b.api, "/stop", { sandbox_id: id }).catch(() => {});
    }
  },
);
