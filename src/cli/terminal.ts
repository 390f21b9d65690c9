/**
 * Terminal output for the user CLI: a one-line status (spinner or progress) on stderr that only
 * draws when stderr is a terminal, and binary-safe writes to stdout and stderr.
 */

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const encoder = new TextEncoder();

/** Writes all of `data` to `stream` (short writes retried). */
export async function writeAll(
  stream: { write(p: Uint8Array): Promise<number> },
  data: Uint8Array | string,
): Promise<void> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  for (let done = 0; done < bytes.length;) done += await stream.write(bytes.subarray(done));
}

/** "12.3 MiB": a byte count for people. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) value /= 1024, unit++;
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A line on stderr that is redrawn in place; does nothing unless `enabled`. */
export class StatusLine {
  readonly #enabled: boolean;
  #text = "";
  #frame = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #drawnAt = 0;

  /** Creates the line; by default it draws only when stderr is a terminal. */
  constructor(enabled: boolean = Deno.stderr.isTerminal()) {
    this.#enabled = enabled;
  }

  /** Starts a spinner in front of the text, redrawn every 80 ms until clear(). */
  spin(text: string): void {
    this.#text = text;
    if (!this.#enabled || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#draw(true), 80);
    this.#draw(true);
  }

  /** Replaces the text (drawn with the next spinner frame, or at once without a spinner). */
  set(text: string): void {
    this.#text = text;
    if (this.#enabled && this.#timer === undefined) this.#draw(false);
  }

  /** Shows `done` of `total` bytes (total unknown when not above 0) after `label`, 10/s at most. */
  progress(label: string, done: number, total: number): void {
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#drawnAt < 100 && done !== total) return;
    this.#drawnAt = now;
    const of = total > 0 ? ` of ${formatBytes(total)} (${Math.floor((done / total) * 100)}%)` : "";
    this.set(`${label} ${formatBytes(done)}${of}`);
  }

  /** Stops the spinner and erases the line. */
  clear(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#enabled && this.#text) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    this.#text = "";
  }

  #draw(spinning: boolean): void {
    const frame = spinning ? `${FRAMES[this.#frame++ % FRAMES.length]} ` : "";
    const columns = consoleColumns();
    const line = `${frame}${this.#text}`.slice(0, Math.max(10, columns - 1));
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line}`));
  }
}

function consoleColumns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

/**
 * Writes live output to stdout or stderr in the order it arrives (each chunk waits for the one
 * before it); `finish()` waits for the last and ends an unfinished stdout line with a newline.
 */
export class LiveOutput {
  #tail: Promise<void> = Promise.resolve();
  #stdoutEndsLine = true;
  #wrote = false;

  /** Queues `text` (or bytes, written as they are) for `stream`. */
  write(stream: "stdout" | "stderr", text: string | Uint8Array): void {
    if (text.length === 0) return;
    if (stream === "stdout") {
      this.#stdoutEndsLine = typeof text === "string"
        ? text.endsWith("\n")
        : text[text.length - 1] === 0x0a;
    }
    this.#wrote = true;
    const target = stream === "stderr" ? Deno.stderr : Deno.stdout;
    this.#tail = this.#tail.then(() => writeAll(target, text));
  }

  /** True once anything was written. */
  get wrote(): boolean {
    return this.#wrote;
  }

  /** Waits until everything is written; with `newline`, ends a stdout line left open. */
  async finish(options: { newline?: boolean } = {}): Promise<void> {
    if (options.newline && !this.#stdoutEndsLine) this.write("stdout", "\n");
    await this.#tail;
  }
}
