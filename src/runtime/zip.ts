/**
 * Zip archives (PKWARE APPNOTE): extraction with random-access reads that stream every entry to
 * its file, and a streaming writer for a directory tree. Stored and deflated entries only; no
 * zip64, no encryption, no symbolic links.
 */
import { writeAllSync } from "./file_sink.ts";
import { isAbsolute, join, relative } from "node:path";

const LOCAL_SIGNATURE = 0x04034b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const END_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const DESCRIPTOR_SIGNATURE = 0x08074b50;
const LOCAL_HEADER_SIZE = 30;
const CENTRAL_HEADER_SIZE = 46;
const END_SIZE = 22;
const ZIP64_LOCATOR_SIZE = 20;
const MAX_COMMENT = 0xffff;
const UNICODE_PATH_EXTRA = 0x7075;
const FLAG_ENCRYPTED = 0x0001;
const FLAG_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
const HOST_UNIX = 3;
const TYPE_MASK = 0o170000;
const TYPE_FILE = 0o100000; // other non-directory types (e.g. a FIFO read by "zip -") extract as files
const TYPE_DIRECTORY = 0o040000;
const TYPE_SYMLINK = 0o120000;
const DOS_DIRECTORY = 0x10;
const READ_CHUNK = 256 * 1024;
// Files up to this size are compressed in memory so their header carries sizes and CRC; larger
// ones are streamed and followed by a data descriptor.
const BUFFERED_FILE_LIMIT = 16 * 1024 * 1024;
const MAX_U32 = 0xffffffff;
const MAX_U16 = 0xffff;

