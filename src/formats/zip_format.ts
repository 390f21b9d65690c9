/**
 * What the zip reader and writer share and that needs no platform API: the error class and
 * CRC-32. Kept apart so the rocklet, which only extracts, does not load the writer's node:fs.
 */

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

/** The CRC tables, built when first needed: at module load they cost a rocklet's start ~2 ms. */
let crcTables: Uint32Array | undefined;

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

/**
 * CRC-32 (as in zip and gzip) of bytes, continuing from a previous result.
 * @param bytes The data.
 * @param previous The CRC of the data before `bytes` (0 to start).
 * @returns The CRC-32 as an unsigned 32-bit number.
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const t = crcTables ??= makeCrcTables();
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

/** Record signatures, sizes and field values of the zip format (PKWARE APPNOTE). */
export const CENTRAL_HEADER_SIZE = 46;
export const CENTRAL_SIGNATURE = 0x02014b50;
export const DOS_DIRECTORY = 0x10;
export const END_SIGNATURE = 0x06054b50;
export const END_SIZE = 22;
export const HOST_UNIX = 3;
export const LOCAL_HEADER_SIZE = 30;
export const LOCAL_SIGNATURE = 0x04034b50;
export const METHOD_DEFLATE = 8;
export const METHOD_STORED = 0;
export const READ_CHUNK = 256 * 1024;
export const TYPE_DIRECTORY = 0o040000;
export const FLAG_UTF8 = 0x0800;
