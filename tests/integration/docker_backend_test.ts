/** DockerBackend against a real docker engine, with the real rocklet inside the container. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CancelledError, RockError } from "../../src/common/errors.ts";
import { pollUntil } from "../../src/common/poll.ts";
import type { PhaseUpdate, SandboxSpec } from "../../src/sandbox/backend.ts";
import { DockerBackend, dockerRunArgs, registryOf } from "../../src/sandbox/docker_backend.ts";
import { DockerCli, ImageMissingError, PortTakenError } from "../../src/sandbox/docker_cli.ts";
import type { RockletLauncher } from "../../src/sandbox/rocklet_launcher.ts";
import { RockletClient } from "../../src/sdk/rocklet_client.ts";
import {
  containersNamed,
  dockerTest,
  privateDockerConfigs,
  TEST_IMAGE,
  testRockletLauncher,
  testSandboxId,
} from "../helpers/docker.ts";

const MiB = 1024 * 1024;
const docker = new DockerCli();

/** A spec for the test image with small limits. */
function specFor(sandboxId: string, overrides: Partial<SandboxSpec> = {}): SandboxSpec {
  return {
    sandboxId,
    image: TEST_IMAGE,
    pull: "missing",
    memoryBytes: 512 * MiB,
    cpus: 1,
    env: { ROCK_TEST_VAR: "from-spec" },
    ...overrides,
  };
}

/** Places `spec` and records the phases reported, whether or not placement succeeds. */
async function placeRecording(
  backend: DockerBackend,
  spec: SandboxSpec,
  signal?: AbortSignal,
): Promise<{ phases: PhaseUpdate[]; result: PromiseSettledResult<unknown> }> {
  const phases: PhaseUpdate[] = [];
  const [result] = await Promise.allSettled([
    backend.place(spec, { onPhase: (update) => phases.push(update), signal }),
  ]);
  return { phases, result };
}

/** Polls `/is_alive` with a short backoff until it answers; returns the milliseconds waited. */
async function waitAlive(client: RockletClient, timeoutMs = 20_000): Promise<number> {
  const start = performance.now();
  let delay = 10;
  let last: unknown;
  while (performance.now() - start < timeoutMs) {
    try {
      if ((await client.isAlive()).is_alive) return performance.now() - start;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 100);
  }
  throw new Error(`Rocklet did not answer /is_alive within ${timeoutMs} ms: ${last}`);
}

Deno.test("registryOf() names the registry of an image reference, or '' for Docker Hub", () => {
  assert.equal(registryOf("python:3.11"), "");
  assert.equal(registryOf("library/python:3.11"), "");
  assert.equal(registryOf("reg.example.com/team/app:1"), "reg.example.com");
  assert.equal(registryOf("127.0.0.1:5000/app"), "127.0.0.1:5000");
  assert.equal(registryOf("localhost/app"), "localhost");
});

Deno.test("dockerRunArgs() builds the docker run argv: limits, loopback ports, mounts, entrypoint", () => {
  const launcher: RockletLauncher = {
    hostCommand: () => [],
    hostEnv: () => ({}),
    containerMounts: () => [{ source: "/host/deno", target: "/rock/bin/deno" }],
    containerEnv: () => ({ DENO_DIR: "/tmp/d" }),
    containerCommand: (port) => ["/rock/bin/deno", "run", "x.js", "--port", String(port)],
  };
  const args = dockerRunArgs(specFor("rock-test-args", { memoryBytes: 1024, cpus: 0.5 }), {
    launcher,
    publishIp: "127.0.0.1",
    extraRunArgs: ["--network", "none"],
  });
  assert.deepEqual(args, [
    "-d",
    "--init",
    "--pull=never",
    "--name",
    "rock-test-args",
    "--label",
    "rock.sandbox_id=rock-test-args",
    "-p",
    "127.0.0.1::22555",
    "--memory=1024b",
    "--memory-swap=1024b",
    "--cpus=0.5",
    "-e",
    "ROCK_TEST_VAR=from-spec",
    "-e",
    "DENO_DIR=/tmp/d",
    "-v",
    "/host/deno:/rock/bin/deno:ro",
    "--entrypoint",
    "/rock/bin/deno",
    "--network",
    "none",
    TEST_IMAGE,
    "run",
    "x.js",
    "--port",
    "22555",
  ]);
});

