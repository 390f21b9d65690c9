/** File operations of a runtime: text read/write, streamed upload and download. */
import {
  BadRequestError,
  type FileErrorKind,
  fileOperationError,
  RockError,
} from "../common/errors.ts";
import type { ReadFileRequest, UploadResponse, WriteFileRequest } from "../protocol/rocklet.ts";
import type { Download, UploadOptions } from "../protocol/runtime.ts";
import { fileSink } from "../formats/file_sink.ts";
import { ZipError } from "../formats/zip_library.ts";
import { extractZip } from "../formats/zip_reader.ts";

/** Turns a Deno file-system error into a FileOperationError saying what failed on which path. */
export function fileError(action: string, path: string, error: unknown): RockError {
  if (error instanceof RockError) return error;
  const kinds: Array<[new (...args: never[]) => Error, FileErrorKind, string]> = [
    [Deno.errors.NotFound, "FileNotFoundError", "no such file or directory"],
    [Deno.errors.IsADirectory, "IsADirectoryError", "it is a directory"],
    [Deno.errors.NotADirectory, "NotADirectoryError", "a parent is not a directory"],
    [Deno.errors.PermissionDenied, "PermissionError", "permission denied"],
    [Deno.errors.AlreadyExists, "FileExistsError", "it exists already"],
  ];
  for (const [type, kind, reason] of kinds) {
    if (error instanceof type) {
      return fileOperationError(`Cannot ${action} "${path}": ${reason}`, kind, path);
    }
  }
  const detail = error instanceof Error ? error.message : String(error);
  return fileOperationError(`Cannot ${action} "${path}": ${detail}`, "OSError", path);
}

/** Throws IsADirectoryError when `path` is a directory (Deno reports some of these late). */
async function assertNotDirectory(
  action: string,
  path: string,
): Promise<Deno.FileInfo | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw fileError(action, path, error);
  }
  if (info.isDirectory) {
    throw fileOperationError(
      `Cannot ${action} "${path}": it is a directory`,
      "IsADirectoryError",
      path,
    );
  }
  return info;
}

/** Reads a text file with the requested encoding (utf-8 by default) and error handling. */
export async function readTextFile(request: ReadFileRequest): Promise<{ content: string }> {
  const { path } = request;
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(request.encoding ?? "utf-8", {
      fatal: (request.errors ?? "strict") === "strict",
    });
  } catch {
    throw new BadRequestError(`Cannot read "${path}": unknown encoding "${request.encoding}"`);
  }
  await assertNotDirectory("read file", path);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw fileError("read file", path, error);
  }
  try {
    const content = decoder.decode(bytes);
    return { content: request.errors === "ignore" ? content.replaceAll("\ufffd", "") : content };
  } catch {
    throw fileOperationError(
      `Cannot read "${path}": its bytes are not valid ${decoder.encoding}; ` +
        `pass errors "replace" or another encoding`,
      "UnicodeDecodeError",
      path,
    );
  }
}

/** Parent directory of `path` ("." when it has none). */
function parentOf(path: string): string {
  const at = path.replace(/\/+$/, "").lastIndexOf("/");
  return at < 0 ? "." : at === 0 ? "/" : path.slice(0, at);
}

/** Base name of `path`. */
function baseName(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() ?? path;
}

/** Writes a UTF-8 text file, creating parent directories. */
export async function writeTextFile(
  request: WriteFileRequest,
): Promise<{ success: boolean; message: string }> {
  const { path } = request;
  await assertNotDirectory("write file", path);
  try {
    await Deno.mkdir(parentOf(path), { recursive: true });
    await Deno.writeTextFile(path, request.content);
  } catch (error) {
    throw fileError("write file", path, error);
  }
  return { success: true, message: `wrote ${path}` };
}

/**
 * Streams `data` to `options.targetPath` through a temporary file in the same directory, renamed
 * into place at the end, so a failed upload leaves no partial file. With `unzip`, the data is a
 * zip archive extracted into `targetPath` (a directory).
 */
export async function uploadStream(
  data: ReadableStream<Uint8Array>,
  options: UploadOptions,
): Promise<UploadResponse> {
  let target = options.targetPath;
  const fileName = options.fileName ?? baseName(target);
  if (!options.unzip) {
    const info = await Deno.stat(target).catch(() => undefined);
    if (info?.isDirectory) {
      if (!options.fileName) {
        await data.cancel();
        throw fileOperationError(
          `Cannot upload to "${target}": it is a directory; give a file path`,
          "IsADirectoryError",
          target,
        );
      }
      target = `${target.replace(/\/+$/, "")}/${baseName(options.fileName)}`;
    }
  }
  const dir = options.unzip ? target : parentOf(target);
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (error) {
    await data.cancel();
    throw fileError("upload to", target, error);
  }
  const temp = `${options.unzip ? parentOf(target) : dir}/.rock-upload-${crypto.randomUUID()}`;
  try {
    const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
    await data.pipeTo(fileSink(file));
    if (options.unzip) {
      const entries = await extractZip(temp, target);
      return {
        success: true,
        message: `extracted ${entries} entries into ${target}`,
        file_name: fileName,
      };
    }
    await Deno.rename(temp, target);
    return { success: true, message: `uploaded ${target}`, file_name: fileName };
  } catch (error) {
    if (error instanceof ZipError) {
      throw new BadRequestError(`Cannot extract the upload into "${target}": ${error.message}`);
    }
    throw fileError("upload to", target, error);
  } finally {
    await Deno.remove(temp).catch(() => {});
  }
}

/** Opens a file for a streamed, binary-safe download. */
export async function downloadFile(path: string): Promise<Download> {
  const info = await assertNotDirectory("download", path);
  if (!info) throw fileError("download", path, new Deno.errors.NotFound());
  try {
    const file = await Deno.open(path, { read: true });
    return { body: file.readable, size: info.size };
  } catch (error) {
    throw fileError("download", path, error);
  }
}
