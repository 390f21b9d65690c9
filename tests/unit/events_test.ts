/** EventBus (the admin's lifecycle events) and SseReader, without a server. */
import assert from "node:assert/strict";
import { EventBus } from "../../src/admin/events.ts";
import { type SseEvent, SseReader } from "../../src/formats/sse.ts";
import type { SandboxEvent } from "../../src/protocol/admin.ts";

function lease(id: string, type: "expiring" | "lease" = "lease"): SandboxEvent {
  return {
    type,
    sandbox_id: id,
    time: "2026-01-21T19:38:00+08:00",
    expire_time: "2026-01-21T19:39:00+08:00",
    expire_in_seconds: 60,
    expire_reason: "timeout of 60 s",
    timeout_seconds: 60,
  };
}

/** Reads `stream` to its end (bounded), returning the events and the comments it carried. */
async function readAll(
  stream: ReadableStream<Uint8Array>,
  stopAfter = Infinity,
): Promise<{ events: SseEvent[]; comments: string[] }> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseReader();
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const timer = setTimeout(() => reader.cancel(), 10_000);
  try {
    while (events.length < stopAfter) {
      const { value, done } = await reader.read();
      if (done) break;
      comments.push(...value.split("\n").filter((line) => line.startsWith(":")));
      events.push(...parser.feed(value));
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel();
  }
  return { events, comments };
}

Deno.test("EventBus sends a sandbox's events to its subscribers and to those of all sandboxes, in order", async () => {
  const bus = new EventBus();
  const one = bus.subscribe("a");
  const all = bus.subscribe(undefined);
  const other = bus.subscribe("b");
  assert.equal(bus.wants("a"), true);
  bus.publish(lease("a"));
  bus.publish(lease("a", "expiring"));
  bus.publish(lease("c"));
  bus.close();
  const [mine, every, others] = await Promise.all([readAll(one), readAll(all), readAll(other)]);
  assert.deepEqual(mine.events.map((e) => e.event), ["lease", "expiring"]);
  assert.deepEqual(mine.events.map((e) => JSON.parse(e.data).sandbox_id), ["a", "a"]);
  assert.deepEqual(every.events.map((e) => JSON.parse(e.data).sandbox_id), ["a", "a", "c"]);
  assert.deepEqual(others.events, []);
  // Ids grow with each event published.
  assert.deepEqual(mine.events.map((e) => Number(e.id)), [1, 2]);
  assert.equal(bus.subscribers, 0);
});

Deno.test("EventBus starts a stream with the events first() gives, after the subscription began", async () => {
  const bus = new EventBus();
  const stream = bus.subscribe("a", {
    first: () => {
      // Published while the stream reads its first events: still delivered, after them.
      bus.publish(lease("a", "expiring"));
      return Promise.resolve([lease("a")]);
    },
  });
  const { events } = await readAll(stream, 2);
  assert.deepEqual(events.map((e) => e.event), ["lease", "expiring"]);
  bus.close();
});

Deno.test("EventBus drops a subscriber that does not read past its queue limit, with a last dropped event", async () => {
  const bus = new EventBus({ queueLimit: 3 });
  const slow = bus.subscribe("a");
  const fast = bus.subscribe("a");
  const fastRead = readAll(fast);
  for (let i = 0; i < 10; i++) {
    bus.publish(lease("a"));
    // The reading subscriber reads between events; the slow one never does.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.equal(bus.subscribers, 1); // the slow one is gone, the reading one stays
  const { events } = await readAll(slow);
  assert.deepEqual(events.map((e) => e.event), ["dropped"]);
  assert.match(JSON.parse(events[0]!.data).reason, /3 events were waiting/);
  bus.close();
  assert.equal((await fastRead).events.length, 10);
});

Deno.test("EventBus sends heartbeat comments while a stream is open, and a cancelled stream unsubscribes", async () => {
  const bus = new EventBus({ heartbeatMs: 10 });
  const stream = bus.subscribe(undefined);
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes(": heartbeat")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  assert.match(text, /^: events\n\n(: heartbeat\n\n)+$/);
  await reader.cancel();
  assert.equal(bus.subscribers, 0);
  bus.close();
});

Deno.test("EventBus.close() ends every stream, a later subscription ends at once, and an aborted signal ends one", async () => {
  const bus = new EventBus();
  const abort = new AbortController();
  const aborted = bus.subscribe("a", { signal: abort.signal });
  const open = bus.subscribe("a");
  abort.abort();
  assert.equal(bus.subscribers, 1);
  bus.close();
  assert.deepEqual((await readAll(aborted)).events, []);
  assert.deepEqual((await readAll(open)).events, []);
  assert.deepEqual((await readAll(bus.subscribe("a"))).events, []);
  assert.equal(bus.subscribers, 0);
});

Deno.test("SseReader parses events split anywhere, with names, ids, multi-line data and comments", () => {
  const text = ': hello\n\nevent: status\nid: 7\ndata: {"a":\ndata: 1}\n\ndata: plain\r\n\r\n';
  const reader = new SseReader();
  const events: SseEvent[] = [];
  for (const char of text) events.push(...reader.feed(char));
  assert.deepEqual(events, [
    { event: "status", data: '{"a":\n1}', id: "7" },
    { event: "message", data: "plain", id: "7" },
  ]);
  assert.equal(reader.flush(), undefined);
});
