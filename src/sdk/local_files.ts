/** Local files as web streams, with `node:` APIs only (the SDK runs on Deno and Node). */
import { mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";

/** Streams the file at `path` in 256 KiB chunks. */
export async function fileStream(path: string): Promise<ReadableStream<Uint8Array>> {
  const handle = await open(path, "r");
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buffer = new Uint8Array(256 * 1024);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) {
        await handle.close();
        controller.close();
        return;
      }
      controller.enqueue(buffer.subarray(0, bytesRead));
    },
    async cancel() {
      await handle.close();
    },
  });
}

/** Writes `stream` to the file at `path` (parents created), reporting bytes written. */
export async function writeStreamToFile(
  stream: ReadableStream<Uint8Array>,
  path: string,
  onProgress?: (bytes: number) => void,
): Promise<number> {
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(path, "w");
  let total = 0;
  try {
    for await (const chunk of stream) {
      for (let done = 0; done < chunk.length;) {
        done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
      }
      total += chunk.length;
      onProgress?.(total);
    }
  } finally {
    await handle.close();
  }
  return total;
}
