/**
 * Sandboxes killed for memory on the kubernetes backend (stand-in): the container ends
 * terminated with reason OOMKilled, as a kubelet reports it when the container's main process
 * (the rocklet) is killed by the kernel for memory, and the sandbox ends failed naming it.
 *
 * A command that outgrows the limit is what the kernel kills first in docker's cgroup v1 (the
 * biggest process), and the rocklet goes on; a real node does the same on cgroup v1, while on
 * cgroup v2 with Kubernetes 1.28 or later (`memory.oom.group`, unless the kubelet's
 * `singleProcessOOMKill`) the whole container goes. So these tests make the rocklet the one
 * the kernel picks (its own oom_score_adj raised to 1000, which needs no privilege), or have the
 * container's main process take more memory than the limit before it becomes the rocklet (how
 * little memory a rocklet's start needs depends on whose page cache its binary is in, so a small
 * limit alone does not always stop it).
 */
import assert from "node:assert/strict";
import { get, post, startAdminServer, startSandbox, waitRunning } from "../helpers/admin_server.ts";
import { TEST_IMAGE, testRockletLauncher, testSandboxId } from "../helpers/docker.ts";
import type { RockletLauncher } from "../../src/sandbox/rocklet_launcher.ts";
import { kubeTest } from "../helpers/kube/kubectl.ts";

kubeTest(
  "admin (kubernetes): a sandbox whose rocklet the kernel kills for memory ends failed naming OOMKilled within seconds",
  async () => {
    await using admin = await startAdminServer("kubernetes");
    const id = await startSandbox(admin, "koom", { memory: "256m", cpus: 0.5 });
    const began = performance.now();
    // The rocklet is pid 1 of the sandbox container; the command dies with it (no answer).
    await post(admin.api, "/execute", {
      sandbox_id: id,
      command: "echo 1000 > /proc/1/oom_score_adj && python3 -c 'b = bytearray(512 << 20)'",
      shell: true,
    }).catch(() => undefined);
    let status = (await get(admin.api, `/get_status?sandbox_id=${id}`)).result;
    while (status.state === "running" && performance.now() - began < 20_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await get(admin.api, `/get_status?sandbox_id=${id}`)).result;
    }
    const seconds = (performance.now() - began) / 1000;
    assert.equal(status.rock_state, "failed", JSON.stringify(status));
    assert.match(status.stop_reason ?? "", /OOMKilled/, JSON.stringify(status));
    assert.equal(status.failure_kind, "oom");
    assert.ok(seconds < 10, `${seconds} s`);
  },
);

kubeTest(
  "admin (kubernetes): a sandbox whose rocklet cannot start within its memory ends failed in container_start naming OOMKilled",
  async () => {
    // The container's main process fills 64 MiB (one process, so it is the one the kernel kills)
    // before it would exec the rocklet.
    const rocklet = await testRockletLauncher();
    const launcher: RockletLauncher = {
      ...rocklet,
      containerCommand: (port) => [
        "python3",
        "-c",
        "import os, sys; big = b'a' * (64 << 20); os.execvp(sys.argv[1], sys.argv[1:])",
        ...rocklet.containerCommand(port),
      ],
    };
    await using admin = await startAdminServer("kubernetes", { launcher });
    const id = testSandboxId("ktiny");
    const started = await post(admin.api, "/start_async", {
      sandbox_id: id,
      image: TEST_IMAGE,
      pull: "never",
      memory: "16m",
      cpus: 0.5,
    });
    assert.equal(started.status, "Success", JSON.stringify(started));
    const began = performance.now();
    const status = (await waitRunning(admin.api, id, 60_000)).result;
    const seconds = (performance.now() - began) / 1000;
    assert.equal(status.rock_state, "failed", JSON.stringify(status));
    assert.equal(status.status.container_start.status, "failed", JSON.stringify(status));
    assert.match(status.status.container_start.message, /OOMKilled/);
    assert.match(status.failure_reason ?? "", /OOMKilled/);
    assert.equal(status.failure_kind, "oom");
    assert.ok(seconds < 20, `${seconds} s`);
  },
);
