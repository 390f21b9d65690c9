import assert from "node:assert/strict";
import { pollUntil } from "../../src/common/poll.ts";
import { statusPollInterval } from "../../src/sdk/status_poll.ts";

Deno.test("pollUntil() resolves with the first value check returns", async () => {
  let calls = 0;
  const value = await pollUntil(() => ++calls === 3 ? "ready" : undefined, { intervalMs: 1 });
  assert.equal(value, "ready");
  assert.equal(calls, 3);
});

Deno.test("pollUntil() resolves undefined after timeoutMs, with a last call at the deadline", async () => {
  let calls = 0;
  const started = performance.now();
  const value = await pollUntil(() => {
    calls++;
    return undefined;
  }, { intervalMs: 20, timeoutMs: 50 });
  assert.equal(value, undefined);
  assert.ok(performance.now() - started >= 50);
  assert.ok(calls >= 3 && calls <= 5, `${calls} calls`);
});

Deno.test("pollUntil() rejects with the signal's reason when it aborts while waiting", async () => {
  const abort = new AbortController();
  setTimeout(() => abort.abort(new Error("stopped")), 10);
  await assert.rejects(
    pollUntil(() => undefined, { intervalMs: 10_000, signal: abort.signal }),
    /stopped/,
  );
});

Deno.test("pollUntil() passes on what check throws", async () => {
  await assert.rejects(
    pollUntil(() => {
      throw new RangeError("gone");
    }, { intervalMs: 1 }),
    RangeError,
  );
});

Deno.test("pollUntil() waits what nextIntervalMs says after each call", async () => {
  const seen: number[] = [];
  let calls = 0;
  const value = await pollUntil(() => (++calls === 4 ? "done" : undefined), {
    intervalMs: 1,
    nextIntervalMs: (attempt) => {
      seen.push(attempt);
      return 1;
    },
    timeoutMs: 10_000,
  });
  assert.equal(value, "done");
  assert.deepEqual(seen, [0, 1, 2]);
});

Deno.test("statusPollInterval() polls fast while placed and by the place in the queue while queued", () => {
  const queued = (position: number) =>
    ({ state: "pending", queue_position: position, queue_length: 300 }) as unknown as Parameters<
      typeof statusPollInterval
    >[0];
  assert.equal(statusPollInterval(undefined, 0), 10);
  assert.equal(statusPollInterval(undefined, 3), 25);
  assert.equal(statusPollInterval(queued(1), 3), 60);
  assert.equal(statusPollInterval(queued(30), 3), 350);
  assert.equal(statusPollInterval(queued(500), 3), 1000);
});
