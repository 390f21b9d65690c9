/**
 * Server-sent events: a reader of any event stream (fed in arbitrary pieces, or a response body)
 * and the writer of one event; for OpenAI chat completions, assembling a streamed answer into the
 * one `chat.completion` object a trajectory records, and the reverse (a completion as a stream)
 * for local-mode callers that ask for `stream: true`.
 */

type Json = Record<string, unknown>;

/** One server-sent event: its `event` name ("message" when none was sent), data and id. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string | undefined;
}

/** Parses SSE text fed in arbitrary pieces into events; comments (heartbeats) are skipped. */
export class SseReader {
  #buffer = "";
  #data: string[] = [];
  #event = "";
  #id: string | undefined;

  /** Feeds the next piece of the stream (already decoded); returns the events it completed. */
  feed(text: string): SseEvent[] {
    this.#buffer += text;
    const events: SseEvent[] = [];
    let at: number;
    while ((at = this.#buffer.indexOf("\n")) >= 0) {
      const line = this.#buffer.slice(0, at).replace(/\r$/, "");
      this.#buffer = this.#buffer.slice(at + 1);
      if (line === "") {
        const event = this.flush();
        if (event) events.push(event);
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") this.#data.push(value);
      else if (field === "event") this.#event = value;
      else if (field === "id") this.#id = value;
    }
    return events;
  }

  /** The event whose lines were read but not yet ended by a blank line, if any. */
  flush(): SseEvent | undefined {
    const event = this.#data.length === 0 ? undefined : {
      event: this.#event || "message",
      data: this.#data.join("\n"),
      ...(this.#id === undefined ? {} : { id: this.#id }),
    };
    this.#data = [];
    this.#event = "";
    return event;
  }
}

/**
 * The events of an SSE response body, as they arrive; ends with the body. Cancelling the
 * iteration (break, return) cancels the body.
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* parser.feed(value);
    }
    const last = parser.flush();
    if (last) yield last;
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** The SSE text of one event: `event: NAME`, `id: ID` and the JSON of `data`. */
export function encodeSse(event: string, data: unknown, id?: string | number): string {
  return `event: ${event}\n${id === undefined ? "" : `id: ${id}\n`}data: ${
    JSON.stringify(data)
  }\n\n`;
}

interface ChoiceState {
  index: number;
  message: Json;
  toolCalls: Map<number, Json>;
  finishReason: unknown;
  logprobs: unknown[] | undefined;
}

/** Parses SSE text fed in arbitrary pieces and assembles the chat completion it streams. */
export class SseAssembler {
  readonly #reader = new SseReader();
  #base: Json = {};
  #choices = new Map<number, ChoiceState>();
  #usage: unknown;
  #other: unknown[] = [];
  #done = false;
  #failed = false;
  #chunks = 0;

  /** Feeds the next piece of the stream (already decoded). */
  feed(text: string): void {
    // Event names and ids carry nothing a completion needs: only the data.
    for (const event of this.#reader.feed(text)) this.#dispatch(event.data);
  }

  /** True once `data: [DONE]` was seen. */
  get done(): boolean {
    return this.#done;
  }

  /** True once every choice seen has its finish reason: what may follow is usage and [DONE]. */
  get finished(): boolean {
    if (this.#choices.size === 0) return false;
    for (const choice of this.#choices.values()) if (choice.finishReason === null) return false;
    return true;
  }

  /** True once an error event (`{"error": ...}`) was seen. */
  get failed(): boolean {
    return this.#failed;
  }

  /** The assembled `chat.completion` (or, for a stream of something else, its events). */
  result(): unknown {
    const last = this.#reader.flush();
    if (last) this.#dispatch(last.data);
    if (this.#chunks === 0 && this.#other.length > 0) return { events: this.#other };
    const choices = [...this.#choices.values()].sort((a, b) => a.index - b.index).map((c) => {
      const message = { ...c.message };
      if (c.toolCalls.size > 0) {
        message.tool_calls = [...c.toolCalls.entries()].sort(([a], [b]) => a - b).map(([, t]) => t);
      }
      const choice: Json = { index: c.index, message, finish_reason: c.finishReason ?? null };
      if (c.logprobs) choice.logprobs = { content: c.logprobs };
      return choice;
    });
    const completion: Json = { ...this.#base, object: "chat.completion", choices };
    if (this.#usage !== undefined) completion.usage = this.#usage;
    return completion;
  }

  #dispatch(data: string): void {
    if (data.trim() === "[DONE]") {
      this.#done = true;
      return;
    }
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      this.#other.push(data);
      return;
    }
    const chunk = event as Json;
    if (typeof chunk === "object" && chunk !== null && chunk.error) this.#failed = true;
    if (typeof chunk !== "object" || chunk === null || !Array.isArray(chunk.choices)) {
      this.#other.push(event);
      return;
    }
    this.#chunks++;
    for (const key of ["id", "created", "model", "system_fingerprint", "service_tier"]) {
      if (chunk[key] !== undefined && chunk[key] !== null) this.#base[key] = chunk[key];
    }
    if (chunk.usage !== undefined && chunk.usage !== null) this.#usage = chunk.usage;
    for (const raw of chunk.choices as Json[]) this.#merge(raw);
  }

  #merge(raw: Json): void {
    const index = Number(raw.index ?? 0);
    let state = this.#choices.get(index);
    if (!state) {
      state = { index, message: {}, toolCalls: new Map(), finishReason: null, logprobs: undefined };
      this.#choices.set(index, state);
    }
    if (raw.finish_reason !== undefined && raw.finish_reason !== null) {
      state.finishReason = raw.finish_reason;
    }
    const logprobs = (raw.logprobs as Json | null | undefined)?.content;
    if (Array.isArray(logprobs)) (state.logprobs ??= []).push(...logprobs);
    const delta = (raw.delta ?? {}) as Json;
    for (const [key, value] of Object.entries(delta)) {
      if (key === "tool_calls" && Array.isArray(value)) {
        for (const call of value as Json[]) mergeToolCall(state.toolCalls, call);
      } else if (key === "role" || typeof value !== "string") {
        // Some servers repeat the role in every chunk: keep it, never concatenate it.
        if (value !== null || state.message[key] === undefined) state.message[key] = value;
      } else {
        state.message[key] = `${(state.message[key] as string | null) ?? ""}${value}`;
      }
    }
  }
}

function mergeToolCall(calls: Map<number, Json>, delta: Json): void {
  const index = Number(delta.index ?? calls.size);
  const call = calls.get(index) ?? { id: undefined, type: "function", function: {} };
  if (delta.id) call.id = delta.id;
  if (delta.type) call.type = delta.type;
  const fn = (delta.function ?? {}) as Json;
  const target = call.function as Json;
  for (const key of ["name", "arguments"]) {
    if (typeof fn[key] === "string") target[key] = `${(target[key] as string) ?? ""}${fn[key]}`;
  }
  calls.set(index, call);
}

/**
 * The SSE text of a `chat.completion` streamed as OpenAI does: one chunk per choice with the
 * whole message as its delta, one with the finish reason (and usage), then `data: [DONE]`.
 */
export function completionToSse(completion: Json): string {
  const base = {
    id: completion.id ?? `chatcmpl-${crypto.randomUUID().slice(0, 8)}`,
    object: "chat.completion.chunk",
    created: completion.created ?? Math.floor(Date.now() / 1000),
    model: completion.model ?? "",
  };
  const events: Json[] = [];
  const choices = Array.isArray(completion.choices) ? completion.choices as Json[] : [];
  for (const choice of choices) {
    const message = { ...(choice.message as Json | undefined ?? {}) };
    if (Array.isArray(message.tool_calls)) {
      message.tool_calls = (message.tool_calls as Json[]).map((call, index) => ({
        index,
        ...call,
      }));
    }
    events.push({
      ...base,
      choices: [{ index: choice.index ?? 0, delta: message, finish_reason: null }],
    });
    events.push({
      ...base,
      choices: [{
        index: choice.index ?? 0,
        delta: {},
        finish_reason: choice.finish_reason ?? "stop",
      }],
    });
  }
  if (completion.usage !== undefined) {
    events.push({ ...base, choices: [], usage: completion.usage });
  }
  return events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join("") + "data: [DONE]\n\n";
}
