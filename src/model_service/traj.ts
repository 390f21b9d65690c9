/**
 * The trajectory file (`<data dir>/LLMTraj.jsonl`): one `{"request","response"}` line per call.
 * As in ROCK, each write replaces the file (so it holds the latest call) unless append mode
 * (ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE=true) keeps every call. A call's record is written before
 * its answer goes out; credentials in bodies are replaced before anything is written.
 */
import { dirname } from "node:path";
import { type Logger, silentLogger } from "../common/log.ts";

/** The text that replaces a secret. */
export const REDACTED = "[REDACTED]";

/**
 * Field names whose values are credentials (case-insensitive). Deliberately not `token` alone
 * (logprobs entries have a `token`) nor anything ending in `_tokens` (`max_tokens`, usage).
 */
const SECRET_KEY = new RegExp(
  "^(?:(?:proxy[-_])?authorization|x[-_]api[-_]key|api[-_]?key|(?:access|refresh|id|auth|" +
    "bearer|session)[-_]?token|(?:client[-_])?secret|secret[-_]key|password|passwd|cookie)$",
  "i",
);

/** A bearer credential inside a string, e.g. an `Authorization` value copied into a body. */
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g;

/** A copy of `value` with credential fields and bearer strings replaced by "[REDACTED]". */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (typeof value === "string") {
    return value.includes("Bearer") || value.includes("Basic")
      ? value.replace(BEARER, `$1 ${REDACTED}`)
      : value;
  }
  if (typeof value !== "object" || value === null || depth > 64) return value;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && item !== null && item !== ""
      ? REDACTED
      : redactSecrets(item, depth + 1);
  }
  return out;
}

/** The record of one call, from TrajectoryWriter.begin(). */
export interface CallRecord {
  /** Redacts and serializes the request now; write() does it otherwise. Never throws. */
  prepare(): void;
  /**
   * Writes the `{"request","response"}` line before returning. In overwrite mode the file then
   * holds this record alone. Failures are logged, not thrown: a trajectory problem never fails
   * the call it records.
   */
  write(response: unknown): void;
}

/** Options of TrajectoryWriter. */
export interface TrajectoryWriterOptions {
  /** Keep every call (true) or only the latest (false, ROCK's default). */
  append: boolean;
  /** Where write failures are logged. */
  logger?: Logger;
}

/**
 * Writes trajectory lines. A record is redacted, serialized and written to the file before
 * write() returns (a write to the page cache, no fsync): callers record a call before its answer
 * goes out, so whoever has the answer finds the record in the file.
 */
export class TrajectoryWriter {
  /** The trajectory file. */
  readonly path: string;
  #append: boolean;
  #logger: Logger;
  #file: Deno.FsFile | undefined;
  #inode: number | null = null;
  #encoder = new TextEncoder();

  /** Creates a writer for `path`; the file is created by the first record. */
  constructor(path: string, options: TrajectoryWriterOptions) {
    this.path = path;
    this.#append = options.append;
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Begins the record of one call. prepare() serializes its request ahead of time (while the call
   * waits for its answer); write() adds the response and writes the line before returning.
   */
  begin(request: unknown): CallRecord {
    // The line is JSON.stringify({request, response}) (a TrajectoryRecord), built in two parts.
    let head: string | undefined;
    const serializeHead = () =>
      head ??= `{"request":${JSON.stringify(redactSecrets(request)) ?? "null"},"response":`;
    return {
      prepare: () => {
        try {
          serializeHead();
        } catch {
          // Reported by write(), which tries again.
        }
      },
      write: (response) => {
        let line: string;
        try {
          line = `${serializeHead()}${JSON.stringify(redactSecrets(response)) ?? "null"}}\n`;
        } catch (error) {
          this.#logger.error("Cannot serialize a trajectory record", {
            error: (error as Error).message,
          });
          return;
        }
        this.#write(line);
      },
    };
  }

  /** Writes one record at once: `begin(request).write(response)`. */
  record(request: unknown, response: unknown): void {
    this.begin(request).write(response);
  }

  /** Closes the file (records are already written). */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  /**
   * The open file, reopened when its path now names another file (rotated or removed). The file
   * stays open: on ext4, truncating or renaming over a file forces a flush on close (~0.2 ms).
   */
  #open(): Deno.FsFile {
    let inode: number | null = null;
    try {
      inode = Deno.statSync(this.path).ino;
    } catch {
      // Missing: (re)created below.
    }
    if (this.#file && inode !== null && inode === this.#inode) return this.#file;
    this.close();
    Deno.mkdirSync(dirname(this.path), { recursive: true });
    const file = Deno.openSync(this.path, { write: true, create: true, append: this.#append });
    this.#inode = file.statSync().ino;
    this.#file = file;
    return file;
  }

  /**
   * Writes `line` with synchronous calls only: no other call's record can run in between, so
   * concurrent calls' lines never interleave.
   */
  #write(line: string): void {
    let file: Deno.FsFile | undefined;
    let written = 0;
    try {
      file = this.#open();
      if (!this.#append) {
        // As ROCK's open("w"): truncate, then write. Another process may find the file empty
        // for a moment; this one never does (both steps run before anything else here).
        file.truncateSync(0);
        file.seekSync(0, Deno.SeekMode.Start);
      }
      const bytes = this.#encoder.encode(line);
      while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    } catch (error) {
      // A write that failed part way (disk full, file size limit) leaves part of a line: cut it
      // off, so the next record starts a line of its own.
      if (file && written > 0) {
        try {
          file.truncateSync(file.seekSync(0, Deno.SeekMode.Current) - written);
        } catch {
          // Reported below; the file is reopened by the next record.
        }
      }
      this.close();
      this.#logger.error("Cannot write the trajectory", {
        path: this.path,
        error: (error as Error).message,
      });
    }
  }
}
