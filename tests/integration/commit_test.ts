/**
 * Commit: an image of a sandbox, pushed to a real registry on 127.0.0.1 that demands basic auth,
 * pulled back and run; the password reaches no log line, no row and no error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createLogger } from "../../src/common/log.ts";
import { pollUntil } from "../../src/common/poll.ts";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { get, post, startAdminServer, waitRunning } from "../helpers/admin_server.ts";
import { TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";
import { registryTest, startRegistry } from "../helpers/registry.ts";

const docker = new DockerCli();

/** A wire time in the test admin's zone (Asia/Shanghai). */
const WIRE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/;

registryTest(
  "commit: pushed with a login, pulled back and run; the password stays nowhere",
  async () => {
    const user = "rock-committer";
    const password = `pw-${crypto.randomUUID()}`;
    await using registry = await startRegistry(user, password);
    const lines: string[] = [];
    await using admin = await startAdminServer("docker", {
      logger: createLogger("admin", { level: "debug", write: (line) => lines.push(line) }),
    });
    const source = testSandboxId("commit-src");
    const copy = testSandboxId("commit-copy");
    const tag = `${registry.host}/rock-test/committed:${crypto.randomUUID().slice(0, 8)}`;
    try {
      assert.equal(
        (await post(admin.api, "/start", { sandbox_id: source, image: TEST_IMAGE })).status,
        "Success",
      );
      await post(admin.api, "/create_session", { sandbox_id: source });
      await post(admin.api, "/run_in_session", {
        sandbox_id: source,
        command: "echo made-in-the-sandbox > /committed.txt",
      });
      const done = await post(admin.api, "/commit", {
        sandbox_id: source,
        image_tag: tag,
        username: user,
        password,
      });
      assert.equal(done.status, "Success", JSON.stringify(done));
      // The answer is the ended status, times as ROCK's SDKs read them (strings).
      assert.equal(done.result?.phase, "SUCCEEDED");
      assert.match(done.result?.started_at, WIRE_TIME);
      assert.match(done.result?.completed_at, WIRE_TIME);
      const status = (await get(admin.api, `/commit/${source}`)).result;
      assert.deepEqual(status, done.result);
      assert.equal(status?.pushed, true);

      // Only the registry has it now: a start pulls it with the credentials and finds the file.
      await docker.exec(["image", "rm", "--force", tag]);
      assert.equal(await docker.imageExists(tag), false);
      const started = await post(admin.api, "/start", {
        sandbox_id: copy,
        image: tag,
        pull: "always",
        registry_username: user,
        registry_password: password,
      });
      assert.equal(started.status, "Success", JSON.stringify(started));
      await post(admin.api, "/create_session", { sandbox_id: copy });
      const read = await post(admin.api, "/run_in_session", {
        sandbox_id: copy,
        command: "cat /committed.txt",
      });
      assert.equal(read.result?.output, "made-in-the-sandbox");

      // A wrong password: the login stage fails, by code, and its error does not hold it.
      const wrong = `wrong-${crypto.randomUUID()}`;
      const refused = await post(admin.api, "/commit", {
        sandbox_id: source,
        image_tag: `${tag}-2`,
        username: user,
        password: wrong,
      });
      assert.equal(refused.status, "Failed");
      assert.equal(refused.result?.extra_info?.error_code, "LOGIN_FAILED");
      assert.equal(refused.result?.extra_info?.failed_stage, "login");
      assert.ok(!JSON.stringify(refused).includes(wrong));

      // The async form answers at once, and the status follows it to the end.
      const running = await post(admin.api, "/commit", {
        sandbox_id: source,
        image_tag: `${tag}-3`,
        username: user,
        password,
        async: true,
      });
      assert.equal(running.status, "Success");
      assert.equal(running.result?.phase, "RUNNING");
      assert.match(running.result?.started_at, WIRE_TIME);
      assert.equal(running.result?.completed_at, null);
      const ended = await pollUntil(async () => {
        const now = (await get(admin.api, `/commit/${source}`)).result;
        return now?.phase === "RUNNING" ? undefined : now;
      }, { intervalMs: 100, timeoutMs: 120_000 });
      assert.equal(ended?.phase, "SUCCEEDED");

      // Nowhere: log lines, the database file, the billing log.
      const everything = [
        lines.join("\n"),
        new TextDecoder().decode(await Deno.readFile(join(admin.dataDir, "rock.db"))),
        await Deno.readTextFile(join(admin.dataDir, "billing.log")).catch(() => ""),
      ].join("\n");
      for (const secret of [password, wrong]) assert.ok(!everything.includes(secret));
    } finally {
      await post(admin.api, "/stop", { sandbox_id: source });
      await post(admin.api, "/stop", { sandbox_id: copy });
      for (const suffix of ["", "-2", "-3"]) {
        await docker.exec(["image", "rm", "--force", `${tag}${suffix}`]).catch(() => "");
      }
    }
  },
);

registryTest(
  "commit: an unknown or stopped sandbox is refused by type, a local tag is not pushed",
  async () => {
    await using admin = await startAdminServer("docker");
    const missing = await post(admin.api, "/commit", { sandbox_id: "no-such", image_tag: "x:1" });
    assert.equal(missing.status, "Failed");
    assert.equal(missing.result?.class_path, "rock.admin.exceptions.SandboxNotFoundError");
    const id = testSandboxId("commit-local");
    const tag = `rock-test/committed-local:${crypto.randomUUID().slice(0, 8)}`;
    try {
      await post(admin.api, "/start", { sandbox_id: id, image: TEST_IMAGE });
      await waitRunning(admin.api, id);
      const done = await post(admin.api, "/commit", { sandbox_id: id, image_tag: tag });
      assert.equal(done.status, "Success", JSON.stringify(done));
      assert.equal((await get(admin.api, `/commit/${id}`)).result?.pushed, false);
      assert.equal(await docker.imageExists(tag), true);
      await post(admin.api, "/stop", { sandbox_id: id });
      const stopped = await post(admin.api, "/commit", { sandbox_id: id, image_tag: tag });
      assert.equal(stopped.result?.class_path, "rock.admin.exceptions.SandboxStoppedError");
    } finally {
      await post(admin.api, "/stop", { sandbox_id: id });
      await docker.exec(["image", "rm", "--force", tag]).catch(() => "");
    }
  },
);
