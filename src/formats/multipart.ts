/**
 * Streaming multipart/form-data parser (RFC 7578, RFC 2046). Parts are produced one at a time
 * and each part body is a stream, so a huge file part never sits in memory: the parser holds at
 * most one source chunk plus a few bytes of a possible delimiter.
 */

const CR = 13;
const LF = 10;
const DASH = 45;
const SPACE = 32;
const TAB = 9;
const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
const DEFAULT_MAX_TEXT_BYTES = 1024 * 1024;
const EMPTY = new Uint8Array(0);
const CRLF = new Uint8Array([CR, LF]);
const HEADER_END = new Uint8Array([CR, LF, CR, LF]);
const HEADER_END_SKIP = skipTable(HEADER_END);
// RFC 2046 bchars; a boundary is 1 to 70 of them and does not end with a space.
const BOUNDARY_PATTERN = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/** One part of a multipart/form-data body. */
export interface MultipartPart {
  /** Field name from Content-Disposition. */
  name: string;
  /** File name from Content-Disposition, when the part is a file. */
  filename?: string;
  /** The part's Content-Type header, when present. */
  contentType?: string;
  /** The part body; must be fully consumed (or cancelled) before the next part is produced. */
  body: ReadableStream<Uint8Array>;
}

/** Options of parseMultipart(). */
export interface ParseMultipartOptions {
  /** Largest header block of one part, in bytes (default 16 KiB). */
  maxHeaderBytes?: number;
}

/** A multipart body or header that cannot be parsed, or a part that breaks a limit. */
export class MultipartError extends Error {
  /**
   * Creates the error.
   * @param message What went wrong, in sentence case.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MultipartError";
  }
}

/**
 * Returns the boundary from a Content-Type header value, or throws MultipartError.
 * @param contentType The Content-Type header value (null when the header is absent).
 * @returns The boundary, unquoted.
 * @throws {MultipartError} When the header is missing, is not multipart/form-data, or has no
 *   valid boundary.
 */
export function multipartBoundary(contentType: string | null): string {
  if (contentType === null || contentType.trim() === "") {
    throw new MultipartError("Cannot parse multipart body: missing Content-Type header");
  }
  const { value, params } = parseHeaderValue(contentType);
  if (value.toLowerCase() !== "multipart/form-data") {
    throw new MultipartError(
      `Cannot parse multipart body: expected Content-Type "multipart/form-data", got ${
        quote(value)
      }`,
    );
  }
  const boundary = params.get("boundary");
  if (boundary === undefined || boundary === "") {
    throw new MultipartError("Cannot parse multipart body: missing boundary");
  }
  checkBoundary(boundary);
  return boundary;
}

/**
 * Yields the parts of a multipart/form-data body one by one, streaming each part body.
 *
 * A part body left unread is drained (and its stream errored) when the next part is requested;
 * leaving the loop early cancels the source body.
 * @param body The request body.
 * @param boundary The boundary, as returned by multipartBoundary().
 * @param options Limits (`maxHeaderBytes`, default 16 KiB).
 * @returns An async generator of parts.
 * @throws {MultipartError} When the boundary is invalid or the body is malformed (no opening or
 *   closing delimiter, part headers too big or malformed, no Content-Disposition name).
 */
export async function* parseMultipart(
  body: ReadableStream<Uint8Array>,
  boundary: string,
  options: ParseMultipartOptions = {},
): AsyncGenerator<MultipartPart> {
  checkBoundary(boundary);
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 1) {
    throw new MultipartError(
      `Cannot parse multipart body: invalid maxHeaderBytes ${maxHeaderBytes}`,
    );
  }
  const reader = body.getReader();
  const parser = new Parser(reader, new TextEncoder().encode(`\r\n--${boundary}`), maxHeaderBytes);
  let current: PartBody | undefined;
  try {
    await parser.skipPreamble();
    while (true) {
      const headers = await parser.readHeaders();
      if (headers === null) return;
      const part = describePart(headers);
      current = new PartBody(parser, part.name);
      yield { ...part, body: current.stream };
      await current.finish();
      current = undefined;
    }
  } finally {
    current?.abort();
    await reader.cancel().catch(() => {});
  }
}

