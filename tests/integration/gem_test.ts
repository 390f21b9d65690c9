/**
 * GEM environments: the rocklet's python bridge on this machine (LocalRuntime, with a stand-in
 * gem module the test points python at), and the admin's `/apis/v1/envs/gem` routes on docker
 * through the SDK's GemEnv, with an image holding the stand-in.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { GemEnvError, GemEnvNotFoundError, GemUnavailableError } from "../../src/common/errors.ts";
import { LocalRuntime } from "../../src/runtime/local_runtime.ts";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { GemEnv } from "../../src/sdk/gem.ts";
import { get, startAdminServer } from "../helpers/admin_server.ts";
import { dockerTest, TEST_IMAGE } from "../helpers/docker.ts";
import { hostToolTest } from "../helpers/host_tools.ts";

const STAND_IN = new URL("../fixtures/gem_stand_in", import.meta.url).pathname;

/** A python command that finds the stand-in gem first (`dir`: where gem lives, or none). */
async function pythonWith(
  dir: string | undefined,
): Promise<{ python: string; cleanup(): Promise<void> }> {
  const temp = await Deno.makeTempDir({ prefix: "rock-gem-test-" });
  const python = join(temp, "python");
  const path = dir ? `PYTHONPATH='${dir}' ` : "";
  await Deno.writeTextFile(python, `#!/bin/sh\n${path}exec python3 "$@"\n`);
  await Deno.chmod(python, 0o755);
  return { python, cleanup: () => Deno.remove(temp, { recursive: true }) };
}

hostToolTest(
  ["python3"],
  "GEM on the runtime: make, list, reset(seed), three steps, close",
  async () => {
    const { python, cleanup } = await pythonWith(STAND_IN);
    const runtime = new LocalRuntime({ gemPython: python });
    try {
      assert.deepEqual(await runtime.envMake({ env_id: "rock:Counter-v0", sandbox_id: "s1" }), {
        sandbox_id: "s1",
      });
      assert.deepEqual((await runtime.envList()).env_id.sort(), [
        "rock:Broken-v0",
        "rock:Counter-v0",
      ]);
      assert.deepEqual(await runtime.envReset({ sandbox_id: "s1", seed: 41 }), {
        observation: "count from 41",
        info: { seed: 41 },
      });
      // The environment prints on stdout: the replies are not disturbed.
      const steps = [];
      for (const action of ["42", "7", "44"]) {
        steps.push(await runtime.envStep({ sandbox_id: "s1", action }));
      }
      assert.deepEqual(steps.map((s) => [s.observation, s.reward, s.terminated, s.truncated]), [
        ["heard 42", 1, false, false],
        ["heard 7", 0, false, false],
        ["heard 44", 1, true, false],
      ]);
      assert.deepEqual(steps[2]?.info, { step: 3, expected: "44" });
      assert.deepEqual(await runtime.envClose({ sandbox_id: "s1" }), { sandbox_id: "s1" });
      await assert.rejects(runtime.envStep({ sandbox_id: "s1", action: "1" }), GemEnvNotFoundError);
    } finally {
      await runtime.close();
      await cleanup();
    }
  },
);

hostToolTest(
  ["python3"],
  "GEM failures are typed: the environment's error, no gem, no python",
  async () => {
    const withGem = await pythonWith(STAND_IN);
    const withoutGem = await pythonWith(undefined);
    const runtime = new LocalRuntime({ gemPython: withGem.python });
    try {
      await runtime.envMake({ env_id: "rock:Broken-v0", sandbox_id: "b" });
      await assert.rejects(runtime.envStep({ sandbox_id: "b", action: "1" }), (error) => {
        assert.ok(error instanceof GemEnvError);
        assert.equal(error.extraInfo.error_type, "ValueError");
        assert.match(String(error.extraInfo.traceback), /broken on purpose/);
        return true;
      });
      // The bridge survives the environment's error.
      assert.equal((await runtime.envReset({ sandbox_id: "b" })).observation, "count from 0");
      await assert.rejects(
        runtime.envMake({ env_id: "rock:Missing-v0", sandbox_id: "m" }),
        (error) => error instanceof GemEnvError && error.extraInfo.error_type === "ValueError",
      );
      const noGem = new LocalRuntime({ gemPython: withoutGem.python });
      await assert.rejects(
        noGem.envMake({ env_id: "rock:Counter-v0", sandbox_id: "x" }),
        (error) => error instanceof GemUnavailableError && /gem package/.test(error.message),
      );
      const noPython = new LocalRuntime({ gemPython: "/nonexistent/python3" });
      await assert.rejects(noPython.envList(), GemUnavailableError);
    } finally {
      await runtime.close();
      await withGem.cleanup();
      await withoutGem.cleanup();
    }
  },
);

