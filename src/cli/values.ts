/**
 * Checks of command-line values, free of any CLI library so the slim rocklet entry can use them;
 * each throws an Error whose message completes "expected ...".
 */

/** A TCP port (0 picks a free one). */
export function checkPort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new Error(`expected a port number from 0 to 65535, got "${value}"`);
  }
  return port;
}

/** A size such as `10485760`, `512k`, `10m`, `1g` (1024-based), in bytes. */
export function checkSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(value.trim());
  if (!match) throw new Error(`expected a size such as 10m or 1048576, got "${value}"`);
  const [, digits, unit = ""] = match;
  const power = " kmgt".indexOf(unit.toLowerCase() || " ");
  const bytes = Math.floor(Number(digits) * 1024 ** power);
  if (bytes <= 0) throw new Error(`expected a size above zero, got "${value}"`);
  return bytes;
}

/** A log level. */
export function checkLogLevel(value: string): "debug" | "info" | "warn" | "error" {
  if (value === "debug" || value === "info" || value === "warn" || value === "error") return value;
  throw new Error(`expected one of debug, info, warn, error, got "${value}"`);
}
