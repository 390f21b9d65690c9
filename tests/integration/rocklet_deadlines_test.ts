/**
 * A frozen rocklet (SIGSTOP: it accepts connections and never answers) cannot hold the admin's
 * callers: every call ends within the command's timeout plus a margin, or after two missed health
 * probes when it has no timeout, with a 5000-coded error; the sandbox reads as not alive until its
 * rocklet answers again.
 */
import assert from "node:assert/strict";
import { get, post, startAdminServer, waitRunning } from "../helpers/admin_server.ts";
import { TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";

Deno.test("admin (local): calls to a SIGSTOP'd rocklet end in bounded time, and the sandbox reads unhealthy until it answers", async () => {
  await using admin = await startAdminServer("local", {
    rockletDeadlines: { marginMs: 1000, probeAfterMs: 500, probeTimeoutMs: 500 },
  });
  const id = testSandboxId("frozen");
  await post(admin.api, "/start_async", { sandbox_id: id, image: TEST_IMAGE });
  await waitRunning(admin.api, id);
  const pid = Number((await admin.store.sandboxes.get(id))!.handle);
  assert.ok(pid > 0);
  try {
    await post(admin.api, "/create_session", { sandbox_id: id, session: "s" });
    Deno.kill(pid, "SIGSTOP");

    // A command with a timeout: the call ends by its timeout plus the margin.
    let started = performance.now();
    const timed = await post(admin.api, "/run_in_session", {
      sandbox_id: id,
      session: "s",
      command: "echo hi",
      timeout: 1,
    });
    const timedMs = performance.now() - started;
    assert.equal(timed.status, "Failed");
    assert.equal(timed.result.code, 5000);
    assert.match(
      String(timed.error),
      /did not answer \/run_in_session within 2 s$|stopped answering/,
    );
    // A hang guard: without a deadline the call would wait forever.
    assert.ok(timedMs < 30_000, `took ${timedMs} ms`);

    const status = (await get(admin.api, `/get_status?sandbox_id=${id}`)).result;
    assert.equal(status.state, "running");
    assert.equal(status.is_alive, false);
    assert.match(status.unhealthy_reason, /Rocklet at http:\/\/127\.0\.0\.1:\d+/);
    assert.equal((await get(admin.api, `/is_alive?sandbox_id=${id}`)).result.is_alive, false);

    // No timeout at all: two missed probes end it.
    started = performance.now();
    const untimed = await post(admin.api, "/read_file", { sandbox_id: id, path: "/etc/hostname" });
    assert.equal(untimed.result.code, 5000);
    assert.match(String(untimed.error), /stopped answering while \/read_file ran: 2 health probes/);
    assert.ok(performance.now() - started < 30_000);

    // Woken up, it answers again, and reads alive.
    Deno.kill(pid, "SIGCONT");
    const ok = await post(admin.api, "/run_in_session", {
      sandbox_id: id,
      session: "s",
      command: "echo back",
    });
    assert.equal(ok.status, "Success", JSON.stringify(ok));
    const healthy = (await get(admin.api, `/get_status?sandbox_id=${id}`)).result;
    assert.equal(healthy.is_alive, true);
    assert.equal(healthy.unhealthy_reason, undefined);
  } finally {
    try {
      Deno.kill(pid, "SIGCONT");
    } catch {
      // Gone.
    }
    await post(admin.api, "/stop", { sandbox_id: id });
  }
});
