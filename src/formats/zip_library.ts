/**
 * What rock's zip reader and writer share: the error class and the zip.js library, loaded at the
 * first zip use. A dynamic import keeps zip.js (a few hundred KiB of JavaScript) out of a
 * rocklet's start-up; `deno bundle` still inlines it, so a bundle never fetches it at run time.
 *
 * Portable: no Deno namespace API, so the SDK's writer runs under Node too.
 */
import type * as ZipJs from "@zip.js/zip.js";

/** The zip.js module. */
export type ZipLibrary = typeof ZipJs;

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
 * Loads zip.js and configures it for rock: no web workers (a bundle is one file, and a worker
 * would need a script of its own), and the platform's CompressionStream only where it knows
 * "deflate-raw" (Node before 20.12 does not); elsewhere zip.js's own codec, bundled inside it.
 * Configuring again on a later call is harmless: the values are the same.
 */
export async function loadZipLibrary(): Promise<ZipLibrary> {
  const zip = await import("@zip.js/zip.js");
  zip.configure({ useWebWorkers: false, useCompressionStream: supportsDeflateRaw() });
  return zip;
}

/** Whether the platform's CompressionStream and DecompressionStream accept "deflate-raw". */
function supportsDeflateRaw(): boolean {
  try {
    new CompressionStream("deflate-raw");
    new DecompressionStream("deflate-raw");
    return true;
  } catch {
    return false;
  }
}

/** A value in double quotes for an error message. */
export function quote(value: string): string {
  return JSON.stringify(value);
}

/** The message of an unknown error. */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