dockerTest(
  // list() and remove() of a placed sandbox: the backend contract (backend_docker_test.ts).
  "DockerBackend places a sandbox with loopback ports and limits whose rocklet runs commands",
  async (t) => {
    const launcher = await testRockletLauncher();
    const backend = new DockerBackend({ type: "docker", launcher });
    const id = testSandboxId("place");
    try {
      const { phases, result } = await placeRecording(backend, specFor(id));
      assert.equal(result.status, "fulfilled", String((result as PromiseRejectedResult).reason));
      const placement =
        (result as PromiseFulfilledResult<Awaited<ReturnType<DockerBackend["place"]>>>)
          .value;

      await t.step("reports image_pull success then docker_run running, in order", () => {
        assert.deepEqual(phases, [
          { name: "image_pull", status: "success", message: "use cached image, skip image pull" },
          { name: "docker_run", status: "running", message: "docker run running" },
        ]);
      });

      await t.step("publishes the rocklet's port on 127.0.0.1, and no other", async () => {
        assert.equal(placement.hostIp, "127.0.0.1");
        assert.deepEqual(Object.keys(placement.portMapping), ["22555"]);
        const inspect = await docker.inspectContainer(placement.handle);
        const ports = inspect?.NetworkSettings.Ports ?? {};
        assert.deepEqual(Object.keys(ports), ["22555/tcp"]);
        const bindings = ports["22555/tcp"] ?? [];
        assert.ok(bindings.length > 0, "no binding for 22555/tcp");
        for (const binding of bindings) assert.equal(binding.HostIp, "127.0.0.1");
      });

      await t.step("applies the memory and cpu limits", async () => {
        const inspect = await docker.inspectContainer(placement.handle);
        assert.equal(inspect?.HostConfig.Memory, 512 * MiB);
        assert.equal(inspect?.HostConfig.NanoCpus, 1e9);
        assert.equal(inspect?.Config.Labels?.["rock.sandbox_id"], id);
      });

      await t.step("the rocklet answers and runs a command in a session", async () => {
        const client = new RockletClient(`http://127.0.0.1:${placement.portMapping["22555"]}`);
        await waitAlive(client);
        await client.createSession({ session: "s1", env_enable: true });
        const observation = await client.runInSession({
          session: "s1",
          command: "cat /etc/os-release; python3 --version; whoami; echo $ROCK_TEST_VAR",
        });
        assert.equal(observation.exit_code, 0, observation.output);
        assert.match(observation.output, /VERSION_CODENAME=bookworm/);
        assert.match(observation.output, /Python 3\.\d+/);
        assert.match(observation.output, /\nroot\n/);
        assert.match(observation.output, /from-spec$/);
        await client.closeSession({ session: "s1" });
      });
    } finally {
      await docker.remove([id]);
    }
  },
);

dockerTest(
  "DockerBackend.place() fails in image_pull and creates nothing when pull is never and the image is missing",
  async () => {
    const backend = new DockerBackend({ type: "docker", launcher: await testRockletLauncher() });
    const id = testSandboxId("never");
    const image = "rock-test/does-not-exist:never";
    try {
      const { phases, result } = await placeRecording(
        backend,
        specFor(id, { image, pull: "never" }),
      );
      assert.equal(result.status, "rejected");
      const error = (result as PromiseRejectedResult).reason;
      assert.ok(error instanceof RockError);
      assert.equal(
        error.message,
        `Cannot start sandbox "${id}": image "${image}" not found locally and pull policy is "never"`,
      );
      assert.deepEqual(phases, [{
        name: "image_pull",
        status: "failed",
        message: `Image "${image}" not found locally and pull policy is "never"`,
      }]);
      assert.deepEqual(await containersNamed(id), []);
    } finally {
      await docker.remove([id]);
    }
  },
);

dockerTest(
  "DockerBackend.place() reports docker_run failed with docker's stderr when a run argument is invalid",
  async () => {
    const launcher = await testRockletLauncher();
    const backend = new DockerBackend({
      type: "docker",
      launcher,
      extraRunArgs: ["--memory=lots"],
    });
    const id = testSandboxId("badarg");
    try {
      const { phases, result } = await placeRecording(backend, specFor(id));
      assert.equal(result.status, "rejected");
      const error = (result as PromiseRejectedResult).reason as RockError;
      assert.match(
        error.message,
        /^Cannot start sandbox ".*": docker run failed: exit code 125: .*lots/s,
      );
      const last = phases.at(-1)!;
      assert.equal(last.name, "docker_run");
      assert.equal(last.status, "failed");
      assert.match(last.message, /^docker run failed: .*invalid argument "lots"/s);
      assert.deepEqual(await containersNamed(id), []);
    } finally {
      await docker.remove([id]);
    }
  },
);