/**
 * Reads a small text part fully (e.g. a form field), failing above maxBytes (default 1 MiB).
 * @param part The part, whose body has not been read yet.
 * @param maxBytes The largest body accepted, in bytes.
 * @returns The body decoded as UTF-8.
 * @throws {MultipartError} When the body is longer than maxBytes (the body is then cancelled).
 */
export async function readPartText(
  part: MultipartPart,
  maxBytes: number = DEFAULT_MAX_TEXT_BYTES,
): Promise<string> {
  const reader = part.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel();
        throw new MultipartError(
          `Cannot read part ${quote(part.name)}: body exceeds ${maxBytes} bytes`,
        );
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return new TextDecoder().decode(concat(chunks, total));
}

/** Headers of one part, by lower-case name (first occurrence wins). */
type PartHeaders = Map<string, string>;

/** The body stream of one part, fed from the shared parser on demand. */
class PartBody {
  /** The stream handed to the consumer. */
  readonly stream: ReadableStream<Uint8Array>;
  #parser: Parser;
  #name: string;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #busy: Promise<unknown> = Promise.resolve();
  #ended = false; // the parser has passed the delimiter that ends this part
  #closed = false; // the stream is closed, errored or cancelled
  #finishing = false; // the generator has taken over the rest of this body

  constructor(parser: Parser, name: string) {
    this.#parser = parser;
    this.#name = name;
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      pull: (controller) => {
        const task = this.#pull(controller);
        this.#busy = task.catch(() => {});
        return task;
      },
      cancel: () => {
        this.#closed = true;
      },
    }, { highWaterMark: 0 });
  }

  /**
   * Drains what the consumer left unread. The stream, if still open, is then errored when bytes
   * were dropped (so a late reader cannot mistake a truncated body for a whole one), else closed.
   */
  async finish(): Promise<void> {
    this.#finishing = true;
    await this.#busy;
    let dropped = false;
    try {
      while (!this.#ended) dropped = await this.#next(false) !== null || dropped;
    } catch (error) {
      this.#fail(error);
      throw error;
    }
    if (dropped) {
      this.#fail(
        new MultipartError(
          `Cannot read part ${
            quote(this.#name)
          }: the next part was requested before this body was read to the end`,
        ),
      );
    } else if (!this.#closed) {
      this.#closed = true;
      this.#controller.close();
    }
  }

  /** Errors the stream when the generator stops while this part is open. */
  abort(): void {
    this.#fail(new MultipartError(`Cannot read part ${quote(this.#name)}: the parser was stopped`));
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    // A read racing finish() waits for it to close or error the stream.
    if (this.#finishing) return;
    const chunk = await this.#next(true).catch((error) => {
      this.#closed = true;
      throw error;
    });
    if (this.#closed) return;
    if (chunk === null) {
      this.#closed = true;
      controller.close();
    } else {
      controller.enqueue(chunk);
    }
  }

  async #next(keep: boolean): Promise<Uint8Array | null> {
    if (this.#ended) return null;
    const chunk = await this.#parser.readBody(keep);
    if (chunk === null) this.#ended = true;
    return chunk;
  }

  #fail(error: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#controller.error(error);
  }
}

/** The state machine over the source bytes: preamble, part headers, part bodies, closing. */
class Parser {
  #source: ByteSource;
  #delimiter: Uint8Array;
  #skip: Uint8Array;
  #maxHeaderBytes: number;
  #failure: unknown = undefined;

  constructor(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    delimiter: Uint8Array,
    maxHeaderBytes: number,
  ) {
    // The leading CRLF lets a body that starts with "--boundary" match the delimiter.
    this.#source = new ByteSource(reader, CRLF);
    this.#delimiter = delimiter;
    this.#skip = skipTable(delimiter);
    this.#maxHeaderBytes = maxHeaderBytes;
  }

