/**
 * The rest of ROCK's small surface, and what SWE-ReX's client sends: warm-ups, get_token,
 * unknown routes in the envelope, `bash_interrupt`, `merge_output_streams`, and errors under
 * the `swerexception` key too.
 */
import assert from "node:assert/strict";
import { get, post, startAdminServer } from "../helpers/admin_server.ts";
import { dockerTest, TEST_IMAGE } from "../helpers/docker.ts";
import { startRockletServer } from "../helpers/rocklet_server.ts";
import { swerexClassPath } from "../../src/rocklet/app.ts";
import { pollUntil } from "../../src/common/poll.ts";

Deno.test("admin: get_token answers null, and an unknown route under ROCK's prefix an envelope", async () => {
  await using admin = await startAdminServer("local");
  assert.deepEqual(await get(admin.api, "/get_token"), {
    status: "Success",
    message: "",
    error: null,
    result: null,
  });
  const unknown = await fetch(`${admin.api}/no_such_route`, { method: "POST", body: "{}" });
  assert.equal(unknown.status, 404);
  const envelope = await unknown.json();
  assert.equal(envelope.status, "Failed");
  assert.equal(envelope.result.code, 4000);
  // Outside the prefix: a plain 404.
  const outside = await fetch(`${admin.url}/nowhere`);
  assert.equal(outside.status, 404);
  assert.equal((await outside.json()).status, undefined);
});

Deno.test("admin (local): a warm-up is skipped with the reason, and listed", async () => {
  await using admin = await startAdminServer("local");
  const started = await post(admin.api, "/warmup/tasks", {});
  assert.equal(started.status, "Success");
  assert.equal(started.message, "warmup task started");
  assert.equal(started.result?.image, "python:3.11");
  assert.equal(started.result?.state, "skipped");
  const listed = await get(admin.api, "/warmup/tasks");
  assert.deepEqual(listed.result?.tasks.map((t: { state: string }) => t.state), ["skipped"]);
  const bad = await post(admin.api, "/warmup/tasks", { image: "" });
  assert.equal(bad.status, "Failed");
  assert.equal(bad.result?.code, 4000);
});

dockerTest(
  "admin (docker): a warm-up of a present image succeeds; of one no registry has, fails",
  async () => {
    await using admin = await startAdminServer("docker");
    await post(admin.api, "/warmup/tasks", { image: TEST_IMAGE });
    await post(admin.api, "/warmup/tasks", { image: "127.0.0.1:9/rock-test/absent:never" });
    const tasks = await pollUntil(async () => {
      const listed = (await get(admin.api, "/warmup/tasks")).result?.tasks as {
        image: string;
        state: string;
        detail: string;
      }[];
      return listed.every((t) => t.state !== "running") ? listed : undefined;
    }, { intervalMs: 100, timeoutMs: 120_000 });
    assert.ok(tasks, "the warm-ups did not end within 120 s");
    assert.deepEqual(tasks.map((t) => [t.image, t.state]), [
      [TEST_IMAGE, "succeeded"],
      ["127.0.0.1:9/rock-test/absent:never", "failed"],
    ]);
    assert.equal(tasks[0]?.detail, "already present");
    assert.ok((tasks[1]?.detail.length ?? 0) > 0);
  },
);

