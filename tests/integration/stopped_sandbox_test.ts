/**
 * A sandbox that no longer runs says why and since when: get_status, is_alive, get_logs, every
 * data-plane route (a 4000 envelope carrying state, stop_reason and stop_time) and the SDK's
 * SandboxStoppedRockError. Expiry moves the admin's clock instead of waiting.
 */
import assert from "node:assert/strict";
import {
  Sandbox,
  SandboxStartError,
  type SandboxStatus,
  SandboxStoppedRockError,
} from "../../src/sdk/mod.ts";
import {
  get,
  post,
  silentRockletLauncher,
  startAdminServer,
  testSandboxConfig,
  waitStoredState,
} from "../helpers/admin_server.ts";
import { dockerTest } from "../helpers/docker.ts";

/** A wire time in the test admin's zone (Asia/Shanghai). */
const WIRE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/;

/** Asserts every data-plane call of the SDK on `sandbox` throws the same stopped error. */
async function assertDataPlaneStopped(
  sandbox: Sandbox,
  status: SandboxStatus,
): Promise<SandboxStoppedRockError> {
  const id = sandbox.sandboxId;
  const message =
    `Sandbox "${id}" is ${status.state}: ${status.stop_reason} (stopped at ${status.stop_time})`;
  const calls: [string, () => Promise<unknown>][] = [
    ["arun", () => sandbox.arun("true")],
    ["arun nohup", () => sandbox.arun("true", { mode: "nohup", session: "s" })],
    ["execute", () => sandbox.execute(["true"])],
    ["createSession", () => sandbox.createSession("s")],
    ["readFile", () => sandbox.readFile("/etc/hostname")],
    ["writeFile", () => sandbox.writeFile("/tmp/x", "x")],
    ["upload", () => sandbox.upload(new Uint8Array([1, 2, 3]), "/tmp/x.bin")],
    ["download", () => sandbox.download("/etc/hostname")],
  ];
  let last: SandboxStoppedRockError | undefined;
  for (const [name, call] of calls) {
    await assert.rejects(call, (error: Error) => {
      assert.ok(error instanceof SandboxStoppedRockError, `${name}: ${error}`);
      assert.equal(error.message, message, name);
      assert.deepEqual(
        [error.code, error.sandboxId, error.state, error.stopReason, error.stopTime],
        [4000, id, status.state, status.stop_reason, status.stop_time],
        name,
      );
      last = error;
      return true;
    });
  }
  return last!;
}

Deno.test("an expired sandbox: get_status, the data plane, is_alive, get_logs and the SDK name the expiry and the stop time", async () => {
  let skew = 0;
  await using admin = await startAdminServer("local", {
    now: () => Date.now() + skew,
    sweepIntervalMs: 20,
  });
  await using sandbox = await new Sandbox(
    testSandboxConfig(admin, "expired", { autoClearSeconds: 60 }),
  ).start();
  const id = sandbox.sandboxId;
  skew = 2 * 60_000; // past auto_clear_time_minutes (1): the sweeper stops it
  await waitStoredState(admin, id, "stopped");

  const status = await sandbox.getStatus();
  assert.equal(status.state, "stopped");
  assert.equal(status.stop_reason, "expired: no keep-alive for 1 minute");
  assert.match(status.stop_time ?? "", WIRE_TIME);
  await assertDataPlaneStopped(sandbox, status);

  const described = `Sandbox "${id}" is stopped: expired: no keep-alive for 1 minute ` +
    `(stopped at ${status.stop_time})`;
  const raw = await post(admin.api, "/run_in_session", {
    sandbox_id: id,
    session: "s",
    command: "true",
  });
  assert.deepEqual(raw, {
    status: "Failed",
    message: "run in session failed",
    error: described,
    result: {
      code: 4000,
      exit_code: null,
      failure_reason: described,
      state: "stopped",
      stop_reason: "expired: no keep-alive for 1 minute",
      stop_time: status.stop_time,
      failure_kind: "expired",
      class_path: "rock.admin.exceptions.SandboxStoppedError",
      extra_info: {
        state: "stopped",
        stop_reason: "expired: no keep-alive for 1 minute",
        stop_time: status.stop_time,
        failure_kind: "expired",
      },
    },
  });
  assert.deepEqual((await get(admin.api, `/is_alive?sandbox_id=${id}`)).result, {
    is_alive: false,
    message: described,
  });
  const logs = await get(admin.api, `/get_logs?sandbox_id=${id}`);
  assert.equal(logs.status, "Failed");
  assert.equal(logs.result.code, 4000);
  assert.equal(logs.error, `${described}; the local backend removed its logs with it`);
  await assert.rejects(sandbox.client.getLogs(id), SandboxStoppedRockError);
});

Deno.test("a failed start: get_status names the failure reason and the time, and calls say so", async () => {
  await using admin = await startAdminServer("local", {
    launcher: await silentRockletLauncher(),
    startupTimeoutMs: 300,
  });
  await using sandbox = new Sandbox(testSandboxConfig(admin, "failed"));
  await assert.rejects(sandbox.start(), SandboxStartError);
  const id = sandbox.sandboxId;
  const status = await sandbox.getStatus();
  assert.equal(status.state, "failed");
  const reason = `Cannot start sandbox "${id}": the rocklet did not answer within 0.3 s`;
  assert.ok(status.failure_reason?.startsWith(reason), status.failure_reason ?? "");
  assert.equal(status.stop_reason, `start failed: ${status.failure_reason}`);
  assert.match(status.stop_time ?? "", WIRE_TIME);
  const error = await assertDataPlaneStopped(sandbox, status);
  assert.equal(error.state, "failed");
  // The failed start's process is removed right after the row is marked (bounded wait).
  const deadline = Date.now() + 30_000;
  while ((await admin.backend.list()).some((s) => s.running)) {
    assert.ok(Date.now() < deadline, "the failed sandbox's process was removed");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});

Deno.test("a stopped sandbox's logs come back while its backend still has them, with its state", async () => {
  await using admin = await startAdminServer("local");
  const sandbox = await new Sandbox(testSandboxConfig(admin, "kept-logs")).start();
  const id = sandbox.sandboxId;
  await sandbox.stop();
  // What a backend that keeps logs after a stop would hold.
  const dir = `${admin.dataDir}/sandboxes/${id}`;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/rocklet.log`, "first\nlast words\n");
  const result = await sandbox.client.getLogs(id, 1);
  assert.deepEqual({ ...result, stop_time: "" }, {
    logs: "last words",
    state: "stopped",
    stop_reason: "stop requested",
    stop_time: "",
    failure_kind: "user",
  });
  assert.match(result.stop_time ?? "", WIRE_TIME);
  await Deno.remove(dir, { recursive: true });
});

dockerTest(
  "a start with an image that is not there fails, and get_status says why and when",
  async () => {
    await using admin = await startAdminServer("docker");
    await using sandbox = new Sandbox(
      testSandboxConfig(admin, "no-image", { image: "rock-test/no-such-image:none" }),
    );
    await assert.rejects(sandbox.start(), SandboxStartError);
    const status = await sandbox.getStatus();
    assert.equal(status.state, "failed");
    assert.match(status.stop_reason ?? "", /^start failed: .*rock-test\/no-such-image:none/);
    assert.match(status.stop_time ?? "", WIRE_TIME);
    await assertDataPlaneStopped(sandbox, status);
  },
);
