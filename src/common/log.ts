/**
 * One logger per role: one line per event on stderr,
 * `<ISO time> <LEVEL> [<logger>] <message> {fields}`, times in ROCK_TIME_ZONE.
 */
import { isoInZone, knownTimeZone } from "./time.ts";

/** Log levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Structured fields; keys are fixed names such as `sandbox_id`, `session`, `request_id`. */
export type LogFields = Record<string, unknown>;

/** A logger that writes single lines. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** Options of createLogger. */
export interface LoggerOptions {
  /** Lowest level written (default info). */
  level?: LogLevel;
  /** Time zone of timestamps (default Asia/Shanghai; one Intl does not know falls back to it). */
  timeZone?: string;
  /** Where lines go (default stderr). */
  write?: (line: string) => void;
}

/** Creates the logger `name`. */
export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? "info"];
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  // Checked when the first line is written, not before: see knownTimeZone().
  let timeZone: string | undefined;
  const emit = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    timeZone ??= knownTimeZone(options.timeZone);
    const time = isoInZone(new Date(), timeZone, true);
    const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : "";
    write(`${time} ${level.toUpperCase()} [${name}] ${message}${extra}`);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/** A logger that drops everything (for tests and embedding). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
