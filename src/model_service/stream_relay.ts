/**
 * Streaming through the proxy: the upstream's events are relayed to the client as they come (with
 * an idle timeout between chunks) and assembled into the one completion a trajectory records.
 */
import { dropHeaders, RESPONSE_DROP } from "./headers.ts";
import { SseAssembler } from "../formats/sse.ts";
import type { CallRecord } from "./traj.ts";

/**
 * Streams the upstream's events to the client, assembling them for the record. The record is
 * written before the final event goes out: before `data: [DONE]`, or, from an upstream that sends
 * no [DONE], before what comes once every choice has finished (held until the stream ends), and
 * at the latest before the end of the stream.
 */
export function replyStream(upstream: Response, record?: CallRecord): Response {
  const headers = dropHeaders(upstream.headers, RESPONSE_DROP);
  headers.set("cache-control", "no-cache");
  const assembler = new SseAssembler();
  const decoder = new TextDecoder();
  let recorded = false;
  let held: Uint8Array[] = [];
  const recordOnce = () => {
    // A broken stream is not a call's answer: it is not recorded.
    if (!recorded && !assembler.failed) record?.write(assembler.result());
    recorded = true;
  };
  const release = (controller: TransformStreamDefaultController<Uint8Array>) => {
    for (const piece of held) controller.enqueue(piece);
    held = [];
  };
  const body = upstream.body!.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        assembler.feed(decoder.decode(chunk, { stream: true }));
        if (!recorded) {
          if (assembler.done) {
            recordOnce();
          } else if (assembler.finished) {
            // Maybe the last event (usage and [DONE] may follow, or nothing): held, so that the
            // record is written before it goes out.
            held.push(chunk);
            return;
          }
        }
        release(controller);
        controller.enqueue(chunk);
      },
      flush(controller) {
        assembler.feed(decoder.decode());
        recordOnce();
        release(controller);
      },
    }),
  );
  return new Response(body, { status: upstream.status, headers });
}

/**
 * Relays an upstream event stream: each read must come within `idleMs`, else the upstream is
 * aborted; the client going away, or `stop`, aborts it too. A stream that breaks ends with an SSE
 * error event (OpenAI clients raise it as an APIError) instead of a reset connection.
 */
export function relay(
  upstream: Response,
  abort: AbortController,
  options: { idleMs: number; stop: AbortSignal },
): Response {
  const { idleMs, stop } = options;
  const reader = upstream.body!.getReader();
  const onStop = () => abort.abort();
  stop.addEventListener("abort", onStop, { once: true });
  let idle = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const timer = setTimeout(() => {
        idle = true;
        abort.abort();
      }, idleMs);
      try {
        const { done, value } = await reader.read();
        if (done) {
          stop.removeEventListener("abort", onStop);
          controller.close();
        } else {
          controller.enqueue(value);
        }
      } catch (error) {
        stop.removeEventListener("abort", onStop);
        const message = idle
          ? `The LLM backend sent nothing for ${idleMs / 1000} s mid-stream`
          : stop.aborted
          ? "The model service is stopping"
          : `The LLM backend stream broke: ${(error as Error).message}`;
        controller.enqueue(new TextEncoder().encode(`\n\n${sseError(message)}`));
        controller.close();
      } finally {
        clearTimeout(timer);
      }
    },
    async cancel(reason) {
      stop.removeEventListener("abort", onStop);
      abort.abort();
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return new Response(body, { status: upstream.status, headers: upstream.headers });
}

/** An SSE event carrying an OpenAI-style error. */
function sseError(message: string): string {
  return `data: ${
    JSON.stringify({ error: { message, type: "proxy_stream_error", code: 502 } })
  }\n\n`;
}
