/**
 * Several admins on one database, as real `rock admin start` processes (local backend, one
 * database file, one sandbox work root): any admin serves any sandbox, one leader runs the
 * scheduler, and its duties move to another admin when it is killed or stopped.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { get, post, waitRunning } from "../helpers/admin_server.ts";
import { testSandboxId } from "../helpers/docker.ts";
import { type ServedChild, spawnAdmin } from "../helpers/process.ts";

const LEASE_SECONDS = 3;
const API = "/apis/envs/sandbox/v1";

interface Tasks {
  admin_id: string;
  leader: string | null;
  is_leader: boolean;
  tasks: { task_name: string; runs: number }[];
}

async function tasksOf(admin: ServedChild): Promise<Tasks> {
  return (await get(`${admin.url}${API}`, "/scheduler/tasks")).result as Tasks;
}

/** Waits until `admin` leads; returns the milliseconds that took. */
async function waitLeader(admin: ServedChild, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (!(await tasksOf(admin)).is_leader) {
    if (performance.now() - started > timeoutMs) {
      throw new Error(`no leadership within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return performance.now() - started;
}

async function end(admin: ServedChild, signal: Deno.Signal): Promise<string> {
  try {
    admin.child.kill(signal);
  } catch {
    // Ended already.
  }
  await admin.child.status;
  return await admin.stderr;
}

Deno.test("admins on one database: any serves any sandbox, one leads, a killed or stopped leader's duties move on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rock-multi-test-" });
  const config = join(dir, "rock.yml");
  await Deno.writeTextFile(
    config,
    [
      "admin:",
      "  backend: local",
      `  db_url: file:${join(dir, "rock.db")}`,
      `  lease_seconds: ${LEASE_SECONDS}`,
      "local:",
      `  work_root: ${join(dir, "sandboxes")}`,
      "scheduler:",
      "  enabled: true",
      "  tasks:",
      "    - task_class: ExpiredSandboxTask",
      "      interval_seconds: 1",
      "",
    ].join("\n"),
  );
  const admins: ServedChild[] = [];
  const spawn = async (name: string) => {
    const admin = await spawnAdmin(join(dir, name), { config });
    admins.push(admin);
    return admin;
  };
  const id = testSandboxId("multi");
  try {
    const a = await spawn("a");
    const b = await spawn("b");
    const [ta, tb] = [await tasksOf(a), await tasksOf(b)];
    assert.equal(ta.is_leader, true, "the first admin leads");
    assert.equal(tb.is_leader, false);
    assert.equal(tb.leader, ta.admin_id, "both name the same leader");

    // Started through A, served through B.
    await post(`${a.url}${API}`, "/start_async", { sandbox_id: id, memory: "1g", cpus: 1 });
    assert.equal((await waitRunning(`${b.url}${API}`, id)).result.state, "running");
    await post(`${b.url}${API}`, "/create_session", { sandbox_id: id, session: "s" });
    const run = await post(`${b.url}${API}`, "/run_in_session", {
      sandbox_id: id,
      session: "s",
      command: "export WHERE=b; echo served",
    });
    assert.equal(run.result.output, "served");

    // One scheduler: a task every second runs about once a second, not twice.
    const runs = async () => {
      const task = (await tasksOf(b)).tasks[0];
      assert.ok(task, "the scheduler lists no task");
      return task.runs;
    };
    const before = await runs();
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const ran = (await runs()) - before;
    assert.ok(ran >= 2 && ran <= 5, `${ran} runs in 4 s`);

    // SIGKILL: the leader renews no more; B leads within one lease period.
    a.child.kill("SIGKILL");
    const failover = await waitLeader(b, (LEASE_SECONDS + 2) * 1000);
    console.log(`failover after SIGKILL: ${Math.round(failover)} ms`);
    const after = await runs();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.ok((await runs()) > after, "the scheduler runs on B");
    const again = await post(`${b.url}${API}`, "/run_in_session", {
      sandbox_id: id,
      session: "s",
      command: "echo $WHERE",
    });
    assert.equal(again.result.output, "b", "the sandbox A placed outlives A, served by B");

    // SIGTERM: the leader gives its lease up as it stops; C leads at its next renewal.
    const c = await spawn("c");
    assert.equal((await tasksOf(c)).is_leader, false);
    b.child.kill("SIGTERM");
    const handover = await waitLeader(c, LEASE_SECONDS * 1000);
    console.log(`handover after SIGTERM: ${Math.round(handover)} ms`);
    assert.match(await end(b, "SIGTERM"), /Stopped being leader/);
    assert.equal((await post(`${c.url}${API}`, "/stop", { sandbox_id: id })).status, "Success");
    const stopped = await get(`${c.url}${API}`, `/get_status?sandbox_id=${id}`);
    assert.equal(stopped.result.state, "stopped");
    assert.equal(stopped.result.stop_reason, "stop requested");
  } finally {
    for (const admin of admins) await end(admin, "SIGTERM");
    await Deno.remove(dir, { recursive: true });
  }
});
