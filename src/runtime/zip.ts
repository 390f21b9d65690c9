/**
 * Zip archives: extraction (zip_reader.ts, what the rocklet needs) and, for Deno callers, the
 * writer with `node:fs` errors turned into `Deno.errors` classes.
 */
import { zipDirectory as portableZipDirectory } from "./zip_writer.ts";

import { ZipError } from "./zip_format.ts";

export { extractZip } from "./zip_reader.ts";
export { ZipError };

/**
 * Writes a zip of every file under srcDir to a stream: {@link portableZipDirectory} from
 * zip_writer.ts, with `node:fs` errors (an `Error` with a `code`) turned into the matching
 * `Deno.errors.*` class (original error as `cause`). ZipError passes through unchanged.
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
  const reader = portableZipDirectory(srcDir).getReader();
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        throw denoError(error);
      }
      if (result.done) controller.close();
      else controller.enqueue(result.value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** `Deno.errors` classes for the `node:fs` error codes the writer can meet. */
const DENO_ERRORS: Record<string, new (message: string, options?: ErrorOptions) => Error> = {
  ENOENT: Deno.errors.NotFound,
  EACCES: Deno.errors.PermissionDenied,
  EPERM: Deno.errors.PermissionDenied,
  EEXIST: Deno.errors.AlreadyExists,
  ENOTDIR: Deno.errors.NotADirectory,
  EISDIR: Deno.errors.IsADirectory,
  ELOOP: Deno.errors.FilesystemLoop,
  EBUSY: Deno.errors.Busy,
  EINTR: Deno.errors.Interrupted,
};

/** A `node:fs` error as the matching `Deno.errors.*` (same message and code); others unchanged. */
function denoError(error: unknown): unknown {
  if (error instanceof ZipError || !(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  const ErrorClass = typeof code === "string" ? DENO_ERRORS[code] : undefined;
  const message = error.message;
  if (ErrorClass === undefined || error instanceof ErrorClass) return error;
  const converted = new ErrorClass(message, { cause: error });
  Object.assign(converted, { code });
  return converted;
}
