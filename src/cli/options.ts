/** Parsers for command-line option values; each rejects bad input with one clear line. */
import { InvalidArgumentError } from "@commander-js/extra-typings";

/** Parses a TCP port (0 picks a free one). */
export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new InvalidArgumentError(`expected a port number from 0 to 65535, got "${value}"`);
  }
  return port;
}

/** Parses a size such as `10485760`, `512k`, `10m`, `1g` (1024-based) into bytes. */
export function parseSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(value.trim());
  if (!match) {
    throw new InvalidArgumentError(`expected a size such as 10m or 1048576, got "${value}"`);
  }
  const power = " kmgt".indexOf(match[2].toLowerCase() || " ");
  const bytes = Math.floor(Number(match[1]) * 1024 ** power);
  if (bytes <= 0) throw new InvalidArgumentError(`expected a size above zero, got "${value}"`);
  return bytes;
}

/** Parses a log level. */
export function parseLogLevel(value: string): "debug" | "info" | "warn" | "error" {
  if (value === "debug" || value === "info" || value === "warn" || value === "error") return value;
  throw new InvalidArgumentError(`expected one of debug, info, warn, error, got "${value}"`);
}
