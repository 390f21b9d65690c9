/**
 * Zip extraction on zip.js (loaded at the first call): the archive is read from its file by
 * random access and every entry streams to its own file, so neither sits in memory. Zip64 is
 * read as any archive; encrypted and symbolic-link entries are refused.
 *
 * zip.js reads the format; what extracting into a directory needs is rock's: every name is
 * checked before anything is written (no absolute names, no `..`), no entry is written through a
 * symbolic link found in the destination, and unix permission bits are applied.
 */
import type { Entry, FileEntry } from "@zip.js/zip.js";
import { writeAllSync } from "./file_sink.ts";
import { describe, loadZipLibrary, quote, ZipError, type ZipLibrary } from "./zip_library.ts";

export { ZipError };

// Types other than directory and symlink (e.g. a FIFO read by "zip -") extract as files.
const TYPE_MASK = 0o170000;
const TYPE_DIRECTORY = 0o040000;
const TYPE_SYMLINK = 0o120000;
const CRC_MISMATCH = "CRC-32 mismatch";

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
 * @throws {ZipError} When the archive is malformed, corrupt (CRC or size mismatch), uses
 *   encryption or an unsupported method, or holds an unsafe entry. A file that fails its checks
 *   is removed; files extracted before it stay. File-system errors (`Deno.errors.*`) propagate.
 */
