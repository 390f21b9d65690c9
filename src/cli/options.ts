/** Parsers for command-line option values; each rejects bad input with one clear line. */
import { InvalidArgumentError } from "@commander-js/extra-typings";
import { checkLogLevel, checkPort, checkSize } from "./values.ts";

/** Adapts a check from values.ts to commander, which reports InvalidArgumentError in one line. */
export function forCommander<T>(check: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return check(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

/** Parses a TCP port (0 picks a free one). */
export const parsePort: (value: string) => number = forCommander(checkPort);

/** Parses a size such as `10485760`, `512k`, `10m`, `1g` (1024-based) into bytes. */
export const parseSize: (value: string) => number = forCommander(checkSize);

/** Parses a log level. */
export const parseLogLevel: (value: string) => "debug" | "info" | "warn" | "error" = forCommander(
  checkLogLevel,
);
