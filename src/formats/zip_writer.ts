/**
 * Streaming zip writer (PKWARE APPNOTE) for a directory tree, and the CRC-32 shared with the
 * reader in zip.ts. Stored and deflated entries only; no zip64, no encryption, no symbolic links.
 *
 * Portable: only `node:` modules and web-standard APIs, so it runs under Deno and Node 20.12+
 * (the first Node 20 whose CompressionStream accepts "deflate-raw"). No Deno namespace APIs here.
 */
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
import { lstat, open, readdir, readFile, stat } from "node:fs/promises";
import type { Stats } from "node:fs";
import { join } from "node:path";

const DESCRIPTOR_SIGNATURE = 0x08074b50;
const FLAG_DESCRIPTOR = 0x0008;
const TYPE_FILE = 0o100000;
// Files up to this size are compressed in memory so their header carries sizes and CRC; larger
// ones are streamed and followed by a data descriptor.
const BUFFERED_FILE_LIMIT = 16 * 1024 * 1024;
const MAX_U32 = 0xffffffff;
const MAX_U16 = 0xffff;

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
 *   errors propagate through the stream too, as `node:fs` reports them (an `Error` with a
 *   `code` such as "ENOENT"); zip.ts re-exports this with Deno's own error classes.
 */
export { crc32, ZipError };

export function zipDirectory(srcDir: string): ReadableStream<Uint8Array> {
  return streamOf(writeZip(srcDir));
}

/** A pull-driven stream over an async generator (ReadableStream.from needs Node 20.6+). */
function streamOf(chunks: AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      const { value, done } = await chunks.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: async () => {
      await chunks.return(undefined);
    },
  }, { highWaterMark: 0 });
}

/** What the writer needs to know about a directory or file. */
interface EntryInfo {
  isDirectory: boolean;
  size: number;
  mode: number;
  mtime: Date;
}

/** An entry of the tree being zipped. */
interface WalkItem {
  path: string;
  name: string;
  info: EntryInfo;
}

/** The fields of fs stats the writer uses. */
function entryInfo(stats: Stats): EntryInfo {
  return {
    isDirectory: stats.isDirectory(),
    size: stats.size,
    mode: stats.mode,
    mtime: stats.mtime,
  };
}

/** Yields directories (before their contents) and regular files under dir, sorted by name. */
async function* walk(dir: string, prefix: string): AsyncGenerator<WalkItem> {
  const names = await readdir(dir);
  names.sort();
  for (const name of names) {
    const path = join(dir, name);
    const stats = await lstat(path);
    if (stats.isDirectory()) {
      yield { path, name: `${prefix}${name}/`, info: entryInfo(stats) };
      yield* walk(path, `${prefix}${name}/`);
    } else if (stats.isFile()) {
      yield { path, name: `${prefix}${name}`, info: entryInfo(stats) };
    }
  }
}

/** Produces the archive of srcDir chunk by chunk. */
async function* writeZip(srcDir: string): AsyncGenerator<Uint8Array> {
  const stats = await stat(srcDir);
  if (!stats.isDirectory()) throw new ZipError(`Cannot zip ${quote(srcDir)}: not a directory`);
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
  const buffer = await readFile(path);
  // A plain Uint8Array view, not Node's Buffer subclass.
  const data = new Uint8Array(buffer.buffer as ArrayBuffer, buffer.byteOffset, buffer.byteLength);
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
  const counter = new CrcCounter();
  const deflated = (await fileStream(path)).pipeThrough(counter.transform()).pipeThrough(
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

/** The bytes of a file as a stream; the file is closed at its end, on error or on cancel. */
async function fileStream(path: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
  const handle = await open(path, "r");
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull: async (controller) => {
      const buffer = new Uint8Array(READ_CHUNK);
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, 0, buffer.length, null));
      } catch (error) {
        await close().catch(() => {});
        throw error;
      }
      if (bytesRead === 0) {
        await close();
        controller.close();
        return;
      }
      controller.enqueue(bytesRead === buffer.length ? buffer : buffer.slice(0, bytesRead));
    },
    cancel: close,
  }, { highWaterMark: 0 });
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
function externalAttributes(info: EntryInfo): number {
  const permissions = info.mode & 0o7777;
  const unix = (info.isDirectory ? TYPE_DIRECTORY : TYPE_FILE) | permissions;
  return unix * 0x10000 + (info.isDirectory ? DOS_DIRECTORY : 0);
}

/** MS-DOS date and time fields (local time, 2-second resolution, 1980 at the earliest). */
function dosDateTime(when: Date): { time: number; date: number } {
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
  const stream = new ReadableStream<Uint8Array<ArrayBuffer>>({
    start: (controller) => {
      controller.enqueue(data);
      controller.close();
    },
  }).pipeThrough(new CompressionStream("deflate-raw"));
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

/** A DataView over exactly the bytes of an array. */
function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A value in double quotes for an error message. */
function quote(value: string): string {
  return JSON.stringify(value);
}