  /** Discards everything up to and including the first delimiter. */
  async skipPreamble(): Promise<void> {
    await this.#guard(async () => {
      while (await this.#readBody(false, "missing opening boundary") !== null) {
        // discard
      }
    });
  }

  /**
   * Returns the next non-empty piece of the current part body (EMPTY when not kept), or null
   * once the delimiter that ends it has been consumed.
   */
  readBody(keep: boolean): Promise<Uint8Array | null> {
    return this.#guard(() => this.#readBody(keep, "missing closing boundary"));
  }

  /** Reads the part headers after a delimiter; null when the delimiter is the closing one. */
  readHeaders(): Promise<PartHeaders | null> {
    return this.#guard(() => this.#readHeaders());
  }

  async #guard<T>(action: () => Promise<T>): Promise<T> {
    if (this.#failure !== undefined) throw this.#failure;
    try {
      return await action();
    } catch (error) {
      this.#failure = error;
      throw error;
    }
  }

  async #readBody(keep: boolean, eofReason: string): Promise<Uint8Array | null> {
    const source = this.#source;
    const delimiter = this.#delimiter;
    while (true) {
      const view = source.view();
      const at = findSequence(view, delimiter, this.#skip, 0, view.length);
      if (at === 0) {
        source.skip(delimiter.length);
        return null;
      }
      // Everything before a full match, or before a trailing partial match, is body.
      const end = at > 0 ? at : partialMatchStart(view, delimiter);
      if (end > 0) {
        if (!keep) {
          source.skip(end);
          return EMPTY;
        }
        return source.take(end);
      }
      if (!await source.more()) {
        throw new MultipartError(`Cannot parse multipart body: ${eofReason}`);
      }
    }
  }

  async #readHeaders(): Promise<PartHeaders | null> {
    const source = this.#source;
    // After the delimiter: "--" (closing), or optional whitespace then CRLF.
    let i = 0;
    while (true) {
      if (!await source.ensure(i + 2)) {
        throw new MultipartError(
          "Cannot parse multipart body: unexpected end of body after boundary",
        );
      }
      const view = source.view();
      if (i === 0 && view[0] === DASH && view[1] === DASH) {
        source.skip(2);
        return null;
      }
      if (view[i] === CR && view[i + 1] === LF) break;
      if ((view[i] !== SPACE && view[i] !== TAB) || i >= this.#maxHeaderBytes) {
        throw new MultipartError("Cannot parse multipart body: expected CRLF after boundary");
      }
      i++;
    }
    source.skip(i);
    // The view now starts with the boundary line's CRLF, so an empty header block is found too.
    const limit = this.#maxHeaderBytes + 6;
    let from = 0;
    while (true) {
      const view = source.view();
      const end = Math.min(view.length, limit);
      const at = findSequence(view, HEADER_END, HEADER_END_SKIP, from, end);
      if (at >= 0) {
        const headers = parseHeaderBlock(at > 2 ? view.subarray(2, at) : EMPTY);
        source.skip(at + HEADER_END.length);
        return headers;
      }
      if (end >= limit) {
        throw new MultipartError(
          `Cannot parse multipart body: part headers exceed ${this.#maxHeaderBytes} bytes`,
        );
      }
      from = Math.max(0, view.length - (HEADER_END.length - 1));
      if (!await source.more()) {
        throw new MultipartError(
          "Cannot parse multipart body: unexpected end of body in part headers",
        );
      }
    }
  }
}

/**
 * The unconsumed bytes of a stream, in one contiguous view. A chunk that arrives when nothing is
 * pending is used as is (no copy); otherwise it is appended to an owned buffer. Appends only
 * write past the unconsumed end, so bytes already handed out (views, never copies) stay intact.
 */
class ByteSource {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer: Uint8Array;
  #start = 0;
  #end: number;
  #owned = false;
  #done = false;