/** A zip archive that cannot be read, is unsafe to extract, or cannot be written. */
export class ZipError extends Error {
  /**
   * Creates the error.
   * @param message What went wrong, in sentence case.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ZipError";
  }
}

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
      const target = join(root, ...segments);
      const rel = relative(root, target);
      if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
        throw new ZipError(
          `Cannot extract ${entryLabel(entry.name, zipPath)}: path escapes the destination`,
        );
      }
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

/**
 * Writes a zip of every file under srcDir (recursively, relative paths, directories as entries,
 * file modes kept in external attributes) to a stream.
 *
 * Symbolic links and special files are skipped. Files up to 16 MiB are compressed in memory
 * (and stored instead when deflate does not shrink them); larger ones are deflated as a stream
 * and followed by a data descriptor.
 * @param srcDir The directory to archive; its own name is not part of the entry names.
 * @returns The archive bytes; cancelling the stream stops reading files.
 * @throws {ZipError} Through the stream, when srcDir is not a directory or the archive would
 *   need zip64 (a file or the archive over 4 GiB, or more than 65535 entries). File-system
 *   errors (`Deno.errors.*`) propagate through the stream too.
 */
export function zipDirectory(srcDir: string): ReadableStream<Uint8Array> {
  return ReadableStream.from(writeZip(srcDir));
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
    for (const segment of segments) {
      path = join(path, segment);
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
          `Cannot extract ${shown}: ${quote(relative(this.#root, path))} is a symbolic link`,
        );
      }
      if (!info.isDirectory) {
        throw new ZipError(
          `Cannot extract ${shown}: ${quote(relative(this.#root, path))} is not a directory`,
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

/** An entry of the tree being zipped. */
interface WalkItem {
  path: string;
  name: string;
  info: Deno.FileInfo;
}

/** Yields directories (before their contents) and regular files under dir, sorted by name. */
async function* walk(dir: string, prefix: string): AsyncGenerator<WalkItem> {
  const names: string[] = [];
  for await (const item of Deno.readDir(dir)) names.push(item.name);
  names.sort();
  for (const name of names) {
    const path = join(dir, name);
    const info = await Deno.lstat(path);
    if (info.isDirectory) {
      yield { path, name: `${prefix}${name}/`, info };
      yield* walk(path, `${prefix}${name}/`);
    } else if (info.isFile) {
      yield { path, name: `${prefix}${name}`, info };
    }
  }
}

/** Produces the archive of srcDir chunk by chunk. */
async function* writeZip(srcDir: string): AsyncGenerator<Uint8Array> {
  const info = await Deno.stat(srcDir);
  if (!info.isDirectory) throw new ZipError(`Cannot zip ${quote(srcDir)}: not a directory`);
  const encoder = new TextEncoder();
  const central: Uint8Array[] = [];
  let offset = 0;
  const emit = function* (chunk: Uint8Array): Generator<Uint8Array> {
    offset += chunk.length;
    if (offset > MAX_U32) {
      throw new ZipError(
        `Cannot zip ${quote(srcDir)}: the archive exceeds 4 GiB (zip64 is not supported)`,
      );
    }
    if (chunk.length > 0) yield chunk;
  };
  for await (const item of walk(srcDir, "")) {
    const name = encoder.encode(item.name);
    if (name.length > MAX_U16) {
      throw new ZipError(`Cannot zip ${quote(item.path)}: the path is too long`);
    }
    if (central.length === MAX_U16) {
      throw new ZipError(
        `Cannot zip ${quote(srcDir)}: more than ${MAX_U16} entries (zip64 is not supported)`,
      );
    }
    const record: EntryRecord = {
      name,
      flags: FLAG_UTF8,
      method: METHOD_STORED,
      crc: 0,
      compressedSize: 0,
      size: 0,
      ...dosDateTime(item.info.mtime),
      externalAttributes: externalAttributes(item.info),
      localOffset: offset,
    };
    const chunks = item.info.isDirectory
      ? [localHeader(record)]
      : item.info.size <= BUFFERED_FILE_LIMIT
      ? await bufferedEntry(record, item.path)
      : streamedEntry(record, item.path);
    for await (const chunk of chunks) yield* emit(chunk);
    central.push(centralHeader(record));
  }
  const centralOffset = offset;
  for (const header of central) yield* emit(header);
  const end = new Uint8Array(END_SIZE);
  const view = dataView(end);
  view.setUint32(0, END_SIGNATURE, true);
  view.setUint16(8, central.length, true);
  view.setUint16(10, central.length, true);
  view.setUint32(12, offset - centralOffset, true);
  view.setUint32(16, centralOffset, true);
  yield* emit(end);
}

/**
 * Local header and data of a file read whole: deflated, or stored when deflate does not shrink
 * it. Fills in the record's method, sizes and CRC.
 */
async function bufferedEntry(record: EntryRecord, path: string): Promise<Uint8Array[]> {
  const data = await Deno.readFile(path);
  if (data.length > MAX_U32) {
    throw new ZipError(`Cannot zip ${quote(path)}: the file exceeds 4 GiB`);
  }
  record.crc = crc32(data);
  record.size = data.length;
  record.compressedSize = data.length;
  let body: Uint8Array[] = [data];
  if (data.length > 0) {
    const deflated = await deflate(data);
    const deflatedSize = deflated.reduce((sum, chunk) => sum + chunk.length, 0);
    if (deflatedSize < data.length) {
      body = deflated;
      record.method = METHOD_DEFLATE;
      record.compressedSize = deflatedSize;
    }
  }
  return [localHeader(record), ...body];
}

/**
 * Local header, deflated data and data descriptor of a file streamed from disk. Fills in the
 * record's method, sizes and CRC as it goes (they are final once the generator is done).
 */
async function* streamedEntry(record: EntryRecord, path: string): AsyncGenerator<Uint8Array> {
  record.flags |= FLAG_DESCRIPTOR;
  record.method = METHOD_DEFLATE;
  yield localHeader(record);
  const file = await Deno.open(path, { read: true });
  const counter = new CrcCounter();
  const deflated = file.readable.pipeThrough(counter.transform()).pipeThrough(
    new CompressionStream("deflate-raw"),
  );
  for await (const chunk of deflated) {
    record.compressedSize += chunk.length;
    yield chunk;
  }
  if (counter.size > MAX_U32 || record.compressedSize > MAX_U32) {
    throw new ZipError(`Cannot zip ${quote(path)}: the file exceeds 4 GiB`);
  }
  record.crc = counter.crc;
  record.size = counter.size;
  const descriptor = new Uint8Array(16);
  const view = dataView(descriptor);
  view.setUint32(0, DESCRIPTOR_SIGNATURE, true);
  view.setUint32(4, record.crc, true);
  view.setUint32(8, record.compressedSize, true);
  view.setUint32(12, record.size, true);
  yield descriptor;
}

/** What local and central headers of a written entry hold. */
interface EntryRecord {
  name: Uint8Array;
  flags: number;
  method: number;
  time: number;
  date: number;
  crc: number;
  compressedSize: number;
  size: number;
  externalAttributes: number;
  localOffset: number;
}

/** A local file header (sizes and CRC are zero when the entry has a data descriptor). */
function localHeader(record: EntryRecord): Uint8Array {
  const header = new Uint8Array(LOCAL_HEADER_SIZE + record.name.length);
  const view = dataView(header);
  const described = (record.flags & FLAG_DESCRIPTOR) !== 0;
  view.setUint32(0, LOCAL_SIGNATURE, true);
  view.setUint16(4, versionNeeded(record), true);
  view.setUint16(6, record.flags, true);
  view.setUint16(8, record.method, true);
  view.setUint16(10, record.time, true);
  view.setUint16(12, record.date, true);
  view.setUint32(14, described ? 0 : record.crc, true);
  view.setUint32(18, described ? 0 : record.compressedSize, true);
  view.setUint32(22, described ? 0 : record.size, true);
  view.setUint16(26, record.name.length, true);
  header.set(record.name, LOCAL_HEADER_SIZE);
  return header;
}

/** A central directory file header. */
function centralHeader(record: EntryRecord): Uint8Array {
  const header = new Uint8Array(CENTRAL_HEADER_SIZE + record.name.length);
  const view = dataView(header);
  view.setUint32(0, CENTRAL_SIGNATURE, true);
  view.setUint16(4, (HOST_UNIX << 8) | 30, true);
  view.setUint16(6, versionNeeded(record), true);
  view.setUint16(8, record.flags, true);
  view.setUint16(10, record.method, true);
  view.setUint16(12, record.time, true);
  view.setUint16(14, record.date, true);
  view.setUint32(16, record.crc, true);
  view.setUint32(20, record.compressedSize, true);
  view.setUint32(24, record.size, true);
  view.setUint16(28, record.name.length, true);
  view.setUint32(38, record.externalAttributes, true);
  view.setUint32(42, record.localOffset, true);
  header.set(record.name, CENTRAL_HEADER_SIZE);
  return header;
}

/** Version needed to extract: 2.0 for deflate and directories, else 1.0. */
function versionNeeded(record: EntryRecord): number {
  return record.method === METHOD_DEFLATE || record.name[record.name.length - 1] === 0x2f ? 20 : 10;
}

/** Unix type and permission bits in the high word, the MS-DOS directory bit in the low one. */
function externalAttributes(info: Deno.FileInfo): number {
  const permissions = info.mode === null ? (info.isDirectory ? 0o755 : 0o644) : info.mode & 0o7777;
  const unix = (info.isDirectory ? TYPE_DIRECTORY : TYPE_FILE) | permissions;
  return unix * 0x10000 + (info.isDirectory ? DOS_DIRECTORY : 0);
}

/** MS-DOS date and time fields (local time, 2-second resolution, 1980 at the earliest). */
function dosDateTime(mtime: Date | null): { time: number; date: number } {
  const when = mtime ?? new Date();
  if (when.getFullYear() < 1980) return { time: 0, date: (1 << 5) | 1 };
  return {
    time: (when.getHours() << 11) | (when.getMinutes() << 5) | Math.floor(when.getSeconds() / 2),
    date: (Math.min(when.getFullYear() - 1980, 127) << 9) | ((when.getMonth() + 1) << 5) |
      when.getDate(),
  };
}

/** Raw deflate of a buffer, as chunks. */
async function deflate(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  const stream = ReadableStream.from([data]).pipeThrough(new CompressionStream("deflate-raw"));
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** Counts bytes and their CRC-32 as they pass through a stream. */
class CrcCounter {
  /** CRC-32 of the bytes seen so far. */
  crc = 0;
  /** Number of bytes seen so far. */
  size = 0;

  /** A pass-through stream that updates this counter. */
  transform(): TransformStream<Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>> {
    return new TransformStream({
      transform: (chunk, controller) => {
        this.crc = crc32(chunk, this.crc);
        this.size += chunk.length;
        controller.enqueue(chunk);
      },
    });
  }
}

const CRC_TABLES = makeCrcTables();

/** Slicing-by-8 tables for the reflected CRC-32 polynomial 0xEDB88320. */
function makeCrcTables(): Uint32Array {
  const tables = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tables[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let t = 1; t < 8; t++) {
      const previous = tables[(t - 1) * 256 + n];
      tables[t * 256 + n] = (previous >>> 8) ^ tables[previous & 0xff];
    }
  }
  return tables;
}

/** CRC-32 (as in zip and gzip) of bytes, continuing from a previous result. */
function crc32(bytes: Uint8Array, previous = 0): number {
  const t = CRC_TABLES;
  let c = ~previous;
  let i = 0;
  const end8 = bytes.length - (bytes.length & 7);
  for (; i < end8; i += 8) {
    const low = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c = t[1792 + (low & 0xff)] ^ t[1536 + ((low >>> 8) & 0xff)] ^ t[1280 + ((low >>> 16) & 0xff)] ^
      t[1024 + (low >>> 24)] ^ t[768 + bytes[i + 4]] ^ t[512 + bytes[i + 5]] ^
      t[256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
  }
  for (; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
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
