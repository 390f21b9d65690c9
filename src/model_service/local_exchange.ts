/**
 * Local mode, server side: each chat call gets the next index, its request line is appended to
 * the exchange file, and the call waits until a trainer appends the response with that index (or
 * SESSION_END ends the session). One tail follows the file for every waiting call and wakes on
 * file-system events, not ROCK's 0.1 s polling per call.
 *
 * Index bookkeeping: the index is taken and the line appended in one synchronous step, so lines
 * appear in index order; a failed append gives its index back. A call cancelled by its client
 * leaves its request in the file (the trainer answers it; the answer is dropped) and the next
 * call takes the next index, so the trainer's sequence has no gap and no repeat.
 */
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { CancelledError, RockError, UnavailableError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/log.ts";
import { ExchangeTail } from "../formats/exchange_tail.ts";
import { escapePayload, requestLine, SESSION_END_LINE } from "../formats/file_protocol.ts";
import { isProcessAlive } from "../common/process_state.ts";

/** Options of LocalExchange.open. */
export interface LocalExchangeOptions {
  /** The exchange file (`<data dir>/LLMService.log`); recreated empty at open, as in ROCK. */
  exchangeFile: string;
  /** Where events are logged. */
  logger?: Logger;
  /** Fallback poll interval of the file tail in ms (default 100). */
  pollIntervalMs?: number;
  /** How often a watched agent's liveness is checked, in ms (default 100; ROCK: 5000). */
  agentCheckIntervalMs?: number;
  /** Clock for meta timestamps (default Date.now). */
  now?: () => number;
}

interface Waiter {
  resolve(payload: string): void;
  reject(error: Error): void;
}

/** The message ROCK answers with (HTTP 500) when the session ends before a response comes. */
export const NO_RESPONSE_MESSAGE = "No response received from Roll process";

/** The local-mode exchange of one server: index counter, waiting calls, agent watches. */
export class LocalExchange {
  /** The exchange file. */
  readonly exchangeFile: string;
  #logger: Logger;
  #now: () => number;
  #next = 1;
  #waiters = new Map<number, Waiter>();
  #ended = false;
  #closed = false;
  #tail: ExchangeTail;
  #stop = new AbortController();
  #loop: Promise<void>;
  #agents = new Map<number, ReturnType<typeof setTimeout>>();
  #agentCheckMs: number;

  private constructor(options: LocalExchangeOptions) {
    this.exchangeFile = options.exchangeFile;
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
    this.#agentCheckMs = options.agentCheckIntervalMs ?? 100;
    this.#tail = new ExchangeTail(this.exchangeFile, { pollIntervalMs: options.pollIntervalMs });
    this.#loop = this.#follow();
  }

  /**
   * Recreates the exchange file empty and starts following it.
   * @throws {RockError} when the file cannot be created.
   */
  static open(options: LocalExchangeOptions): LocalExchange {
    try {
      mkdirSync(dirname(options.exchangeFile), { recursive: true });
      writeFileSync(options.exchangeFile, "");
    } catch (error) {
      throw new RockError(
        `Cannot create the exchange file "${options.exchangeFile}": ${(error as Error).message}`,
      );
    }
    return new LocalExchange(options);
  }

  /** True once SESSION_END was seen. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The index the next call gets. */
  get nextIndex(): number {
    return this.#next;
  }

  /**
   * Appends `request` as the next call and waits for the trainer's response payload (JSON text).
   * @throws {RockError} (500, ROCK's message) when the session ends first.
   * @throws {CancelledError} (499) when `signal` aborts.
   */
  async complete(
    request: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<{ index: number; payload: string }> {
    if (this.#closed) throw new UnavailableError("The model service is stopping");
    if (this.#ended) throw new RockError(NO_RESPONSE_MESSAGE, { status: 500 });
    signal?.throwIfAborted();
    const index = this.#next++;
    let waiter!: Waiter;
    const response = new Promise<string>((resolve, reject) => (waiter = { resolve, reject }));
    this.#waiters.set(index, waiter);
    try {
      appendFileSync(
        this.exchangeFile,
        requestLine(escapePayload(JSON.stringify(request)), index, this.#now()),
      );
    } catch (error) {
      // Nothing else ran since the index was taken (this is synchronous): give it back.
      this.#waiters.delete(index);
      this.#next = index;
      throw new RockError(
        `Cannot write request ${index} to "${this.exchangeFile}": ${(error as Error).message}`,
      );
    }
    this.#logger.info("Request written", { index });
    const onAbort = () => {
      if (!this.#waiters.delete(index)) return;
      this.#logger.info("Request cancelled by the client", { index });
      waiter.reject(new CancelledError(`Request ${index} was cancelled`));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return { index, payload: await response };
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Appends SESSION_END (once); every waiting call then fails with ROCK's message. */
  endSession(reason: string): void {
    if (this.#ended || this.#closed) return;
    this.#ended = true;
    this.#logger.info("Session ended", { reason });
    try {
      appendFileSync(this.exchangeFile, SESSION_END_LINE);
    } catch (error) {
      this.#logger.error("Cannot write SESSION_END", { error: (error as Error).message });
    }
    this.#failAll(new RockError(NO_RESPONSE_MESSAGE, { status: 500 }));
  }

  /** Ends the session when process `pid` exits (or is a zombie); watching twice is one watch. */
  watchAgent(pid: number): void {
    if (this.#agents.has(pid) || this.#closed) return;
    this.#logger.info("Watching agent", { pid });
    const check = async () => {
      if (this.#closed || this.#ended) {
        this.#agents.delete(pid);
        return;
      }
      if (!(await isProcessAlive(pid))) {
        this.#agents.delete(pid);
        this.endSession(`agent process ${pid} exited`);
        return;
      }
      if (this.#agents.has(pid)) this.#agents.set(pid, setTimeout(check, this.#agentCheckMs));
    };
    this.#agents.set(pid, setTimeout(check, 0));
  }

  /** Stops following the file and agent watches; waiting calls fail with 503. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#agents.values()) clearTimeout(timer);
    this.#agents.clear();
    this.#failAll(new UnavailableError("The model service is stopping"));
    this.#stop.abort();
    this.#tail.close();
    await this.#loop;
  }

  #failAll(error: Error): void {
    const waiters = [...this.#waiters.values()];
    this.#waiters.clear();
    for (const waiter of waiters) waiter.reject(error);
  }

  async #follow(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      try {
        for await (const line of this.#tail.follow(this.#stop.signal)) {
          if (line.kind === "response") {
            const waiter = this.#waiters.get(line.index);
            if (!waiter) {
              this.#logger.debug("Response without a waiting call", { index: line.index });
              continue;
            }
            this.#waiters.delete(line.index);
            waiter.resolve(line.payload);
          } else if (line.kind === "session_end" && !this.#ended) {
            this.#ended = true;
            this.#logger.info("Session ended", { reason: "SESSION_END in the exchange file" });
            this.#failAll(new RockError(NO_RESPONSE_MESSAGE, { status: 500 }));
          }
        }
      } catch (error) {
        this.#logger.error("Cannot read the exchange file", { error: (error as Error).message });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}
