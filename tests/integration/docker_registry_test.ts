/**
 * Registry credentials serve one start only: a real registry on 127.0.0.1 that demands basic auth
 * (Debian's docker-registry, htpasswd from apache2-utils; scripts/setup_docker.sh installs both).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { post, startAdminServer, waitRunning } from "../helpers/admin_server.ts";
import { dockerTest, privateDockerConfigs, TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";

const REGISTRY_BINARY = "/usr/bin/docker-registry";
const HTPASSWD_BINARY = "/usr/bin/htpasswd";
const docker = new DockerCli();

/** Why registry tests cannot run here, or "" when they can. */
async function missingTools(): Promise<string> {
  for (const binary of [REGISTRY_BINARY, HTPASSWD_BINARY]) {
    const found = await Deno.stat(binary).then(() => true, () => false);
    if (!found) return `"${binary}" is missing`;
  }
  return "";
}

const missing = await missingTools();

/** A docker test that also needs the registry tools: skipped without them, failed in CI. */
function registryTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  if (!missing) return dockerTest(name, fn);
  const reason = `${missing}; run scripts/setup_docker.sh (apt-get install docker-registry ` +
    `apache2-utils)`;
  if (Deno.env.get("CI") === "true") {
    Deno.test(name, () => {
      throw new Error(`registry tools required in CI: ${reason}`);
    });
    return;
  }
  console.error(`registry tests ignored: ${reason}`);
  Deno.test({ name, ignore: true, fn });
}

/** A registry on 127.0.0.1 demanding basic auth; dispose stops it and removes its files. */
interface Registry extends AsyncDisposable {
  /** "127.0.0.1:<port>" */
  host: string;
}

/** Starts docker-registry on a free loopback port with one htpasswd user; waits until it answers. */
async function startRegistry(user: string, password: string): Promise<Registry> {
  const dir = await Deno.makeTempDir({ prefix: "rock-test-registry-" });
  const port = freePort();
  const host = `127.0.0.1:${port}`;
  const htpasswd = await new Deno.Command(HTPASSWD_BINARY, {
    args: ["-Bbn", user, password],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(htpasswd.code, 0, new TextDecoder().decode(htpasswd.stderr));
  await Deno.writeFile(join(dir, "htpasswd"), htpasswd.stdout);
  await Deno.writeTextFile(
    join(dir, "config.yml"),
    [
      "version: 0.1",
      "log: { level: warn }",
      `storage: { filesystem: { rootdirectory: ${join(dir, "data")} } }`,
      `http: { addr: "${host}" }`,
      `auth: { htpasswd: { realm: rock-test, path: ${join(dir, "htpasswd")} } }`,
      "",
    ].join("\n"),
  );
  const log = join(dir, "registry.log");
  // exec: the signal that stops the shell stops the registry itself.
  const child = new Deno.Command("sh", {
    args: ["-c", `exec "$0" serve "$1" >"$2" 2>&1`, REGISTRY_BINARY, join(dir, "config.yml"), log],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async () => {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const deadline = Date.now() + 30_000;
    while (true) {
      const status = await fetch(`http://${host}/v2/`).then((r) => {
        r.body?.cancel();
        return r.status;
      }, () => 0);
      if (status === 401) break;
      if (Date.now() > deadline) {
        const output = await Deno.readTextFile(log).catch(() => "");
        throw new Error(
          `registry on ${host} did not answer 401 within 30 s (got ${status}): ${output}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { host, [Symbol.asyncDispose]: stop };
}

/** A loopback port nothing listens on right now. */
function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

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
        assert.equal(status.state, "failed", JSON.stringify(status));
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
