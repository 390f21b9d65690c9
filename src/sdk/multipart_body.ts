/** Streamed multipart/form-data request bodies: text fields first, then one file part. */

/** A streamed multipart body and its content type. */
export interface MultipartBody {
  body: ReadableStream<Uint8Array>;
  contentType: string;
}

/**
 * Builds a body with `fields` (in order) and then `file` under the field name "file". The file
 * is pulled as the request is sent, so it is never held in memory.
 */
export function multipartBody(
  fields: Record<string, string>,
  file: ReadableStream<Uint8Array>,
  fileName: string,
): MultipartBody {
  const boundary = `rock-${crypto.randomUUID()}`;
  const encoder = new TextEncoder();
  let head = "";
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  }
  head += `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="${
    fileName.replace(/["\r\n]/g, "_")
  }"\r\ncontent-type: application/octet-stream\r\n\r\n`;
  return {
    body: concatStreams([encoder.encode(head), file, encoder.encode(`\r\n--${boundary}--\r\n`)]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/** Concatenates byte arrays and streams into one stream, pulling each part in order. */
export function concatStreams(
  parts: Array<Uint8Array | ReadableStream<Uint8Array>>,
): ReadableStream<Uint8Array> {
  let index = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (index < parts.length) {
        const part = parts[index];
        if (part === undefined) break;
        if (part instanceof Uint8Array) {
          index++;
          controller.enqueue(part);
          return;
        }
        reader ??= part.getReader();
        const { done, value } = await reader.read();
        if (!done) {
          controller.enqueue(value);
          return;
        }
        reader = undefined;
        index++;
      }
      controller.close();
    },
    async cancel(reason) {
      await reader?.cancel(reason);
    },
  });
}
