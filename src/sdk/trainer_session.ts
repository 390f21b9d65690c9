/**
 * `TrainerSession`: the trainer's side of a local-mode session, for a machine that sees the
 * exchange file (the host of a local-mode service, or a mounted data dir). Runs on Deno and Node
 * (node:fs only).
 *
 * @example
 * ```ts
 * import { TrainerSession } from "./trainer_session.ts";
 * using session = TrainerSession.forDataDir("/data/logs");
 * for await (const request of session) {
 *   const messages = request.body.messages;
 *   session.respond(request.index, { choices: [{ message: { role: "assistant", content: "ok" } }] });
 * }
 * ```
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { BadRequestError } from "../common/errors.ts";
import { ExchangeTail } from "../formats/exchange_tail.ts";
import { EXCHANGE_FILE_NAME, prepareResponse, responseLine } from "../formats/file_protocol.ts";

/** One request of the agent, as the trainer sees it. */
export interface TrainerRequest {
  /** The call's index (1, 2, ...). */
  index: number;
  /** The request as JSON text (one line, as written to the exchange file). */
  payload: string;
  /** The request, parsed. */
  body: Record<string, unknown>;
}

/**
 * The trainer's side of a local-mode session over the exchange file: requests in index order,
 * each answered with respond(); the iteration ends at SESSION_END. Reads incrementally and wakes
 * on file changes. Attaching mid-session resumes after the last response in the file.
 */
export class TrainerSession implements AsyncIterable<TrainerRequest>, Disposable {
  /** The exchange file. */
  readonly exchangeFile: string;
  #tail: ExchangeTail;
  #requests = new Map<number, string>();
  #lastResponse = 0;
  #expected = 1;
  #ended = false;
  #now: () => number;

  private constructor(exchangeFile: string, options: TrainerSessionOptions) {
    this.exchangeFile = exchangeFile;
    this.#tail = new ExchangeTail(exchangeFile, { pollIntervalMs: options.pollIntervalMs });
    this.#now = options.now ?? Date.now;
  }

  /** Follows the exchange file `exchangeFile` (it may not exist yet). */
  static open(exchangeFile: string, options: TrainerSessionOptions = {}): TrainerSession {
    const session = new TrainerSession(exchangeFile, options);
    session.#consume();
    session.#expected = session.#lastResponse + 1;
    return session;
  }

  /** Follows `<dataDir>/LLMService.log` (the service's ROCK_MODEL_SERVICE_DATA_DIR). */
  static forDataDir(dataDir: string, options: TrainerSessionOptions = {}): TrainerSession {
    return TrainerSession.open(join(dataDir, EXCHANGE_FILE_NAME), options);
  }

  /** True once SESSION_END was read. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Waits for the next request; undefined at SESSION_END (or when `signal` aborts: check it).
   */
  async next(signal?: AbortSignal): Promise<TrainerRequest | undefined> {
    while (true) {
      this.#consume();
      if (this.#ended) return undefined;
      const payload = this.#requests.get(this.#expected);
      if (payload !== undefined) {
        return { index: this.#expected, payload, body: JSON.parse(payload) };
      }
      if (signal?.aborted) return undefined;
      await this.#tail.changed(signal);
    }
  }

  /**
   * Answers call `index` (a JSON string or a value to serialize). Answering a call already
   * answered does nothing, as in ROCK.
   * @throws {BadRequestError} for an index not asked yet or older than the last answer, or a
   * response that is not JSON.
   */
  respond(index: number, response: string | object): void {
    const text = typeof response === "string" ? response : JSON.stringify(response);
    if (index === this.#lastResponse) return;
    if (!Number.isInteger(index) || index < this.#lastResponse || index > this.#expected) {
      throw new BadRequestError(
        `Cannot answer call ${index}: the next call to answer is ${this.#expected}`,
      );
    }
    appendFileSync(
      this.exchangeFile,
      responseLine(prepareResponse(index, text), index, this.#now()),
    );
    this.#lastResponse = index;
    this.#requests.delete(index);
    this.#expected = index + 1;
  }

  /** Iterates requests until SESSION_END; each must be answered before the next is taken. */
  async *[Symbol.asyncIterator](): AsyncGenerator<TrainerRequest> {
    while (true) {
      const request = await this.next();
      if (!request) return;
      yield request;
      if (this.#expected <= request.index) {
        throw new BadRequestError(
          `Call ${request.index} was not answered: call respond(${request.index}, ...) first`,
        );
      }
    }
  }

  /** Stops following the file. */
  close(): void {
    this.#tail.close();
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }

  #consume(): void {
    for (const line of this.#tail.read()) {
      if (line.kind === "session_end") this.#ended = true;
      else if (line.kind === "response") {
        this.#lastResponse = Math.max(this.#lastResponse, line.index);
        this.#requests.delete(line.index);
      } else if (line.index >= this.#expected) this.#requests.set(line.index, line.payload);
    }
  }
}

/** Options of TrainerSession.open. */
export interface TrainerSessionOptions {
  /** Fallback poll interval in ms (default 100). */
  pollIntervalMs?: number | undefined;
  /** Clock for meta timestamps (default Date.now). */
  now?: (() => number) | undefined;
}
