/**
 * The stand-in Kubernetes API server (tests/helpers/kube/) driven by the real kubectl, with its
 * pods running on the real docker engine.
 */
import assert from "node:assert/strict";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { TEST_IMAGE } from "../helpers/docker.ts";
import { jsonObjects } from "../helpers/kube/json_stream.ts";
import {
  kubectl,
  kubectlOk,
  KubectlProcess,
  kubeTest,
  readPod,
  waitForPod,
} from "../helpers/kube/kubectl.ts";
import { startKubeApiServer } from "../helpers/kube/stand_in.ts";
import type { KubeObject } from "../helpers/kube/store.ts";
import { waitUntil } from "../helpers/wait.ts";

const docker = new DockerCli();

/** A pod manifest running `command` in the test image. */
function podManifest(
  name: string,
  command: string[],
  extra: {
    labels?: Record<string, string>;
    spec?: Record<string, unknown>;
    container?: Record<string, unknown>;
  } = {},
): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels: extra.labels ?? {} },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 0,
      containers: [{ name: "main", image: TEST_IMAGE, command, ...extra.container }],
      ...extra.spec,
    },
  });
}

type Status = {
  phase?: string;
  podIP?: string;
  reason?: string;
  conditions?: { type: string; status: string; reason?: string }[];
  containerStatuses?: { state: Record<string, { reason?: string; exitCode?: number }> }[];
};

function statusOf(pod: KubeObject): Status {
  return (pod.status ?? {}) as Status;
}

function condition(pod: KubeObject, type: string) {
  return statusOf(pod).conditions?.find((c) => c.type === type);
}

/** The docker containers of a stand-in (running or not). */
async function containersOf(label: string): Promise<string[]> {
  return await docker.psByLabel(label);
}

