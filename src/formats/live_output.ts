/**
 * Live output of a command as server-sent events, the same on the rocklet and the admin.
 *
 * A call to run_in_session or execute whose request says `Accept: text/event-stream` answers
 * with a stream of events instead of one JSON body:
 *
 *     event: output            (run_in_session: stdout and stderr in order)
 *     data: {"text":"line 1\n"}
 *
 *     event: stdout | stderr   (execute: the two apart)
 *     data: {"text":"..."}
 *
 *     event: result            (last: the body the plain call would have answered)
 *     data: {...}
 *
 * or, last, `event: error` whose data is the plain call's error body plus `http_status` (the
 * status the plain call would have had). Comment lines keep an idle stream alive. Chunks are the
 * text as the program printed it; the final body is normalized as the plain call's is (ANSI
 * stripped, trimmed).
 */

import { encodeSse, readSse } from "./sse.ts";

/** The media type of event streams. */
export const EVENT_STREAM = "text/event-stream";

/** Where a chunk of output came from. */
export type OutputStream = "output" | "stdout" | "stderr";

/** One event of a live-output stream, parsed. */
export type LiveEvent =
  | { kind: "chunk"; stream: OutputStream; text: string }
  | { kind: "result"; body: unknown }
  | { kind: "error"; status: number; body: Record<string, unknown> };

/** True when a request with these headers asks for live output. */
export function wantsLiveOutput(headers: Headers): boolean {
  return (headers.get("accept") ?? "").toLowerCase().includes(EVENT_STREAM);
}

/** How a streamed call ended: the plain call's answer. */
export interface LiveOutcome {
  status: number;
  body: unknown;
}

/** How often a comment keeps an idle stream alive through proxies. */
const HEARTBEAT_MS = 15_000;

const encoder = new TextEncoder();

function frame(event: string, data: unknown): Uint8Array {
  return encoder.encode(encodeSse(event, data));
}

/**
 * An event-stream Response for a call: `run` gets an `emit` for chunks and a signal that aborts
 * when the client goes away, and returns the plain call's answer, which becomes the last event.
 * `run` must not throw (map errors to their answer).
 */
export function liveOutputResponse(
  run: (
    emit: (stream: OutputStream, text: string) => void,
    signal: AbortSignal,
  ) => Promise<LiveOutcome>,
  headers: Record<string, string> = {},
): Response {
  const gone = new AbortController();
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true;
      const send = (bytes: Uint8Array) => {
        if (!open) return;
        try {
          controller.enqueue(bytes);
        } catch {
          open = false;
        }
      };
      heartbeat = setInterval(() => send(encoder.encode(": keep-alive\n\n")), HEARTBEAT_MS);
      const emit = (stream: OutputStream, text: string) => {
        if (text) send(frame(stream, { text }));
      };
      void run(emit, gone.signal).then((outcome) => {
        clearInterval(heartbeat);
        const ok = outcome.status >= 200 && outcome.status < 300;
        const body = outcome.body;
        send(
          ok ? frame("result", body) : frame("error", {
            ...(body && typeof body === "object" ? body : { detail: String(body) }),
            http_status: outcome.status,
          }),
        );
        if (open) controller.close();
        open = false;
      });
    },
    cancel() {
      clearInterval(heartbeat);
      gone.abort();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": EVENT_STREAM,
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
      ...headers,
    },
  });
}

/** The plain answer a Response stands for: its status and JSON body (or its text). */
export async function outcomeOf(response: Response): Promise<LiveOutcome> {
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: { detail: text } };
  }
}

/** The body of `response` when it is a live-output stream (else undefined: a plain answer). */
export function liveBody(response: Response): ReadableStream<Uint8Array> | undefined {
  const type = response.headers.get("content-type") ?? "";
  return type.startsWith(EVENT_STREAM) && response.body ? response.body : undefined;
}

/**
 * Reads a live-output stream to its end: chunks go to `onOutput`; returns the last event (the
 * result, or the error it reports), or undefined when the stream ended without one.
 */
export async function followLiveOutput(
  body: ReadableStream<Uint8Array>,
  onOutput: (stream: OutputStream, text: string) => void,
): Promise<Exclude<LiveEvent, { kind: "chunk" }> | undefined> {
  for await (const event of readLiveOutput(body)) {
    if (event.kind === "chunk") onOutput(event.stream, event.text);
    else return event;
  }
  return undefined;
}

/** The live-output events of a stream; ends after the result or error event. */
export async function* readLiveOutput(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<LiveEvent> {
  for await (const { event, data } of readSse(stream)) {
    const parsed = JSON.parse(data) as Record<string, unknown>;
    if (event === "output" || event === "stdout" || event === "stderr") {
      yield { kind: "chunk", stream: event, text: String(parsed.text ?? "") };
    } else if (event === "result") {
      yield { kind: "result", body: parsed };
      return;
    } else if (event === "error") {
      const { http_status, ...body } = parsed;
      yield { kind: "error", status: Number(http_status) || 500, body };
      return;
    }
  }
}