export async function extractZip(zipPath: string, destDir: string): Promise<number> {
  const zip = await loadZipLibrary();
  const file = await Deno.open(zipPath, { read: true });
  try {
    const reader = new zip.ZipReader(fileReader(zip, file, (await file.stat()).size), {
      checkCrc32: true,
      // Names are judged below, with rock's messages, before anything is written.
      filenameValidation: "tolerant",
    });
    const entries = await zipCall(() => reader.getEntries(), (reason) => {
      return `Cannot read zip ${quote(zipPath)}: ${reason}`;
    });
    const methods = decompressionMethods(zip);
    const planned = entries.map((entry) => planEntry(entry, zipPath, methods));
    await Deno.mkdir(destDir, { recursive: true });
    const root = await Deno.realPath(destDir);
    const directories = new DirectoryMaker(root, zipPath);
    const modes: Array<{ path: string; mode: number; depth: number }> = [];
    let written = 0;
    for (const { entry, segments, isDirectory, mode } of planned) {
      if (segments.length === 0) continue;
      // planEntry() leaves no "", ".", ".." or "/" in a segment: the target is inside root.
      const target = childPath(root, segments);
      if (isDirectory) {
        await directories.make(segments, entry.filename);
        if (mode !== undefined) modes.push({ path: target, mode, depth: segments.length });
      } else {
        await directories.make(segments.slice(0, -1), entry.filename);
        const out = await openTarget(target, entry.filename, zipPath);
        try {
          await writeEntry(entry as FileEntry, out, entryLabel(entry.filename, zipPath));
        } catch (error) {
          await Deno.remove(target).catch(() => {});
          throw error;
        }
        if (mode !== undefined) await Deno.chmod(target, mode);
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

/** A zip.js Reader reading the archive from its open file, at the offsets zip.js asks for. */
function fileReader(zip: ZipLibrary, file: Deno.FsFile, size: number): ZipJsReader {
  class FileReader extends zip.Reader<Deno.FsFile> {
    override async readUint8Array(index: number, length: number): Promise<Uint8Array> {
      // An archive whose offsets are off (cut, or prefixed) can ask for bytes before its start.
      if (index < 0 || index > size) throw new Error("Data lies outside the file");
      const buffer = new Uint8Array(Math.max(0, Math.min(length, size - index)));
      await file.seek(index, Deno.SeekMode.Start);
      let filled = 0;
      while (filled < buffer.length) {
        const count = await file.read(buffer.subarray(filled));
        if (count === null || count === 0) break;
        filled += count;
      }
      return filled === buffer.length ? buffer : buffer.subarray(0, filled);
    }
  }
  const reader = new FileReader(file);
  reader.size = size;
  return reader;
}

/** The zip.js Reader type. */
type ZipJsReader = InstanceType<ZipLibrary["Reader"]>;

/** Compression methods zip.js can decompress here (stored, deflate, deflate64). */
function decompressionMethods(zip: ZipLibrary): Set<number> {
  const methods = zip.getSupportedCompressionMethods().filter((method) => method.decompression);
  return new Set([0, ...methods.map((method) => method.compressionMethod)]);
}

/** An entry with what extracting it needs, or ZipError for an entry rock refuses. */
interface PlannedEntry {
  entry: Entry;
  segments: string[];
  isDirectory: boolean;
  /** Permission bits to apply, when the archive stores unix attributes. */
  mode?: number;
}

/** Checks an entry before anything is written: its name, type, encryption and method. */
function planEntry(entry: Entry, zipPath: string, methods: Set<number>): PlannedEntry {
  const target = entryLabel(entry.filename, zipPath);
  const segments = entrySegments(entry.filename, target);
  if (entry.encrypted) {
    throw new ZipError(`Cannot extract ${target}: encrypted entries are not supported`);
  }
  const unixAttributes = entry.externalFileAttributes >>> 16;
  const type = unixAttributes & TYPE_MASK;
  if (entry.symlink || type === TYPE_SYMLINK) {
    throw new ZipError(`Cannot extract ${target}: symbolic link entries are not supported`);
  }
  const isDirectory = entry.directory || entry.filename.endsWith("\\") || type === TYPE_DIRECTORY;
  if (!isDirectory && !methods.has(entry.compressionMethod)) {
    throw new ZipError(
      `Cannot extract ${target}: compression method ${entry.compressionMethod} is not supported`,
    );
  }
  const planned: PlannedEntry = { entry, segments, isDirectory };
  if (unixAttributes !== 0) planned.mode = unixAttributes & 0o777;
  return planned;
}

/** Streams one file entry into `out` (which it closes); zip.js checks size and CRC-32. */
async function writeEntry(entry: FileEntry, out: Deno.FsFile, label: string): Promise<void> {
  try {
    const sink = new WritableStream<Uint8Array>({ write: (chunk) => writeAllSync(out, chunk) });
    await zipCall(() => entry.getData(sink), (reason) => {
      if (reason === CRC_MISMATCH && entry.crc32 !== undefined) {
        return `Cannot extract ${label}: ${reason} (expected ${hex(entry.crc32)})`;
      }
      return `Cannot extract ${label}: ${reason}`;
    });
  } finally {
    out.close();
  }
}

/**
 * Runs a zip.js call; its errors (a malformed archive, corrupt data, a CRC mismatch) become
 * ZipError with `message(reason)`, while file-system errors propagate as they are.
 */
async function zipCall<T>(call: () => Promise<T>, message: (reason: string) => string): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ZipError || isFileSystemError(error)) throw error;
    throw new ZipError(message(reason(error)), { cause: error });
  }
}

/** A zip.js error message as rock words it. */
function reason(error: unknown): string {
  const message = describe(error);
  if (message === "Invalid CRC32") return CRC_MISMATCH;
  if (message === "Invalid compressed data" || error instanceof TypeError) {
    return `corrupt deflate data (${message})`;
  }
  if (message === "Invalid uncompressed size") return "data size differs from the declared size";
  if (message === "End of central directory not found") {
    return "end of central directory record not found (not a zip file?)";
  }
  if (message === "File format is not recognized") {
    return "file format is not recognized (not a zip file?)";
  }
  return message.charAt(0).toLowerCase() + message.slice(1);
}

/** A CRC as 0x-prefixed hex. */
function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

/** Whether an error is one of Deno's file-system errors. */
function isFileSystemError(error: unknown): boolean {
  return Object.values(Deno.errors).some((type) => error instanceof type);
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
      const at = quote(segments.slice(0, depth + 1).join("/"));
      if (info.isSymlink) throw new ZipError(`Cannot extract ${shown}: ${at} is a symbolic link`);
      if (!info.isDirectory) {
        throw new ZipError(`Cannot extract ${shown}: ${at} is not a directory`);
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

/** The path segments of an entry name, or ZipError for names that could leave the destination. */
function entrySegments(entryName: string, shown: string): string[] {
  if (entryName.includes("\0")) {
    throw new ZipError(`Cannot extract ${shown}: the name contains a NUL byte`);
  }
  const name = entryName.replaceAll("\\", "/");
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) {
    throw new ZipError(`Cannot extract ${shown}: absolute paths are not allowed`);
  }
  const segments = name.split("/").filter((segment) => segment !== "" && segment !== ".");
  if (segments.includes("..")) {
    throw new ZipError(`Cannot extract ${shown}: ".." segments are not allowed`);
  }
  return segments;
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