dockerTest(
  "DockerBackend.place() removes the container it created when the entrypoint does not exist",
  async () => {
    const launcher: RockletLauncher = {
      ...(await testRockletLauncher()),
      containerCommand: () => ["/rock/bin/no-such-rocklet", "--port", "22555"],
    };
    const backend = new DockerBackend({ type: "docker", launcher });
    const id = testSandboxId("noentry");
    try {
      const { phases, result } = await placeRecording(backend, specFor(id));
      // tini starts, then cannot exec the entrypoint: the container exits at once with 127.
      // Without a watch, place() looks at the container right after its start: seen exited, the
      // placement fails and the container is removed; seen still starting (the Engine API's
      // start returns in a millisecond or two), its end is check()'s to tell, as a watch would.
      if (result.status === "rejected") {
        const error = result.reason as RockError;
        assert.match(error.message, /docker run failed: .*127.*no-such-rocklet/s);
        assert.equal(phases.at(-1)?.status, "failed");
        assert.match(phases.at(-1)?.message ?? "", /^docker run failed: .*no-such-rocklet/s);
      } else {
        const exit = await pollUntil(() => backend.check(id), {
          intervalMs: 50,
          timeoutMs: 30_000,
        });
        assert.equal(exit?.exitCode, 127);
        await backend.remove(id);
      }
      assert.deepEqual(await containersNamed(id), []);
    } finally {
      await docker.remove([id]);
    }
  },
);

dockerTest(
  "DockerBackend.place() removes the container docker created when its start fails (port in use)",
  async () => {
    // docker creates the container, then cannot bind the host port: `docker run` exits 125 and
    // leaves a container in state "created" behind, which place() must remove.
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const launcher = await testRockletLauncher();
    const backend = new DockerBackend({
      type: "docker",
      launcher,
      extraRunArgs: ["-p", `127.0.0.1:${listener.addr.port}:9999`],
    });
    const id = testSandboxId("portbusy");
    try {
      const { phases, result } = await placeRecording(backend, specFor(id));
      assert.equal(result.status, "rejected");
      const error = (result as PromiseRejectedResult).reason as RockError;
      assert.match(error.message, /docker run failed: exit code 125: .*address already in use/s);
      assert.equal(phases.at(-1)?.status, "failed");
      assert.match(phases.at(-1)!.message, /^docker run failed: .*address already in use/s);
      assert.deepEqual(await containersNamed(id), []);
    } finally {
      await docker.remove([id]);
    }
  },
);

dockerTest(
  "DockerBackend.place() throws CancelledError and leaves no container when aborted during docker run",
  async () => {
    const backend = new DockerBackend({ type: "docker", launcher: await testRockletLauncher() });
    const id = testSandboxId("abort");
    const controller = new AbortController();
    const phases: PhaseUpdate[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const placing = backend.place(specFor(id), {
        signal: controller.signal,
        onPhase: (update) => {
          phases.push(update);
          if (update.name === "docker_run") timer = setTimeout(() => controller.abort(), 50);
        },
      });
      await assert.rejects(placing, CancelledError);
      assert.deepEqual(phases.at(-1), {
        name: "docker_run",
        status: "failed",
        message: "docker run cancelled",
      });
      assert.deepEqual(await containersNamed(id), []);
    } finally {
      clearTimeout(timer);
      await docker.remove([id]);
    }
  },
);

dockerTest(
  "DockerBackend.place() keeps the registry password out of errors and phases when login fails",
  async () => {
    const backend = new DockerBackend({ type: "docker", launcher: await testRockletLauncher() });
    const id = testSandboxId("login");
    const password = `secret-${crypto.randomUUID()}`;
    const image = "127.0.0.1:9/rock-test/private:1";
    const configsBefore = await privateDockerConfigs();
    try {
      const { phases, result } = await placeRecording(
        backend,
        specFor(id, {
          image,
          pull: "always",
          registryUsername: "tester",
          registryPassword: password,
        }),
      );
      assert.equal(result.status, "rejected");
      const error = (result as PromiseRejectedResult).reason as RockError;
      assert.match(error.message, /pull of "127\.0\.0\.1:9\/rock-test\/private:1" failed/);
      const everything = JSON.stringify({ message: error.message, extra: error.extraInfo, phases });
      assert.equal(everything.includes(password), false, everything);
      assert.deepEqual(phases.map((p) => `${p.name} ${p.status}`), [
        "image_pull running",
        "image_pull failed",
      ]);
      assert.match(
        phases[1]?.message ?? "",
        /^Failed to pull image 127\.0\.0\.1:9\/rock-test\/private:1\. Error: /,
      );
      assert.deepEqual(await containersNamed(id), []);
      assert.deepEqual(await privateDockerConfigs(), configsBefore, "private config left behind");
    } finally {
      await docker.remove([id]);
    }
  },
);

