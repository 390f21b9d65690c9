/** anti-call-llm's rules (ROCK's) and its waiting (better than ROCK's). */
import assert from "node:assert/strict";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { BadRequestError } from "../../src/common/errors.ts";
import { antiCallLlm, pushResponse, waitForRequest } from "../../src/model_service/client.ts";
import {
  parseLine,
  requestLine,
  responseLine,
  SESSION_END_LINE,
} from "../../src/formats/file_protocol.ts";

async function withFile(fn: (file: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rock-ms-client-" });
  try {
    await fn(`${dir}/LLMService.log`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function lines(file: string): string[] {
  return readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
}

Deno.test("antiCallLlm() rejects a negative index, a response at 0 and none after 0", async () => {
  await withFile(async (file) => {
    await assert.rejects(antiCallLlm(file, -1), BadRequestError);
    await assert.rejects(antiCallLlm(file, 0, "{}"), /index 0 takes no response/);
    await assert.rejects(antiCallLlm(file, 2), /index 2 needs the response/);
    await assert.rejects(antiCallLlm(file, 1, "not json"), /not JSON/);
  });
});

Deno.test("antiCallLlm(0) waits for the file and the first request, then returns its JSON", async () => {
  await withFile(async (file) => {
    const call = antiCallLlm(file, 0, undefined, { pollIntervalMs: 10 });
    await new Promise((r) => setTimeout(r, 30));
    writeFileSync(file, requestLine('{"model":"m"}', 1, 1));
    assert.equal(await call, '{"model":"m"}');
  });
});

Deno.test("antiCallLlm(N) appends response N once, as one line, and returns request N+1", async () => {
  await withFile(async (file) => {
    writeFileSync(file, requestLine('{"q":1}', 1, 1) + requestLine('{"q":2}', 2, 2));
    const pretty = JSON.stringify({ choices: [{ message: { content: "two\nlines" } }] }, null, 2);
    assert.equal(await antiCallLlm(file, 1, pretty), '{"q":2}');
    // Retried with the same index: skipped, not appended twice.
    assert.equal(await antiCallLlm(file, 1, pretty), '{"q":2}');
    const written = lines(file).map(parseLine);
    assert.deepEqual(written.map((l) => l?.kind), ["request", "request", "response"]);
    const response = written[2] as { payload: string };
    assert.deepEqual(JSON.parse(response.payload), JSON.parse(pretty));
  });
});

Deno.test("pushResponse() refuses an index smaller than the last response's", async () => {
  await withFile((file) => {
    writeFileSync(file, requestLine("{}", 1, 1) + responseLine("{}", 1, 1));
    appendFileSync(file, requestLine("{}", 2, 1) + responseLine("{}", 2, 1));
    assert.throws(() => pushResponse(file, 1, "{}"), /smaller than the last response's index 2/);
    assert.equal(pushResponse(file, 2, "{}"), "skipped");
    assert.equal(pushResponse(file, 3, "{}"), "appended");
  });
});

Deno.test("waitForRequest() finds request N+1 when the agent already sent N+2 (ROCK hangs)", async () => {
  await withFile(async (file) => {
    writeFileSync(file, requestLine('{"n":1}', 1, 1) + requestLine('{"n":2}', 2, 1));
    assert.deepEqual(await waitForRequest(file, 1), {
      kind: "request",
      index: 1,
      payload: '{"n":1}',
    });
  });
});

Deno.test("waitForRequest() returns SESSION_END when it follows the request, as ROCK", async () => {
  await withFile(async (file) => {
    writeFileSync(file, requestLine("{}", 1, 1) + SESSION_END_LINE);
    assert.deepEqual(await waitForRequest(file, 1), { kind: "session_end" });
  });
});

Deno.test("waitForRequest() wakes on the append, and stops when its signal aborts", async () => {
  await withFile(async (file) => {
    writeFileSync(file, requestLine("{}", 1, 1));
    const started = performance.now();
    setTimeout(() => appendFileSync(file, requestLine('{"n":2}', 2, 2)), 20);
    const found = await waitForRequest(file, 2, { pollIntervalMs: 60_000 });
    assert.equal(found.kind === "request" && found.payload, '{"n":2}');
    assert.ok(performance.now() - started < 20_000, "woken by the watch, not the minute's poll");
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error("gave up")), 20);
    await assert.rejects(waitForRequest(file, 3, { signal: abort.signal }), /gave up/);
  });
});
