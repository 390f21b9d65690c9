/** `rock sandbox` against an admin on the docker backend: the main flow, with real containers. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startAdminServer } from "../helpers/admin_server.ts";
import { seededBytes, sha256Hex } from "../helpers/bytes.ts";
import { dockerTest, TEST_IMAGE } from "../helpers/docker.ts";
import { MAIN } from "../helpers/process.ts";

async function rock(url: string, ...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "sandbox", "--base-url", url, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { ROCK_CLI_DEFAULT_CONFIG_PATH: "/nonexistent/rock-config.ini" },
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

dockerTest(
  "rock sandbox (docker): start, exec exit codes, cp both ways, status --json, stop",
  async () => {
    await using admin = await startAdminServer("docker");
    const local = await Deno.makeTempDir({ prefix: "rock-cli-docker-" });
    let id = "";
    try {
      const started = await rock(
        admin.url,
        "start",
        "--image",
        TEST_IMAGE,
        "--pull",
        "never",
        "--memory",
        "1g",
        "--cpus",
        "1",
      );
      assert.equal(started.code, 0, started.stderr);
      id = started.stdout.trim();
      const seven = await rock(
        admin.url,
        "exec",
        id,
        "--",
        "sh",
        "-c",
        "cat /etc/debian_version; exit 7",
      );
      assert.equal(seven.code, 7, seven.stderr);
      assert.match(seven.stdout, /^12\./);
      const data = seededBytes(5 * 1024 * 1024 + 1, 3);
      await Deno.writeFile(join(local, "blob.bin"), data);
      assert.equal(
        (await rock(admin.url, "cp", join(local, "blob.bin"), `${id}:/tmp/cli/blob.bin`)).code,
        0,
      );
      const back = await rock(admin.url, "cp", `${id}:/tmp/cli/blob.bin`, join(local, "back.bin"));
      assert.equal(back.code, 0, back.stderr);
      assert.equal(
        await sha256Hex(await Deno.readFile(join(local, "back.bin"))),
        await sha256Hex(data),
      );
      const status = JSON.parse((await rock(admin.url, "status", id, "--json")).stdout);
      assert.deepEqual([status.state, status.image], ["running", TEST_IMAGE]);
      assert.equal((await rock(admin.url, "stop", id)).code, 0);
      assert.equal(
        JSON.parse((await rock(admin.url, "status", id, "--json")).stdout).state,
        "stopped",
      );
    } finally {
      if (id) await admin.manager.stop(id).catch(() => {});
      await Deno.remove(local, { recursive: true });
    }
  },
);
