/**
 * Receives a multipart upload (`file` plus text fields such as `target_path`) as a stream. ROCK's
 * clients send the fields first, so the file is handed on while it arrives; when it comes before
 * the fields it needs, it is spooled to a temporary file first.
 */
import { BadRequestError } from "../common/errors.ts";
import { fileSink } from "../formats/file_sink.ts";
import {
  multipartBoundary,
  MultipartError,
  parseMultipart,
  readPartText,
} from "../formats/multipart.ts";

/** An upload: its text fields and the file's bytes. */
export interface UploadForm {
  fields: Record<string, string>;
  file: ReadableStream<Uint8Array>;
  fileName?: string | undefined;
}

/**
 * Parses `request` and calls `handle` once with the file. `ready(fields)` says whether the fields
 * seen so far suffice to stream the file straight through.
 * @throws {BadRequestError} for a malformed body, a missing or repeated `file` part.
 */
export async function receiveUpload<T>(
  request: Request,
  ready: (fields: Record<string, string>) => boolean,
  handle: (form: UploadForm) => Promise<T>,
): Promise<T> {
  if (!request.body) throw new BadRequestError("Invalid upload request: the body is empty");
  const fields: Record<string, string> = {};
  let spooled: { path: string; fileName?: string | undefined } | undefined;
  let result: { value: T } | undefined;
  try {
    const boundary = multipartBoundary(request.headers.get("content-type"));
    for await (const part of parseMultipart(request.body, boundary)) {
      if (part.name !== "file") {
        fields[part.name] = await readPartText(part);
        continue;
      }
      if (result || spooled) {
        throw new BadRequestError('Invalid upload request: more than one "file" part');
      }
      if (ready(fields)) {
        result = { value: await handle({ fields, file: part.body, fileName: part.filename }) };
      } else {
        const path = await Deno.makeTempFile({ prefix: "rock-upload-" });
        spooled = { path, fileName: part.filename };
        await part.body.pipeTo(fileSink(await Deno.open(path, { write: true })));
      }
    }
    if (result) return result.value;
    if (!spooled) throw new BadRequestError('Invalid upload request: field "file" is required');
    const file = await Deno.open(spooled.path, { read: true });
    return await handle({ fields, file: file.readable, fileName: spooled.fileName });
  } catch (error) {
    if (error instanceof MultipartError) {
      throw new BadRequestError(`Invalid upload request: ${error.message}`);
    }
    throw error;
  } finally {
    if (spooled) await Deno.remove(spooled.path).catch(() => {});
  }
}