kubeTest(
  "kube stand-in: an init container fills an emptyDir the main container serves, Ready at its pod IP and through kubectl proxy",
  async () => {
    await using standIn = await startKubeApiServer();
    const manifest = JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web", labels: { app: "web" } },
      spec: {
        restartPolicy: "Never",
        terminationGracePeriodSeconds: 0,
        volumes: [{ name: "data", emptyDir: {} }],
        initContainers: [{
          name: "init",
          image: TEST_IMAGE,
          command: ["bash", "-c", "echo served-from-emptydir > /data/index.html"],
          volumeMounts: [{ name: "data", mountPath: "/data" }],
        }],
        containers: [{
          name: "web",
          image: TEST_IMAGE,
          command: ["python3", "-m", "http.server", "8000", "--directory", "/data"],
          ports: [{ containerPort: 8000 }],
          volumeMounts: [{ name: "data", mountPath: "/data" }],
          readinessProbe: { httpGet: { path: "/index.html", port: 8000 }, periodSeconds: 1 },
        }],
      },
    });
    assert.match(await kubectlOk(standIn, ["create", "-f", "-"], manifest), /pod\/web created/);
    await kubectlOk(standIn, ["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);

    const pod = JSON.parse(await kubectlOk(standIn, ["get", "pod", "web", "-o", "json"]));
    assert.match(pod.status.podIP, /^127\.\d+\.\d+\.\d+$/);
    assert.notEqual(pod.status.podIP, "127.0.0.1");
    assert.equal(pod.status.hostIP, "127.0.0.1");
    assert.equal(pod.status.phase, "Running");
    assert.equal(pod.status.initContainerStatuses[0].state.terminated.reason, "Completed");
    const direct = await fetch(`http://${pod.status.podIP}:8000/index.html`);
    assert.equal((await direct.text()).trim(), "served-from-emptydir");

    await using proxy = new KubectlProcess(standIn, ["proxy", "--port=0"]);
    const [, port] = await proxy.waitFor(/Starting to serve on 127\.0\.0\.1:(\d+)/);
    const base = `http://127.0.0.1:${port}/api/v1/namespaces/${standIn.namespace}/pods`;
    const proxied = await fetch(`${base}/web:8000/proxy/index.html`);
    assert.equal(proxied.status, 200);
    assert.equal((await proxied.text()).trim(), "served-from-emptydir");
    const missing = await fetch(`${base}/web:8000/proxy/nothing-here`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();

    // The probe's and our requests are in the server's log.
    const logs = await kubectlOk(standIn, ["logs", "web", "-c", "web", "--tail=50"]);
    assert.match(logs, /GET \/index\.html HTTP\/1\.1" 200/);
    assert.ok((standIn.requests().proxy ?? 0) >= 2);
  },
);

kubeTest(
  "kube stand-in: label selectors, field selectors and a watch of ADDED, MODIFIED and DELETED",
  async () => {
    await using standIn = await startKubeApiServer();
    await using watch = new KubectlProcess(standIn, [
      "get",
      "pods",
      "-l",
      "app=a",
      "--watch",
      "--output-watch-events",
      "-o",
      "json",
    ]);
    const sleeper = ["sleep", "300"];
    await kubectlOk(
      standIn,
      ["create", "-f", "-"],
      podManifest("a1", sleeper, { labels: { app: "a", tier: "x" } }),
    );
    await kubectlOk(
      standIn,
      ["create", "-f", "-"],
      podManifest("a2", sleeper, { labels: { app: "a", tier: "y" } }),
    );
    await kubectlOk(
      standIn,
      ["create", "-f", "-"],
      podManifest("b1", sleeper, { labels: { app: "b" } }),
    );

    const names = async (args: string[]) =>
      JSON.parse(await kubectlOk(standIn, ["get", "pods", ...args, "-o", "json"])).items
        .map((item: KubeObject) => item.metadata.name);
    assert.deepEqual(await names(["-l", "app=a"]), ["a1", "a2"]);
    assert.deepEqual(await names(["-l", "app in (a,b),tier!=x"]), ["a2", "b1"]);
    assert.deepEqual(await names(["-l", "!tier"]), ["b1"]);
    assert.deepEqual(await names(["-l", "tier"]), ["a1", "a2"]);
    assert.deepEqual(await names(["--field-selector", "metadata.name=a2"]), ["a2"]);
    assert.deepEqual(await names(["--field-selector", "metadata.name!=a2", "-l", "app=a"]), ["a1"]);

    await kubectlOk(standIn, ["label", "pod", "a1", "claimed=yes"]);
    // Leaving the selection counts as DELETED for the watch, as in the real API.
    await kubectlOk(standIn, ["label", "pod", "a2", "app=c", "--overwrite"]);
    await kubectlOk(standIn, ["delete", "pod", "a1", "--wait=true"]);
    let events: { type: string; object: KubeObject }[] = [];
    const seen = () => events.map((event) => `${event.type} ${event.object.metadata.name}`);
    await waitUntil(
      () => {
        events = jsonObjects(watch.stdout).objects as typeof events;
        return seen().includes("DELETED a1");
      },
      `the watch showing a1 deleted; got ${seen()}`,
      30_000,
    ).catch((error) => {
      throw new Error(`${error.message}; events: ${seen().join(", ")}`);
    });
    assert.deepEqual(seen().filter((entry) => entry.startsWith("ADDED")), ["ADDED a1", "ADDED a2"]);
    assert.ok(seen().includes("DELETED a2"), `a2 relabelled away: ${seen()}`);
    assert.ok(
      events.some((e) => e.type === "MODIFIED" && e.object.metadata.labels?.claimed === "yes"),
      `a1 labelled: ${seen()}`,
    );
    assert.ok(!seen().some((entry) => entry.endsWith(" b1")), `b1 is not app=a: ${seen()}`);
    const versions = events.map((event) => Number(event.object.metadata.resourceVersion));
    assert.deepEqual(versions, [...versions].sort((a, b) => a - b));
    assert.ok((standIn.requests().watch ?? 0) >= 1);
  },
);

kubeTest(
  "kube stand-in: a patch carrying a stale resourceVersion is a Conflict, a fresh one applies",
  async () => {
    await using standIn = await startKubeApiServer();
    await kubectlOk(
      standIn,
      ["create", "-f", "-"],
      podManifest("p", ["sleep", "300"], { labels: { pool: "warm" } }),
    );
    const version = (await readPod(standIn, "p"))!.metadata.resourceVersion;
    await kubectlOk(standIn, [
      "label",
      "pod",
      "p",
      "pool=claimed",
      "--overwrite",
      `--resource-version=${version}`,
    ]);
    const stale = await kubectl(standIn, [
      "label",
      "pod",
      "p",
      "pool=other",
      "--overwrite",
      `--resource-version=${version}`,
    ]);
    assert.notEqual(stale.code, 0);
    assert.match(
      stale.stderr,
      /Error from server \(Conflict\): Operation cannot be fulfilled on pods "p"/,
    );
    assert.equal((await readPod(standIn, "p"))!.metadata.labels?.pool, "claimed");

    // Straight to the API: merge patch with a precondition, and a JSON patch with a test op.
    const url = `${standIn.url}/api/v1/namespaces/${standIn.namespace}/pods/p`;
    const patch = (type: string, body: unknown) =>
      fetch(url, {
        method: "PATCH",
        headers: { "content-type": type },
        body: JSON.stringify(body),
      });
    const merge = await patch("application/merge-patch+json", {
      metadata: { resourceVersion: version, labels: { pool: "x" } },
    });
    assert.equal(merge.status, 409);
    assert.equal((await merge.json()).reason, "Conflict");
    const test = await patch("application/json-patch+json", [
      { op: "test", path: "/metadata/resourceVersion", value: version },
      { op: "replace", path: "/metadata/labels/pool", value: "x" },
    ]);
    assert.equal(test.status, 422);
    await test.body?.cancel();
    const current = (await readPod(standIn, "p"))!.metadata.resourceVersion;
    const fresh = await patch("application/strategic-merge-patch+json", {
      metadata: { resourceVersion: current, labels: { pool: "mine" } },
    });
    assert.equal(fresh.status, 200);
    const patched = await fresh.json();
    assert.equal(patched.metadata.labels.pool, "mine");
    assert.ok(Number(patched.metadata.resourceVersion) > Number(current));
  },
);

kubeTest(
  "kube stand-in: kubectl prints the API's NotFound, AlreadyExists and Invalid errors",
  async () => {
    await using standIn = await startKubeApiServer();
    const missing = await kubectl(standIn, ["get", "pod", "nope"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Error from server \(NotFound\): pods "nope" not found/);
    const manifest = podManifest("twice", ["sleep", "300"]);
    await kubectlOk(standIn, ["create", "-f", "-"], manifest);
    const again = await kubectl(standIn, ["create", "-f", "-"], manifest);
    assert.match(again.stderr, /Error from server \(AlreadyExists\).*pods "twice" already exists/);
    const invalid = await kubectl(
      standIn,
      ["create", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "empty" },
        spec: { containers: [] },
      }),
    );
    assert.match(invalid.stderr, /The Pod "empty" is invalid: spec.containers: Required value/);
    const otherNamespace = await kubectl(standIn, ["get", "pods", "-n", "nowhere", "-o", "json"]);
    assert.equal(JSON.parse(otherNamespace.stdout).items.length, 0);
  },
);

kubeTest(
  "kube stand-in: kubectl delete and close() remove the pods' containers and volumes",
  async () => {
    const standIn = await startKubeApiServer();
    try {
      const manifest = JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "gone" },
        spec: {
          restartPolicy: "Never",
          terminationGracePeriodSeconds: 1,
          volumes: [{ name: "scratch", emptyDir: {} }],
          containers: [{
            name: "main",
            image: TEST_IMAGE,
            command: ["sleep", "300"],
            volumeMounts: [{ name: "scratch", mountPath: "/scratch" }],
          }],
        },
      });
      await kubectlOk(standIn, ["create", "-f", "-"], manifest);
      await kubectlOk(standIn, ["create", "-f", "-"], podManifest("kept", ["sleep", "300"]));
      await waitForPod(standIn, "gone", (pod) => statusOf(pod).phase === "Running", "running");
      await waitForPod(standIn, "kept", (pod) => statusOf(pod).phase === "Running", "running");
      assert.equal((await containersOf(standIn.dockerLabel)).length, 2);
      const volumes = () =>
        docker.exec(["volume", "ls", "--quiet", "--filter", `label=${standIn.dockerLabel}`]);
      assert.equal((await volumes()).trim().split("\n").length, 1);
      assert.match(await kubectlOk(standIn, ["delete", "pod", "gone"]), /pod "gone" deleted/);
      assert.equal(await readPod(standIn, "gone"), undefined);
      assert.equal((await containersOf(standIn.dockerLabel)).length, 1);
      assert.equal((await volumes()).trim(), "");
    } finally {
      await standIn.close();
    }
    assert.deepEqual(await containersOf(standIn.dockerLabel), []);
  },
);

