/**
 * failure_kind from the engine's own report, on docker: a sandbox the kernel kills for memory
 * (its memory limit from the start request, its own command allocating past it) is failed with
 * kind `oom`, and restart brings it back under its id. On a host where the kernel kills only the
 * biggest process of the container (cgroup v1, or v2 without an OOM group, as docker runs
 * containers), a command that outgrows the limit dies alone and the sandbox runs on: the
 * command's exit code says it, and the sandbox carries no failure kind.
 */
import assert from "node:assert/strict";
import {
  type AdminServer,
  type Envelope,
  get,
  post,
  startAdminServer,
  startSandbox,
  waitRunning,
} from "../helpers/admin_server.ts";
import { dockerTest } from "../helpers/docker.ts";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";

/** A hang guard for a death the admin sees within about a second. */
const GUARD_MS = 10_000;

/** Allocates 1 GB in a sandbox limited to 256 MiB. */
const ALLOCATE = `python3 -c 'x = bytearray(10**9)'`;

/** Polls get_status until sandbox `id` is no longer running (bounded by GUARD_MS). */
async function waitEnded(admin: AdminServer, id: string): Promise<Envelope> {
  const deadline = performance.now() + GUARD_MS;
  for (;;) {
    const status = await get(admin.api, `/get_status?sandbox_id=${id}`);
    if (status.result?.state !== "running") return status;
    if (performance.now() > deadline) assert.fail(`sandbox ${id} still running: its OOM unseen`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs a test with a docker admin; stops the sandboxes it lists and removes their containers. */
function oomTest(name: string, fn: (admin: AdminServer, ids: string[]) => Promise<void>): void {
  dockerTest(`docker: ${name}`, async () => {
    await using admin = await startAdminServer("docker");
    const ids: string[] = [];
    try {
      await fn(admin, ids);
    } finally {
      for (const id of ids) await post(admin.api, "/stop", { sandbox_id: id }).catch(() => {});
      await new DockerCli().remove(ids).catch(() => {});
    }
  });
}

oomTest(
  "a sandbox whose rocklet its own command drives out of memory is failed with failure_kind oom, and restart brings it back under its id",
  async (admin, ids) => {
    const id = await startSandbox(admin, "oom-kind", { memory: "256m" });
    ids.push(id);
    await post(admin.api, "/create_session", { sandbox_id: id, session: "s" });
    // The session's shell is the rocklet's child: the rocklet ($PPID) becomes the process the
    // kernel picks when the container runs out of memory.
    const parent = await post(admin.api, "/run_in_session", {
      sandbox_id: id,
      session: "s",
      command: "tr '\\0' ' ' < /proc/$PPID/cmdline",
    });
    assert.match(parent.result.output, /\brocklet\b/, "the session's parent is the rocklet");
    const call = await post(admin.api, "/run_in_session", {
      sandbox_id: id,
      session: "s",
      command: `echo 1000 > /proc/$PPID/oom_score_adj && ${ALLOCATE}`,
    });
    assert.equal(call.status, "Failed", "the call ends with its rocklet");
    const status = await waitEnded(admin, id);
    assert.equal(status.result.rock_state, "failed", JSON.stringify(status.result));
    assert.equal(status.result.failure_kind, "oom");
    assert.equal(status.result.stop_reason, "died: out of memory (OOMKilled)");
    const listed = await get(admin.api, `/sandboxes?state=failed&id_prefix=${id}`);
    assert.deepEqual(
      listed.result.items.map((item: { failure_kind: string }) => item.failure_kind),
      ["oom"],
    );

    const restarted = await post(admin.api, "/restart", { sandbox_id: id });
    assert.equal(restarted.status, "Success", restarted.error ?? "");
    assert.equal(restarted.result.sandbox_id, id);
    const running = await waitRunning(admin.api, id);
    assert.equal(running.result.state, "running");
    assert.equal(running.result.memory, "256m", "the recorded spec");
    assert.equal(running.result.failure_kind, null);
    const echoed = await post(admin.api, "/execute", {
      sandbox_id: id,
      command: "echo back",
      shell: true,
    });
    assert.deepEqual(echoed.result, { stdout: "back\n", stderr: "", exit_code: 0 });
  },
);

oomTest(
  "a command that outgrows the memory limit is killed alone (exit 137) and the sandbox runs on without a failure kind",
  async (admin, ids) => {
    const id = await startSandbox(admin, "oom-command", { memory: "256m" });
    ids.push(id);
    const killed = await post(admin.api, "/execute", {
      sandbox_id: id,
      command: ALLOCATE,
      shell: true,
    });
    assert.equal(killed.result.exit_code, 137, JSON.stringify(killed.result));
    const status = await get(admin.api, `/get_status?sandbox_id=${id}`);
    assert.equal(status.result.state, "running");
    assert.equal(status.result.failure_kind, null);
    const after = await post(admin.api, "/execute", { sandbox_id: id, command: "true" });
    assert.equal(after.result.exit_code, 0);
  },
);
