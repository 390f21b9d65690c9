/**
 * The warm pool on the kubernetes backend (stand-in): a matching start claims a pooled pod by
 * relabelling it (resourceVersion precondition) and runs at once; and of two admins of one
 * deployment claiming the same pooled pod, exactly one wins, the other gets a ClaimConflictError.
 */
import assert from "node:assert/strict";
import { get, post, startAdminServer, waitRunning } from "../helpers/admin_server.ts";
import { TEST_IMAGE, testRockletLauncher, testSandboxId } from "../helpers/docker.ts";
import { testKubeBackend, testRuntimeImage } from "../helpers/kube/backend.ts";
import { kubeTest, readPod } from "../helpers/kube/kubectl.ts";
import { type KubeStandIn, startKubeApiServer } from "../helpers/kube/stand_in.ts";
import { ClaimConflictError } from "../../src/sandbox/backend.ts";
import { KubernetesBackend } from "../../src/sandbox/kubernetes_backend.ts";
import { KubectlCli, type KubeObject } from "../../src/sandbox/kubectl_cli.ts";
import { podName, SANDBOX_ID_KEY } from "../../src/sandbox/kubernetes_pod.ts";

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** True when pod `name` is gone or being deleted. */
async function deleted(standIn: KubeStandIn, name: string): Promise<boolean> {
  const pod = await readPod(standIn, name);
  return pod === undefined || pod.metadata.deletionTimestamp !== undefined;
}