  constructor(reader: ReadableStreamDefaultReader<Uint8Array>, initial: Uint8Array) {
    this.#reader = reader;
    this.#buffer = initial;
    this.#end = initial.length;
  }

  /** The unconsumed bytes; valid until the next call to more() or ensure(). */
  view(): Uint8Array {
    return this.#buffer.subarray(this.#start, this.#end);
  }

  /** Consumes and returns the first n unconsumed bytes. */
  take(n: number): Uint8Array {
    const bytes = this.#buffer.subarray(this.#start, this.#start + n);
    this.#start += n;
    return bytes;
  }

  /** Consumes the first n unconsumed bytes. */
  skip(n: number): void {
    this.#start += n;
  }

  /** Reads until at least n bytes are unconsumed; false if the stream ends first. */
  async ensure(n: number): Promise<boolean> {
    while (this.#end - this.#start < n) {
      if (!await this.more()) return false;
    }
    return true;
  }

  /** Appends the next non-empty chunk of the stream; false at its end. */
  async more(): Promise<boolean> {
    while (!this.#done) {
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#done = true;
        break;
      }
      if (!(value instanceof Uint8Array)) {
        throw new MultipartError(
          "Cannot parse multipart body: the body stream yielded a non-byte chunk",
        );
      }
      if (value.length > 0) {
        this.#append(value);
        return true;
      }
    }
    return false;
  }

  #append(chunk: Uint8Array): void {
    const pending = this.#end - this.#start;
    if (pending === 0) {
      this.#buffer = chunk;
      this.#start = 0;
      this.#end = chunk.length;
      this.#owned = false;
    } else if (this.#owned && this.#buffer.length - this.#end >= chunk.length) {
      this.#buffer.set(chunk, this.#end);
      this.#end += chunk.length;
    } else {
      const buffer = new Uint8Array(Math.max(pending + chunk.length, pending * 2, 4096));
      buffer.set(this.#buffer.subarray(this.#start, this.#end));
      buffer.set(chunk, pending);
      this.#buffer = buffer;
      this.#start = 0;
      this.#end = pending + chunk.length;
      this.#owned = true;
    }
  }
}

/** Boyer-Moore-Horspool shift table of a needle shorter than 256 bytes. */
function skipTable(needle: Uint8Array): Uint8Array {
  const table = new Uint8Array(256).fill(needle.length);
  // i < needle.length: the index is in bounds.
  for (let i = 0; i < needle.length - 1; i++) table[needle[i]!] = needle.length - 1 - i;
  return table;
}

/** Index of the first needle in hay[from, end), or -1 (Boyer-Moore-Horspool). */
function findSequence(
  hay: Uint8Array,
  needle: Uint8Array,
  skip: Uint8Array,
  from: number,
  end: number,
): number {
  const last = needle.length - 1;
  const lastByte = needle[last];
  const stop = end - needle.length;
  let i = from;
  while (i <= stop) {
    // i + last < end <= hay.length: in bounds; a byte indexes the 256-entry table.
    const byte = hay[i + last]!;
    if (byte === lastByte) {
      let j = 0;
      while (j < last && hay[i + j] === needle[j]) j++;
      if (j === last) return i;
    }
    i += skip[byte]!;
  }
  return -1;
}

/** Start of the longest suffix of hay that is a proper prefix of needle, or hay.length. */
function partialMatchStart(hay: Uint8Array, needle: Uint8Array): number {
  const first = needle[0];
  if (first === undefined) return hay.length;
  let i = hay.indexOf(first, Math.max(0, hay.length - needle.length + 1));
  while (i !== -1) {
    let j = 1;
    while (i + j < hay.length && hay[i + j] === needle[j]) j++;
    if (i + j === hay.length) return i;
    i = hay.indexOf(first, i + 1);
  }
  return hay.length;
}