Deno.test("bash_interrupt (SWE-ReX) ends the running command through the admin; the session goes on", async () => {
  await using admin = await startAdminServer("local");
  const id = (await post(admin.api, "/start_async", {})).result?.sandbox_id as string;
  await pollUntil(
    async () =>
      (await get(admin.api, `/get_status?sandbox_id=${id}`)).result?.state === "running" ||
      undefined,
    { intervalMs: 50, timeoutMs: 60_000 },
  );
  try {
    assert.equal((await post(admin.api, "/create_session", { sandbox_id: id })).status, "Success");
    const begin = performance.now();
    const long = post(admin.api, "/run_in_session", {
      sandbox_id: id,
      command: "echo started; sleep 30",
      timeout: 60,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const interrupted = await post(admin.api, "/run_in_session", {
      sandbox_id: id,
      action_type: "bash_interrupt",
    });
    assert.equal(interrupted.status, "Success", JSON.stringify(interrupted));
    assert.equal(interrupted.result?.exit_code, 0);
    const ended = await long;
    assert.ok(performance.now() - begin < 25_000, "the long command was not interrupted");
    assert.equal(ended.status, "Failed");
    assert.equal(ended.result?.class_path, "asyncio.exceptions.CancelledError");
    const next = await post(admin.api, "/run_in_session", { sandbox_id: id, command: "echo ok" });
    assert.equal(next.result?.output, "ok");
    // Nothing running: an interrupt is a no-op.
    const idle = await post(admin.api, "/run_in_session", {
      sandbox_id: id,
      action_type: "bash_interrupt",
      session: "default",
    });
    assert.equal(idle.status, "Success");
  } finally {
    await post(admin.api, "/stop", { sandbox_id: id });
  }
});

Deno.test("rocklet: merge_output_streams keeps stdout and stderr in order; errors carry swerexception", async () => {
  await using rocklet = startRockletServer();
  const merged = await fetch(`${rocklet.url}/execute`, {
    method: "POST",
    body: JSON.stringify({
      command: "echo a; echo b >&2; echo c",
      shell: true,
      merge_output_streams: true,
    }),
  });
  assert.deepEqual(await merged.json(), { stdout: "a\nb\nc\n", stderr: "", exit_code: 0 });
  const apart = await fetch(`${rocklet.url}/execute`, {
    method: "POST",
    body: JSON.stringify({ command: "echo a; echo b >&2", shell: true }),
  });
  assert.deepEqual(await apart.json(), { stdout: "a\n", stderr: "b\n", exit_code: 0 });
  const failed = await fetch(`${rocklet.url}/run_in_session`, {
    method: "POST",
    body: JSON.stringify({ command: "true", session: "never-created" }),
  });
  assert.equal(failed.status, 511);
  const body = await failed.json();
  assert.equal(
    body.rockletexception.class_path,
    "rock.rocklet.exceptions.SessionDoesNotExistError",
  );
  assert.deepEqual(body.swerexception, {
    ...body.rockletexception,
    class_path: "swerex.exceptions.SessionDoesNotExistError",
  });
});

Deno.test("rocklet: swerexception names SWE-ReX's classes, rockletexception ROCK's", async () => {
  await using rocklet = startRockletServer();
  /** The class paths of a failed call: [rockletexception's, swerexception's]. */
  const classPaths = async (path: string, request: unknown) => {
    const response = await fetch(`${rocklet.url}${path}`, {
      method: "POST",
      body: JSON.stringify(request),
    });
    assert.equal(response.status, 511);
    const body = await response.json();
    assert.deepEqual(body.swerexception.extra_info, body.rockletexception.extra_info);
    return [body.rockletexception.class_path, body.swerexception.class_path];
  };
  assert.deepEqual(await classPaths("/execute", { command: ["sleep", "5"], timeout: 0.1 }), [
    "rock.rocklet.exceptions.CommandTimeoutError",
    "swerex.exceptions.CommandTimeoutError",
  ]);
  assert.deepEqual(await classPaths("/execute", { command: "false", shell: true, check: true }), [
    "rock.rocklet.exceptions.NonZeroExitCodeError",
    "swerex.exceptions.NonZeroExitCodeError",
  ]);
  await post(rocklet.url, "/create_session", { session: "s" });
  assert.deepEqual(await classPaths("/create_session", { session: "s" }), [
    "rock.rocklet.exceptions.SessionExistsError",
    "swerex.exceptions.SessionExistsError",
  ]);
  assert.deepEqual(await classPaths("/run_in_session", { command: "(a", session: "s" }), [
    "rock.rocklet.exceptions.BashIncorrectSyntaxError",
    "swerex.exceptions.BashIncorrectSyntaxError",
  ]);
  assert.deepEqual(await classPaths("/read_file", { path: "/nonexistent/rock-swerex" }), [
    "builtins.FileNotFoundError",
    "builtins.FileNotFoundError",
  ]);
  // A rocklet exception SWE-ReX has no class for becomes its base class.
  assert.equal(
    swerexClassPath("rock.rocklet.exceptions.GemEnvError"),
    "swerex.exceptions.SwerexException",
  );
  assert.equal(
    swerexClassPath("rock.exceptions.UnavailableError"),
    "rock.exceptions.UnavailableError",
  );
});
