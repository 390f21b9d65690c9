/**
 * Zips a directory tree as a stream, on zip.js (loaded at the first call). Files stream from
 * disk one at a time; zip64 records are written where an entry, an offset or the entry count
 * needs them, so archives and files over 4 GiB work.
 *
 * Portable: only `node:` modules and web-standard APIs, so it runs under Deno and Node 20 (the
 * SDK's uploadDir()). No Deno namespace APIs here.
 */
import { lstat, open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { loadZipLibrary, quote, ZipError } from "./zip_library.ts";

export { ZipError };

const READ_CHUNK = 256 * 1024;

/**
 * Writes a zip of every file under srcDir (recursively, relative paths, directories as entries,
 * file modes kept in external attributes) to a stream.
 *
 * Symbolic links and special files are skipped. Files are deflated as they stream, each followed
 * by a data descriptor.
 * @param srcDir The directory to archive; its own name is not part of the entry names.
 * @returns The archive bytes; cancelling the stream stops reading files.
 * @throws {ZipError} Through the stream, when srcDir is not a directory. File-system errors
 *   propagate through the stream too, as `node:fs` reports them (an `Error` with a `code` such
 *   as "ENOENT").
 */
export function zipDirectory(srcDir: string): ReadableStream<Uint8Array> {
  let fail: (error: unknown) => void = () => {};
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>({
    start: (controller) => {
      fail = (error) => controller.error(error);
    },
  });
  // zip.js holds the writable's lock, so a failure errors the pair through the controller.
  writeZip(srcDir, writable).catch((error) => fail(error));
  return readable;
}

/** Writes the archive of srcDir into `writable`, which zip.js closes at the end. */
async function writeZip(srcDir: string, writable: WritableStream<Uint8Array>): Promise<void> {
  const stats = await stat(srcDir);
  if (!stats.isDirectory()) throw new ZipError(`Cannot zip ${quote(srcDir)}: not a directory`);
  const zip = await loadZipLibrary();
  const writer = new zip.ZipWriter(writable, {
    // Entries are added one after another, so the archive streams in walk order.
    keepOrder: true,
    // The archive streams out, so it cannot go back to fill a header: a data descriptor follows.
    dataDescriptor: true,
  });
  for await (const item of walk(srcDir, "")) {
    const options = {
      lastModDate: item.mtime,
      unixMode: item.mode & 0o7777,
      msDosCompatible: false,
      extendedTimestamp: false,
    };
    if (item.isDirectory) {
      await writer.add(item.name, undefined, { ...options, directory: true });
    } else {
      // The size tells zip.js up front whether the entry needs zip64 fields.
      await writer.add(item.name, await fileStream(item.path), {
        ...options,
        uncompressedSize: item.size,
      });
    }
  }
  await writer.close();
}

/** An entry of the tree being zipped. */
interface WalkItem {
  path: string;
  name: string;
  isDirectory: boolean;
  size: number;
  mode: number;
  mtime: Date;
}

/** Yields directories (before their contents) and regular files under dir, sorted by name. */
async function* walk(dir: string, prefix: string): AsyncGenerator<WalkItem> {
  const names = await readdir(dir);
  names.sort();
  for (const name of names) {
    const path = join(dir, name);
    const stats = await lstat(path);
    const item = { path, size: stats.size, mode: stats.mode, mtime: stats.mtime };
    if (stats.isDirectory()) {
      yield { ...item, name: `${prefix}${name}/`, isDirectory: true };
      yield* walk(path, `${prefix}${name}/`);
    } else if (stats.isFile()) {
      yield { ...item, name: `${prefix}${name}`, isDirectory: false };
    }
  }
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
