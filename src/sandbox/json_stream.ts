/**
 * Reading a stream of JSON objects printed back to back (pretty or compact), as `kubectl get
 * --watch -o json` prints them: objects are split where braces outside strings balance.
 */

/** Splits text fed in pieces into whole JSON objects. */
export class JsonObjectSplitter {
  #buffer = "";
  #depth = 0;
  #start = -1;
  #inString = false;
  #escaped = false;
  /** Index in #buffer up to which characters were scanned. */
  #scanned = 0;

  /**
   * Adds `text` and returns the objects it completes, in order.
   * @throws {SyntaxError} when a balanced object is not valid JSON.
   */
  push(text: string): unknown[] {
    this.#buffer += text;
    const objects: unknown[] = [];
    let consumed = 0;
    const buffer = this.#buffer;
    for (let i = this.#scanned; i < buffer.length; i++) {
      const char = buffer[i];
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (char === "\\") this.#escaped = true;
        else if (char === '"') this.#inString = false;
        continue;
      }
      if (char === '"') this.#inString = true;
      else if (char === "{") {
        if (this.#depth++ === 0) this.#start = i;
      } else if (char === "}" && this.#depth > 0 && --this.#depth === 0) {
        objects.push(JSON.parse(buffer.slice(this.#start, i + 1)));
        consumed = i + 1;
      }
    }
    // Keep only what follows the last whole object (an object in progress among it).
    this.#buffer = buffer.slice(consumed);
    this.#scanned = this.#buffer.length;
    if (this.#depth > 0) this.#start -= consumed;
    return objects;
  }

  /** What was fed and is not part of a whole object yet. */
  get rest(): string {
    return this.#buffer;
  }
}

/** Splits `text` into the whole JSON objects it holds, and what is left after the last one. */
export function jsonObjects(text: string): { objects: unknown[]; rest: string } {
  const splitter = new JsonObjectSplitter();
  const objects = splitter.push(text);
  return { objects, rest: splitter.rest };
}
