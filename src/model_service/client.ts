/**
 * The trainer's side of local mode (`rock model-service anti-call-llm`): append the response to
 * call N, then wait for request N+1 (or SESSION_END). ROCK's rules are kept: index 0 takes no
 * response and waits for the first request; a response whose index the last response already has
 * is skipped (a retried call), a smaller one is an error.
 *
 * Better than ROCK: each call scans the file backwards from its end (so it costs the size of the
 * last few lines, not of the whole file), then follows what is appended with a watch instead of
 * re-reading the file every second; it finds request N+1 even when the agent sent more requests
 * after it; payloads are written single-line. node:fs only (the SDK's trainer helper uses it).
 */
import { appendFileSync } from "node:fs";
import { BadRequestError } from "../common/errors.ts";
import {
  type ExchangeLine,
  prepareResponse,
  responseLine,
  scanBackward,
  SESSION_END,
} from "../formats/file_protocol.ts";
import { ExchangeTail } from "../formats/exchange_tail.ts";

/** Options of antiCallLlm and waitForRequest. */
export interface AntiCallOptions {
  /** Stops waiting (the call then throws the signal's reason). */
  signal?: AbortSignal;
  /** Fallback poll interval in ms (default 100). */
  pollIntervalMs?: number;
  /** Clock for the meta timestamp (default Date.now). */
  now?: () => number;
}

/** Checks the index/response combination ROCK allows; throws BadRequestError otherwise. */
export function checkAntiCall(index: number, response: string | undefined): void {
  if (!Number.isInteger(index) || index < 0) {
    throw new BadRequestError(`Invalid index ${index}: expected an integer of 0 or more`, {
      status: 400,
    });
  }
  if (index === 0 && response !== undefined) {
    throw new BadRequestError("Invalid call: index 0 takes no response (nothing was asked yet)", {
      status: 400,
    });
  }
  if (index > 0 && response === undefined) {
    throw new BadRequestError(`Invalid call: index ${index} needs the response to call ${index}`, {
      status: 400,
    });
  }
}

/**
 * Appends the response to call `index` unless the last response already has that index.
 * @throws {BadRequestError} when the last response has a larger index, or the payload is not JSON.
 */
export function pushResponse(
  exchangeFile: string,
  index: number,
  response: string,
  now: () => number = Date.now,
): "appended" | "skipped" {
  const payload = prepareResponse(index, response);
  let last: number | undefined;
  scanBackward(exchangeFile, (line) => {
    if (line.kind === "response") last = line.index;
    // Responses before an older request are older still: stop there.
    return line.kind === "response" || (line.kind === "request" && line.index < index);
  });
  if (last !== undefined && index < last) {
    throw new BadRequestError(
      `Invalid call: index ${index} is smaller than the last response's index ${last}`,
      { status: 400 },
    );
  }
  if (last === index) return "skipped";
  appendFileSync(exchangeFile, responseLine(payload, index, now()));
  return "appended";
}

/** What a wait found: a request's payload, or the end of the session. */
export type WaitResult = { kind: "request"; index: number; payload: string } | {
  kind: "session_end";
};

function decide(line: ExchangeLine, wanted: number): WaitResult | undefined {
  if (line.kind === "session_end") return { kind: "session_end" };
  if (line.kind === "request" && line.index === wanted) {
    return { kind: "request", index: line.index, payload: line.payload };
  }
  return undefined;
}

/**
 * Waits for request `wanted` or SESSION_END. A SESSION_END after the request wins, as in ROCK
 * (the agent is gone, answering is pointless).
 */
export async function waitForRequest(
  exchangeFile: string,
  wanted: number,
  options: AntiCallOptions = {},
): Promise<WaitResult> {
  let found: WaitResult | undefined;
  const offset = scanBackward(exchangeFile, (line) => {
    found = decide(line, wanted);
    return found !== undefined || (line.kind === "request" && line.index < wanted);
  });
  if (found) return found;
  using tail = new ExchangeTail(exchangeFile, { offset, pollIntervalMs: options.pollIntervalMs });
  let request: WaitResult | undefined;
  while (true) {
    options.signal?.throwIfAborted();
    for (const line of tail.read()) {
      const result = decide(line, wanted);
      if (result?.kind === "session_end") return result;
      request ??= result;
    }
    // A SESSION_END in the same batch, after the request, has won above.
    if (request) return request;
    await tail.changed(options.signal);
  }
}

/**
 * One `anti-call-llm` step: with `index` 0, waits for the first request; with N > 0, records
 * `response` as the answer to call N, then waits for request N+1. Returns the request's JSON, or
 * `"SESSION_END"`.
 * @throws {BadRequestError} for an invalid index/response combination.
 */
export async function antiCallLlm(
  exchangeFile: string,
  index: number,
  response?: string,
  options: AntiCallOptions = {},
): Promise<string> {
  checkAntiCall(index, response);
  if (index > 0) pushResponse(exchangeFile, index, response!, options.now);
  const result = await waitForRequest(exchangeFile, index + 1, options);
  return result.kind === "request" ? result.payload : SESSION_END;
}