/** Builds an image from the test image with the stand-in gem in python's dist-packages. */
async function buildGemImage(docker: DockerCli, tag: string): Promise<void> {
  const context = await Deno.makeTempDir({ prefix: "rock-gem-image-" });
  try {
    await new Deno.Command("cp", { args: ["-r", join(STAND_IN, "gem"), context] }).output();
    await Deno.writeTextFile(
      join(context, "Dockerfile"),
      `FROM ${TEST_IMAGE}\nCOPY gem /usr/local/lib/python3.11/dist-packages/gem\n`,
    );
    await docker.exec(["build", "--quiet", "--pull=false", "--tag", tag, context], {
      timeoutMs: 300_000,
    });
  } finally {
    await Deno.remove(context, { recursive: true });
  }
}

dockerTest("GEM through the admin on docker: make -> reset(seed) -> 3 steps -> close", async () => {
  const docker = new DockerCli();
  const tag = `rock-test/gem-stand-in:${crypto.randomUUID().slice(0, 8)}`;
  await buildGemImage(docker, tag);
  try {
    await using admin = await startAdminServer("docker", { gemImage: tag });
    const env = await GemEnv.make("rock:Counter-v0", { baseUrl: admin.url });
    const status = (await get(admin.api, `/get_status?sandbox_id=${env.sandboxId}`)).result;
    assert.equal(status?.state, "running");
    assert.equal(status?.image, tag);
    assert.deepEqual(await env.list(), ["rock:Counter-v0", "rock:Broken-v0"]);
    assert.deepEqual(await env.reset(9), { observation: "count from 9", info: { seed: 9 } });
    const rewards = [];
    for (const action of ["10", "11", "99"]) rewards.push((await env.step(action)).reward);
    assert.deepEqual(rewards, [1, 1, 0]);
    // ROCK's wire: raw JSON, no envelope.
    const raw = await fetch(`${admin.url}/apis/v1/envs/gem/step`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sandbox_id: env.sandboxId, action: "100" }),
    });
    assert.equal(raw.status, 200);
    assert.deepEqual(Object.keys(await raw.json()).sort(), [
      "info",
      "observation",
      "reward",
      "terminated",
      "truncated",
    ]);
    await env.close();
    const after = (await get(admin.api, `/get_status?sandbox_id=${env.sandboxId}`)).result;
    assert.equal(after?.state, "stopped");
    const bad = await fetch(`${admin.url}/apis/v1/envs/gem/make`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({}),
    });
    assert.equal(bad.status, 422);
    assert.match((await bad.json()).detail, /env_id/);
  } finally {
    await docker.exec(["image", "rm", "--force", tag]).catch(() => "");
  }
});

dockerTest(
  "GEM make on an image without gem: a clear typed error, the sandbox stopped",
  async () => {
    await using admin = await startAdminServer("docker", { gemImage: TEST_IMAGE });
    let failure: unknown;
    try {
      await GemEnv.make("rock:Counter-v0", { baseUrl: admin.url });
    } catch (error) {
      failure = error;
    }
    assert.ok(failure instanceof GemUnavailableError, String(failure));
    assert.match((failure as Error).message, /cannot import the gem package/);
    const running = await admin.store.sandboxes.listByState(["pending", "running"]);
    assert.deepEqual(running, []);
  },
);
