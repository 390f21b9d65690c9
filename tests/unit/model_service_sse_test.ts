/** Streamed chat completions: assembling chunks into a completion, and back. */
import assert from "node:assert/strict";
import { completionToSse, SseAssembler } from "../../src/formats/sse.ts";
import { chunk, completion } from "../helpers/llm_upstream.ts";

function sse(events: unknown[]): string {
  return events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + "data: [DONE]\n\n";
}

Deno.test("SseAssembler joins content, keeps one role, and takes finish reason and usage", () => {
  const text = sse([
    chunk({ role: "assistant", content: "" }),
    chunk({ role: "assistant", content: "Hel" }),
    chunk({ content: "lo" }),
    chunk({}, "stop"),
    { ...chunk({}), choices: [], usage: { total_tokens: 7 } },
  ]);
  const assembler = new SseAssembler();
  // Fed in pieces that cut through lines and events.
  for (let i = 0; i < text.length; i += 7) assembler.feed(text.slice(i, i + 7));
  assert.ok(assembler.done);
  assert.deepEqual(assembler.result(), {
    id: "chatcmpl-stream",
    created: 1700000000,
    model: "test-model",
    object: "chat.completion",
    choices: [{
      index: 0,
      message: { role: "assistant", content: "Hello" },
      finish_reason: "stop",
    }],
    usage: { total_tokens: 7 },
  });
});

Deno.test("SseAssembler is finished once every choice it saw has a finish reason", () => {
  const assembler = new SseAssembler();
  assert.ok(!assembler.finished, "no choice yet");
  const second = (delta: Record<string, unknown>, finish: string | null = null) => ({
    ...chunk(delta, finish),
    choices: [{ index: 1, delta, finish_reason: finish }],
  });
  assembler.feed(`data: ${JSON.stringify(chunk({ content: "a" }))}\n\n`);
  assembler.feed(`data: ${JSON.stringify(second({ content: "b" }))}\n\n`);
  assembler.feed(`data: ${JSON.stringify(chunk({}, "stop"))}\n\n`);
  assert.ok(!assembler.finished, "choice 1 still streams");
  assembler.feed(`data: ${JSON.stringify(second({}, "length"))}\n\n`);
  assert.ok(assembler.finished);
  assert.ok(!assembler.done);
});

Deno.test("SseAssembler assembles tool calls from argument fragments", () => {
  const assembler = new SseAssembler();
  assembler.feed(sse([
    chunk({
      role: "assistant",
      tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "ls" } }],
    }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"pa' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: 'th":"/"}' } }] }),
    chunk({}, "tool_calls"),
  ]));
  const message = (assembler.result() as { choices: { message: Record<string, unknown> }[] })
    .choices[0]?.message;
  assert.ok(message);
  assert.deepEqual(message.tool_calls, [
    { id: "call_1", type: "function", function: { name: "ls", arguments: '{"path":"/"}' } },
  ]);
});

Deno.test("completionToSse() streams a completion that assembles back to the same message", () => {
  const original = completion("from the trainer");
  const assembler = new SseAssembler();
  assembler.feed(completionToSse(original));
  const result = assembler.result() as Record<string, unknown>;
  assert.deepEqual(result.choices, original.choices);
  assert.deepEqual(result.usage, original.usage);
  assert.ok(assembler.done);
});