/** Places a pod as admin "a"'s warm pool would; returns its pool id. */
async function placePooled(backend: KubernetesBackend): Promise<string> {
  const pooled = `rock-pool-a-${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await backend.place({
    sandboxId: pooled,
    image: TEST_IMAGE,
    pull: "never",
    memoryBytes: 256 * 1024 ** 2,
    cpus: 0.2,
  }, { onPhase() {} });
  return pooled;
}

kubeTest(
  "admin (kubernetes) hands out a warm-pool pod at once under the new id and refills the pool",
  async () => {
    await using standIn = await startKubeApiServer();
    const spec = { image: TEST_IMAGE, memory: "512m", cpus: 0.5, size: 1 };
    const ids: string[] = [];
    {
      await using admin = await startAdminServer("kubernetes", { pool: [spec], kube: { standIn } });
      await until(() => admin.pool!.readyCount === 1, 120_000, "the pool to fill");
      const [pooledId, ...others] = (await admin.backend.list()).map((s) => s.sandboxId);
      assert.ok(pooledId !== undefined && others.length === 0, "one pooled sandbox");
      assert.match(pooledId, /^rock-pool-/);
      try {
        const id = testSandboxId("kpool");
        ids.push(id);
        const began = performance.now();
        const started = await post(admin.api, "/start_async", {
          sandbox_id: id,
          image: TEST_IMAGE,
          memory: "512m",
          cpus: 0.5,
        });
        assert.equal(started.status, "Success", JSON.stringify(started));
        const status = await get(admin.api, `/get_status?sandbox_id=${id}`);
        const pooledSeconds = (performance.now() - began) / 1000;
        assert.equal(status.result.state, "running", "running at once, without waiting");
        assert.match(status.result.status.pod_scheduled.message, /warm pool/);
        // The pod keeps its name; its label and annotation name the new id.
        const pod = await readPod(standIn, podName(pooledId));
        assert.equal(pod?.metadata.labels?.[SANDBOX_ID_KEY], id);
        assert.equal(pod?.metadata.annotations?.[SANDBOX_ID_KEY], id);
        const run = await post(admin.api, "/execute", {
          sandbox_id: id,
          command: ["echo", "from-pool"],
        });
        assert.equal(run.result?.stdout, "from-pool\n", JSON.stringify(run));
        assert.ok((await admin.backend.list()).some((s) => s.sandboxId === id));
        const backend = admin.backend as KubernetesBackend;
        assert.equal(await backend.check(id), undefined, "running, found by its new id");

        // A different spec does not match the pool and starts cold.
        const cold = testSandboxId("kcold");
        ids.push(cold);
        const coldBegan = performance.now();
        await post(admin.api, "/start_async", {
          sandbox_id: cold,
          image: TEST_IMAGE,
          memory: "256m",
          cpus: 0.5,
        });
        assert.equal((await waitRunning(admin.api, cold, 120_000)).result.state, "running");
        const coldSeconds = (performance.now() - coldBegan) / 1000;
        console.log(
          `kubernetes stand-in: pooled start ${pooledSeconds.toFixed(3)} s, cold start ${
            coldSeconds.toFixed(3)
          } s`,
        );

        await until(() => admin.pool!.readyCount === 1, 120_000, "the pool to refill");
        assert.equal((await post(admin.api, "/stop", { sandbox_id: id })).status, "Success");
        assert.ok(await deleted(standIn, podName(pooledId)), "stop deletes the claimed pod");
        assert.ok(!(await admin.backend.list()).some((s) => s.sandboxId === id));
      } finally {
        for (const id of ids) await post(admin.api, "/stop", { sandbox_id: id }).catch(() => {});
      }
      const refilled = (await admin.backend.list()).map((s) => s.sandboxId);
      assert.equal(refilled.filter((s) => s.startsWith("rock-pool-")).length, 1);
      await admin[Symbol.asyncDispose]();
      for (const id of refilled) assert.ok(await deleted(standIn, podName(id)));
    }
  },
);

kubeTest(
  "kubernetes: two admins of one deployment claim the same pooled pod, exactly one wins",
  async () => {
    await using standIn = await startKubeApiServer();
    const deploymentId = "pool-race";
    await using first = await testKubeBackend({ standIn, deploymentId });
    await using second = await testKubeBackend({ standIn, deploymentId });
    await second.start();
    for (let round = 0; round < 3; round++) {
      const pooled = await placePooled(first);
      const ids = [testSandboxId("claim1"), testSandboxId("claim2")] as const;
      const results = await Promise.allSettled([
        first.rename(pooled, ids[0]),
        second.rename(pooled, ids[1]),
      ]);
      const won = results.flatMap((r, i) => r.status === "fulfilled" ? [ids[i] ?? ""] : []);
      const lost = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
      const [winner] = won;
      assert.ok(won.length === 1 && winner, `round ${round}: ${JSON.stringify(results)}`);
      assert.ok(lost[0] instanceof ClaimConflictError, String(lost[0]));
      const pod = await readPod(standIn, podName(pooled));
      assert.equal(pod?.metadata.labels?.[SANDBOX_ID_KEY], winner);
      // Either admin finds the sandbox by its new id, and not by the pool id.
      assert.equal(await second.check(winner), undefined);
      assert.equal(await first.check(winner), undefined);
      assert.equal((await first.check(pooled))?.handle, "");
      await (winner === ids[0] ? second : first).remove(winner);
      await until(() => deleted(standIn, podName(pooled)), 30_000, "the claimed pod to go");
    }
  },
);

/** A kubectl whose patches wait for `open()`; `reached` resolves when the first one waits. */
class GatedKubectl extends KubectlCli {
  #open!: () => void;
  #reached!: () => void;
  readonly #gate = new Promise<void>((resolve) => this.#open = resolve);
  readonly reached = new Promise<void>((resolve) => this.#reached = resolve);

  open(): void {
    this.#open();
  }

  override async jsonPatch<T extends KubeObject>(
    ...args: Parameters<KubectlCli["jsonPatch"]>
  ): Promise<T> {
    this.#reached();
    await this.#gate;
    return await super.jsonPatch<T>(...args);
  }
}

kubeTest(
  "kubernetes: a claim on a pod read before another admin claimed it fails its resourceVersion precondition",
  async () => {
    await using standIn = await startKubeApiServer();
    const deploymentId = "pool-stale";
    await using first = await testKubeBackend({ standIn, deploymentId });
    const launcher = await testRockletLauncher();
    const gated = new GatedKubectl({ kubeconfig: standIn.kubeconfigPath, env: standIn.env });
    await using second = new KubernetesBackend({
      type: "kubernetes",
      launcher,
      runtimeImage: await testRuntimeImage(launcher),
      runtimeImagePullPolicy: "Never",
      kubeconfig: standIn.kubeconfigPath,
      kubectlEnv: standIn.env,
      deploymentId,
    }, { kubectl: gated });
    const pooled = await placePooled(first);
    const [mine, theirs] = [testSandboxId("stale"), testSandboxId("fresh")];
    // The second admin reads the pod (still pooled), then waits before its patch ...
    const stale = second.rename(pooled, mine).then(() => undefined, (error) => error);
    await gated.reached;
    // ... while the first claims it.
    await first.rename(pooled, theirs);
    gated.open();
    const error = await stale;
    assert.ok(error instanceof ClaimConflictError, String(error));
    assert.match(error.message, new RegExp(`claimed as "${theirs}"`));
    const pod = await readPod(standIn, podName(pooled));
    assert.equal(pod?.metadata.annotations?.[SANDBOX_ID_KEY], theirs);
    assert.equal(await second.check(theirs), undefined, "the winner's sandbox runs on");
    await first.remove(theirs);
    await until(() => deleted(standIn, podName(pooled)), 30_000, "the claimed pod to go");
  },
);
