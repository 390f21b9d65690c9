/**
 * Zip archives (PKWARE APPNOTE): extraction with random-access reads that stream every entry to
 * its file. Stored and deflated entries only; no zip64, no encryption, no symbolic links.
 *
 * The writer lives in zip_writer.ts (portable to Node for the SDK); zip.ts offers both.
 */
import { writeAllSync } from "./file_sink.ts";
import {
  CENTRAL_HEADER_SIZE,
  CENTRAL_SIGNATURE,
  crc32,
  DOS_DIRECTORY,
  END_SIGNATURE,
  END_SIZE,
  FLAG_UTF8,
  HOST_UNIX,
  LOCAL_HEADER_SIZE,
  LOCAL_SIGNATURE,
  METHOD_DEFLATE,
  METHOD_STORED,
  READ_CHUNK,
  TYPE_DIRECTORY,
  ZipError,
} from "./zip_format.ts";

export { ZipError };

const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_LOCATOR_SIZE = 20;
const MAX_COMMENT = 0xffff;
const UNICODE_PATH_EXTRA = 0x7075;
const FLAG_ENCRYPTED = 0x0001;
// Types other than directory and symlink (e.g. a FIFO read by "zip -") extract as files.
const TYPE_MASK = 0o170000;
const TYPE_SYMLINK = 0o120000;
const MAX_U32 = 0xffffffff;
const MAX_U16 = 0xffff;

/**
 * Extracts the zip file at zipPath into destDir (created if missing); returns the number of
 * entries written.
 *
 * Every entry name is checked before anything is written: absolute names, `..` segments and
 * symbolic-link entries are refused, and no entry is written through a symbolic link found in
 * destDir. Unix permission bits stored in the archive are applied.
 * @param zipPath The archive.
 * @param destDir The directory to extract into.
 * @returns The number of files and directories written.
 * @throws {ZipError} When the archive is malformed, corrupt (CRC or size mismatch), uses zip64,
 *   encryption or an unsupported method, or holds an unsafe entry. A file that fails its checks
 *   is removed; files extracted before it stay. File-system errors (`Deno.errors.*`) propagate.
 */
export async function extractZip(zipPath: string, destDir: string): Promise<number> {
  const file = await Deno.open(zipPath, { read: true });
  try {
    const archive = new ZipArchive(file, zipPath, (await file.stat()).size);
    const entries = await archive.entries();
    const planned = entries.map((entry) => ({ entry, segments: entrySegments(entry, zipPath) }));
    await Deno.mkdir(destDir, { recursive: true });
    const root = await Deno.realPath(destDir);
    const directories = new DirectoryMaker(root, zipPath);
    const modes: Array<{ path: string; mode: number; depth: number }> = [];
    let written = 0;
    for (const { entry, segments } of planned) {
      if (segments.length === 0) continue;
      // entrySegments() leaves no "", ".", ".." or "/" in a segment: the target is inside root.
      const target = childPath(root, segments);
      if (entry.isDirectory) {
        await directories.make(segments, entry.name);
        if (entry.mode !== undefined) {
          modes.push({ path: target, mode: entry.mode, depth: segments.length });
        }
      } else {
        await directories.make(segments.slice(0, -1), entry.name);
        const out = await openTarget(target, entry.name, zipPath);
        try {
          await archive.extract(entry, out);
        } catch (error) {
          await Deno.remove(target).catch(() => {});
          throw error;
        }
        if (entry.mode !== undefined) await Deno.chmod(target, entry.mode);
      }
      written++;
    }
    // Directory modes last, deepest first, so a read-only directory is filled before it closes.
    modes.sort((a, b) => b.depth - a.depth);
    for (const { path, mode } of modes) await Deno.chmod(path, mode);
    return written;
  } finally {
    file.close();
  }
}

/** One central directory record, as needed for extraction. */
interface ZipEntry {
  name: string;
  flags: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  isDirectory: boolean;
  /** Permission bits to apply, when the archive stores unix attributes. */
  mode?: number;
}

/** Random-access reader of one open archive. */
class ZipArchive {
  #file: Deno.FsFile;
  #path: string;
  #size: number;
  #centralOffset = 0;

  constructor(file: Deno.FsFile, path: string, size: number) {
    this.#file = file;
    this.#path = path;
    this.#size = size;
  }