dockerTest(
  "DockerBackend.place() removes the private docker config when aborted during a registry login",
  async () => {
    // A registry that accepts connections and never answers: the login hangs until the abort.
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of silent) held.push(conn);
    })();
    const backend = new DockerBackend({ type: "docker", launcher: await testRockletLauncher() });
    const id = testSandboxId("loginabort");
    const controller = new AbortController();
    const configsBefore = await privateDockerConfigs();
    try {
      const placing = backend.place(
        specFor(id, {
          image: `127.0.0.1:${silent.addr.port}/rock-test/private:1`,
          pull: "always",
          registryUsername: "tester",
          registryPassword: `secret-${crypto.randomUUID()}`,
        }),
        { signal: controller.signal, onPhase() {} },
      );
      const outcome = placing.then(() => undefined, (error) => error);
      // Abort once the private config exists: the login is then under way (and hangs).
      const deadline = Date.now() + 60_000;
      let made: string[] = [];
      while (made.length === 0) {
        made = (await privateDockerConfigs()).filter((name) => !configsBefore.includes(name));
        assert.ok(Date.now() < deadline, "no private docker config appeared");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const mode = (await Deno.stat(join(Deno.env.get("TMPDIR") ?? "/tmp", made[0] ?? ""))).mode;
      assert.equal(mode! & 0o777, 0o700);
      controller.abort();
      assert.ok(await outcome instanceof CancelledError, String(await outcome));
      assert.deepEqual(await privateDockerConfigs(), configsBefore, "private config left behind");
      assert.deepEqual(await containersNamed(id), []);
    } finally {
      silent.close();
      await accepting.catch(() => {});
      for (const conn of held) conn.close();
      await docker.remove([id]);
    }
  },
);

dockerTest("DockerBackend.list() reports a labelled container that is not running", async () => {
  const backend = new DockerBackend({ type: "docker", launcher: await testRockletLauncher() });
  const id = testSandboxId("stopped");
  try {
    await docker.exec([
      "create",
      "--name",
      id,
      "--label",
      `rock.sandbox_id=${id}`,
      TEST_IMAGE,
      "true",
    ]);
    const listed = (await backend.list()).find((sandbox) => sandbox.sandboxId === id);
    assert.ok(listed, "not listed");
    assert.equal(listed.running, false);
    assert.equal(listed.placement, undefined);
  } finally {
    await docker.remove([id]);
  }
});

dockerTest(
  "DockerCli.run() fails with PortTakenError for a taken host port and ImageMissingError for an image that is not here",
  async () => {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const id = testSandboxId("cli-port");
    try {
      await assert.rejects(
        docker.run([
          "-d",
          "--name",
          id,
          "-p",
          `127.0.0.1:${listener.addr.port}:80`,
          TEST_IMAGE,
          "true",
        ]),
        (error) => error instanceof PortTakenError && /address already in use/.test(error.message),
      );
      const missing = testSandboxId("cli-image");
      await assert.rejects(
        docker.run(["-d", "--pull=never", "--name", missing, "rock-test/does-not-exist:never"]),
        (error) => error instanceof ImageMissingError && /exit code 125/.test(error.message),
      );
      assert.deepEqual(await containersNamed(missing), []);
    } finally {
      await docker.remove([id]);
    }
  },
);

dockerTest(
  "DockerBackend with a watch places on host ports it chose (configured ones too), where the rocklet answers",
  async () => {
    const backend = new DockerBackend({
      type: "docker",
      launcher: await testRockletLauncher(),
      publishPorts: [8080, 22],
    });
    const id = testSandboxId("ports");
    await using _watch = backend.watch({ onExit() {}, onGap() {} });
    try {
      const placement = await backend.place(specFor(id), { onPhase() {} });
      const inspect = await docker.inspectContainer(placement.handle);
      const ports = inspect?.NetworkSettings.Ports ?? {};
      for (const port of ["22555", "8080", "22"]) {
        assert.deepEqual(ports[`${port}/tcp`], [{
          HostIp: "127.0.0.1",
          HostPort: String(placement.portMapping[port]),
        }]);
      }
      await waitAlive(new RockletClient(`http://127.0.0.1:${placement.portMapping["22555"]}`));
    } finally {
      await docker.remove([id]);
    }
  },
);
