/**
 * The trajectory file (`<data dir>/LLMTraj.jsonl`): one `{"request","response"}` line per call.
 * As in ROCK, each write replaces the file (so it holds the latest call) unless append mode
 * (ROCK_MODEL_SERVICE_TRAJ_APPEND_MODE=true) keeps every call. Writes never delay the caller's
 * answer; credentials in bodies are replaced before anything is written.
 */
import { dirname } from "node:path";
import { type Logger, silentLogger } from "../common/log.ts";
import type { TrajectoryRecord } from "../protocol/model_service.ts";

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

/** Options of TrajectoryWriter. */
export interface TrajectoryWriterOptions {
  /** Keep every call (true) or only the latest (false, ROCK's default). */
  append: boolean;
  /** Where write failures are logged. */
  logger?: Logger;
}

/**
 * Writes trajectory lines in call order. Records are redacted, serialized and written in a task
 * after the call's answer has gone out, batched per task (overwrite mode writes only the latest),
 * with synchronous writes: a record costs the answered call nothing.
 */
export class TrajectoryWriter {
  /** The trajectory file. */
  readonly path: string;
  #append: boolean;
  #logger: Logger;
  #pending: Array<[unknown, unknown]> = [];
  #scheduled: Promise<void> | undefined;
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
   * Queues one record; `response` may be a function, called only when the record is written.
   * Resolves when it is written. Failures are logged, not thrown: a trajectory problem never
   * fails the call it records.
   */
  record(request: unknown, response: unknown): Promise<void> {
    if (this.#append) this.#pending.push([request, response]);
    else this.#pending = [[request, response]];
    this.#scheduled ??= new Promise((resolve) =>
      setTimeout(() => {
        this.#scheduled = undefined;
        this.#write();
        resolve();
      }, 0)
    );
    return this.#scheduled;
  }

  /** Resolves when every queued record is written. */
  flush(): Promise<void> {
    return this.#scheduled ?? Promise.resolve();
  }

  /** Writes what is queued and closes the file. */
  async close(): Promise<void> {
    await this.flush();
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
    this.#file?.close();
    this.#file = undefined;
    Deno.mkdirSync(dirname(this.path), { recursive: true });
    const file = Deno.openSync(this.path, { write: true, create: true, append: this.#append });
    this.#inode = file.statSync().ino;
    this.#file = file;
    return file;
  }

  #write(): void {
    const batch = this.#pending;
    this.#pending = [];
    let text = "";
    for (const [request, response] of batch) {
      try {
        const record: TrajectoryRecord = {
          request: redactSecrets(request),
          response: redactSecrets(typeof response === "function" ? response() : response),
        };
        text += JSON.stringify(record) + "\n";
      } catch (error) {
        this.#logger.error("Cannot serialize a trajectory record", {
          error: (error as Error).message,
        });
      }
    }
    if (text === "") return;
    try {
      const file = this.#open();
      if (!this.#append) {
        // As with ROCK's open("w"): a reader may find the file empty for a moment.
        file.truncateSync(0);
        file.seekSync(0, Deno.SeekMode.Start);
      }
      const bytes = this.#encoder.encode(text);
      for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
    } catch (error) {
      this.#file?.close();
      this.#file = undefined;
      this.#logger.error("Cannot write the trajectory", {
        path: this.path,
        error: (error as Error).message,
      });
    }
  }
}
