/**
 * ROCK's local-mode exchange file (`LLMService.log`), byte-compatible with ROCK's readers:
 *
 * ```
 * LLM_REQUEST_START<json>LLM_REQUEST_END{"timestamp": 1700000000000, "index": 1}\n
 * LLM_RESPONSE_START<json>LLM_RESPONSE_END{"timestamp": 1700000000050, "index": 1}\n
 * SESSION_END\n
 * ```
 *
 * One message is one line: payloads are written single-line (raw newlines given by callers are
 * escaped), and marker words inside payload strings are written with a JSON escape
 * (`SESSION\u005fEND`), so neither ROCK's substring checks nor ours can mistake content for a
 * marker. Everything here is free of Deno APIs (node:fs only): the SDK's trainer helper uses it.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { BadRequestError } from "../common/errors.ts";

/** Starts a request line. */
export const REQUEST_START = "LLM_REQUEST_START";
/** Ends a request payload; the meta follows. */
export const REQUEST_END = "LLM_REQUEST_END";
/** Starts a response line. */
export const RESPONSE_START = "LLM_RESPONSE_START";
/** Ends a response payload; the meta follows. */
export const RESPONSE_END = "LLM_RESPONSE_END";
/** A line of its own: the agent is gone, no more requests come. */
export const SESSION_END = "SESSION_END";
/** The exchange file's name in the data dir. */
export const EXCHANGE_FILE_NAME = "LLMService.log";
/** The trajectory file's name in the data dir. */
export const TRAJECTORY_FILE_NAME = "LLMTraj.jsonl";

/** One parsed line of the exchange file. */
export type ExchangeLine =
  | { kind: "request"; index: number; timestamp: number; payload: string }
  | { kind: "response"; index: number; timestamp: number; payload: string }
  | { kind: "session_end" };

const MARKER_WORDS = /LLM_RE(?:QUEST|SPONSE)_(?:START|END)|SESSION_END/g;

/** The meta exactly as ROCK's Python writes it (`json.dumps` separators). */
export function formatMeta(index: number, timestamp: number): string {
  return `{"timestamp": ${Math.floor(timestamp)}, "index": ${index}}`;
}

/**
 * Makes a JSON payload safe for one line: raw CR/LF outside strings become spaces, inside strings
 * they become `\n`/`\r` escapes; marker words get their `_` escaped as `\u005f`. A payload that is
 * valid JSON stays equivalent JSON; one already single-line and marker-free is returned as is.
 */
export function escapePayload(payload: string): string {
  let text = payload;
  if (/[\r\n]/.test(text)) {
    const parts: string[] = [];
    let inString = false;
    let escaped = false;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (inString) {
        if (escaped) escaped = false;
        else if (ch === 0x5c) escaped = true;
        else if (ch === 0x22) inString = false;
      } else if (ch === 0x22) {
        inString = true;
      }
      if (ch === 0x0a || ch === 0x0d) {
        parts.push(text.slice(start, i), inString ? (ch === 0x0a ? "\\n" : "\\r") : " ");
        start = i + 1;
        // A CR or LF right after a backslash escaped nothing useful: the escape ends here.
        escaped = false;
      }
    }
    parts.push(text.slice(start));
    text = parts.join("");
  }
  return text.replace(MARKER_WORDS, (word) => word.replace(/_(START|END)$/, "\\u005f$1"));
}

/** A request line (with its newline) for `payload`, which must already be single-line. */
export function requestLine(payload: string, index: number, timestamp: number): string {
  return `${REQUEST_START}${payload}${REQUEST_END}${formatMeta(index, timestamp)}\n`;
}

/** A response line (with its newline) for `payload`, which must already be single-line. */
export function responseLine(payload: string, index: number, timestamp: number): string {
  return `${RESPONSE_START}${payload}${RESPONSE_END}${formatMeta(index, timestamp)}\n`;
}

/** The session end line. */
export const SESSION_END_LINE = `${SESSION_END}\n`;

function parseMarked(
  line: string,
  kind: "request" | "response",
  start: string,
  end: string,
): ExchangeLine | undefined {
  // The meta never holds a marker, so the last END marker is the real one.
  const at = line.lastIndexOf(end);
  if (at < start.length) return undefined;
  let meta: { index?: unknown; timestamp?: unknown };
  try {
    meta = JSON.parse(line.slice(at + end.length));
  } catch {
    return undefined;
  }
  const index = Number(meta?.index);
  if (!Number.isInteger(index)) return undefined;
  return {
    kind,
    index,
    timestamp: Number(meta.timestamp) || 0,
    payload: line.slice(start.length, at),
  };
}

/** Parses one line (without its newline); undefined for anything that is not a protocol line. */
export function parseLine(line: string): ExchangeLine | undefined {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (text.startsWith(REQUEST_START)) {
    return parseMarked(text, "request", REQUEST_START, REQUEST_END);
  }
  if (text.startsWith(RESPONSE_START)) {
    return parseMarked(text, "response", RESPONSE_START, RESPONSE_END);
  }
  if (text.trim() === SESSION_END) return { kind: "session_end" };
  return undefined;
}

const CHUNK = 64 * 1024;

/**
 * Visits the complete lines of `path` from the last to the first, reading backwards in chunks,
 * until `visit` returns true. Returns the offset just after the last complete line (where a
 * forward reader continues), or 0 when the file does not exist.
 */
export function scanBackward(path: string, visit: (line: ExchangeLine) => boolean): number {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return 0;
    throw error;
  }
  try {
    const size = fstatSync(fd).size;
    const decoder = new TextDecoder();
    let position = size;
    let carry = new Uint8Array(0);
    let end = -1;
    while (position > 0) {
      const length = Math.min(CHUNK, position);
      position -= length;
      const chunk = new Uint8Array(length + carry.length);
      readFully(fd, chunk.subarray(0, length), position);
      chunk.set(carry, length);
      let lineEnd = chunk.length;
      for (let i = chunk.length - 1; i >= 0; i--) {
        if (chunk[i] !== 0x0a) continue;
        if (end < 0) {
          // Bytes after the last newline are a line still being written: not ours yet.
          end = position + i + 1;
        } else {
          const parsed = parseLine(decoder.decode(chunk.subarray(i + 1, lineEnd)));
          if (parsed && visit(parsed)) return end;
        }
        lineEnd = i;
      }
      carry = chunk.slice(0, lineEnd);
    }
    if (end >= 0 && carry.length > 0) {
      const parsed = parseLine(decoder.decode(carry));
      if (parsed) visit(parsed);
    }
    return Math.max(end, 0);
  } finally {
    closeSync(fd);
  }
}

/** Reads exactly `buffer.length` bytes at `position` (files may return short reads). */
export function readFully(fd: number, buffer: Uint8Array, position: number): number {
  let done = 0;
  while (done < buffer.length) {
    const n = readSync(fd, buffer, done, buffer.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * Prepares a trainer's response for the file: one line, markers escaped, and valid JSON.
 * @throws {BadRequestError} when it is not JSON.
 */
export function prepareResponse(index: number, response: string): string {
  const payload = escapePayload(response.trim());
  try {
    JSON.parse(payload);
  } catch (error) {
    throw new BadRequestError(
      `Invalid response for call ${index}: not JSON: ${(error as Error).message}`,
      { status: 400 },
    );
  }
  return payload;
}
