/** The exchange file: ROCK's line formats, escaping, backward scans and the incremental tail. */
import assert from "node:assert/strict";
import { appendFileSync, writeFileSync } from "node:fs";
import {
  escapePayload,
  formatMeta,
  parseLine,
  requestLine,
  responseLine,
  scanBackward,
  SESSION_END_LINE,
} from "../../src/formats/file_protocol.ts";
import { ExchangeTail } from "../../src/formats/exchange_tail.ts";

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-fp-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("formatMeta() writes the meta byte for byte as ROCK's json.dumps", () => {
  assert.equal(formatMeta(7, 1700000000123), '{"timestamp": 1700000000123, "index": 7}');
  assert.equal(
    requestLine('{"a":1}', 1, 5),
    'LLM_REQUEST_START{"a":1}LLM_REQUEST_END{"timestamp": 5, "index": 1}\n',
  );
  assert.equal(
    responseLine('{"b":2}', 1, 6),
    'LLM_RESPONSE_START{"b":2}LLM_RESPONSE_END{"timestamp": 6, "index": 1}\n',
  );
  assert.equal(SESSION_END_LINE, "SESSION_END\n");
});

Deno.test("escapePayload() makes pretty-printed JSON and raw newlines in strings one line", () => {
  const pretty = JSON.stringify({ choices: [{ message: { content: "a\nb" } }] }, null, 2);
  const escaped = escapePayload(pretty);
  assert.ok(!/[\r\n]/.test(escaped));
  assert.deepEqual(JSON.parse(escaped), JSON.parse(pretty));
  // A raw newline inside a string (invalid JSON as given) becomes the \n escape.
  const raw = '{"content": "line one\nline two\r\nend"}';
  assert.deepEqual(JSON.parse(escapePayload(raw)), { content: "line one\nline two\r\nend" });
  const plain = '{"already":"one line"}';
  assert.equal(escapePayload(plain), plain, "a clean payload is returned untouched");
});

Deno.test("escapePayload() hides marker words in content so no reader mistakes them", () => {
  const body = {
    messages: [{ content: "print('SESSION_END'); LLM_REQUEST_END LLM_RESPONSE_START" }],
  };
  const escaped = escapePayload(JSON.stringify(body));
  for (const marker of ["SESSION_END", "LLM_REQUEST_END", "LLM_RESPONSE_START"]) {
    assert.ok(!escaped.includes(marker), `${marker} left in ${escaped}`);
  }
  assert.deepEqual(JSON.parse(escaped), body);
  const line = requestLine(escaped, 3, 1);
  assert.deepEqual(parseLine(line.trimEnd()), {
    kind: "request",
    index: 3,
    timestamp: 1,
    payload: escaped,
  });
});

Deno.test("parseLine() reads ROCK-written lines and rejects anything else", () => {
  assert.deepEqual(
    parseLine('LLM_RESPONSE_START{"x": 1}LLM_RESPONSE_END{"timestamp": 9, "index": 12}'),
    { kind: "response", index: 12, timestamp: 9, payload: '{"x": 1}' },
  );
  assert.deepEqual(parseLine("SESSION_END"), { kind: "session_end" });
  assert.deepEqual(parseLine("SESSION_END\r"), { kind: "session_end" });
  assert.equal(parseLine("some log line mentioning SESSION_END"), undefined);
  assert.equal(parseLine("LLM_REQUEST_START{}LLM_REQUEST_END{not json"), undefined);
  assert.equal(parseLine(""), undefined);
});

Deno.test("scanBackward() visits lines last first, skips a partial last line, returns its offset", async () => {
  await withDir((dir) => {
    const file = `${dir}/x.log`;
    const big = "x".repeat(200_000);
    const lines = [
      requestLine(`{"n":"${big}"}`, 1, 1),
      responseLine('{"r":1}', 1, 2),
      requestLine('{"n":2}', 2, 3),
    ];
    writeFileSync(file, lines.join("") + "LLM_RESPONSE_START{partial");
    const seen: string[] = [];
    const offset = scanBackward(file, (line) => {
      seen.push(line.kind === "session_end" ? "end" : `${line.kind}:${line.index}`);
      return false;
    });
    assert.deepEqual(seen, ["request:2", "response:1", "request:1"]);
    assert.equal(offset, new TextEncoder().encode(lines.join("")).length);
    assert.equal(scanBackward(`${dir}/missing.log`, () => true), 0);
  });
});

Deno.test("ExchangeTail reads only what was appended, and a line only once it is complete", async () => {
  await withDir((dir) => {
    const file = `${dir}/x.log`;
    writeFileSync(file, requestLine("{}", 1, 1));
    using tail = new ExchangeTail(file);
    assert.equal(tail.read().length, 1);
    assert.equal(tail.read().length, 0);
    const line = responseLine('{"ok":true}', 1, 2);
    appendFileSync(file, line.slice(0, 10));
    assert.equal(tail.read().length, 0, "half a line is not a line");
    appendFileSync(file, line.slice(10) + SESSION_END_LINE);
    assert.deepEqual(tail.read().map((l) => l.kind), ["response", "session_end"]);
    assert.equal(tail.offset, new TextEncoder().encode(requestLine("{}", 1, 1) + line).length + 12);
  });
});

Deno.test("ExchangeTail wakes on an append through the file watch, long before its poll", async () => {
  await withDir(async (dir) => {
    const file = `${dir}/x.log`;
    writeFileSync(file, "");
    using tail = new ExchangeTail(file, { pollIntervalMs: 60_000 });
    assert.equal(tail.read().length, 0);
    const started = performance.now();
    setTimeout(() => appendFileSync(file, requestLine("{}", 1, 1)), 20);
    const wait = tail.changed();
    await wait;
    // The poll is a minute away: anything well under it was the watch.
    assert.ok(performance.now() - started < 20_000, "woken by the watch");
    assert.equal(tail.read().length, 1);
  });
});

Deno.test("ExchangeTail without events polls, and follows a file created or replaced later", async () => {
  await withDir(async (dir) => {
    const file = `${dir}/sub/x.log`;
    using tail = new ExchangeTail(file, { pollIntervalMs: 10, watch: false });
    assert.equal(tail.read().length, 0, "a missing file reads as empty");
    setTimeout(async () => {
      await Deno.mkdir(`${dir}/sub`);
      writeFileSync(file, requestLine("{}", 1, 1) + requestLine("{}", 2, 1));
    }, 30);
    const deadline = performance.now() + 2000;
    let got = 0;
    let polls = 0;
    while (got < 2 && performance.now() < deadline) {
      got += tail.read().length;
      if (got < 2) await tail.changed().then(() => polls++);
    }
    assert.equal(got, 2);
    assert.ok(polls >= 2, `woken by the poll (${polls} polls)`);
    // A new server recreates the file: the tail starts over at its beginning.
    await Deno.remove(file);
    writeFileSync(file, requestLine("{}", 1, 9));
    assert.deepEqual(tail.read().map((l) => l.kind === "request" && l.timestamp), [9]);
  });
});
