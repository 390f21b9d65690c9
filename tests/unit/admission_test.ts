/** Admission: bounded placements, FIFO order, a queue limit, aborts, and background work last. */
import assert from "node:assert/strict";
import { Admission, QueueFullError, type Release } from "../../src/admin/admission.ts";
import { BadRequestError } from "../../src/common/errors.ts";

Deno.test("Admission grants at most `concurrency` slots and then serves waiters in FIFO order", async () => {
  const admission = new Admission({ concurrency: 2, queueLimit: 10 });
  const order: string[] = [];
  const releases = new Map<string, Release>();
  const ids = ["a", "b", "c", "d", "e"];
  const granted = ids.map((id) =>
    admission.acquire(id).then((release) => {
      order.push(id);
      releases.set(id, release);
    })
  );
  await Promise.resolve();
  assert.deepEqual([admission.running, admission.queued], [2, 3]);
  assert.deepEqual(ids.map((id) => admission.position(id)), [undefined, undefined, 1, 2, 3]);
  releases.get("a")!();
  releases.get("a")!(); // a second release changes nothing
  await granted[2];
  assert.deepEqual([admission.running, admission.queued], [2, 2]);
  releases.get("b")!();
  releases.get("c")!();
  await Promise.all(granted.slice(3));
  assert.deepEqual(order, ids);
  releases.get("d")!();
  releases.get("e")!();
  assert.deepEqual([admission.running, admission.queued], [0, 0]);
});

Deno.test("Admission refuses at once past its queue limit, with a 4000-coded error", async () => {
  const admission = new Admission({ concurrency: 1, queueLimit: 2 });
  const first = await admission.acquire("a");
  const waiting = [admission.acquire("b"), admission.acquire("c")] as const;
  await assert.rejects(admission.acquire("d"), (error: Error) => {
    assert.ok(error instanceof QueueFullError && error instanceof BadRequestError);
    assert.equal((error as QueueFullError).code, 4000);
    assert.match(error.message, /^Cannot start sandbox "d": the start queue is full \(2 waiting/);
    return true;
  });
  first();
  (await waiting[0])();
  (await waiting[1])();
});

Deno.test("Admission gives up a waiter's place when its signal aborts", async () => {
  const admission = new Admission({ concurrency: 1, queueLimit: 5 });
  const first = await admission.acquire("a");
  const abort = new AbortController();
  const gone = admission.acquire("b", { signal: abort.signal });
  const next = admission.acquire("c");
  abort.abort(new Error("stopped"));
  await assert.rejects(gone, /stopped/);
  assert.equal(admission.position("c"), 1);
  first();
  (await next)();
  assert.equal(admission.running, 0);
});

Deno.test("Admission grants background work only when no start waits", async () => {
  const admission = new Admission({ concurrency: 1, queueLimit: 5 });
  const first = await admission.acquire("a");
  const order: string[] = [];
  const pool = admission.acquire("pool", { background: true }).then((r) => {
    order.push("pool");
    return r;
  });
  const start = admission.acquire("b").then((r) => {
    order.push("b");
    return r;
  });
  first();
  (await start)();
  (await pool)();
  assert.deepEqual(order, ["b", "pool"]);
});
