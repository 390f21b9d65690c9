/** Capped text buffers for command output, and ANSI escape stripping. */

/** Default cap on one command's output: 10 MiB. */
export const DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024;

/** Returns the number of bytes `text` takes in UTF-8. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff) i++, bytes += 2; // surrogate pair: 4 bytes for 2 units
    else bytes += 2;
  }
  return bytes;
}

/**
 * Keeps the first `maxBytes` of a text stream and counts the rest, so a command printing
 * gigabytes costs memory for the cap only.
 */
export class CappedText {
  #parts: string[] = [];
  #kept = 0;
  #dropped = 0;
  readonly #maxBytes: number;

  /** Creates a buffer that keeps at most `maxBytes` bytes. */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Appends text, dropping what exceeds the cap. */
  push(text: string): void {
    if (text.length === 0) return;
    if (this.#dropped > 0) {
      this.#dropped += utf8Length(text);
      return;
    }
    const size = utf8Length(text);
    if (this.#kept + size <= this.#maxBytes) {
      this.#parts.push(text);
      this.#kept += size;
      return;
    }
    // Cut on a character boundary that fits in the remaining room.
    const room = this.#maxBytes - this.#kept;
    let end = 0;
    let bytes = 0;
    while (end < text.length) {
      const c = text.charCodeAt(end);
      const width = c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 4 : 3;
      if (bytes + width > room) break;
      bytes += width;
      end += width === 4 ? 2 : 1;
    }
    this.#parts.push(text.slice(0, end));
    this.#kept += bytes;
    this.#dropped += size - bytes;
  }

  /** Bytes dropped past the cap. */
  get droppedBytes(): number {
    return this.#dropped;
  }

  /** The kept text, with a one-line notice appended when something was dropped. */
  text(): string {
    const kept = this.#parts.join("");
    this.#parts = [kept];
    if (this.#dropped === 0) return kept;
    return `${kept}\n[rock: output truncated: kept the first ${this.#kept} of ${
      this.#kept + this.#dropped
    } bytes; redirect large output to a file]`;
  }
}

// CSI sequences, OSC sequences (ended by BEL or ST) and two-character escapes.
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

/** Removes ANSI escape sequences (colors, cursor moves, titles) from `text`. */
export function stripAnsi(text: string): string {
  return text.includes("\x1b") ? text.replace(ANSI, "") : text;
}
