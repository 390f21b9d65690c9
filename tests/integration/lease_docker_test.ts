/**
 * Leases and events on docker, against an admin serving as `rock admin start` does (node:http):
 * Sandbox.start() is ready through the event stream; a sandbox with a 10 s timeout gets its
 * `expiring` event over SSE, is extended by 20 s through POST /sandboxes/{id}/timeout, and is
 * stopped at the new time, not before, with failure kind `expired`; restart brings it back.
 */
import assert from "node:assert/strict";
import type { SandboxEvent } from "../../src/protocol/admin.ts";
import { DockerCli } from "../../src/sandbox/docker_cli.ts";
import { AdminClient } from "../../src/sdk/admin_client.ts";
import { Sandbox } from "../../src/sdk/mod.ts";
import { post, startAdminServer, testSandboxConfig } from "../helpers/admin_server.ts";
import { dockerTest } from "../helpers/docker.ts";

/** The next event of `events` that `match` accepts, within `ms` (a hang guard). */
async function next(
  events: AsyncGenerator<SandboxEvent>,
  match: (event: SandboxEvent) => boolean,
  ms: number,
): Promise<SandboxEvent> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no matching event within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([
      (async () => {
        while (true) {
          const { value, done } = await events.next();
          if (done) throw new Error("the event stream ended");
          if (match(value)) return value;
        }
      })(),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

dockerTest(
  "a sandbox with a 10 s timeout gets its expiring event over SSE, is extended by 20 s, is stopped at the new time, not before, as expired, and restarts under its id (docker)",
  async () => {
    await using admin = await startAdminServer("docker", { node: true, sweepIntervalMs: 30_000 });
    const docker = new DockerCli();
    const paths: string[] = [];
    const counting: typeof fetch = (input, init) => {
      paths.push(new URL(String(input)).pathname.replace(/.*\/v1/, ""));
      return fetch(input, init);
    };
    const sandbox = new Sandbox(
      testSandboxConfig(admin, "lease", { timeoutSeconds: 10, fetch: counting }),
    );
    const started = performance.now();
    await sandbox.start();
    const id = sandbox.sandboxId;
    const events = await new AdminClient(admin.url).events({ sandboxId: id });
    try {
      // Ready through the event stream: no get_status poll.
      console.log(
        `Sandbox.start() -> ready via events: ${(performance.now() - started).toFixed(0)} ms`,
      );
      assert.deepEqual(paths, ["/start_async", "/events"]);
      const first = await next(events, (e) => e.type === "status", 5_000);
      assert.equal(first.type === "status" && first.state, "running");
      const lease = await admin.store.sandboxes.get(id);
      assert.equal(lease?.timeout_seconds, 10);
      const oldEnd = lease!.expire_at;
      assert.equal(oldEnd, lease!.start_time! + 10_000);

      // The warning: half the 10 s lease before its end.
      const warning = await next(events, (e) => e.type === "expiring", 15_000);
      const warnedAt = Date.now();
      assert.ok(warning.type === "expiring");
      assert.equal(Date.parse(warning.expire_time), oldEnd);
      assert.ok(warnedAt >= oldEnd - 5_500 && warnedAt < oldEnd, `${oldEnd - warnedAt} ms early`);
      assert.match(warning.expire_reason, /^timeout of 10 s/);

      // Extended by 20 s: the sandbox is to stop 20 s after its old end.
      const newEnd = oldEnd + 20_000;
      const extended = await post(admin.api, `/sandboxes/${id}/timeout`, {
        timeout_seconds: (newEnd - Date.now()) / 1000,
      });
      assert.equal(extended.status, "Success", JSON.stringify(extended));
      const setEnd = Date.parse(extended.result.expire_time);
      assert.ok(Math.abs(setEnd - newEnd) < 50, `${setEnd - newEnd} ms off`);

      // Past the old end it still runs: the store says so and so does docker.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, oldEnd + 1_000 - Date.now())));
      assert.equal((await admin.store.sandboxes.get(id))?.state, "running");
      assert.equal((await docker.inspectContainer(id))?.State.Running, true);

      // A new warning for the new end, then the stop at it.
      const again = await next(events, (e) => e.type === "expiring", 25_000);
      assert.equal(again.type === "expiring" && Date.parse(again.expire_time), setEnd);
      const stopped = await next(
        events,
        (e) => e.type === "status" && e.state === "stopped",
        25_000,
      );
      const row = await admin.store.sandboxes.get(id);
      assert.ok(row?.stop_time, JSON.stringify(row));
      console.log(`stopped ${row.stop_time - setEnd} ms after its new end`);
      assert.ok(row.stop_time >= setEnd, `stopped ${setEnd - row.stop_time} ms before its end`);
      assert.ok(row.stop_time < setEnd + 3_000, `stopped ${row.stop_time - setEnd} ms late`);
      assert.match(row.stop_reason ?? "", /^expired: timeout of \d+(\.\d+)? s passed$/);
      assert.equal(row.failure_kind, "expired");
      assert.ok(stopped.type === "status");
      assert.equal(stopped.stop_reason, row.stop_reason);
      assert.equal(stopped.failure_kind, "expired");
      assert.equal(stopped.error?.class_path, "rock.admin.exceptions.SandboxStoppedError");
      // The container went with it.
      assert.equal(await docker.inspectContainer(id), undefined);

      // Restart brings it back under the same id, running commands again.
      await sandbox.restart();
      assert.equal(sandbox.sandboxId, id);
      assert.equal((await sandbox.arun("echo back")).output, "back");
      assert.equal((await sandbox.getStatus()).failure_kind, null);
    } finally {
      await events.return(undefined);
      await sandbox.stop().catch(() => {});
    }
  },
);