kubeTest(
  "kube stand-in: a missing image leaves the pod Pending in ImagePullBackOff with a Failed event",
  async () => {
    await using standIn = await startKubeApiServer();
    await kubectlOk(
      standIn,
      ["create", "-f", "-"],
      podManifest("noimage", ["true"], {
        container: { image: "rock-test/does-not-exist:1", imagePullPolicy: "IfNotPresent" },
      }),
    );
    const pod = await waitForPod(
      standIn,
      "noimage",
      (pod) => statusOf(pod).containerStatuses?.[0]?.state.waiting?.reason === "ImagePullBackOff",
      "ImagePullBackOff",
    );
    assert.equal(statusOf(pod).phase, "Pending");
    const events = JSON.parse(
      await kubectlOk(standIn, [
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=noimage",
        "-o",
        "json",
      ]),
    ).items as { type: string; reason: string; message: string }[];
    assert.ok(
      events.some((e) =>
        e.type === "Warning" && e.reason === "Failed" &&
        e.message.startsWith('Failed to pull image "rock-test/does-not-exist:1"')
      ),
      JSON.stringify(events),
    );
    assert.deepEqual(await containersOf(standIn.dockerLabel), []);
  },
);

kubeTest(
  "kube stand-in: a nodeSelector no node meets leaves the pod Pending, Unschedulable",
  async () => {
    await using standIn = await startKubeApiServer();
    await kubectlOk(
      standIn,
      ["create", "-f", "-"],
      podManifest("nowhere", ["true"], {
        spec: { nodeSelector: { "kubernetes.io/hostname": "another-node" } },
      }),
    );
    const pod = await waitForPod(
      standIn,
      "nowhere",
      (pod) => condition(pod, "PodScheduled") !== undefined,
      "a PodScheduled condition",
    );
    assert.deepEqual(
      {
        status: condition(pod, "PodScheduled")?.status,
        reason: condition(pod, "PodScheduled")?.reason,
      },
      { status: "False", reason: "Unschedulable" },
    );
    assert.equal(statusOf(pod).phase, "Pending");
    assert.equal(statusOf(pod).podIP, undefined);
    const events = await kubectlOk(standIn, [
      "get",
      "events",
      "--field-selector",
      "involvedObject.name=nowhere,reason=FailedScheduling",
      "-o",
      "json",
    ]);
    assert.equal(JSON.parse(events).items.length, 1);
    // A selector the node meets schedules.
    await kubectlOk(
      standIn,
      ["create", "-f", "-"],
      podManifest("here", ["sleep", "300"], {
        spec: { nodeSelector: { "kubernetes.io/os": "linux" } },
      }),
    );
    await waitForPod(standIn, "here", (pod) => statusOf(pod).phase === "Running", "running");
  },
);

