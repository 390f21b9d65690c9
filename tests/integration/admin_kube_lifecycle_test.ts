/**
 * The kubernetes backend through the admin on the stand-in: starts that cannot succeed end
 * failed with the pod's reason, an admin restart serves its pods again and removes pods without
 * a row (another deployment's untouched), and 50 concurrent creates with the kubectl count.
 */
import assert from "node:assert/strict";
import { post, startAdminServer, startSandbox, waitRunning } from "../helpers/admin_server.ts";
import { TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";
import { testKubeBackend } from "../helpers/kube/backend.ts";
import { kubeTest, readPod } from "../helpers/kube/kubectl.ts";
import { type KubeStandIn, startKubeApiServer } from "../helpers/kube/stand_in.ts";
import type { KubernetesBackend } from "../../src/sandbox/kubernetes_backend.ts";
import { podName } from "../../src/sandbox/kubernetes_pod.ts";

/** True when pod `name` is gone or being deleted (deletion takes its grace period). */
async function deleted(standIn: KubeStandIn, name: string): Promise<boolean> {
  const pod = await readPod(standIn, name);
  return pod === undefined || pod.metadata.deletionTimestamp !== undefined;
}

/** Starts `id` with `extra` and waits until it ends running or failed; returns its status. */
async function startUntilSettled(api: string, id: string, extra: Record<string, unknown>) {
  const started = await post(api, "/start_async", {
    sandbox_id: id,
    image: TEST_IMAGE,
    pull: "never",
    memory: "512m",
    cpus: 0.5,
    ...extra,
  });
  assert.equal(started.status, "Success", JSON.stringify(started));
  const began = performance.now();
  const status = await waitRunning(api, id, 60_000);
  return { status: status.result, seconds: (performance.now() - began) / 1000 };
}

kubeTest(
  "admin (kubernetes): a missing image ends failed in image_pull with the pod's reason within seconds",
  async () => {
    await using admin = await startAdminServer("kubernetes");
    const missing = await startUntilSettled(admin.api, testSandboxId("noimage"), {
      image: "rock-test/does-not-exist:1",
      pull: "missing",
    });
    assert.equal(missing.status.rock_state, "failed", JSON.stringify(missing.status));
    assert.equal(missing.status.status.image_pull.status, "failed");
    assert.match(missing.status.status.image_pull.message, /ErrImagePull|ImagePullBackOff/);
    assert.ok(missing.seconds < 20, `${missing.seconds} s`);

    // Nothing is left of either.
    const backend = admin.backend as KubernetesBackend & { standIn: { namespace: string } };
    assert.deepEqual(await backend.list(), []);
  },
);

kubeTest(
  "admin (kubernetes): a pod whose nodeSelector no node meets ends failed, Unschedulable",
  async () => {
    await using admin = await startAdminServer("kubernetes", {
      kube: { config: { nodeSelector: { "kubernetes.io/hostname": "elsewhere" } } },
    });
    const nowhere = await startUntilSettled(admin.api, testSandboxId("nowhere"), {});
    assert.equal(nowhere.status.rock_state, "failed", JSON.stringify(nowhere.status));
    assert.equal(nowhere.status.status.pod_scheduled.status, "failed");
    assert.match(nowhere.status.status.pod_scheduled.message, /Unschedulable/);
    assert.match(nowhere.status.failure_reason ?? "", /Unschedulable/);
    assert.ok(nowhere.seconds < 20, `${nowhere.seconds} s`);
  },
);

kubeTest(
  "admin (kubernetes): a restarted admin serves its pods again, removes a pod without a row and leaves another deployment's alone",
  async () => {
    await using standIn = await startKubeApiServer();
    const dataDir = await Deno.makeTempDir({ prefix: "rock-admin-kube-restart-" });
    try {
      let id: string;
      let deploymentId: string;
      {
        await using first = await startAdminServer("kubernetes", { dataDir, kube: { standIn } });
        id = await startSandbox(first, "kept", { memory: "512m", cpus: 0.5 });
        deploymentId = await first.store.deploymentId();
      }
      // A pod of this deployment without a row, and one of another deployment.
      const spec = (sandboxId: string) => ({
        sandboxId,
        image: TEST_IMAGE,
        pull: "never" as const,
        memoryBytes: 512 * 1024 ** 2,
        cpus: 0.5,
      });
      const orphan = testSandboxId("orphan");
      const foreign = testSandboxId("foreign");
      {
        await using mine = await testKubeBackend({ standIn, deploymentId });
        await mine.place(spec(orphan), { onPhase() {} });
        await using theirs = await testKubeBackend({ standIn, deploymentId: "another" });
        await theirs.place(spec(foreign), { onPhase() {} });
      }
      await using second = await startAdminServer("kubernetes", { dataDir, kube: { standIn } });
      const ran = await post(second.api, "/execute", {
        sandbox_id: id,
        command: "echo again",
        shell: true,
      });
      assert.equal(ran.result?.stdout, "again\n", JSON.stringify(ran));
      assert.ok(await deleted(standIn, podName(orphan)), "the orphan pod is deleted");
      assert.ok(await readPod(standIn, podName(foreign)));
      await post(second.api, "/stop", { sandbox_id: id });
      assert.ok(await deleted(standIn, podName(id)), "the stopped sandbox's pod is deleted");
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);

kubeTest(
  "admin (kubernetes): 50 concurrent creates all run, with the kubectl processes the backend spawned reported",
  async () => {
    await using admin = await startAdminServer("kubernetes", { startupTimeoutMs: 240_000 });
    const backend = admin.backend as KubernetesBackend;
    const before = backend.kubectlProcesses;
    const ids = Array.from({ length: 50 }, () => testSandboxId("k50"));
    try {
      const began = performance.now();
      await Promise.all(ids.map((id) =>
        post(admin.api, "/start_async", {
          sandbox_id: id,
          image: TEST_IMAGE,
          pull: "never",
          memory: "256m",
          cpus: 0.1,
        })
      ));
      const states = await Promise.all(ids.map((id) => waitRunning(admin.api, id, 240_000)));
      assert.deepEqual(states.map((s) => s.result.state), ids.map(() => "running"));
      const spawned = backend.kubectlProcesses - before;
      console.log(
        `50 pods running in ${((performance.now() - began) / 1000).toFixed(1)} s; ` +
          `kubectl processes spawned: ${spawned}`,
      );
      // One create per sandbox, not one process per sandbox per poll.
      assert.ok(spawned <= 50 + 5, `${spawned} kubectl processes`);
    } finally {
      await Promise.all(
        ids.map((id) => post(admin.api, "/stop", { sandbox_id: id }).catch(() => {})),
      );
    }
  },
);
