/**
 * An incremental reader of the exchange file: it keeps a byte offset and reads only what was
 * appended since (never the whole file per check), and it wakes on file-system events (a watch on
 * the file's directory, so creation is seen too) with a fallback poll for file systems that send
 * none. A replaced file (new inode) or a truncated one is read again from its start.
 * node:fs only, so the SDK's trainer helper runs on Deno and Node.
 */
import { closeSync, fstatSync, type FSWatcher, openSync, statSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import { type ExchangeLine, parseLine, readFully } from "./file_protocol.ts";

/** Options of ExchangeTail. */
export interface ExchangeTailOptions {
  /** Byte offset to start reading at (default 0; must be at a line start). */
  offset?: number;
  /** Fallback poll interval in ms when no file-system event comes (default 100). */
  pollIntervalMs?: number | undefined;
  /** Watch the file system (default true); false polls only. */
  watch?: boolean;
}

const MAX_READ = 1024 * 1024;

/** Follows one exchange file, yielding each complete line once. */
export class ExchangeTail implements Disposable {
  /** The file followed. */
  readonly path: string;
  #offset: number;
  #carry: Uint8Array[] = [];
  #fd: number | undefined;
  #inode = -1;
  #pollMs: number;
  #watchEnabled: boolean;
  #watcher: FSWatcher | undefined;
  #dirty = false;
  #waiters = new Set<() => void>();
  #closed = false;
  #decoder = new TextDecoder();

  /** Creates a reader; nothing is opened until the first read. */
  constructor(path: string, options: ExchangeTailOptions = {}) {
    this.path = path;
    this.#offset = options.offset ?? 0;
    this.#pollMs = options.pollIntervalMs ?? 100;
    this.#watchEnabled = options.watch ?? true;
  }

  /** Byte offset just after the last complete line read. */
  get offset(): number {
    return this.#offset - this.#carry.reduce((sum, part) => sum + part.length, 0);
  }

  /** Reads the complete lines appended since the last call (none when the file is missing). */
  read(): ExchangeLine[] {
    if (this.#closed) return [];
    this.#watch();
    this.#dirty = false;
    if (!this.#open()) return [];
    const size = fstatSync(this.#fd!).size;
    if (size < this.#offset) {
      // Truncated in place: what follows is a new session.
      this.#offset = 0;
      this.#carry = [];
    }
    const lines: ExchangeLine[] = [];
    while (this.#offset < size) {
      const chunk = new Uint8Array(Math.min(MAX_READ, size - this.#offset));
      const n = readFully(this.#fd!, chunk, this.#offset);
      if (n === 0) break;
      this.#offset += n;
      this.#split(chunk.subarray(0, n), lines);
    }
    return lines;
  }

  /**
   * Resolves when the file may have changed: a file-system event, the fallback poll interval, or
   * `signal` aborting (it resolves then too; callers check the signal).
   */
  changed(signal?: AbortSignal): Promise<void> {
    if (this.#dirty || this.#closed || signal?.aborted) {
      this.#dirty = false;
      return Promise.resolve();
    }
    this.#watch();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, this.#pollMs);
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Yields lines as they are appended, until `signal` aborts or the reader is closed. */
  async *follow(signal?: AbortSignal): AsyncGenerator<ExchangeLine> {
    while (!this.#closed && !signal?.aborted) {
      const lines = this.read();
      for (const line of lines) yield line;
      if (lines.length === 0) await this.changed(signal);
    }
  }

  /** Stops watching and closes the file; pending waits resolve. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    for (const wake of [...this.#waiters]) wake();
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Opens the file if needed; reopens from the start when the path now names another file. */
  #open(): boolean {
    let inode: number;
    try {
      inode = statSync(this.path).ino;
    } catch {
      return this.#fd !== undefined;
    }
    if (this.#fd !== undefined && inode === this.#inode) return true;
    if (this.#fd !== undefined) {
      // Replaced (ROCK's server deletes and recreates the file at start): a new session.
      closeSync(this.#fd);
      this.#fd = undefined;
      this.#offset = 0;
      this.#carry = [];
    }
    try {
      this.#fd = openSync(this.path, "r");
      this.#inode = fstatSync(this.#fd).ino;
    } catch {
      return false;
    }
    return true;
  }

  #split(bytes: Uint8Array, lines: ExchangeLine[]): void {
    let start = 0;
    for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, start)) {
      let line = bytes.subarray(start, i);
      if (this.#carry.length > 0) {
        this.#carry.push(line);
        line = concat(this.#carry);
        this.#carry = [];
      }
      const parsed = parseLine(this.#decoder.decode(line));
      if (parsed) lines.push(parsed);
      start = i + 1;
    }
    if (start < bytes.length) this.#carry.push(bytes.slice(start));
  }

  #wake = (_event: unknown, name: unknown): void => {
    if (name && String(name) !== basename(this.path)) return;
    this.#dirty = true;
    for (const wake of [...this.#waiters]) wake();
  };

  /** Watches the directory (events for the file, including its creation); polls if that fails. */
  #watch(): void {
    if (this.#watcher || this.#closed || !this.#watchEnabled) return;
    try {
      this.#watcher = watch(dirname(this.path), { persistent: false }, this.#wake);
      this.#watcher.on("error", () => {
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch {
      // No directory yet, or no watch support: the fallback poll covers it; retried next read.
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
