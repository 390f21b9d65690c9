/**
 * ImageCleanupTask against real docker images: copies of the test image with distinct layers,
 * a threshold that forces some out; the least recently used go first and an image a running
 * sandbox uses stays.
 */
import assert from "node:assert/strict";
import {
  ImageCleanupTask,
  parseDockerSize,
} from "../../src/admin/scheduler/tasks/image_cleanup.ts";
import { silentLogger } from "../../src/common/log.ts";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { post, startAdminServer, testRecord, waitRunning } from "../helpers/admin_server.ts";
import { dockerTest, TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";

Deno.test("parseDockerSize() reads docker's decimal sizes", () => {
  assert.equal(parseDockerSize("169.9MB"), 169_900_000);
  assert.equal(parseDockerSize("512kB"), 512_000);
  assert.equal(parseDockerSize("1.5GB"), 1_500_000_000);
  assert.equal(parseDockerSize("0B"), 0);
});

/** Makes image `ref` from the test image plus `megabytes` of random data (its own layer). */
async function makeImage(docker: DockerCli, ref: string, megabytes: number): Promise<void> {
  const name = `rock-test-imgsrc-${crypto.randomUUID().slice(0, 8)}`;
  await docker.exec([
    "run",
    "--name",
    name,
    "--entrypoint",
    "sh",
    TEST_IMAGE,
    "-c",
    `head -c ${megabytes}M /dev/urandom > /payload`,
  ]);
  try {
    await docker.exec(["commit", name, ref]);
  } finally {
    await docker.remove([name]);
  }
}

async function diskUse(docker: DockerCli): Promise<number> {
  const out = await docker.exec(["system", "df", "--format", "{{json .}}"]);
  return parseDockerSize(
    out.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((r) => r.Type === "Images").Size,
  );
}

dockerTest(
  "ImageCleanupTask removes least recently used images first and keeps one a running sandbox uses",
  async () => {
    const docker = new DockerCli();
    const tag = crypto.randomUUID().slice(0, 6);
    const refOf = (n: string) => `rock-test/cleanup-${n}:${tag}`;
    const [oldest, recent, busy] = [refOf("old"), refOf("recent"), refOf("busy")];
    await using admin = await startAdminServer("docker");
    const busyId = testSandboxId("busy");
    // Only this test's images are candidates: others on the engine (another run's) stay.
    const mine = [oldest, recent, busy];
    const keep = [TEST_IMAGE];
    try {
      for (const ref of [busy, oldest, recent]) await makeImage(docker, ref, 8);
      // Last use from rock's own records: `recent` was used just now, `oldest` long ago.
      const now = Date.now();
      for (const [ref, at] of [[oldest, now - 3_600_000], [recent, now - 1000]] as const) {
        await admin.store.sandboxes.insert(testRecord(testSandboxId("used"), {
          state: "stopped",
          image: ref,
          backend: "docker",
          expire_at: at,
          create_time: at,
          start_time: at,
          stop_time: at,
          stop_reason: "stop requested",
        }));
      }
      // `busy` is the oldest image of all, but a running sandbox uses it.
      await post(admin.api, "/start_async", {
        sandbox_id: busyId,
        image: busy,
        pull: "never",
        memory: "512m",
        cpus: 1,
      });
      assert.equal((await waitRunning(admin.api, busyId)).result.state, "running");

      const use = await diskUse(docker);
      const ctx = {
        manager: admin.manager,
        store: admin.store,
        backend: admin.backend,
        docker,
        dataDir: admin.dataDir,
        logger: silentLogger,
        signal: new AbortController().signal,
      };
      // Room for all but about one 8 MB layer: the least recently used free image goes first
      // (and, should other images have grown the engine's disk use meanwhile, the next).
      const one = new ImageCleanupTask({
        intervalSeconds: 1,
        params: { threshold: `${use - 4_000_000}b`, keep, only: mine },
      });
      const first = await one.runAction(ctx) as { removed: string[] };
      assert.deepEqual(first.removed, [oldest, recent].slice(0, Math.max(1, first.removed.length)));
      assert.equal(
        await docker.call(["image", "inspect", oldest]).then((r) => r.code),
        1,
        "oldest is gone",
      );
      // Far below what remains: everything free goes, but not the busy image nor the kept base.
      const all = new ImageCleanupTask({
        intervalSeconds: 1,
        params: { disk_threshold: "1m", keep, only: mine },
      });
      const second = await all.runAction(ctx) as { removed: string[] };
      assert.deepEqual([...first.removed, ...second.removed], [oldest, recent]);
      for (const ref of [busy, TEST_IMAGE]) {
        assert.equal((await docker.call(["image", "inspect", ref])).code, 0, `${ref} stays`);
      }
      const under = new ImageCleanupTask(
        { intervalSeconds: 1, params: { threshold: "1T" } },
        docker,
      );
      assert.deepEqual(
        (await under.runAction(ctx) as { removed: string[] }).removed,
        [],
        "nothing goes under the threshold",
      );
    } finally {
      await post(admin.api, "/stop", { sandbox_id: busyId }).catch(() => {});
      await docker.call(["rmi", oldest, recent, busy]);
    }
  },
);