kubeTest(
  "kube stand-in: a container past its memory limit ends OOMKilled and the pod Failed",
  async () => {
    await using standIn = await startKubeApiServer();
    await kubectlOk(
      standIn,
      ["create", "-f", "-"],
      podManifest("hungry", [
        "python3",
        "-c",
        "x = bytearray(256 * 1024 * 1024); import time; time.sleep(60)",
      ], { container: { resources: { limits: { memory: "64Mi", cpu: "500m" } } } }),
    );
    const pod = await waitForPod(
      standIn,
      "hungry",
      (pod) => statusOf(pod).phase === "Failed",
      "Failed",
    );
    assert.equal(statusOf(pod).containerStatuses?.[0]?.state.terminated?.reason, "OOMKilled");
    const inspect = await docker.inspectContainers(await containersOf(standIn.dockerLabel));
    assert.equal(inspect[0]?.HostConfig.Memory, 64 * 1024 * 1024);
    assert.equal(inspect[0]?.HostConfig.NanoCpus, 500_000_000);
  },
);

kubeTest(
  "kube stand-in: a pod past activeDeadlineSeconds fails with DeadlineExceeded; a finished one Succeeded",
  async () => {
    await using standIn = await startKubeApiServer();
    await kubectlOk(
      standIn,
      ["create", "-f", "-"],
      podManifest("late", ["sleep", "300"], { spec: { activeDeadlineSeconds: 1 } }),
    );
    await kubectlOk(
      standIn,
      ["create", "-f", "-"],
      podManifest("done", ["bash", "-c", "echo finished; exit 0"]),
    );
    const late = await waitForPod(
      standIn,
      "late",
      (pod) => statusOf(pod).containerStatuses?.[0]?.state.terminated !== undefined,
      "container ended",
    );
    assert.deepEqual({ phase: statusOf(late).phase, reason: statusOf(late).reason }, {
      phase: "Failed",
      reason: "DeadlineExceeded",
    });
    const done = await waitForPod(
      standIn,
      "done",
      (pod) => statusOf(pod).phase === "Succeeded",
      "Succeeded",
    );
    assert.equal(statusOf(done).containerStatuses?.[0]?.state.terminated?.exitCode, 0);
    assert.equal((await kubectlOk(standIn, ["logs", "done"])).trim(), "finished");
  },
);