  /** Reads the end record and the central directory. */
  async entries(): Promise<ZipEntry[]> {
    const tailLength = Math.min(this.#size, END_SIZE + MAX_COMMENT);
    const tailStart = this.#size - tailLength;
    const tail = await this.#readAt(tailStart, tailLength);
    const tailView = dataView(tail);
    let end = -1;
    for (let i = tailLength - END_SIZE; i >= 0; i--) {
      if (
        tailView.getUint32(i, true) === END_SIGNATURE &&
        i + END_SIZE + tailView.getUint16(i + 20, true) <= tailLength
      ) {
        end = i;
        break;
      }
    }
    if (end < 0) throw this.#error("end of central directory record not found (not a zip file?)");
    const disk = tailView.getUint16(end + 4, true);
    const centralDisk = tailView.getUint16(end + 6, true);
    const diskEntries = tailView.getUint16(end + 8, true);
    const count = tailView.getUint16(end + 10, true);
    const centralSize = tailView.getUint32(end + 12, true);
    const centralOffset = tailView.getUint32(end + 16, true);
    const locator = end - ZIP64_LOCATOR_SIZE;
    if (
      count === MAX_U16 || centralSize === MAX_U32 || centralOffset === MAX_U32 ||
      (locator >= 0 && tailView.getUint32(locator, true) === ZIP64_LOCATOR_SIGNATURE)
    ) {
      throw this.#error("zip64 archives are not supported");
    }
    if (disk !== 0 || centralDisk !== 0 || diskEntries !== count) {
      throw this.#error("multi-disk archives are not supported");
    }
    if (centralOffset + centralSize > tailStart + end) {
      throw this.#error("central directory lies outside the file");
    }
    this.#centralOffset = centralOffset;
    const central = await this.#readAt(centralOffset, centralSize);
    const view = dataView(central);
    const entries: ZipEntry[] = [];
    let at = 0;
    for (let index = 0; index < count; index++) {
      if (
        at + CENTRAL_HEADER_SIZE > central.length || view.getUint32(at, true) !== CENTRAL_SIGNATURE
      ) {
        throw this.#error(`central directory record ${index} is malformed`);
      }
      const nameLength = view.getUint16(at + 28, true);
      const extraLength = view.getUint16(at + 30, true);
      const commentLength = view.getUint16(at + 32, true);
      const next = at + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
      if (next > central.length) {
        throw this.#error(`central directory record ${index} is truncated`);
      }
      const nameStart = at + CENTRAL_HEADER_SIZE;
      const flags = view.getUint16(at + 8, true);
      const name = decodeName(
        central.subarray(nameStart, nameStart + nameLength),
        central.subarray(nameStart + nameLength, nameStart + nameLength + extraLength),
        (flags & FLAG_UTF8) !== 0,
      );
      entries.push(
        this.#entry(name, {
          madeBy: view.getUint16(at + 4, true),
          flags,
          method: view.getUint16(at + 10, true),
          crc: view.getUint32(at + 16, true),
          compressedSize: view.getUint32(at + 20, true),
          size: view.getUint32(at + 24, true),
          externalAttributes: view.getUint32(at + 38, true),
          localOffset: view.getUint32(at + 42, true),
        }),
      );
      at = next;
    }
    return entries;
  }

  /** Streams one file entry into `out` (which it closes), verifying size and CRC-32. */
  async extract(entry: ZipEntry, out: Deno.FsFile): Promise<void> {
    const label = entryLabel(entry.name, this.#path);
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let ok = false;
    try {
      await this.#file.seek(await this.#dataStart(entry, label), Deno.SeekMode.Start);
      const raw = this.#stream(entry.compressedSize, label);
      const data = entry.method === METHOD_DEFLATE
        ? raw.pipeThrough(new DecompressionStream("deflate-raw"))
        : raw;
      reader = data.getReader();
      let crc = 0;
      let written = 0;
      while (true) {
        const chunk = await readChunk(reader, label);
        if (chunk === null) break;
        written += chunk.length;
        if (written > entry.size) {
          throw new ZipError(
            `Cannot extract ${label}: data is larger than the declared ${entry.size} bytes`,
          );
        }
        crc = crc32(chunk, crc);
        writeAllSync(out, chunk);
      }
      if (written !== entry.size) {
        throw new ZipError(
          `Cannot extract ${label}: data is ${written} bytes, expected ${entry.size}`,
        );
      }
      if (crc !== entry.crc) {
        throw new ZipError(
          `Cannot extract ${label}: CRC-32 mismatch (expected ${hex(entry.crc)}, got ${hex(crc)})`,
        );
      }
      ok = true;
    } finally {
      if (!ok) await reader?.cancel().catch(() => {});
      out.close();
    }
  }

  /** Offset of an entry's data, past its local header. */
  async #dataStart(entry: ZipEntry, label: string): Promise<number> {
    const view = dataView(await this.#readAt(entry.localOffset, LOCAL_HEADER_SIZE));
    if (view.getUint32(0, true) !== LOCAL_SIGNATURE) {
      throw new ZipError(`Cannot extract ${label}: local file header not found`);
    }
    const start = entry.localOffset + LOCAL_HEADER_SIZE + view.getUint16(26, true) +
      view.getUint16(28, true);
    if (start + entry.compressedSize > this.#centralOffset) {
      throw new ZipError(`Cannot extract ${label}: data runs past the central directory`);
    }
    return start;
  }

  /** The compressed bytes of an entry, read from the current position. */
  #stream(length: number, target: string): ReadableStream<Uint8Array<ArrayBuffer>> {
    let remaining = length;
    return new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        if (remaining === 0) {
          controller.close();
          return;
        }
        const buffer = new Uint8Array(Math.min(remaining, READ_CHUNK));
        const count = await this.#file.read(buffer);
        if (count === null || count === 0) {
          throw new ZipError(`Cannot extract ${target}: unexpected end of file`);
        }
        remaining -= count;
        controller.enqueue(count === buffer.length ? buffer : buffer.subarray(0, count));
      },
    }, { highWaterMark: 0 });
  }

  #entry(name: string, record: {
    madeBy: number;
    flags: number;
    method: number;
    crc: number;
    compressedSize: number;
    size: number;
    externalAttributes: number;
    localOffset: number;
  }): ZipEntry {
    const target = entryLabel(name, this.#path);
    if (
      record.compressedSize === MAX_U32 || record.size === MAX_U32 || record.localOffset === MAX_U32
    ) {
      throw new ZipError(`Cannot extract ${target}: zip64 entries are not supported`);
    }
    if ((record.flags & FLAG_ENCRYPTED) !== 0) {
      throw new ZipError(`Cannot extract ${target}: encrypted entries are not supported`);
    }
    const unixAttributes = record.externalAttributes >>> 16;
    const type = unixAttributes & TYPE_MASK;
    if (type === TYPE_SYMLINK) {
      throw new ZipError(`Cannot extract ${target}: symbolic link entries are not supported`);
    }
    const isDirectory = name.endsWith("/") || name.endsWith("\\") || type === TYPE_DIRECTORY ||
      ((record.madeBy >>> 8) !== HOST_UNIX && (record.externalAttributes & DOS_DIRECTORY) !== 0);
    if (!isDirectory && record.method !== METHOD_STORED && record.method !== METHOD_DEFLATE) {
      throw new ZipError(
        `Cannot extract ${target}: compression method ${record.method} is not supported`,
      );
    }
    if (!isDirectory && record.method === METHOD_STORED && record.compressedSize !== record.size) {
      throw new ZipError(
        `Cannot extract ${target}: stored entry has different compressed and real sizes`,
      );
    }
    const { flags, method, crc, compressedSize, size, localOffset } = record;
    const entry: ZipEntry = {
      name,
      flags,
      method,
      crc,
      compressedSize,
      size,
      localOffset,
      isDirectory,
    };
    if (unixAttributes !== 0) entry.mode = unixAttributes & 0o777;
    return entry;
  }

  async #readAt(offset: number, length: number): Promise<Uint8Array> {
    if (offset + length > this.#size) throw this.#error("unexpected end of file");
    await this.#file.seek(offset, Deno.SeekMode.Start);
    const buffer = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const count = await this.#file.read(buffer.subarray(filled));
      if (count === null || count === 0) throw this.#error("unexpected end of file");
      filled += count;
    }
    return buffer;
  }

  #error(reason: string): ZipError {
    return new ZipError(`Cannot read zip ${quote(this.#path)}: ${reason}`);
  }
}

