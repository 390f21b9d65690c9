/**
 * Registry credentials serve one start only: a real registry on 127.0.0.1 that demands basic auth
 * (Debian's docker-registry, htpasswd from apache2-utils; scripts/setup_docker.sh installs both).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { post, startAdminServer, waitRunning } from "../helpers/admin_server.ts";
import { privateDockerConfigs, TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";
import { registryTest, startRegistry } from "../helpers/registry.ts";

const docker = new DockerCli();

/** Docker config files this process can find: the user's and DOCKER_CONFIG's. */
function dockerConfigFiles(): string[] {
  const files = [join(Deno.env.get("HOME") ?? "/root", ".docker", "config.json")];
  const own = Deno.env.get("DOCKER_CONFIG");
  if (own) files.push(join(own, "config.json"));
  return files;
}

registryTest(
  "docker backend: registry credentials serve their start only and stay in no docker config",
  async (t) => {
    const user = "rock-tester";
    const password = `pw-${crypto.randomUUID()}`;
    await using registry = await startRegistry(user, password);
    const image = `${registry.host}/rock-test/debian:bookworm`;
    const pushConfig = await Deno.makeTempDir({ prefix: "rock-test-push-config-" });
    const tempDirsBefore = await privateDockerConfigs();
    await using admin = await startAdminServer("docker");
    const ids = [testSandboxId("login"), testSandboxId("nologin")] as const;
    try {
      // Push with a login of the test's own, then drop the local tag: only the registry has it.
      await docker.exec(
        ["--config", pushConfig, "login", "--username", user, "--password-stdin", registry.host],
        { stdin: password },
      );
      await docker.exec(["tag", TEST_IMAGE, image]);
      await docker.exec(["--config", pushConfig, "push", "--quiet", image]);
      await docker.exec(["rmi", image]);
      assert.equal(await docker.imageExists(image), false);

      await t.step("a start with credentials pulls the image and runs", async () => {
        const started = await post(admin.api, "/start_async", {
          sandbox_id: ids[0],
          image,
          pull: "always",
          memory: "512m",
          cpus: 1,
          registry_username: user,
          registry_password: password,
        });
        assert.equal(started.status, "Success", JSON.stringify(started));
        const status = (await waitRunning(admin.api, ids[0])).result;
        assert.equal(status.state, "running", JSON.stringify(status));
        const run = await post(admin.api, "/execute", {
          sandbox_id: ids[0],
          command: ["echo", "pulled"],
        });
        assert.equal(run.result?.stdout, "pulled\n", JSON.stringify(run));
        assert.equal((await post(admin.api, "/stop", { sandbox_id: ids[0] })).status, "Success");
      });

      await t.step("no docker config holds the registry or the credentials", async () => {
        const auth = btoa(`${user}:${password}`);
        for (const file of dockerConfigFiles()) {
          const text = await Deno.readTextFile(file).catch(() => "");
          for (const secret of [registry.host, user, password, auth]) {
            assert.equal(text.includes(secret), false, `${file} holds "${secret}"`);
          }
        }
        assert.deepEqual(await privateDockerConfigs(), tempDirsBefore);
      });

      await t.step("a start without credentials cannot pull the same image", async () => {
        await post(admin.api, "/start_async", {
          sandbox_id: ids[1],
          image,
          pull: "always",
          memory: "512m",
          cpus: 1,
        });
        const status = (await waitRunning(admin.api, ids[1])).result;
        assert.equal(status.rock_state, "failed", JSON.stringify(status));
        assert.equal(status.status.image_pull.status, "failed");
        assert.match(status.failure_reason, /no basic auth credentials|unauthorized/i);
      });
    } finally {
      for (const id of ids) await post(admin.api, "/stop", { sandbox_id: id }).catch(() => {});
      await docker.call(["rmi", image]);
      // Only a login written to the user's config would be undone here.
      await docker.call(["logout", registry.host]);
      await Deno.remove(pushConfig, { recursive: true });
    }
  },
);
