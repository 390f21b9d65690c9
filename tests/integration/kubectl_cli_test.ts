/** KubectlCli, the one kubectl wrapper, driving the real kubectl against the stand-in. */
import assert from "node:assert/strict";
import { UnavailableError } from "../../src/common/errors.ts";
import {
  KubectlAlreadyExistsError,
  KubectlCli,
  KubectlConflictError,
  KubectlError,
  KubectlNotFoundError,
  type KubeObject,
  type WatchEvent,
} from "../../src/sandbox/kubectl_cli.ts";
import { TEST_IMAGE } from "../helpers/docker.ts";
import { kubeTest } from "../helpers/kube/kubectl.ts";
import { startKubeApiServer } from "../helpers/kube/stand_in.ts";
import { waitUntil } from "../helpers/wait.ts";

function pod(name: string, labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 0,
      containers: [{ name: "main", image: TEST_IMAGE, command: ["sleep", "300"] }],
    },
  };
}

kubeTest(
  "KubectlCli creates, gets, patches and deletes pods, typing failures by the API's reason",
  async () => {
    await using standIn = await startKubeApiServer();
    const kubectl = new KubectlCli({ kubeconfig: standIn.kubeconfigPath, env: standIn.env });
    assert.equal(await kubectl.namespace(), standIn.namespace);
    const created = await kubectl.create(pod("p1", { app: "x" }));
    assert.equal(created.metadata.name, "p1");
    assert.ok(created.metadata.uid);
    await assert.rejects(kubectl.create(pod("p1")), KubectlAlreadyExistsError);
    assert.equal(await kubectl.get("pod", "missing"), undefined);
    const missing = await kubectl.exec(["get", "pod", "missing"]).catch((e) => e);
    assert.ok(missing instanceof KubectlNotFoundError, String(missing));
    assert.equal(missing.reason, "NotFound");
    assert.match(missing.message, /^Cannot run "kubectl get": exit code 1: .*not found/);
    assert.equal(missing.extraInfo.exit_code, 1);
    assert.equal((await kubectl.get("pod", "p1"))?.metadata.labels?.app, "x");
    assert.deepEqual((await kubectl.list("pods", "app=x")).map((p) => p.metadata.name), ["p1"]);

    // The kubelet's status updates move the resourceVersion on too: claim until one holds.
    const claim = (version: string | undefined, value: string) => [
      { op: "test", path: "/metadata/resourceVersion", value: version },
      { op: "replace", path: "/metadata/labels/app", value },
    ];
    let claimed: KubeObject | undefined;
    let version: string | undefined;
    for (let attempt = 0; !claimed && attempt < 20; attempt++) {
      version = (await kubectl.get("pod", "p1"))!.metadata.resourceVersion;
      claimed = await kubectl.jsonPatch("pod", "p1", claim(version, "y")).catch((error) => {
        if (error instanceof KubectlConflictError) return undefined;
        throw error;
      });
    }
    assert.equal(claimed?.metadata.labels?.app, "y");
    await assert.rejects(kubectl.jsonPatch("pod", "p1", claim(version, "z")), KubectlConflictError);

    const invalid = await kubectl.create({ ...pod("bad"), spec: { containers: [] } }).catch((e) =>
      e
    );
    assert.ok(invalid instanceof KubectlError && !(invalid instanceof KubectlNotFoundError));
    assert.match(invalid.message, /^Cannot run "kubectl create": exit code 1: .*is invalid/);

    await kubectl.delete("pod", "p1", { gracePeriodSeconds: 0 });
    await kubectl.delete("pod", "p1");
    await waitUntil(async () => (await kubectl.get("pod", "p1")) === undefined, "p1 gone", 30_000);
    assert.ok(kubectl.spawned >= 10);
  },
);

kubeTest(
  "KubectlCli.watch() reports the pods there first, then changes, until aborted",
  async () => {
    await using standIn = await startKubeApiServer();
    const kubectl = new KubectlCli({ kubeconfig: standIn.kubeconfigPath, env: standIn.env });
    await kubectl.create(pod("before", { w: "1" }));
    await kubectl.create(pod("other", { w: "2" }));
    const events: WatchEvent[] = [];
    const stop = new AbortController();
    const watching = kubectl.watch("pods", "w=1", (event) => events.push(event), {
      signal: stop.signal,
    });
    const seen = () => events.map((e) => `${e.type} ${e.object.metadata.name}`);
    await waitUntil(() => seen().includes("ADDED before"), "the first ADDED", 30_000);
    await kubectl.create(pod("after", { w: "1" }));
    await kubectl.delete("pod", "before", { gracePeriodSeconds: 0 });
    await waitUntil(
      () => seen().includes("ADDED after") && seen().includes("DELETED before"),
      `ADDED after, DELETED before; got ${seen()}`,
      30_000,
    );
    assert.ok(!seen().some((e) => e.endsWith(" other")));
    stop.abort();
    await watching;
  },
);

kubeTest(
  "KubectlCli fails with UnavailableError naming kubectl's complaint when the server is away",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const config = `${dir}/kubeconfig`;
      await Deno.writeTextFile(
        config,
        [
          "apiVersion: v1",
          "kind: Config",
          "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]",
          "users: [{name: u, user: {}}]",
          "contexts: [{name: x, context: {cluster: c, user: u}}]",
          "current-context: x",
        ].join("\n"),
      );
      const kubectl = new KubectlCli({ kubeconfig: config, timeoutMs: 20_000 });
      const error = await kubectl.exec(["get", "pods"]).catch((e) => e);
      assert.ok(error instanceof UnavailableError, String(error));
      assert.match(error.message, /^Cannot run "kubectl get": exit code 1: .*127\.0\.0\.1:9/);
      const context = await new KubectlCli({ kubeconfig: config, context: "nope" })
        .exec(["get", "pods"]).catch((e) => e);
      assert.match(String(context.message), /context "nope" does not exist|nope/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