/**
 * `dir/a/b` for segments `["a", "b"]` that entrySegments() checked (none empty, ".", ".." or
 * holding "/"), as node's `join()` would give it; plain string work, so extracting needs no
 * Node module.
 */
function childPath(dir: string, segments: string[]): string {
  return `${dir === "/" ? "" : dir}/${segments.join("/")}`;
}

/** Creates directories under root one level at a time, refusing to pass through symlinks. */
class DirectoryMaker {
  #root: string;
  #zipPath: string;
  #known = new Set<string>();

  constructor(root: string, zipPath: string) {
    this.#root = root;
    this.#zipPath = zipPath;
  }

  /** Ensures root/segments... exists as real directories. */
  async make(segments: string[], entryName: string): Promise<void> {
    let path = this.#root;
    for (const [depth, segment] of segments.entries()) {
      path = childPath(path, [segment]);
      if (this.#known.has(path)) continue;
      let info = await lstatOrNull(path);
      if (info === null) {
        try {
          await Deno.mkdir(path);
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        }
        info = await Deno.lstat(path);
      }
      const shown = entryLabel(entryName, this.#zipPath);
      if (info.isSymlink) {
        throw new ZipError(
          `Cannot extract ${shown}: ${
            quote(segments.slice(0, depth + 1).join("/"))
          } is a symbolic link`,
        );
      }
      if (!info.isDirectory) {
        throw new ZipError(
          `Cannot extract ${shown}: ${
            quote(segments.slice(0, depth + 1).join("/"))
          } is not a directory`,
        );
      }
      this.#known.add(path);
    }
  }
}

/** Opens the file an entry is written to, refusing symlinks and directories in its place. */
async function openTarget(
  target: string,
  entryName: string,
  zipPath: string,
): Promise<Deno.FsFile> {
  const info = await lstatOrNull(target);
  const shown = entryLabel(entryName, zipPath);
  if (info?.isSymlink) throw new ZipError(`Cannot extract ${shown}: the target is a symbolic link`);
  if (info?.isDirectory) throw new ZipError(`Cannot extract ${shown}: the target is a directory`);
  return await Deno.open(target, { write: true, create: true, truncate: true });
}

/** The path segments of an entry, or ZipError for names that could leave the destination. */
function entrySegments(entry: ZipEntry, zipPath: string): string[] {
  const shown = entryLabel(entry.name, zipPath);
  if (entry.name.includes("\0")) {
    throw new ZipError(`Cannot extract ${shown}: the name contains a NUL byte`);
  }
  const name = entry.name.replaceAll("\\", "/");
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) {
    throw new ZipError(`Cannot extract ${shown}: absolute paths are not allowed`);
  }
  const segments = name.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (segments.includes("..")) {
    throw new ZipError(`Cannot extract ${shown}: ".." segments are not allowed`);
  }
  return segments;
}

/** Decodes an entry name: UTF-8 if flagged or valid, else its Info-ZIP Unicode path, else CP-1252. */
function decodeName(raw: Uint8Array, extra: Uint8Array, utf8: boolean): string {
  if (utf8) return new TextDecoder().decode(raw);
  const unicode = unicodePathExtra(raw, extra);
  if (unicode !== undefined) return unicode;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    return new TextDecoder("windows-1252").decode(raw);
  }
}

