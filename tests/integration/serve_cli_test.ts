/**
 * What every `rock` server does when it cannot serve as asked: a busy port is one line and exit 1
 * (admin, rocklet, envhub, model service), and an admin that falls back to the local backend says
 * so before anything else.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runRock, spawnAdmin } from "../helpers/process.ts";

Deno.test("admin, rocklet, envhub and model service refuse a busy port with one line and exit 1", async () => {
  using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String(busy.addr.port);
  const dir = await Deno.makeTempDir({ prefix: "rock-busy-port-" });
  const msEnv = {
    ROCK_MODEL_SERVICE_STATE_DIR: join(dir, "ms-state"),
    ROCK_MODEL_SERVICE_DATA_DIR: join(dir, "ms-data"),
  };
  const listen = ["--host", "127.0.0.1", "--port", port];
  try {
    for (
      const [args, env] of [
        [["admin", "start", "--backend", "local", ...listen, "--data-dir", join(dir, "admin")], {}],
        [["rocklet", ...listen], {}],
        [["envhub", "start", ...listen, "--db", `file:${join(dir, "envs.db")}`], {}],
        [["model-service", "start", "--type", "local", ...listen, "--foreground"], msEnv],
        [["model-service", "start", "--type", "local", ...listen], msEnv],
      ] as const
    ) {
      const result = await runRock([...args], { env });
      const what = args.slice(0, 2).join(" ");
      assert.equal(result.code, 1, `${what}: ${result.stderr}`);
      const lines = result.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `${what}: ${result.stderr}`);
      assert.match(
        lines[0] ?? "",
        new RegExp(`^error: .*Cannot listen on 127\\.0\\.0\\.1:${port}: address already in use$`),
        what,
      );
    }
    // Nothing is left claiming the data dirs: the admin's pid file and the model service's state
    // are gone, so a start on a free port works at once.
    await assert.rejects(Deno.stat(join(dir, "admin", "admin.pid")));
    await assert.rejects(Deno.stat(join(dir, "ms-state", "model-service.json")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("admin --backend auto without a docker engine warns first and reports no docker phases or limits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-fallback-" });
  const config = join(dir, "rock.yml");
  await Deno.writeTextFile(
    config,
    "admin:\n  backend: auto\ndocker:\n  binary: /nonexistent/docker\n",
  );
  const served = await spawnAdmin(join(dir, "data"), { config });
  try {
    const api = `${served.url}/apis/envs/sandbox/v1`;
    const started = await (await fetch(`${api}/start`, {
      method: "POST",
      body: JSON.stringify({ image: "any", memory: "1g", cpus: 1 }),
    })).json();
    assert.equal(started.status, "Success", JSON.stringify(started));
    const id = started.result.sandbox_id;
    const status = (await (await fetch(`${api}/get_status?sandbox_id=${id}`)).json()).result;
    assert.deepEqual(Object.keys(status.status), ["process_start"]);
    assert.equal(status.status.process_start.status, "success");
    // Limits the local backend does not enforce are left out.
    assert.ok(!("cpus" in status) && !("memory" in status), JSON.stringify(status));
    await (await fetch(`${api}/stop`, { method: "POST", body: JSON.stringify({ sandbox_id: id }) }))
      .body?.cancel();
  } finally {
    served.child.kill("SIGTERM");
    await served.child.status;
    const stderr = await served.stderr;
    await Deno.remove(dir, { recursive: true });
    // The warning is the first thing the admin prints, and it names the consequence.
    const [first = ""] = stderr.trim().split("\n");
    assert.match(first, / WARN \[admin\] no docker engine answered "\/nonexistent\/docker info"/);
    assert.match(first, /local backend.*no isolation and no cpu or memory limits/);
  }
});
