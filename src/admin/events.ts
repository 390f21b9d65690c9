/**
 * The admin's lifecycle events: an in-process bus every state, phase and lease change of a
 * sandbox goes through (the manager publishes, `GET /events` subscribers read). Each subscriber
 * has a bounded queue: one that does not read (a slow or stuck client) is dropped with a last
 * `dropped` event, so the admin's memory never grows with it. Subscribers get a heartbeat comment
 * at an interval, which keeps proxies from closing an idle stream and finds clients that left.
 */
import { encodeSse } from "../formats/sse.ts";
import type { SandboxEvent } from "../protocol/admin.ts";

/** How the bus treats its subscribers. */
export interface EventBusOptions {
  /** Most events waiting for one subscriber; past it the subscriber is dropped (default 1024). */
  queueLimit?: number | undefined;
  /** Heartbeat comment interval, in milliseconds (default 15 s). */
  heartbeatMs?: number | undefined;
}

/** A subscriber's queue: encoded SSE chunks waiting to be read. */
class Subscriber {
  readonly sandboxId: string | undefined;
  readonly #queue: string[] = [];
  readonly #limit: number;
  #wake: (() => void) | undefined;
  #ended = false;
  readonly #onEnd: (subscriber: Subscriber) => void;

  constructor(
    sandboxId: string | undefined,
    limit: number,
    onEnd: (subscriber: Subscriber) => void,
  ) {
    this.sandboxId = sandboxId;
    this.#limit = limit;
    this.#onEnd = onEnd;
  }

  /** Queues `chunk`; a full queue drops the subscriber with one last event saying why. */
  push(chunk: string): void {
    if (this.#ended) return;
    if (this.#queue.length >= this.#limit) {
      this.#queue.length = 0;
      this.#queue.push(encodeSse("dropped", {
        type: "dropped",
        reason: `the client read too slowly: ${this.#limit} events were waiting`,
      }));
      this.end();
      return;
    }
    this.#queue.push(chunk);
    this.#wakeUp();
  }

  /** Ends the stream once what is queued is read. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onEnd(this);
    this.#wakeUp();
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The next chunk, or undefined once the stream ended and its queue is read. */
  async next(): Promise<string | undefined> {
    while (this.#queue.length === 0 && !this.#ended) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    return this.#queue.shift();
  }
}

/** The bus: publish() to every matching subscriber, subscribe() as an SSE byte stream. */
export class EventBus {
  /** Every open stream. */
  readonly #subscribers = new Set<Subscriber>();
  /** The streams of all sandboxes, and those of each one sandbox (a publish touches only its own). */
  readonly #everything = new Set<Subscriber>();
  readonly #bySandbox = new Map<string, Set<Subscriber>>();
  readonly #limit: number;
  readonly #heartbeatMs: number;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #seq = 0;
  #closed = false;

  /** A bus with no subscribers yet. */
  constructor(options: EventBusOptions = {}) {
    this.#limit = options.queueLimit ?? 1024;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
  }

  /** How many streams are open. */
  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** True when some subscriber would get events of `sandboxId`. */
  wants(sandboxId: string): boolean {
    return this.#everything.size > 0 || this.#bySandbox.has(sandboxId);
  }

  /** Sends `event` to the subscribers of its sandbox and to those of all sandboxes. */
  publish(event: SandboxEvent): void {
    if (!this.wants(event.sandbox_id)) return;
    const chunk = encodeSse(event.type, event, ++this.#seq);
    const targets = [...this.#bySandbox.get(event.sandbox_id) ?? [], ...this.#everything];
    for (const subscriber of targets) subscriber.push(chunk);
  }

  /**
   * A stream of the events of `sandboxId` (all sandboxes when undefined), as SSE bytes. It
   * starts with the events `first()` gives, made after the subscription began, so nothing
   * published meanwhile is missed (a change may then come twice, never not at all). It ends when
   * `signal` aborts (the client went away), the client cancels it, the subscriber is dropped, or
   * the bus closes.
   */
  subscribe(
    sandboxId: string | undefined,
    options: { signal?: AbortSignal | undefined; first?: () => Promise<SandboxEvent[]> } = {},
  ): ReadableStream<Uint8Array> {
    const subscriber = new Subscriber(sandboxId, this.#limit, (s) => this.#remove(s));
    if (this.#closed) subscriber.end();
    else this.#add(subscriber);
    const stop = () => subscriber.end();
    options.signal?.addEventListener("abort", stop, { once: true });
    const encoder = new TextEncoder();
    let started = false;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (!started) {
          started = true;
          // An opening comment flushes the response headers to the client at once.
          controller.enqueue(encoder.encode(": events\n\n"));
          for (const event of await options.first?.() ?? []) {
            controller.enqueue(encoder.encode(encodeSse(event.type, event)));
          }
          return;
        }
        const chunk = await subscriber.next();
        if (chunk === undefined) {
          options.signal?.removeEventListener("abort", stop);
          controller.close();
        } else controller.enqueue(encoder.encode(chunk));
      },
      cancel: () => {
        options.signal?.removeEventListener("abort", stop);
        stop();
      },
    });
  }

  #add(subscriber: Subscriber): void {
    this.#subscribers.add(subscriber);
    const id = subscriber.sandboxId;
    if (id === undefined) this.#everything.add(subscriber);
    else {
      let mine = this.#bySandbox.get(id);
      if (!mine) this.#bySandbox.set(id, mine = new Set());
      mine.add(subscriber);
    }
    this.#heartbeat ??= setInterval(() => {
      for (const s of this.#subscribers) s.push(": heartbeat\n\n");
    }, this.#heartbeatMs);
  }

  #remove(subscriber: Subscriber): void {
    this.#subscribers.delete(subscriber);
    const id = subscriber.sandboxId;
    if (id === undefined) this.#everything.delete(subscriber);
    else {
      const mine = this.#bySandbox.get(id);
      mine?.delete(subscriber);
      if (mine?.size === 0) this.#bySandbox.delete(id);
    }
    if (this.#subscribers.size === 0) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
    }
  }

  /** Ends every stream (the admin is shutting down); later subscriptions end at once. */
  close(): void {
    this.#closed = true;
    for (const subscriber of [...this.#subscribers]) subscriber.end();
  }
}