/** Parses a header block ("Name: value" lines separated by CRLF, with obsolete folding). */
function parseHeaderBlock(bytes: Uint8Array): PartHeaders {
  const headers: PartHeaders = new Map();
  if (bytes.length === 0) return headers;
  const lines: string[] = [];
  for (const line of new TextDecoder().decode(bytes).split("\r\n")) {
    if ((line.startsWith(" ") || line.startsWith("\t")) && lines.length > 0) {
      lines[lines.length - 1] += ` ${line.trim()}`;
    } else {
      lines.push(line);
    }
  }
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw new MultipartError(`Cannot parse multipart body: malformed part header ${quote(line)}`);
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}

/** Field name, file name and content type of a part, from its headers. */
function describePart(headers: PartHeaders): Omit<MultipartPart, "body"> {
  const disposition = headers.get("content-disposition");
  if (disposition === undefined) {
    throw new MultipartError("Cannot parse multipart body: part has no Content-Disposition header");
  }
  const { params } = parseHeaderValue(disposition);
  const name = params.get("name");
  if (name === undefined) {
    throw new MultipartError(
      `Cannot parse multipart body: part has no name in Content-Disposition ${quote(disposition)}`,
    );
  }
  const part: Omit<MultipartPart, "body"> = { name };
  const extended = params.get("filename*");
  const filename = (extended === undefined ? undefined : decodeExtendedValue(extended)) ??
    params.get("filename");
  if (filename !== undefined) part.filename = filename;
  const contentType = headers.get("content-type");
  if (contentType !== undefined) part.contentType = contentType;
  return part;
}

/**
 * Splits a header value like `form-data; name="a"; filename="b \"c\".txt"` into its leading
 * value and its parameters (lower-case names, first occurrence wins). In quoted strings only
 * `\"` and `\\` are unescaped, so Windows paths sent unescaped keep their backslashes.
 */
function parseHeaderValue(header: string): { value: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  let i = header.indexOf(";");
  const value = (i === -1 ? header : header.slice(0, i)).trim();
  if (i === -1) return { value, params };
  const length = header.length;
  while (i < length) {
    while (i < length && (header[i] === ";" || header[i] === " " || header[i] === "\t")) i++;
    const nameStart = i;
    while (i < length && header[i] !== "=" && header[i] !== ";") i++;
    const name = header.slice(nameStart, i).trim().toLowerCase();
    if (header[i] !== "=") continue;
    i++;
    while (i < length && (header[i] === " " || header[i] === "\t")) i++;
    let paramValue = "";
    if (header[i] === '"') {
      i++;
      while (i < length && header[i] !== '"') {
        if (header[i] === "\\" && (header[i + 1] === '"' || header[i + 1] === "\\")) i++;
        paramValue += header[i];
        i++;
      }
      i++;
    } else {
      const valueStart = i;
      while (i < length && header[i] !== ";") i++;
      paramValue = header.slice(valueStart, i).trim();
    }
    if (name !== "" && !params.has(name)) params.set(name, paramValue);
  }
  return { value, params };
}

/** Decodes an RFC 8187 value (`UTF-8''%E2%82%AC.txt`); undefined when not UTF-8 or malformed. */
function decodeExtendedValue(value: string): string | undefined {
  const [, charset, encoded] = /^([^']*)'[^']*'(.*)$/.exec(value) ?? [];
  if (charset?.toLowerCase() !== "utf-8" || encoded === undefined) return undefined;
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}

/** Throws MultipartError unless the boundary is 1 to 70 RFC 2046 characters. */
function checkBoundary(boundary: string): void {
  if (!BOUNDARY_PATTERN.test(boundary)) {
    throw new MultipartError(`Cannot parse multipart body: invalid boundary ${quote(boundary)}`);
  }
}

/** Concatenates chunks whose lengths sum to total. */
function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const [only] = chunks;
  if (chunks.length === 1 && only !== undefined) return only;
  const result = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    result.set(chunk, offset);
    offset += chunk.length;
  }
  return result;
}

/** A value in double quotes for an error message, cut to 100 characters. */
function quote(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}...` : value);
}
