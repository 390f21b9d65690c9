/**
 * Admission control: a burst of creates from one client, unpaced, all end running, with never more
 * than the configured number placing at once; a full queue refuses at once with 4000; a stop of a
 * queued sandbox is not held behind the starts ahead of it.
 */
import assert from "node:assert/strict";
import type { Backend, PlaceHooks, Placement, SandboxSpec } from "../../src/sandbox/backend.ts";
import { get, post, startAdminServer, waitRunning } from "../helpers/admin_server.ts";
import { TEST_IMAGE, testSandboxId } from "../helpers/docker.ts";

/** The real backend, each placement held for `delayMs` first; counts placements at once. */
function slowPlacements(delayMs: number) {
  const seen = { now: 0, max: 0, total: 0 };
  const wrap = (backend: Backend): Backend => ({
    type: backend.type,
    list: () => backend.list(),
    remove: (id: string) => backend.remove(id),
    async place(spec: SandboxSpec, hooks: PlaceHooks): Promise<Placement> {
      seen.now++;
      seen.total++;
      seen.max = Math.max(seen.max, seen.now);
      try {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        return await backend.place(spec, hooks);
      } finally {
        seen.now--;
      }
    },
  });
  return { seen, wrap };
}

Deno.test("100 concurrent creates against slow placements all end running, at most 4 placing at once", async () => {
  const slow = slowPlacements(100);
  await using admin = await startAdminServer("local", {
    startConcurrency: 4,
    wrapBackend: slow.wrap,
  });
  const ids = Array.from({ length: 100 }, (_, i) => testSandboxId(`burst-${i}`));
  try {
    const created = await Promise.all(
      ids.map((id) => post(admin.api, "/start_async", { sandbox_id: id, image: TEST_IMAGE })),
    );
    assert.ok(created.every((answer) => answer.status === "Success"), JSON.stringify(created[0]));
    // While most wait, the queue shows each one's place.
    const queued = (await get(admin.api, `/get_status?sandbox_id=${ids[99]}`)).result;
    assert.equal(queued.state, "pending");
    assert.match(queued.status.queued.message, /^waiting in the start queue: \d+ of \d+$/);
    for (const id of ids) {
      const status = await waitRunning(admin.api, id, 300_000);
      assert.equal(status.result.state, "running", JSON.stringify(status.result));
    }
    assert.equal(slow.seen.total, 100);
    assert.ok(slow.seen.max <= 4, `at most 4 placing at once, saw ${slow.seen.max}`);
    assert.ok(slow.seen.max >= 2, "placements ran side by side");
    const last = (await get(admin.api, `/get_status?sandbox_id=${ids[99]}`)).result;
    assert.match(last.status.queued.message, /^waited \d+\.\d s in the start queue$/);
  } finally {
    for (let i = 0; i < ids.length; i += 20) {
      await Promise.all(
        ids.slice(i, i + 20).map((id) => post(admin.api, "/stop", { sandbox_id: id })),
      );
    }
  }
});

Deno.test("a full start queue refuses at once with 4000, and a queued sandbox stops at once", async () => {
  const slow = slowPlacements(2000);
  await using admin = await startAdminServer("local", {
    startConcurrency: 1,
    startQueueLimit: 2,
    wrapBackend: slow.wrap,
  });
  const ids = Array.from({ length: 4 }, (_, i) => testSandboxId(`queue-${i}`));
  try {
    for (const id of ids.slice(0, 3)) {
      assert.equal((await post(admin.api, "/start_async", { sandbox_id: id })).status, "Success");
    }
    const refused = await post(admin.api, "/start_async", { sandbox_id: ids[3] });
    assert.equal(refused.status, "Failed");
    assert.equal(refused.result.code, 4000);
    assert.match(String(refused.error), /the start queue is full \(2 waiting, 1 starting\)/);
    assert.equal(
      (await get(admin.api, `/get_status?sandbox_id=${ids[3]}`)).result.code,
      4000,
      "nothing was written for the refused one",
    );
    // The last queued one stops without waiting for the placements ahead of it.
    assert.equal((await post(admin.api, "/stop", { sandbox_id: ids[2] })).status, "Success");
    const stopped = (await get(admin.api, `/get_status?sandbox_id=${ids[2]}`)).result;
    assert.ok(["stopped", "failed"].includes(stopped.state), stopped.state);
    assert.equal(slow.seen.total, 1, "only the first had started placing");
  } finally {
    for (const id of ids) await post(admin.api, "/stop", { sandbox_id: id });
  }
});
