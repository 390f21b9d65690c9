/**
 * `rock image build-runtime`: the runtime image of this rock's launcher, with the tag an admin of
 * the same rock looks for, or a named one holding the launcher's files; a failed build is one
 * line and exit code 1.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { dockerTest, TEST_IMAGE } from "../helpers/docker.ts";
import { testRuntimeImage } from "../helpers/kube/backend.ts";
import { type RockRun, runRock } from "../helpers/process.ts";

/** Runs `rock image build-runtime <args>` with a data dir sharing the tests' bundle cache. */
async function buildRuntime(args: string[]): Promise<RockRun> {
  const dataDir = await Deno.makeTempDir({ prefix: "rock-image-cli-test-" });
  try {
    await Deno.symlink(
      join(Deno.env.get("TMPDIR") ?? "/tmp", "rock-test-cache"),
      join(dataDir, "cache"),
    );
    return await runRock(["image", "build-runtime", "--data-dir", dataDir, ...args]);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

dockerTest(
  "rock image build-runtime prints the tag an admin of the same rock uses, found built",
  async () => {
    const built = await testRuntimeImage();
    const run = await buildRuntime(["--base", TEST_IMAGE]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${built}\n`);
  },
);

dockerTest(
  "rock image build-runtime --tag T builds T holding the launcher's files under /rock-runtime",
  async () => {
    const tag = `rock-test-runtime:${crypto.randomUUID().slice(0, 8)}`;
    const docker = new DockerCli();
    try {
      const run = await buildRuntime(["--base", TEST_IMAGE, "--tag", tag]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `${tag}\n`);
      const listing = await docker.exec([
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        tag,
        "-c",
        "cd /rock-runtime && ls bin lib lib/rocklet",
      ]);
      for (const file of ["deno", "rock", "rock-full.js", "rocklet_main.js"]) {
        assert.match(listing, new RegExp(`^${file}$`, "m"), listing);
      }
    } finally {
      await docker.exec(["image", "rm", "--force", tag]).catch(() => {});
    }
  },
);

dockerTest(
  "rock image build-runtime exits 1 with docker's complaint on one line when the base is missing",
  async () => {
    const run = await buildRuntime([
      "--base",
      "rock-test/no-such-base:1",
      "--tag",
      `rock-test-runtime:${crypto.randomUUID().slice(0, 8)}`,
    ]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /^error: Cannot run "docker build": .*no-such-base/);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
  },
);