/** The UTF-8 name of an Info-ZIP Unicode Path extra field (0x7075) that matches raw, if any. */
function unicodePathExtra(raw: Uint8Array, extra: Uint8Array): string | undefined {
  const view = dataView(extra);
  for (let at = 0; at + 4 <= extra.length;) {
    const id = view.getUint16(at, true);
    const size = view.getUint16(at + 2, true);
    const body = at + 4;
    if (body + size > extra.length) return undefined;
    if (
      id === UNICODE_PATH_EXTRA && size >= 5 && extra[body] === 1 &&
      view.getUint32(body + 1, true) === crc32(raw)
    ) {
      try {
        return new TextDecoder("utf-8", { fatal: true }).decode(
          extra.subarray(body + 5, body + size),
        );
      } catch {
        return undefined;
      }
    }
    at = body + size;
  }
  return undefined;
}

/** The next chunk of entry data, or null at its end; decompression errors become ZipError. */
async function readChunk(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  label: string,
): Promise<Uint8Array | null> {
  try {
    const { value, done } = await reader.read();
    return done ? null : value;
  } catch (error) {
    if (error instanceof ZipError) throw error;
    throw new ZipError(`Cannot extract ${label}: corrupt deflate data (${describe(error)})`, {
      cause: error,
    });
  }
}

/** An entry name and its archive, quoted for messages: `"a.txt" from "x.zip"`. */
function entryLabel(name: string, zipPath: string): string {
  return `${quote(name)} from ${quote(zipPath)}`;
}

/** lstat, or null when nothing is there. */
async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** A DataView over exactly the bytes of an array. */
function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A CRC as 0x-prefixed hex. */
function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

/** A value in double quotes for an error message. */
function quote(value: string): string {
  return JSON.stringify(value);
}

/** The message of an unknown error. */
function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
